//! Every loss's float32 value and gradient (issue 16): time per `N x N x d` product at
//! `N = 4096, d = 768`, as a ratio to the sigmoid loss's, with each loss's product count
//! (SPEC §1.6-1.7). A plain timing harness (no criterion: one joint-view evaluation at this
//! size takes seconds); prints a Markdown table for `docs/PERFORMANCE.md`.
//!
//! ```text
//! cargo bench --bench loss_zoo                    # N = 4096, d = 768, best of 3
//! CCEM_BENCH_N=1024 CCEM_BENCH_REPS=5 cargo bench --bench loss_zoo
//! ```

use ccem::loss::driver::value_grad;
use ccem::loss::evaluate::default_block;
use ccem::loss::precision::{normalize_rows_f32, Precision};
use ccem::loss::{ContrastiveLoss, Loss, LossKind, LossParams, Prepass, Views};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::hint::black_box;
use std::time::Instant;

const D: usize = 768;

fn unit_f32(n: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, D), |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z as f32
    });
    normalize_rows_f32(x.view(), "X").unwrap().u
}

/// Products of `N x N x d` per value + gradient (SPEC §1.6-1.7): three (`S`, `G V`, `G^T U`)
/// per pass over the cross views, four times that over the joint views (`(2N)^2`), plus one
/// (cross) or four (joint) for a log-sum-exp pre-pass.
fn products(loss: &Loss) -> usize {
    let scale = match loss.views() {
        Views::Cross => 1,
        Views::Joint => 4,
    };
    let prepass = match loss.prepass() {
        Prepass::None => 0,
        _ => 1,
    };
    scale * (3 + prepass)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects losses by name.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n = env("CCEM_BENCH_N", 4096);
    let reps = env("CCEM_BENCH_REPS", 3).max(1);
    let u = unit_f32(n, 1);
    let v = unit_f32(n, 2);
    let opts = default_block(Precision::F32);
    let build = |kind: LossKind, w: Option<f64>| {
        Loss::build(
            kind,
            &LossParams {
                t: kind.takes("t").then_some(10.0),
                b: kind.takes("b").then_some(-10.0),
                tau: kind.takes("tau").then_some(0.07),
                within_view: w,
                relative_bias: None,
            },
        )
        .unwrap()
    };
    let mut losses: Vec<(String, Loss)> = LossKind::ALL
        .iter()
        .map(|&k| (k.to_string(), build(k, None)))
        .collect();
    losses.push(("sigmoid, W = 1".into(), build(LossKind::Sigmoid, Some(1.0))));
    losses.push(("infonce, W = 1".into(), build(LossKind::InfoNce, Some(1.0))));
    losses.retain(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f)));
    let mut rows = Vec::new();
    for (name, loss) in &losses {
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let t0 = Instant::now();
            let lg = value_grad(black_box(loss), u.view(), v.view(), opts);
            black_box(&lg);
            best = best.min(t0.elapsed().as_secs_f64());
        }
        let p = products(loss);
        rows.push((name.clone(), p, best, best / p as f64));
        eprintln!(
            "{name}: {best:.3} s, {p} products, {:.3} s per product",
            best / p as f64
        );
    }
    let sigmoid = rows
        .iter()
        .find(|r| r.0 == "sigmoid")
        .map(|r| r.3)
        .unwrap_or(f64::NAN);
    println!(
        "\nf32 value + gradient, N = {n}, d = {D}, best of {reps}, {} threads\n",
        rayon::current_num_threads()
    );
    println!(
        "| loss | products of N x N x d | time (s) | time per product (s) | ratio to sigmoid |"
    );
    println!("|---|---|---|---|---|");
    for (name, p, t, per) in &rows {
        println!(
            "| {name} | {p} | {t:.3} | {per:.4} | {:.2} |",
            per / sigmoid
        );
    }
}
