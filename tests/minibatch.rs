//! Mini-batch training against the theory of the expected loss (SPEC §8).

use ccem::batch::{in_batch_mask, masked_negative_stats, Batching, MiniBatch};
use ccem::encoder::{self, EncoderConfig};
use ccem::geometry::measure;
use ccem::loss::{BlockOptions, Loss};
use ccem::optim::{optimize, FreeConfig, FreeResult};
use ccem::theory::BatchOptimum;

fn run(n: usize, b: usize, batching: Batching, t: f64, bias: f64, seed: u64) -> FreeResult {
    let loss = Loss::sigmoid(t, bias).unwrap();
    let mut cfg = FreeConfig::new(n, n, loss, seed);
    cfg.batch = Some(MiniBatch::new(n, b, Some(batching), &loss).unwrap());
    optimize(&cfg).unwrap()
}

fn measured(r: &FreeResult) -> ccem::geometry::Measurement {
    measure(r.u.view(), r.v.view(), BlockOptions::default())
}

#[test]
fn expected_lands_on_the_weighted_ccem() {
    for &(n, b, t, bias) in &[
        (16, 4, 2.0, 1.0),
        (12, 3, 3.0, 3.0),
        (10, 5, 1.0, 1.0),
        (20, 8, 4.0, 2.0),
        (9, 2, 2.0, -0.5),
    ] {
        let r = run(n, b, Batching::Expected, t, bias, 1);
        let o = BatchOptimum::solve(n, b, t, bias).unwrap().optimum;
        let m = measured(&r);
        assert!(r.termination.is_converged(), "{n} {b} {t} {bias}");
        assert!(
            (m.pos.mean - o.s_pos).abs() < 1e-5,
            "{n} {b} {t} {bias}: s+ {} vs {}",
            m.pos.mean,
            o.s_pos
        );
        let gd = m.gram_distance_to(o.c_star);
        assert!(gd < 1e-5, "{n} {b} {t} {bias}: Gram distance {gd}");
        assert!((r.loss - o.loss).abs() < 1e-8, "{} vs {}", r.loss, o.loss);
        // The weighted optimum differs from the full-batch one here: the test can tell.
        let full = ccem::Optimum::sigmoid(n, t, bias).unwrap();
        if (full.s_pos - o.s_pos).abs() > 1e-3 {
            assert!((m.pos.mean - full.s_pos).abs() > 1e-3);
        }
    }
}

#[test]
fn shuffled_is_within_0_02_of_the_expected_optimum() {
    for &(n, b, t, bias) in &[(16, 4, 2.0, 1.0), (12, 3, 3.0, 3.0), (12, 6, 1.0, 1.0)] {
        let r = run(n, b, Batching::Shuffled, t, bias, 2);
        let o = BatchOptimum::solve(n, b, t, bias).unwrap().optimum;
        let m = measured(&r);
        assert!(
            (m.pos.mean - o.s_pos).abs() <= 0.02,
            "{n} {b} {t} {bias}: s+ {} vs {}",
            m.pos.mean,
            o.s_pos
        );
        assert!(!r.last_batches.is_empty());
    }
}

#[test]
fn fixed_aligns_positives_and_spreads_negatives() {
    // N = 16, B = 4, t = b = 2: the full-batch theory at N = 4 is the ETF.
    let (n, b, t) = (16, 4, 2.0);
    assert_eq!(
        ccem::Optimum::sigmoid(b, t, t).unwrap().phase,
        ccem::theory::Phase::Etf
    );
    let fixed = run(n, b, Batching::Fixed, t, t, 3);
    let shuffled = run(n, b, Batching::Shuffled, t, t, 3);
    let (mf, ms) = (measured(&fixed), measured(&shuffled));
    assert!(mf.pos.mean >= 0.99, "fixed s+ {}", mf.pos.mean);
    assert!(
        mf.neg.std > 2.0 * ms.neg.std,
        "fixed {} vs shuffled {}",
        mf.neg.std,
        ms.neg.std
    );
    // The bound of SPEC §8: std over all negatives >= sqrt((N-B)/(B-1)) / (N-1).
    let bound = (((n - b) as f64) / ((b - 1) as f64)).sqrt() / (n - 1) as f64;
    assert!(mf.neg.std >= bound - 1e-3, "{} vs {bound}", mf.neg.std);
    // In-batch negatives sit at the ETF of size B.
    let s = fixed.u.dot(&fixed.v.t());
    let (mean_in, std_in) = masked_negative_stats(s.view(), &in_batch_mask(n, &fixed.last_batches));
    assert!((mean_in + 1.0 / (b - 1) as f64).abs() < 0.01, "{mean_in}");
    assert!(std_in < 0.01);
}

#[test]
fn neg_variance_penalty_moves_in_batch_negatives_to_the_full_batch_etf() {
    // Under `fixed` the penalty sees only the in-batch pairs: it pulls them from the ETF of
    // size B (-1/(B-1)) toward the full-batch value delta = -1/(N-1), which narrows the spread
    // over all pairs; the cross-batch pairs stay free (measured: s_neg_std 0.251 -> 0.218 at
    // lambda = 20, `examples/minibatch.rs`).
    let (n, b, t) = (16, 4, 2.0);
    let delta = -1.0 / (n - 1) as f64;
    let loss = Loss::sigmoid(t, t).unwrap();
    let mut cfg = FreeConfig::new(n, n, loss, 3);
    cfg.batch = Some(MiniBatch::new(n, b, Some(Batching::Fixed), &loss).unwrap());
    let in_batch_mean = |r: &FreeResult| {
        let s = r.u.dot(&r.v.t());
        masked_negative_stats(s.view(), &in_batch_mask(n, &r.last_batches)).0
    };
    let plain = optimize(&cfg).unwrap();
    cfg.neg_variance_weight = 20.0;
    let pen = optimize(&cfg).unwrap();
    let (gap_plain, gap_pen) = (
        (in_batch_mean(&plain) - delta).abs(),
        (in_batch_mean(&pen) - delta).abs(),
    );
    assert!(gap_pen < 0.2 * gap_plain, "{gap_pen} vs {gap_plain}");
    let (sp, sq) = (measured(&plain).neg.std, measured(&pen).neg.std);
    assert!(sq < 0.95 * sp, "{sq} vs {sp}");
    assert!(measured(&pen).pos.mean > 0.99);
}

#[test]
fn batch_n_is_the_full_batch_exactly() {
    let loss = Loss::sigmoid(2.0, 1.0).unwrap();
    let mut cfg = FreeConfig::new(8, 8, loss, 5);
    cfg.steps = 300;
    let full = optimize(&cfg).unwrap();
    for batching in [
        Batching::Expected,
        Batching::Shuffled,
        Batching::Fixed,
        Batching::All,
        Batching::Hardest,
    ] {
        cfg.batch = Some(MiniBatch::new(8, 8, Some(batching), &loss).unwrap());
        let r = optimize(&cfg).unwrap();
        assert_eq!(r.u, full.u, "{batching}");
        assert_eq!(r.loss, full.loss, "{batching}");
    }
}

#[test]
fn all_and_hardest_run_and_are_reproducible() {
    for batching in [Batching::All, Batching::Hardest] {
        let a = run(8, 3, batching, 2.0, 1.0, 4);
        let b = run(8, 3, batching, 2.0, 1.0, 4);
        assert_eq!(a.u, b.u);
        assert!(a.loss.is_finite());
    }
    // InfoNCE with hardest.
    let loss = Loss::infonce(0.5).unwrap();
    let mut cfg = FreeConfig::new(8, 8, loss, 0);
    cfg.steps = 500;
    cfg.batch = Some(MiniBatch::new(8, 4, Some(Batching::Hardest), &loss).unwrap());
    assert!(optimize(&cfg).unwrap().loss.is_finite());
}

#[test]
fn encoder_mini_batches() {
    let loss = Loss::sigmoid(2.0, 2.0).unwrap();
    let base = EncoderConfig {
        steps: 60,
        ..EncoderConfig::new(12, 12, 1)
    };
    let full = encoder::train(&base, &loss).unwrap();
    // B = N with any strategy is the full batch.
    let same = encoder::train(
        &EncoderConfig {
            batch: Some(MiniBatch::new(12, 12, Some(Batching::Shuffled), &loss).unwrap()),
            ..base
        },
        &loss,
    )
    .unwrap();
    assert_eq!(same, full);
    for batching in [Batching::Expected, Batching::Shuffled, Batching::Fixed] {
        let cfg = EncoderConfig {
            batch: Some(MiniBatch::new(12, 4, Some(batching), &loss).unwrap()),
            ..base
        };
        let a = encoder::train(&cfg, &loss).unwrap();
        let b = encoder::train(&cfg, &loss).unwrap();
        assert_eq!(a, b, "{batching}");
        assert!(!a.termination.is_diverged() && a.loss.is_finite());
        assert_ne!(a.u, full.u);
        assert_eq!(a.last_batches.is_empty(), batching == Batching::Expected);
    }
    // InfoNCE cannot use `expected`.
    let info = Loss::infonce(0.5).unwrap();
    assert!(MiniBatch::new(12, 4, Some(Batching::Expected), &info).is_err());
}

/// Above `C(N,B) = 1e5` `hardest` runs the spectral clustering: reproducible, bitwise the same
/// on 1 and 2 threads, its last batches a partition into `N/B` batches, and it lowers the
/// loss; the encoder runs it too. Beyond `N = 1024` (or `B` not dividing `N`) it is refused.
#[test]
fn hardest_spectral_runs_are_reproducible_and_thread_independent() {
    let (n, b) = (48, 4); // C(48,4) = 194580
    let loss = Loss::sigmoid(2.0, 1.0).unwrap();
    let mut cfg = FreeConfig::new(n, 8, loss, 3);
    cfg.steps = 300;
    cfg.batch = Some(MiniBatch::new(n, b, Some(Batching::Hardest), &loss).unwrap());
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let one = pool(1).install(|| optimize(&cfg).unwrap());
    let two = pool(2).install(|| optimize(&cfg).unwrap());
    assert_eq!(one.u, two.u);
    assert_eq!(one.v, two.v);
    assert!(one.loss.is_finite());
    let mut seen: Vec<usize> = one.last_batches.concat();
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
    assert_eq!(one.last_batches.len(), n / b);
    let mut start = cfg;
    start.steps = 1;
    let first = optimize(&start).unwrap();
    assert!(one.loss < first.loss, "{} vs {}", one.loss, first.loss);

    let enc = EncoderConfig {
        steps: 24,
        batch: cfg.batch,
        ..EncoderConfig::new(n, 8, 1)
    };
    let a = encoder::train(&enc, &loss).unwrap();
    assert_eq!(a, encoder::train(&enc, &loss).unwrap());
    assert!(a.loss.is_finite() && a.last_batches.len() == n / b);

    for (n, b) in [(2048, 8), (50, 4)] {
        let mut bad = FreeConfig::new(n, 4, loss, 0);
        bad.batch = Some(MiniBatch::new(n, b, Some(Batching::Hardest), &loss).unwrap());
        let err = optimize(&bad).unwrap_err().to_string();
        assert!(err.contains("hardest"), "{err}");
    }
}
