//! The sigmoid (or InfoNCE) loss and gradient at SigLIP's batch size: time, arithmetic rate and
//! peak memory of the blocked path, and of the dense path where it fits.
//!
//! ```text
//! cargo run --release --example loss_scale -- 32768 768 blocked   # N d path [block] [loss]
//! cargo run --release --example loss_scale -- 4096 768 dense
//! cargo run --release --example loss_scale -- 0 0 peak            # the machine's dgemm rate
//! ```
//! Peak memory is the process's high-water mark (`VmHWM` of `/proc/self/status`), so run one
//! path per process (the script `bench/loss_scale.sh` does).

use ccem::loss::{blocked_loss_grad, loss_grad_uv, normalize_rows, BlockOptions, Loss};
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn random_unit(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng));
    normalize_rows(x.view(), "X")
        .expect("Gaussian rows are non-zero")
        .u
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let n: usize = get(1, "4096").parse().expect("N");
    let d: usize = get(2, "768").parse().expect("d");
    let path = get(3, "blocked");
    let block: usize = get(4, "256").parse().expect("block");
    let loss = match get(5, "sigmoid").as_str() {
        "infonce" => Loss::infonce(0.07).unwrap(),
        _ => Loss::sigmoid(10.0, 10.0).unwrap(),
    };
    let threads = rayon::current_num_threads();
    if path == "peak" {
        // dgemm 1024^3 on each thread at once: the rate the blocked path can reach.
        let m = 1024;
        let a = Array2::<f64>::from_elem((m, m), 0.5);
        let reps = 3;
        let t0 = Instant::now();
        (0..threads).into_par_iter().for_each(|_| {
            let mut c = Array2::<f64>::zeros((m, m));
            for _ in 0..reps {
                general_mat_mul(1.0, &a, &a.t(), 0.0, &mut c);
            }
        });
        let secs = t0.elapsed().as_secs_f64();
        let flops = 2.0 * (m * m * m) as f64 * reps as f64 * threads as f64;
        println!(
            "peak dgemm {m}^3 x {threads} threads: {:.1} GFLOP/s",
            flops / secs / 1e9
        );
        return;
    }
    let u = random_unit(n, d, 1);
    let v = random_unit(n, d, 2);
    let base = peak_rss_mib();
    let t0 = Instant::now();
    let (value, products) = match path.as_str() {
        "dense" => (loss_grad_uv(&loss, u.view(), v.view()).value, 3.0),
        _ => {
            let opts = BlockOptions {
                block,
                parallel: true,
            };
            let passes = if matches!(loss, Loss::Sigmoid { .. }) {
                4.0
            } else {
                5.0
            };
            (
                blocked_loss_grad(&loss, u.view(), v.view(), opts).value,
                passes,
            )
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    let flops = 2.0 * products * (n as f64) * (n as f64) * d as f64;
    println!(
        "{} {path} N={n} d={d} block={block} threads={threads}: loss {value:.6}, {secs:.3} s, {:.1} GFLOP/s, peak RSS {:.0} MiB (inputs alone {:.0} MiB)",
        loss.name(),
        flops / secs / 1e9,
        peak_rss_mib(),
        base
    );
}
