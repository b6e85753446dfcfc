//! The losses and gradients in blocks of rows: memory `O(N * block)`, never `O(N^2)`.
//!
//! # Algorithm
//! The gradient of SPEC.md §1 is `dL/dU = G V`, `dL/dV = G^T U`, with `G = dL/dS`. Rather than
//! hold `S` and `G` (`N x N`), [`blocked_loss_grad`] walks over blocks of `block` rows `B`, one
//! after the other, and for each:
//!
//! 1. `S_B = U_B V^T` (`block x N`) by chunks of columns `J` in parallel, each chunk turned into
//!    `G_B[:, J]` in place (the loss terms summed on the way);
//! 2. `(dL/dU)_B = G_B V`, by chunks of the block's rows in parallel;
//! 3. `(dL/dV)_J += G_B[:, J]^T U_B`, by chunks of rows of `dL/dV` in parallel.
//!
//! That is the dense path's `3 N^2 d` multiply-adds with `block x N` extra memory. InfoNCE first
//! needs the row and column log-sum-exps `r_i`, `c_j`: one more pass computes `S_B` block by
//! block, the row ones directly and the column ones as running (max, sum) pairs (`4 N^2 d` in
//! all).
//!
//! # Threads and reproducibility
//! Every parallel task owns a fixed piece of the output (a chunk of columns of `S_B`, rows of
//! `dL/dU`, rows of `dL/dV`) whose size does not depend on the thread count, blocks follow each
//! other in order, and partial sums are added in chunk order. The result is therefore **bitwise
//! identical for any thread count** (tested). It differs from the dense path only by the
//! floating-point summation order (relative `1e-12`, tested); changing `block` changes that
//! order the same way.

use super::infonce::infonce_grad_in_place;
use super::sigmoid::{sigmoid_block, sigmoid_block_grad_in_place};
use super::{Loss, LossGrad};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis, Zip};
use rayon::prelude::*;

/// Columns of `S_B` (and rows of `dL/dV`) per parallel task.
const COL_CHUNK: usize = 256;
/// Rows of `dL/dU` per parallel task.
const ROW_CHUNK: usize = 32;

/// How to split the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockOptions {
    /// Rows per block (memory per worker: `block x N` f64).
    pub block: usize,
    /// Run blocks on the rayon thread pool.
    pub parallel: bool,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            block: 256,
            parallel: true,
        }
    }
}

/// Maps `f` over the block starts `0, block, 2 block, ...`, in order, in parallel or not.
pub(crate) fn map_blocks<T: Send>(
    n: usize,
    opts: BlockOptions,
    f: impl Fn(usize, usize) -> T + Sync + Send,
) -> Vec<T> {
    let block = opts.block.max(1);
    let starts: Vec<usize> = (0..n).step_by(block).collect();
    let run = |&r0: &usize| f(r0, (r0 + block).min(n));
    if opts.parallel {
        starts.par_iter().map(run).collect()
    } else {
        starts.iter().map(run).collect()
    }
}

/// `A_B B^T` for the rows `r0..r1` of `a`: a block of rows of `A B^T`.
pub(crate) fn block_product(
    a: ArrayView2<f64>,
    b: ArrayView2<f64>,
    r0: usize,
    r1: usize,
) -> Array2<f64> {
    let mut out = Array2::<f64>::zeros((r1 - r0, b.nrows()));
    general_mat_mul(1.0, &a.slice(s![r0..r1, ..]), &b.t(), 0.0, &mut out);
    out
}

/// Runs `f(k, item)` over `items`, on the rayon pool or in order, collecting the results in order.
pub(crate) fn map_items<T: Send, R: Send>(
    items: Vec<T>,
    parallel: bool,
    f: impl Fn(usize, T) -> R + Sync + Send,
) -> Vec<R> {
    if parallel {
        items
            .into_par_iter()
            .enumerate()
            .map(|(k, x)| f(k, x))
            .collect()
    } else {
        items
            .into_iter()
            .enumerate()
            .map(|(k, x)| f(k, x))
            .collect()
    }
}

/// The row and column log-sum-exps of `S / tau`, `r_i = log sum_j e^{S_ij/tau}` and
/// `c_j = log sum_i e^{S_ij/tau}`, in one blocked pass: rows directly, columns as running
/// `(max, sum)` pairs updated block by block (one exponential per entry).
fn log_sum_exps(
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    tau: f64,
    opts: BlockOptions,
) -> (Vec<f64>, Vec<f64>) {
    let n = u.nrows();
    let block = opts.block.max(1);
    let mut rows = Vec::with_capacity(n);
    let mut col_max = vec![f64::NEG_INFINITY; n];
    let mut col_sum = vec![0.0; n];
    let mut buf = Array2::<f64>::zeros((block.min(n), n));
    for r0 in (0..n).step_by(block) {
        let r1 = (r0 + block).min(n);
        let ub = u.slice(s![r0..r1, ..]);
        let mut sb = buf.slice_mut(s![..r1 - r0, ..]);
        let items: Vec<_> = sb
            .axis_chunks_iter_mut(Axis(1), COL_CHUNK)
            .zip(
                col_max
                    .chunks_mut(COL_CHUNK)
                    .zip(col_sum.chunks_mut(COL_CHUNK)),
            )
            .collect();
        // Per chunk: each row's (max, sum of e^{x - max}) over the chunk's columns.
        let row_parts = map_items(items, opts.parallel, |k, (mut chunk, (cmax, csum))| {
            let c0 = k * COL_CHUNK;
            let vj = v.slice(s![c0..c0 + chunk.ncols(), ..]);
            general_mat_mul(1.0 / tau, &ub, &vj.t(), 0.0, &mut chunk);
            for (j, col) in chunk.columns().into_iter().enumerate() {
                let m_new = col.iter().fold(cmax[j], |a, &x| a.max(x));
                let rescale = if cmax[j] == f64::NEG_INFINITY {
                    0.0
                } else {
                    (cmax[j] - m_new).exp()
                };
                csum[j] = csum[j] * rescale + col.iter().map(|&x| (x - m_new).exp()).sum::<f64>();
                cmax[j] = m_new;
            }
            chunk
                .rows()
                .into_iter()
                .map(|row| {
                    let m = row.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x));
                    (m, row.iter().map(|&x| (x - m).exp()).sum::<f64>())
                })
                .collect::<Vec<(f64, f64)>>()
        });
        for i in 0..r1 - r0 {
            let m = row_parts
                .iter()
                .fold(f64::NEG_INFINITY, |a, p| a.max(p[i].0));
            let sum: f64 = row_parts.iter().map(|p| p[i].1 * (p[i].0 - m).exp()).sum();
            rows.push(m + sum.ln());
        }
    }
    let cols = col_max
        .iter()
        .zip(&col_sum)
        .map(|(m, s)| m + s.ln())
        .collect();
    (rows, cols)
}

/// The InfoNCE loss from its log-sum-exps: `(1/N) [sum_i (r_i - S_ii/tau) + sum_j (c_j - S_jj/tau)]`.
fn infonce_from_lse(u: ArrayView2<f64>, v: ArrayView2<f64>, tau: f64, r: &[f64], c: &[f64]) -> f64 {
    let n = u.nrows();
    let diag: Vec<f64> = Zip::from(u.rows())
        .and(v.rows())
        .map_collect(|a, b| a.dot(&b))
        .to_vec();
    let rows: f64 = (0..n).map(|i| r[i] - diag[i] / tau).sum();
    let cols: f64 = (0..n).map(|j| c[j] - diag[j] / tau).sum();
    (rows + cols) / n as f64
}

/// The loss of `(U, V)` in blocks (no gradient); see the module documentation.
///
/// `U`, `V` are taken as given (row-normalise them first if they are raw). Shapes must match
/// (checked by the callers at the boundary).
pub fn blocked_loss(
    loss: &Loss,
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    opts: BlockOptions,
) -> f64 {
    let n = u.nrows();
    match *loss {
        Loss::Sigmoid { t, b } => {
            let parts = map_blocks(n, opts, |r0, r1| {
                sigmoid_block(block_product(u, v, r0, r1).view(), r0, t, b)
            });
            parts.iter().sum::<f64>() / n as f64
        }
        Loss::InfoNce { tau } => {
            let (r, c) = log_sum_exps(u, v, tau, opts);
            infonce_from_lse(u, v, tau, &r, &c)
        }
    }
}

/// The loss of `(U, V)` and its gradients `dL/dU`, `dL/dV`, in blocks; see the module
/// documentation for the passes, the memory and the reproducibility guarantee.
pub fn blocked_loss_grad(
    loss: &Loss,
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    opts: BlockOptions,
) -> LossGrad {
    let (n, d) = u.dim();
    let block = opts.block.max(1);
    let lse = match *loss {
        Loss::InfoNce { tau } => Some(log_sum_exps(u, v, tau, opts)),
        Loss::Sigmoid { .. } => None,
    };
    let mut du = Array2::<f64>::zeros((n, d));
    let mut dv = Array2::<f64>::zeros((n, d));
    let mut buf = Array2::<f64>::zeros((block.min(n), n));
    let mut total = 0.0;
    for r0 in (0..n).step_by(block) {
        let r1 = (r0 + block).min(n);
        let ub = u.slice(s![r0..r1, ..]);
        let mut sb = buf.slice_mut(s![..r1 - r0, ..]);
        // 1. S_B, then G_B in place, by chunks of columns.
        let chunks: Vec<ArrayViewMut2<f64>> = sb.axis_chunks_iter_mut(Axis(1), COL_CHUNK).collect();
        let parts = map_items(chunks, opts.parallel, |k, mut chunk| {
            let c0 = k * COL_CHUNK;
            let c1 = c0 + chunk.ncols();
            general_mat_mul(1.0, &ub, &v.slice(s![c0..c1, ..]).t(), 0.0, &mut chunk);
            match (*loss, &lse) {
                (Loss::Sigmoid { t, b }, _) => sigmoid_block_grad_in_place(chunk, r0, c0, n, t, b),
                (Loss::InfoNce { tau }, Some((r, c))) => {
                    infonce_grad_in_place(chunk, (r0, c0), &r[r0..r1], &c[c0..c1], tau, n);
                    0.0
                }
                (Loss::InfoNce { .. }, None) => unreachable!("log-sum-exps computed above"),
            }
        });
        total += parts.iter().sum::<f64>();
        let g = sb.view();
        // 2. (dL/dU)_B = G_B V, by chunks of the block's rows.
        let mut du_b = du.slice_mut(s![r0..r1, ..]);
        let rows: Vec<_> = du_b
            .axis_chunks_iter_mut(Axis(0), ROW_CHUNK)
            .zip(g.axis_chunks_iter(Axis(0), ROW_CHUNK))
            .collect();
        map_items(rows, opts.parallel, |_, (mut out, gr)| {
            general_mat_mul(1.0, &gr, &v, 0.0, &mut out);
        });
        // 3. (dL/dV)_J += G_B[:, J]^T U_B, by chunks of rows of dL/dV.
        let cols: Vec<_> = dv.axis_chunks_iter_mut(Axis(0), COL_CHUNK).collect();
        map_items(cols, opts.parallel, |k, mut out| {
            let c0 = k * COL_CHUNK;
            let gj = g.slice(s![.., c0..c0 + out.nrows()]);
            general_mat_mul(1.0, &gj.t(), &ub, 1.0, &mut out);
        });
    }
    let value = match (*loss, &lse) {
        (Loss::InfoNce { tau }, Some((r, c))) => infonce_from_lse(u, v, tau, r, c),
        _ => total / n as f64,
    };
    LossGrad { value, du, dv }
}
