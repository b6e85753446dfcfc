//! Speed of the paper's encoder experiment (SPEC §5).
//!
//! - `encoder_cell_100_steps_{f32,f64}/N`: one sweep cell, `N = d = 10, 25, 50`, 100 SGD steps
//!   and the final forward pass, single-threaded ([`ccem::encoder::train`] is the `f32` one).
//!   Time per step = reported time / 100. The throughput is in flops of matrix products
//!   ([`ccem::encoder::Encoder::flops_per_step`], true sizes), so "Gelem/s" reads as GFLOP/s.
//! - `gemm_512_{f32,f64}`: `matrixmultiply` at `512^3`, the machine's matrix-product rate for
//!   comparison.
//! - `sweep_sigmoid_470_cells_100_steps_f32`: the paper's whole sweep (sigmoid, `t = b` in
//!   `linspace(0.1, 5, 10)`, `N = d = 4..50`, 100 steps, one seed), one cell after another on one
//!   thread (`sequential`: the sum of the cell times) and over all cores with rayon, largest cells
//!   first, as the sweep engine runs it (`rayon`). Compare with
//!   `bench/torch_reference.py sigmoid 100 4 50 10 0.1 5` (about 50 s on this machine).
//!
//! - `encoder_minibatch_per_sample/...` (SPEC §8): 100 steps of `N = 64`, `d = 32` trained in
//!   shuffled batches of `B = 16`, against the full batch of the same step shape (`N = 16`) and
//!   the full batch `N = 64`; throughput in samples (`steps x batch`), so equal "elem/s" is equal
//!   per-sample speed. Measured on the quiet 2-core machine (`-- encoder_minibatch_per_sample`):
//!   full `N = 16` 1158 Kelem/s, full `N = 64` 946 Kelem/s, `N = 64` in batches of 16
//!   701 Kelem/s, i.e. 1.35x below the full batch `N = 64` and 1.65x below the full batch of the
//!   same shape (the gap includes the final
//!   `N = 64` evaluation and the two network set-ups, ~5% of this 100-step run).
//!
//! - `encoder_kernels/{tiled_1t,blocked_1t,blocked_pool}/s`: the products of a step at
//!   `N = d = s`, `s` from 4 to 1024, on each kernel (see [`kernels`]): where the blocked
//!   product overtakes the tiled one sets `encoder::BLOCKED_MIN_MACS` (docs/PERFORMANCE.md).
//!
//! Run: `cargo bench --bench encoder` (add e.g. `-- sweep` to run one group).

use ccem::encoder::{train_with, Encoder, EncoderConfig, Real};
use ccem::loss::Loss;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
use std::hint::black_box;

fn cell<T: Real>(c: &mut Criterion) {
    let loss = Loss::sigmoid(2.0, 2.0).unwrap();
    let mut group = c.benchmark_group(format!("encoder_cell_100_steps_{}", T::name()));
    for n in [10usize, 25, 50] {
        let cfg = EncoderConfig::new(n, n, 1234);
        let net = Encoder::<T>::new(&cfg).unwrap();
        let flops = cfg.steps as f64 * net.flops_per_step() + net.flops_forward();
        group.throughput(Throughput::Elements(flops as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &cfg, |b, cfg| {
            b.iter(|| train_with::<T>(black_box(cfg), &loss, None).unwrap())
        });
    }
    group.finish();
}

fn peak<T: Real>(c: &mut Criterion) {
    let m = 512;
    let a = Array2::<T>::from_elem((m, m), T::from_f64(0.5));
    let b = Array2::<T>::from_elem((m, m), T::from_f64(0.25));
    let mut out = Array2::<T>::zeros((m, m));
    let mut group = c.benchmark_group(format!("gemm_512_{}", T::name()));
    group.throughput(Throughput::Elements(2 * (m * m * m) as u64));
    group.sample_size(20);
    group.bench_function("general_mat_mul", |bch| {
        bch.iter(|| general_mat_mul(T::ONE, &a, &b, T::ZERO, &mut out))
    });
    group.finish();
}

/// Per-sample speed of mini-batch training (module doc).
fn minibatch(c: &mut Criterion) {
    use ccem::batch::{Batching, MiniBatch};
    let loss = Loss::sigmoid(2.0, 2.0).unwrap();
    let mut group = c.benchmark_group("encoder_minibatch_per_sample");
    let d = 32;
    let batched = EncoderConfig {
        batch: Some(MiniBatch::new(64, 16, Some(Batching::Shuffled), &loss).unwrap()),
        ..EncoderConfig::new(64, d, 1)
    };
    for (name, cfg, per_step) in [
        ("full_n16", EncoderConfig::new(16, d, 1), 16u64),
        ("full_n64", EncoderConfig::new(64, d, 1), 64),
        ("n64_shuffled_b16", batched, 16),
    ] {
        group.throughput(Throughput::Elements(cfg.steps as u64 * per_step));
        group.bench_function(name, |b| {
            b.iter(|| train_with::<f32>(black_box(&cfg), &loss, None).unwrap())
        });
    }
    group.finish();
}

/// The crossover of the encoder's products (`encoder::gemm_kernel`): the tiled kernel against
/// the blocked `matrixmultiply` product at the shapes of a step with `N = d = s`, on ONE thread
/// (as in a sweep, where every core runs its own cell), then the blocked product on the whole
/// pool (one large `ccem train`). Shapes: the first layer `(2N x 2d)(2d x d)`, the hidden layer
/// `(2N x d)(d x d)`, `S = U V^T` `(N x d)(d x N)`, `dL/dW_1^T = X^T dZ` `(2d x 2N)(2N x d)` with a
/// transposed `A`. Throughput in flops.
fn kernels(c: &mut Criterion) {
    use ccem::encoder::{gemm_kernel, GemmKernel};
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("encoder_kernels");
    // Ten samples of equal iteration counts: at `s = 1024` one tiled step takes seconds.
    group.sample_size(10);
    group.sampling_mode(criterion::SamplingMode::Flat);
    for s in [
        4usize, 8, 16, 24, 32, 48, 64, 80, 96, 128, 192, 256, 384, 512, 1024,
    ] {
        let p = s.div_ceil(8) * 8;
        let x = Array2::<f32>::from_shape_fn((2 * s, 2 * s), |(i, j)| {
            ((i * 7 + j * 3) % 11) as f32 - 5.0
        });
        let w1 = Array2::<f32>::from_shape_fn((2 * s, p), |(i, j)| ((i + j) % 5) as f32 - 2.0);
        let w2 = Array2::<f32>::from_shape_fn((s, p), |(i, j)| ((i * j) % 7) as f32 - 3.0);
        let vt =
            Array2::<f32>::from_shape_fn((s, s.div_ceil(8) * 8), |(i, j)| ((i + 2 * j) % 9) as f32);
        let dz = Array2::<f32>::from_shape_fn((2 * s, p), |(i, j)| ((i * 5 + j) % 13) as f32);
        let hs = x.slice(ndarray::s![.., ..s]).to_owned();
        let mut h = Array2::<f32>::zeros((2 * s, p));
        let mut sm = Array2::<f32>::zeros((s, vt.ncols()));
        let mut gw = Array2::<f32>::zeros((2 * s, p));
        let macs = (2 * s) * (2 * s) * s + (2 * s) * s * s + s * s * s + (2 * s) * (2 * s) * s;
        group.throughput(Throughput::Elements(2 * macs as u64));
        let mut step = |k: GemmKernel| {
            gemm_kernel(k, x.view(), w1.view(), h.view_mut(), false);
            gemm_kernel(k, hs.view(), w2.view(), h.view_mut(), false);
            gemm_kernel(
                k,
                hs.slice(ndarray::s![..s, ..]),
                vt.view(),
                sm.view_mut(),
                false,
            );
            gemm_kernel(k, x.t(), dz.view(), gw.view_mut(), false);
        };
        for (name, k) in [
            ("tiled_1t", GemmKernel::Tiled),
            ("blocked_1t", GemmKernel::Blocked),
        ] {
            group.bench_function(BenchmarkId::new(name, s), |b| {
                b.iter(|| one.install(|| step(black_box(k))))
            });
        }
        group.bench_function(BenchmarkId::new("blocked_pool", s), |b| {
            b.iter(|| step(black_box(GemmKernel::Blocked)))
        });
    }
    group.finish();
}

/// The paper's sweep: 470 cells, sequentially and with rayon (see the module doc).
fn sweep(c: &mut Criterion) {
    use rayon::prelude::*;
    let mut cells: Vec<(usize, f64)> = (0..10)
        .flat_map(|k| {
            let t = 0.1 + (5.0 - 0.1) * k as f64 / 9.0;
            (4..=50).map(move |n| (n, t))
        })
        .collect();
    cells.sort_by_key(|&(n, _)| std::cmp::Reverse(n));
    let run = |&(n, t): &(usize, f64)| {
        let loss = Loss::sigmoid(t, t).unwrap();
        train_with::<f32>(&EncoderConfig::new(n, n, 1234), &loss, None)
            .unwrap()
            .s_pos
    };
    let mut group = c.benchmark_group("sweep_sigmoid_470_cells_100_steps_f32");
    group.sample_size(10);
    group.bench_function("sequential", |b| {
        b.iter(|| cells.iter().map(run).sum::<f64>())
    });
    group.bench_function("rayon", |b| {
        b.iter(|| cells.par_iter().map(run).sum::<f64>())
    });
    group.finish();
}

criterion_group!(
    benches,
    cell::<f32>,
    cell::<f64>,
    peak::<f32>,
    peak::<f64>,
    sweep,
    minibatch,
    kernels
);
criterion_main!(benches);
