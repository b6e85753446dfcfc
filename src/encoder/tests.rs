//! Unit tests of the encoder internals: workspace shapes, flop counts, the gradient-only sigmoid
//! path and its `exp`, the ReLU and the small-norm branch of the normalisation.

use super::*;
use crate::base::gemm::relu;

#[test]
fn shapes_and_flops() {
    let cfg = EncoderConfig::new(5, 4, 1);
    let net = Encoder::<f64>::new(&cfg).unwrap();
    assert_eq!(net.inputs().dim(), (10, 8));
    assert_eq!(net.weight(0).dim(), (4, 8));
    assert_eq!(net.weight(1).dim(), (4, 4));
    // 28 N d^2 + 6 N^2 d for two layers.
    assert_eq!(net.flops_per_step(), (28 * 5 * 16 + 6 * 25 * 4) as f64);
    let net3 = Encoder::<f32>::new(&EncoderConfig { layers: 3, ..cfg }).unwrap();
    // A third layer adds 2 (2N) d^2 forward, as much for its weight gradient and for dH.
    assert_eq!(
        net3.flops_per_step() - net.flops_per_step(),
        (3 * 4 * 5 * 16) as f64
    );
}

#[test]
fn relu_propagates_nan_and_clamps_negatives() {
    assert!(relu(f32::NAN).is_nan());
    assert_eq!(relu(-2.0_f64), 0.0);
    assert_eq!(relu(3.0_f32), 3.0);
    assert_eq!(relu(f64::INFINITY), f64::INFINITY);
}

#[test]
fn observed_and_unobserved_training_agree_bitwise() {
    // Observing the loss must not change the run.
    for loss in [
        crate::loss::Loss::sigmoid(2.0, 2.0).unwrap(),
        crate::loss::Loss::infonce(0.3).unwrap(),
    ] {
        let cfg = EncoderConfig {
            steps: 40,
            ..EncoderConfig::new(9, 7, 11)
        };
        let a = train(&cfg, &loss).unwrap();
        let mut count = 0;
        let b = train_with::<f32>(&cfg, &loss, Some(&mut |_, _| count += 1)).unwrap();
        assert_eq!(count, 41);
        assert_eq!(a, b);
    }
}

#[test]
fn tiny_outputs_use_the_eps_branch_of_the_normalisation() {
    // Scale the last layer down so every output norm is far below 1e-12: the normalisation is
    // then y / eps, linear, with gradient (dL/du) / eps; check it against finite differences.
    let cfg = EncoderConfig::new(4, 3, 5);
    let mut net = Encoder::<f64>::new(&cfg).unwrap();
    net.weight_mut(1).mapv_inplace(|w| w * 1e-14);
    net.bias_mut(1).mapv_inplace(|b| b.abs() * 1e-14);
    let loss = crate::loss::Loss::sigmoid(1.0, 1.0).unwrap();
    net.loss_grad(&loss);
    let g = net.bias_grad(1).to_owned();
    assert!(g.iter().any(|&x| x != 0.0));
    for i in 0..g.len() {
        let b0 = net.bias(1)[i];
        let h = 1e-16;
        net.bias_mut(1)[i] = b0 + h;
        let lp = net.loss(&loss);
        net.bias_mut(1)[i] = b0 - h;
        let lm = net.loss(&loss);
        net.bias_mut(1)[i] = b0;
        let fd = (lp - lm) / (2.0 * h);
        assert!(
            (fd - g[i]).abs() <= 1e-5 * g[i].abs().max(1.0),
            "{fd} vs {}",
            g[i]
        );
    }
}

#[test]
fn padding_columns_stay_zero_through_training() {
    // The last size runs every product blocked (the transposed operands read in place) and
    // every elementwise pass on the rayon pool, with 4 padding columns.
    for (n, d, layers) in [(5, 3, 2), (9, 13, 3), (4, 8, 2), (236, 236, 3)] {
        let cfg = EncoderConfig {
            layers,
            ..EncoderConfig::new(n, d, 2)
        };
        for loss in [
            crate::loss::Loss::sigmoid(3.0, 3.0).unwrap(),
            crate::loss::Loss::infonce(0.2).unwrap(),
        ] {
            let mut net = Encoder::<f32>::new(&cfg).unwrap();
            assert!(net.padding_is_zero());
            let steps = if n > 100 { 2 } else { 20 };
            for _ in 0..steps {
                assert!(net.grad(&loss));
                assert!(net.sgd_step(0.5));
                assert!(net.padding_is_zero(), "N = {n}, d = {d}, {loss:?}");
            }
        }
    }
}

#[test]
fn blocked_products_are_bitwise_independent_of_the_thread_count() {
    // N = d = 232: every product is above the crossover and cut into several row blocks, and
    // the elementwise passes over `2N x d` entries run on the rayon pool.
    let cfg = EncoderConfig {
        steps: 3,
        ..EncoderConfig::new(232, 232, 5)
    };
    let s = cfg.n;
    assert!(
        GemmKernel::Auto.resolve(s, s, s) == GemmKernel::Blocked && s > block_rows(s),
        "the test must exercise several blocks"
    );
    assert!(
        2 * s * s >= super::network::PAR_MIN,
        "the test must exercise the parallel passes"
    );
    let loss = crate::loss::Loss::sigmoid(3.0, 3.0).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| train(&cfg, &loss).unwrap())
    };
    let (one, three) = (run(1), run(3));
    assert_eq!(one.s_pos.to_bits(), three.s_pos.to_bits());
    assert_eq!(one.u, three.u);
    assert_eq!(one.v, three.v);
    // The same computation as the f64 network, to f32 rounding.
    let f64_run = train_with::<f64>(&cfg, &loss, None).unwrap();
    assert!(
        (one.s_pos - f64_run.s_pos).abs() < 1e-5,
        "{} {}",
        one.s_pos,
        f64_run.s_pos
    );
}

#[test]
fn blocked_and_tiled_products_agree() {
    let (m, k, n) = (300, 70, 24);
    let a =
        ndarray::Array2::from_shape_fn((k, m), |(i, j)| ((i * 7 + j * 3) % 17) as f32 / 17.0 - 0.5);
    let b = ndarray::Array2::from_shape_fn((k, n), |(i, j)| ((i + 5 * j) % 13) as f32 / 13.0 - 0.5);
    let mut tiled = ndarray::Array2::from_elem((m, n), 0.5f32);
    let mut blocked = tiled.clone();
    gemm_kernel(GemmKernel::Tiled, a.t(), b.view(), tiled.view_mut(), true);
    gemm_kernel(
        GemmKernel::Blocked,
        a.t(),
        b.view(),
        blocked.view_mut(),
        true,
    );
    let expected = a.t().mapv(f64::from).dot(&b.mapv(f64::from)) + 0.5;
    for ((t, bl), e) in tiled.iter().zip(&blocked).zip(&expected) {
        assert!((f64::from(*t) - e).abs() < 1e-5 && (f64::from(*bl) - e).abs() < 1e-5);
    }
}

/// SimCLR at temperature `tau` (a loss of the joint views, SPEC §1.0).
fn simclr(tau: f64) -> crate::loss::Loss {
    crate::loss::Loss::build(
        crate::loss::LossKind::SimClr,
        &crate::loss::LossParams {
            tau: Some(tau),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn a_joint_loss_trains_the_encoder_in_both_precisions() {
    // dL/dE = (G + G^T) E over the 2N views: the loss falls, f32 and f64 agree.
    let loss = simclr(0.5);
    let cfg = EncoderConfig {
        steps: 60,
        ..EncoderConfig::new(8, 8, 3)
    };
    let mut losses = Vec::new();
    let r32 = train_with::<f32>(&cfg, &loss, Some(&mut |_, l| losses.push(l))).unwrap();
    let r64 = train_with::<f64>(&cfg, &loss, None).unwrap();
    assert!(!r32.termination.is_diverged());
    assert!(
        losses[losses.len() - 1] < losses[0] - 0.05,
        "{} -> {}",
        losses[0],
        losses[losses.len() - 1]
    );
    // The loss is the library's value of the final embeddings.
    let direct = crate::loss::driver::value(
        &loss,
        r64.u.view(),
        r64.v.view(),
        crate::loss::BlockOptions::default(),
    );
    assert!(
        (r64.loss - direct).abs() < 1e-12,
        "{} vs {direct}",
        r64.loss
    );
    for (a, b) in [
        (r32.s_pos, r64.s_pos),
        (r32.s_neg, r64.s_neg),
        (r32.loss, r64.loss),
    ] {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

#[test]
fn a_joint_loss_has_the_encoder_gradient_of_finite_differences() {
    // Every weight and bias of a 3-layer f64 network under SimCLR, central differences.
    let cfg = EncoderConfig {
        layers: 3,
        ..EncoderConfig::new(4, 3, 9)
    };
    let loss = simclr(0.4);
    let mut net = Encoder::<f64>::new(&cfg).unwrap();
    net.loss_grad(&loss);
    let h = 1e-6;
    let mut worst: f64 = 0.0;
    for l in 0..net.layers() {
        let gw = net.weight_grad(l).to_owned();
        for ((o, i), &g) in gw.indexed_iter() {
            let w0 = net.weight(l)[[o, i]];
            net.weight_mut(l)[[o, i]] = w0 + h;
            let lp = net.loss(&loss);
            net.weight_mut(l)[[o, i]] = w0 - h;
            let lm = net.loss(&loss);
            net.weight_mut(l)[[o, i]] = w0;
            worst = worst.max(((lp - lm) / (2.0 * h) - g).abs() / g.abs().max(1e-3));
        }
        let gb = net.bias_grad(l).to_owned();
        for (i, &g) in gb.iter().enumerate() {
            let b0 = net.bias(l)[i];
            net.bias_mut(l)[i] = b0 + h;
            let lp = net.loss(&loss);
            net.bias_mut(l)[i] = b0 - h;
            let lm = net.loss(&loss);
            net.bias_mut(l)[i] = b0;
            worst = worst.max(((lp - lm) / (2.0 * h) - g).abs() / g.abs().max(1e-3));
        }
    }
    assert!(worst < 1e-6, "{worst}");
}

#[test]
fn a_joint_loss_trains_the_encoder_in_mini_batches() {
    use crate::batch::{Batching, MiniBatch};
    let loss = simclr(0.5);
    let cfg = EncoderConfig {
        steps: 40,
        batch: Some(MiniBatch::new(8, 4, Some(Batching::Shuffled), &loss).unwrap()),
        neg_variance_weight: 0.5,
        ..EncoderConfig::new(8, 6, 2)
    };
    let r = train(&cfg, &loss).unwrap();
    assert!(!r.termination.is_diverged() && r.loss.is_finite());
    assert_eq!(r.steps_run, 40);
}
