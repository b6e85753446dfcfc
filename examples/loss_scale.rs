//! The sigmoid (or InfoNCE) loss and gradient at SigLIP's batch size: time, arithmetic rate and
//! peak memory of the blocked path, and of the dense path where it fits, in float64 or float32.
//!
//! ```text
//! cargo run --release --example loss_scale -- 32768 768 blocked   # N d path [block] [loss]
//! cargo run --release --example loss_scale -- 4096 768 dense
//! cargo run --release --example loss_scale -- 4096 768 blocked32  # the float32 path
//! cargo run --release --example loss_scale -- 0 0 peak            # the machine's dgemm rate
//! cargo run --release --example loss_scale -- 0 0 peak32          # ... and sgemm rate
//! ```
//! Paths: `dense`, `blocked` (float64), `dense32`, `blocked32` (float32). Options after the
//! positional arguments: `--json` prints one JSON object instead of a sentence; `--reps R`
//! repeats the loss + gradient `R` times and reports the fastest; `--npy U.npy V.npy` reads the
//! (row-normalised, float32 or float64) inputs instead of drawing them; `--t T --b B` set the
//! sigmoid loss's parameters (default `t = 10, b = 10`, SigLIP's initialisation in the sign convention of SPEC §1).
//!
//! Peak memory is the process's high-water mark (`VmHWM` of `/proc/self/status`), so run one
//! path per process (the scripts `bench/loss_scale.sh` and `bench/loss_vs_torch.py` do).

use ccem::base::sgemm::sgemm;
use ccem::loss::driver::{value_grad as blocked_loss_grad, value_grad as blocked_loss_grad_f32};
use ccem::loss::precision::normalize_rows_f32;
use ccem::loss::{loss_grad_uv, normalize_rows, BlockOptions, Loss};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, Axis};
use ndarray_npy::ReadNpyExt;
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

fn random_unit32(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, d), |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z as f32
    });
    normalize_rows_f32(x.view(), "X")
        .expect("Gaussian rows are non-zero")
        .u
}

/// Reads a float32 (or float64, rounded) `.npy` matrix as float32.
fn read_matrix32(path: &str) -> Array2<f32> {
    let open = || std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match Array2::<f32>::read_npy(open()) {
        Ok(a) => a,
        Err(_) => read_matrix(path).mapv(|x| x as f32),
    }
}

/// Reads a float32 or float64 `.npy` matrix as float64.
fn read_matrix(path: &str) -> Array2<f64> {
    let open = || std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match Array2::<f32>::read_npy(open()) {
        Ok(a) => a.mapv(f64::from),
        Err(_) => Array2::<f64>::read_npy(open()).unwrap_or_else(|e| panic!("{path}: {e}")),
    }
}

/// The peak rate of one `2048^3` product, its column halves (or `1/threads`) on the threads.
fn peak(single: bool, threads: usize) -> f64 {
    let m: usize = 2048;
    let reps = 3;
    let w = m.div_ceil(threads);
    let t0 = Instant::now();
    if single {
        let a = Array2::<f32>::from_elem((m, m), 0.5);
        let mut c = Array2::<f32>::zeros((m, m));
        for _ in 0..reps {
            c.axis_chunks_iter_mut(Axis(1), w)
                .into_par_iter()
                .enumerate()
                .for_each(|(k, o)| {
                    let cols = s![.., k * w..k * w + o.ncols()];
                    sgemm(a.view(), a.slice(cols), o, false)
                });
        }
    } else {
        let a = Array2::<f64>::from_elem((m, m), 0.5);
        let mut c = Array2::<f64>::zeros((m, m));
        for _ in 0..reps {
            c.axis_chunks_iter_mut(Axis(1), w)
                .into_par_iter()
                .enumerate()
                .for_each(|(k, mut o)| {
                    let cols = s![.., k * w..k * w + o.ncols()];
                    general_mat_mul(1.0, &a, &a.slice(cols), 0.0, &mut o)
                });
        }
    }
    2.0 * (m * m * m) as f64 * reps as f64 / t0.elapsed().as_secs_f64() / 1e9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let json = flag("--json").is_some();
    let value_after = |name: &str, k: usize| flag(name).and_then(|i| args.get(i + k).cloned());
    let reps: usize = value_after("--reps", 1).map_or(1, |r| r.parse().expect("--reps R"));
    let t: f64 = value_after("--t", 1).map_or(10.0, |r| r.parse().expect("--t T"));
    let b: f64 = value_after("--b", 1).map_or(10.0, |r| r.parse().expect("--b B"));
    let npy = value_after("--npy", 1).zip(value_after("--npy", 2));
    let pos: Vec<&String> = args[1..]
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .collect();
    let get = |i: usize, default: &str| pos.get(i).map_or(default.to_string(), |s| s.to_string());
    let mut n: usize = get(0, "4096").parse().expect("N");
    let mut d: usize = get(1, "768").parse().expect("d");
    let path = get(2, "blocked");
    let block: usize = get(3, "256").parse().expect("block");
    let loss = match get(4, "sigmoid").as_str() {
        "infonce" => Loss::infonce(0.07).unwrap(),
        _ => Loss::sigmoid(t, b).unwrap(),
    };
    let threads = rayon::current_num_threads();
    if path == "peak" || path == "peak32" {
        let single = path == "peak32";
        let rate = peak(single, threads);
        let kind = if single { "sgemm" } else { "dgemm" };
        if json {
            println!("{{\"path\":\"{path}\",\"threads\":{threads},\"gflops\":{rate:.2}}}");
        } else {
            println!("peak {kind} 2048^3 on {threads} threads: {rate:.1} GFLOP/s");
        }
        return;
    }
    let single = path.ends_with("32");
    // Each path holds only its own precision's inputs, so the peak memory is that path's.
    let (mut u, mut v) = (Array2::<f64>::zeros((0, 0)), Array2::<f64>::zeros((0, 0)));
    let (mut u32_, mut v32) = (Array2::<f32>::zeros((0, 0)), Array2::<f32>::zeros((0, 0)));
    match (&npy, single) {
        (Some((pu, pv)), false) => (u, v) = (read_matrix(pu), read_matrix(pv)),
        (Some((pu, pv)), true) => (u32_, v32) = (read_matrix32(pu), read_matrix32(pv)),
        (None, false) => (u, v) = (random_unit(n, d, 1), random_unit(n, d, 2)),
        (None, true) => (u32_, v32) = (random_unit32(n, d, 1), random_unit32(n, d, 2)),
    }
    (n, d) = if single { u32_.dim() } else { u.dim() };
    let base = peak_rss_mib();
    let opts = BlockOptions {
        block,
        parallel: true,
    };
    let mut best = f64::INFINITY;
    let mut value = f64::NAN;
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        value = match path.as_str() {
            "dense" => loss_grad_uv(&loss, u.view(), v.view()).value,
            "blocked" => blocked_loss_grad(&loss, u.view(), v.view(), opts).value,
            "dense32" => {
                let whole = BlockOptions {
                    block: n,
                    parallel: true,
                };
                blocked_loss_grad_f32(&loss, u32_.view(), v32.view(), whole).value
            }
            "blocked32" => blocked_loss_grad_f32(&loss, u32_.view(), v32.view(), opts).value,
            other => {
                panic!("unknown path {other}: dense, blocked, dense32, blocked32, peak, peak32")
            }
        };
        best = best.min(t0.elapsed().as_secs_f64());
    }
    // Three products of 2 N^2 d flops (S, G V, G^T U), and one more for InfoNCE's log-sum-exps.
    let products = if matches!(loss, Loss::Sigmoid(_)) {
        3.0
    } else {
        4.0
    };
    let gflops = 2.0 * products * (n as f64) * (n as f64) * d as f64 / best / 1e9;
    let peak = peak_rss_mib();
    if json {
        println!(
            "{{\"path\":\"{path}\",\"loss\":\"{}\",\"n\":{n},\"d\":{d},\"block\":{block},\"threads\":{threads},\"value\":{value:.12e},\"seconds\":{best:.6},\"gflops\":{gflops:.2},\"peak_rss_mib\":{peak:.1},\"inputs_rss_mib\":{base:.1}}}",
            loss.name()
        );
    } else {
        println!(
            "{} {path} N={n} d={d} block={block} threads={threads}: loss {value:.6}, {best:.3} s, {gflops:.1} GFLOP/s, peak RSS {peak:.0} MiB (inputs alone {base:.0} MiB)",
            loss.name()
        );
    }
}
