//! The encoder experiment (SPEC.md §5): analytic gradients against finite differences,
//! determinism, the paper's two regimes, configuration errors and divergence.

use ccem::encoder::{train, train_with, Encoder, EncoderConfig};
use ccem::loss::Loss;
use ccem::Error;

fn cfg(n: usize, d: usize, layers: usize, steps: usize, seed: u64) -> EncoderConfig {
    EncoderConfig {
        n,
        d,
        layers,
        steps,
        lr: 0.5,
        seed,
        batch: None,
        neg_variance_weight: 0.0,
        max_memory: Default::default(),
    }
}

/// Central finite differences of the loss with respect to every weight and bias, compared with
/// the analytic gradient (scaled by `scale`, 1 for the real check). Returns the largest error
/// relative to the largest gradient entry of its tensor (at least 1e-3 of the largest of all).
fn fd_error(net: &mut Encoder<f64>, loss: &Loss, scale: f64) -> f64 {
    let h = 1e-6;
    net.loss_grad(loss);
    let layers = net.layers();
    let gw: Vec<_> = (0..layers).map(|l| net.weight_grad(l).to_owned()).collect();
    let gb: Vec<_> = (0..layers).map(|l| net.bias_grad(l).to_owned()).collect();
    let global = gw
        .iter()
        .flat_map(|g| g.iter())
        .chain(gb.iter().flat_map(|g| g.iter()))
        .fold(1e-6_f64, |m, g| m.max(g.abs()));
    let floor = 1e-3 * global;
    let mut worst: f64 = 0.0;
    for l in 0..layers {
        // Weights.
        let (rows, cols) = gw[l].dim();
        let wmax = gw[l].iter().fold(floor, |m, g| m.max(g.abs()));
        for i in 0..rows {
            for j in 0..cols {
                let w0 = net.weight(l)[[i, j]];
                net.weight_mut(l)[[i, j]] = w0 + h;
                let lp = net.loss(loss);
                net.weight_mut(l)[[i, j]] = w0 - h;
                let lm = net.loss(loss);
                net.weight_mut(l)[[i, j]] = w0;
                let fd = (lp - lm) / (2.0 * h);
                worst = worst.max((fd - scale * gw[l][[i, j]]).abs() / wmax);
            }
        }
        // Biases.
        let bmax = gb[l].iter().fold(floor, |m, g| m.max(g.abs()));
        for (i, &gbi) in gb[l].iter().enumerate() {
            let b0 = net.bias(l)[i];
            net.bias_mut(l)[i] = b0 + h;
            let lp = net.loss(loss);
            net.bias_mut(l)[i] = b0 - h;
            let lm = net.loss(loss);
            net.bias_mut(l)[i] = b0;
            let fd = (lp - lm) / (2.0 * h);
            worst = worst.max((fd - scale * gbi).abs() / bmax);
        }
    }
    worst
}

fn losses() -> Vec<Loss> {
    vec![
        Loss::sigmoid(0.5, 0.5).unwrap(),
        Loss::sigmoid(20.0, 20.0).unwrap(),
        Loss::sigmoid(3.0, 1.0).unwrap(),
        Loss::infonce(1.0).unwrap(),
        Loss::infonce(0.1).unwrap(),
    ]
}

#[test]
fn analytic_gradient_matches_finite_differences() {
    for layers in [2, 3] {
        for loss in losses() {
            for seed in [1, 2] {
                let c = cfg(5, 4, layers, 1, seed);
                let mut net = Encoder::<f64>::new(&c).unwrap();
                // At the initial point and after a few SGD steps.
                for _round in 0..2 {
                    let err = fd_error(&mut net, &loss, 1.0);
                    assert!(
                        err < 1e-5,
                        "layers {layers}, {loss:?}, seed {seed}: relative FD error {err}"
                    );
                    // The check can fail: a gradient off by 10 % is caught (and the network is
                    // alive: its gradient is not zero).
                    let wrong = fd_error(&mut net, &loss, 1.1);
                    assert!(wrong > 1e-2, "a wrong gradient passed ({wrong})");
                    for _ in 0..5 {
                        net.loss_grad(&loss);
                        assert!(net.sgd_step(0.1));
                    }
                }
            }
        }
    }
}

#[test]
fn f32_network_agrees_with_f64_network() {
    let loss = Loss::sigmoid(2.0, 2.0).unwrap();
    let c = cfg(12, 12, 2, 20, 7);
    let a = train_with::<f32>(&c, &loss, None).unwrap();
    let b = train_with::<f64>(&c, &loss, None).unwrap();
    assert!(
        (a.s_pos - b.s_pos).abs() < 1e-4,
        "{} vs {}",
        a.s_pos,
        b.s_pos
    );
    assert!((a.loss - b.loss).abs() < 1e-4, "{} vs {}", a.loss, b.loss);
}

#[test]
fn same_seed_is_bitwise_identical_and_seeds_differ() {
    let loss = Loss::sigmoid(1.0, 1.0).unwrap();
    let a = train(&cfg(10, 10, 2, 30, 42), &loss).unwrap();
    let b = train(&cfg(10, 10, 2, 30, 42), &loss).unwrap();
    assert_eq!(a.s_pos.to_bits(), b.s_pos.to_bits());
    assert_eq!(a.loss.to_bits(), b.loss.to_bits());
    assert_eq!(a, b);
    let c = train(&cfg(10, 10, 2, 30, 43), &loss).unwrap();
    assert_ne!(a.s_pos, c.s_pos);
    assert_ne!(a.u, c.u);
    // Also from threads: the result does not depend on where it runs.
    let d = std::thread::spawn(move || train(&cfg(10, 10, 2, 30, 42), &loss).unwrap())
        .join()
        .unwrap();
    assert_eq!(a, d);
}

#[test]
fn observer_sees_every_step_and_the_final_loss() {
    let loss = Loss::infonce(0.5).unwrap();
    let mut seen = Vec::new();
    let r = train_with::<f32>(
        &cfg(6, 6, 3, 25, 3),
        &loss,
        Some(&mut |k, l| seen.push((k, l))),
    )
    .unwrap();
    assert_eq!(seen.len(), 26);
    assert!(seen.iter().enumerate().all(|(i, &(k, _))| i == k));
    assert_eq!(seen[25].1, r.loss);
    assert_eq!(r.steps_run, 25);
    assert!(!r.termination.is_diverged());
    // InfoNCE with SGD goes down overall.
    assert!(r.loss < seen[0].1);
}

#[test]
fn embeddings_are_unit_nonnegative_and_stats_match_them() {
    let loss = Loss::sigmoid(1.0, 1.0).unwrap();
    let r = train(&cfg(9, 5, 2, 10, 5), &loss).unwrap();
    assert_eq!(r.u.dim(), (9, 5));
    assert_eq!(r.v.dim(), (9, 5));
    for row in r.u.rows().into_iter().chain(r.v.rows()) {
        let norm = row.dot(&row).sqrt();
        // A dead row (all zero) stays zero; every other row is unit.
        assert!(norm == 0.0 || (norm - 1.0).abs() < 1e-5, "norm {norm}");
        assert!(row.iter().all(|&x| x >= 0.0));
    }
    let s = r.u.dot(&r.v.t());
    let n = 9.0;
    let pos = s.diag().sum() / n;
    let neg = (s.sum() - s.diag().sum()) / (n * (n - 1.0));
    assert!((pos - r.s_pos).abs() < 1e-5);
    assert!((neg - r.s_neg).abs() < 1e-5);
}

#[test]
fn large_t_reaches_the_etf_phase() {
    // SPEC §5: above the ETF threshold the positive pairs align (s close to 1).
    let loss = Loss::sigmoid(5.0, 5.0).unwrap();
    let r = train(&cfg(8, 8, 2, 300, 1), &loss).unwrap();
    assert!(!r.termination.is_diverged());
    assert!(r.s_pos > 0.9, "s_pos = {}", r.s_pos);
}

#[test]
fn small_t_stays_low() {
    // SPEC §5: below the antipodal threshold (t = b = 0.1, N = 40) s stays near 0.
    let loss = Loss::sigmoid(0.1, 0.1).unwrap();
    let r = train(&cfg(40, 40, 2, 100, 1), &loss).unwrap();
    assert!(!r.termination.is_diverged());
    assert!(r.s_pos < 0.2, "s_pos = {}", r.s_pos);
}

#[test]
fn bad_configurations_are_errors() {
    let loss = Loss::sigmoid(1.0, 1.0).unwrap();
    let good = cfg(4, 4, 2, 10, 0);
    assert!(good.validate().is_ok());
    let cases = [
        EncoderConfig { steps: 0, ..good },
        EncoderConfig { lr: 0.0, ..good },
        EncoderConfig { lr: -0.5, ..good },
        EncoderConfig {
            lr: f64::NAN,
            ..good
        },
        EncoderConfig {
            lr: f64::INFINITY,
            ..good
        },
        EncoderConfig { layers: 4, ..good },
        EncoderConfig { layers: 1, ..good },
        EncoderConfig { n: 1, ..good },
        EncoderConfig { d: 0, ..good },
    ];
    for c in cases {
        assert!(c.validate().is_err(), "{c:?} was accepted");
        assert!(train(&c, &loss).is_err(), "{c:?} trained");
    }
    assert!(matches!(
        EncoderConfig { n: 1, ..good }.validate(),
        Err(Error::BatchTooSmall { n: 1 })
    ));
    assert!(matches!(
        EncoderConfig { lr: -1.0, ..good }.validate(),
        Err(Error::InvalidParameter { name: "lr", .. })
    ));
    assert!(matches!(
        EncoderConfig { layers: 4, ..good }.validate(),
        Err(Error::Config(_))
    ));
}

#[test]
fn divergence_is_reported_not_a_panic() {
    for loss in [
        Loss::sigmoid(5.0, 5.0).unwrap(),
        Loss::infonce(0.1).unwrap(),
    ] {
        let c = EncoderConfig {
            lr: 1e300,
            ..cfg(6, 6, 2, 50, 1)
        };
        let r = train(&c, &loss).unwrap();
        assert!(r.termination.is_diverged(), "{loss:?}");
        assert!(r.steps_run < 50);
        let r64 = train_with::<f64>(&c, &loss, None).unwrap();
        assert!(r64.termination.is_diverged(), "{loss:?} (f64)");
        assert!(r64.steps_run < 50);
    }
}
