//! The float32 loss path (issue 11): loss + gradient in float32 against float64, blocked, at
//! `N = 1024, 4096`, `d = 768`; a shoot-out of the float32 matrix kernels on the products of
//! one block of the blocked path (`S_B = U_B V^T`, `G_B V`, `G_B^T U_B`, in the loss's own fixed
//! chunks on the rayon pool); and the machine's float32 matrix-product rate (`2048^3`, split in
//! two column halves on two threads) as the ceiling.
//!
//! Throughput is reported in floating-point operations per second ("elem/s" = FLOP/s).
//!
//! ```text
//! cargo bench --bench loss_f32
//! cargo bench --bench loss_f32 -- kernels     # the shoot-out alone
//! ```

use ccem::base::sgemm::{sgemm_with, Kernel};
use ccem::base::Real;
use ccem::loss::driver::{value_grad as blocked_loss_grad, value_grad as blocked_loss_grad_f32};
use ccem::loss::evaluate::default_block;
use ccem::loss::precision::{normalize_rows_f32, Precision};
use ccem::loss::{BlockOptions, Loss};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Duration;

const D: usize = 768;

fn unit_f32(n: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, D), |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z as f32
    });
    normalize_rows_f32(x.view(), "X").unwrap().u
}

/// `C (+)= A B` with faer's matmul, sequential (the same contract as `sgemm_with`).
fn faer_mm(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, accumulate: bool) {
    let (m, k) = a.dim();
    let n = b.ncols();
    // SAFETY: pointers, shapes and strides are those of live ndarray views; `c` is unique.
    let (fa, fb, fc) = unsafe {
        (
            faer::MatRef::from_raw_parts(a.as_ptr(), m, k, a.strides()[0], a.strides()[1]),
            faer::MatRef::from_raw_parts(b.as_ptr(), k, n, b.strides()[0], b.strides()[1]),
            faer::MatMut::from_raw_parts_mut(c.as_mut_ptr(), m, n, c.strides()[0], c.strides()[1]),
        )
    };
    let accum = if accumulate {
        faer::Accum::Add
    } else {
        faer::Accum::Replace
    };
    faer::linalg::matmul::matmul(fc, accum, fa, fb, 1.0f32, faer::Par::Seq);
}

/// `C (+)= A B` with the `gemm` crate, without its own threads.
fn gemm_mm(a: ArrayView2<f32>, b: ArrayView2<f32>, mut c: ArrayViewMut2<f32>, accumulate: bool) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // SAFETY: pointers, shapes and strides are those of live ndarray views; `c` is unique.
    // `gemm` computes dst = alpha dst + beta lhs rhs, reading dst only when read_dst is set.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c.strides()[1],
            c.strides()[0],
            accumulate,
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

type Mm = fn(ArrayView2<f32>, ArrayView2<f32>, ArrayViewMut2<f32>, bool);

fn kernels() -> Vec<(&'static str, Mm)> {
    vec![
        ("gemm", gemm_mm),
        ("matrixmultiply", |a, b, c, acc| {
            sgemm_with(Kernel::MatrixMultiply, a, b, c, acc)
        }),
        ("tiled", |a, b, c, acc| {
            sgemm_with(Kernel::Tiled, a, b, c, acc)
        }),
        ("faer", faer_mm),
    ]
}

/// The three products of one block of `block` rows, chunked as in the loss (columns of `S_B`
/// and rows of `dL/dV` by `<f32 as Real>::COL_CHUNK`, rows of `dL/dU` by `<f32 as Real>::ROW_CHUNK`), in parallel.
fn block_products(
    mm: Mm,
    u: ArrayView2<f32>,
    v: ArrayView2<f32>,
    buf: &mut Array2<f32>,
    du: &mut Array2<f32>,
    dv: &mut Array2<f32>,
) {
    let block = buf.nrows();
    let ub = u.slice(s![..block, ..]);
    buf.axis_chunks_iter_mut(Axis(1), <f32 as Real>::COL_CHUNK)
        .into_par_iter()
        .enumerate()
        .for_each(|(k, chunk)| {
            let c0 = k * <f32 as Real>::COL_CHUNK;
            mm(
                ub,
                v.slice(s![c0..c0 + chunk.ncols(), ..]).t(),
                chunk,
                false,
            )
        });
    let g = buf.view();
    du.slice_mut(s![..block, ..])
        .axis_chunks_iter_mut(Axis(0), <f32 as Real>::ROW_CHUNK)
        .into_par_iter()
        .zip(
            g.axis_chunks_iter(Axis(0), <f32 as Real>::ROW_CHUNK)
                .into_par_iter(),
        )
        .for_each(|(out, gr)| mm(gr, v, out, false));
    dv.axis_chunks_iter_mut(Axis(0), <f32 as Real>::COL_CHUNK)
        .into_par_iter()
        .enumerate()
        .for_each(|(k, out)| {
            let c0 = k * <f32 as Real>::COL_CHUNK;
            mm(g.slice(s![.., c0..c0 + out.nrows()]).t(), ub, out, true)
        });
}

fn bench_kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    let n = 4096;
    let block = default_block(Precision::F32).block;
    let (u, v) = (unit_f32(n, 1), unit_f32(n, 2));
    group.throughput(Throughput::Elements((3 * 2 * block * n * D) as u64));
    for (name, mm) in kernels() {
        let mut buf = Array2::<f32>::from_elem((block, n), 1e-3);
        let (mut du, mut dv) = (Array2::zeros((n, D)), Array2::zeros((n, D)));
        group.bench_function(BenchmarkId::new("block_products_N4096_d768", name), |bch| {
            bch.iter(|| block_products(mm, u.view(), v.view(), &mut buf, &mut du, &mut dv))
        });
    }
    // The ceiling: one 2048^3 product, its column halves on two threads.
    let m = 2048;
    let a = Array2::<f32>::from_elem((m, m), 0.5);
    group.throughput(Throughput::Elements((2 * m * m * m) as u64));
    for (name, mm) in kernels() {
        let mut out = Array2::<f32>::zeros((m, m));
        group.bench_function(BenchmarkId::new("peak_2048", name), |bch| {
            bch.iter(|| {
                out.axis_chunks_iter_mut(Axis(1), m / 2)
                    .into_par_iter()
                    .enumerate()
                    .for_each(|(k, o)| {
                        mm(
                            a.view(),
                            a.slice(s![.., k * m / 2..(k + 1) * m / 2]),
                            o,
                            false,
                        )
                    })
            })
        });
    }
    group.finish();
}

fn bench_loss(c: &mut Criterion) {
    let mut group = c.benchmark_group("loss_grad");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let loss = Loss::sigmoid(10.0, 10.0).unwrap();
    let opts32 = default_block(Precision::F32);
    let opts = BlockOptions::default();
    for n in [1024, 4096] {
        let (u, v) = (unit_f32(n, 1), unit_f32(n, 2));
        let (u64_, v64) = (u.mapv(f64::from), v.mapv(f64::from));
        group.throughput(Throughput::Elements((3 * 2 * n * n * D) as u64));
        group.bench_with_input(BenchmarkId::new("sigmoid_f32_blocked", n), &n, |bch, _| {
            bch.iter(|| black_box(blocked_loss_grad_f32(&loss, u.view(), v.view(), opts32)))
        });
        group.bench_with_input(BenchmarkId::new("sigmoid_f64_blocked", n), &n, |bch, _| {
            bch.iter(|| black_box(blocked_loss_grad(&loss, u64_.view(), v64.view(), opts)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_kernels, bench_loss);
criterion_main!(benches);
