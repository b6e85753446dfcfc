//! Measurements behind SPEC §8 (mini-batches): how `shuffled` approaches the optimum of the
//! expected loss as the step count grows, how far `fixed` spreads the negatives, and what the
//! negative-variance penalty of Lee et al. 2025 does to that spread.
//!
//! `cargo run --release --example minibatch`

use ccem::batch::{in_batch_mask, masked_negative_stats, Batching, MiniBatch};
use ccem::geometry::measure;
use ccem::loss::{BlockOptions, Loss};
use ccem::optim::{optimize, FreeConfig, FreeResult, DEFAULT_STEPS};
use ccem::theory::BatchOptimum;

fn run(
    n: usize,
    b: usize,
    batching: Batching,
    (t, bias): (f64, f64),
    steps: usize,
    seed: u64,
    lambda: f64,
) -> FreeResult {
    let loss = Loss::sigmoid(t, bias).expect("valid");
    let mut cfg = FreeConfig::new(n, n, loss, seed);
    cfg.steps = steps;
    cfg.neg_variance_weight = lambda;
    cfg.batch = Some(MiniBatch::new(n, b, Some(batching), &loss).expect("valid"));
    optimize(&cfg).expect("valid")
}

fn main() {
    println!("# shuffled: |s_pos_mean - s_pos*(expected loss)|, mean over 3 seeds");
    println!("N B t b | s+* | steps: error");
    for &(n, b, t, bias) in &[
        (16, 4, 2.0, 1.0),
        (12, 3, 3.0, 3.0),
        (12, 6, 1.0, 1.0),
        (32, 8, 2.0, 2.0),
    ] {
        let o = BatchOptimum::solve(n, b, t, bias).expect("valid").optimum;
        let mut line = format!("{n} {b} {t} {bias} | {:.4} |", o.s_pos);
        for steps in [500, 1000, 2000, 5000, DEFAULT_STEPS, 20_000] {
            let mut err = 0.0;
            for seed in 0..3 {
                let r = run(n, b, Batching::Shuffled, (t, bias), steps, seed, 0.0);
                let m = measure(r.u.view(), r.v.view(), BlockOptions::default());
                err += (m.pos.mean - o.s_pos).abs() / 3.0;
            }
            line += &format!(" {steps}: {err:.4}");
        }
        println!("{line}");
    }
    println!();
    println!("# s_neg_std by strategy (N = 16, t = b = 2, seed 0), and the fixed-partition bound");
    println!("B strategy s_pos_mean s_neg_mean s_neg_std s_neg_std_in_batch bound");
    let (n, t) = (16, 2.0);
    for b in [2usize, 4, 8, 16] {
        for batching in [
            Batching::Expected,
            Batching::Shuffled,
            Batching::Fixed,
            Batching::All,
            Batching::Hardest,
        ] {
            if (batching == Batching::All || batching == Batching::Hardest)
                && ccem::batch::binomial(n, b) > 2000.0
            {
                continue;
            }
            let r = run(n, b, batching, (t, t), DEFAULT_STEPS, 0, 0.0);
            let m = measure(r.u.view(), r.v.view(), BlockOptions::default());
            let s = r.u.dot(&r.v.t());
            let (_, sd_in) = masked_negative_stats(s.view(), &in_batch_mask(n, &r.last_batches));
            let bound = (((n - b) as f64) / ((b - 1) as f64)).sqrt() / (n - 1) as f64;
            println!(
                "{b} {batching} {:.4} {:.4} {:.4} {:.4} {:.4}",
                m.pos.mean, m.neg.mean, m.neg.std, sd_in, bound
            );
        }
    }
    println!();
    println!("# fixed, N = 16, B = 4, t = b = 2: the negative-variance penalty");
    println!("lambda s_pos_mean s_neg_std s_neg_mean_in_batch s_neg_std_in_batch");
    for lambda in [0.0, 1.0, 5.0, 20.0, 100.0] {
        let r = run(16, 4, Batching::Fixed, (2.0, 2.0), DEFAULT_STEPS, 0, lambda);
        let m = measure(r.u.view(), r.v.view(), BlockOptions::default());
        let s = r.u.dot(&r.v.t());
        let (mi, si) = masked_negative_stats(s.view(), &in_batch_mask(16, &r.last_batches));
        println!(
            "{lambda} {:.4} {:.4} {mi:.4} {si:.4}",
            m.pos.mean, m.neg.std
        );
    }
}
