//! The one blocked driver of every [`ContrastiveLoss`], generic over the precision `R: Real`.
//!
//! # Algorithm (SPEC §1, "Blocked evaluation")
//! The gradient is `dL/dU = G V`, `dL/dV = G^T U` with `G = dL/dS`. Rather than hold `S` and
//! `G` (`N x N`), [`value_grad`] walks over blocks of `block` rows `B`, one after the other, and
//! for each:
//!
//! 1. `S_B = U_B V^T` (`block x N`) by chunks of [`Real::COL_CHUNK`] columns in parallel, each
//!    chunk turned into `G_B[:, J]` in place by [`ContrastiveLoss::block`] (its terms summed on
//!    the way);
//! 2. `(dL/dU)_B = G_B V`, by chunks of [`Real::ROW_CHUNK`] rows in parallel;
//! 3. `(dL/dV)_J += G_B[:, J]^T U_B`, by chunks of rows of `dL/dV` in parallel.
//!
//! That is `3 N^2 d` multiply-adds with `block x N` extra memory. A loss with
//! [`Prepass::LogSumExp`] first gets its [`Lse`] from one more pass over the blocks (the rows
//! directly, the columns as running `(max, sum)` pairs): `4 N^2 d` in all. [`value`] runs
//! step 1 alone (`N^2 d`, or `2 N^2 d` with the pre-pass).
//!
//! # Threads and reproducibility
//! Every parallel task owns a fixed piece of the output whose size does not depend on the thread
//! count, blocks follow each other in order, and partial sums are added in chunk order: every
//! result is **bitwise identical for any thread count** (tested).

use super::contrastive::{BlockAt, ContrastiveLoss, Prepass, Views};
use super::lse::{
    merge_parts, positive_of, row_max_sum, update_columns, weighted_row_max_sum, Lse,
};
use crate::base::Real;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// How to split the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockOptions {
    /// Rows per block (memory per worker: `block x N` elements).
    pub block: usize,
    /// Run the chunks on the rayon thread pool.
    pub parallel: bool,
}

impl Default for BlockOptions {
    /// 256 rows, in parallel.
    fn default() -> Self {
        BlockOptions {
            block: 256,
            parallel: true,
        }
    }
}

impl BlockOptions {
    /// The default blocking of precision `R` ([`Real::DEFAULT_BLOCK`] rows, in parallel).
    pub fn for_precision<R: Real>() -> Self {
        BlockOptions {
            block: R::DEFAULT_BLOCK,
            parallel: true,
        }
    }
}

/// A loss value (float64) with its gradients, in precision `R`, with respect to the two
/// embedding matrices.
#[derive(Clone, Debug)]
pub struct LossGrad<R = f64> {
    /// The loss.
    pub value: f64,
    /// `dL/dU` (or `dL/dX` for raw inputs), `N x d`.
    pub du: Array2<R>,
    /// `dL/dV` (or `dL/dY`), `N x d`.
    pub dv: Array2<R>,
}

/// Runs `f(k, item)` over `items`, on the rayon pool or in order, collecting the results in
/// order.
pub(crate) fn map_items<T: Send, O: Send>(
    items: Vec<T>,
    parallel: bool,
    f: impl Fn(usize, T) -> O + Sync + Send,
) -> Vec<O> {
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

/// Maps `f` over the block starts `0, block, 2 block, ...`, in order, in parallel or not.
pub(crate) fn map_blocks<T: Send>(
    n: usize,
    opts: BlockOptions,
    f: impl Fn(usize, usize) -> T + Sync + Send,
) -> Vec<T> {
    let block = opts.block.max(1);
    let starts: Vec<usize> = (0..n).step_by(block).collect();
    map_items(starts, opts.parallel, |_, r0| f(r0, (r0 + block).min(n)))
}

/// `A_B B^T` for the rows `r0..r1` of `a`: a block of rows of `A B^T`.
pub(crate) fn block_product<R: Real>(
    a: ArrayView2<R>,
    b: ArrayView2<R>,
    r0: usize,
    r1: usize,
) -> Array2<R> {
    let mut out = Array2::<R>::zeros((r1 - r0, b.nrows()));
    R::gemm(a.slice(s![r0..r1, ..]), b.t(), out.view_mut(), false);
    out
}

/// The one block loop of the driver, for the pre-passes and the main pass alike: walks the
/// blocks of `block` rows of `A B^T` in order and, for each block `B` (rows `r0..r1`):
///
/// 1. computes `S_B = A_B B^T` by chunks `J` of [`Real::COL_CHUNK`] columns, in parallel, and
///    hands each chunk to `chunk(r0, c0, S_B[:, J], state_J)`, which may overwrite it (with
///    `G_B[:, J]`); `state_J` is chunk `J`'s own state (`states[k]` for the `k`-th chunk of
///    columns, kept from block to block: running column statistics), and its result `T` is kept;
/// 2. then calls `after(r0, A_B, S_B, parts)`, in block order, with the chunks' results in
///    column order and the block as the chunks left it.
///
/// `states` has one entry per chunk of columns ([`col_chunks`]). Every task owns a fixed piece of
/// the output whose size does not depend on the thread count, so the results are bitwise
/// independent of it.
fn visit_blocks<R: Real, S: Send, T: Send>(
    a: ArrayView2<R>,
    b: ArrayView2<R>,
    opts: BlockOptions,
    states: &mut [S],
    chunk: impl Fn(usize, usize, ArrayViewMut2<R>, &mut S) -> T + Sync + Send,
    mut after: impl FnMut(usize, ArrayView2<R>, ArrayView2<R>, Vec<T>),
) {
    let (n, m) = (a.nrows(), b.nrows());
    debug_assert_eq!(states.len(), col_chunks::<R>(m));
    let block = opts.block.clamp(1, n.max(1));
    let mut buf = Array2::<R>::zeros((block, m));
    for r0 in (0..n).step_by(block) {
        let r1 = (r0 + block).min(n);
        let ab = a.slice(s![r0..r1, ..]);
        let mut sb = buf.slice_mut(s![..r1 - r0, ..]);
        let items: Vec<_> = sb
            .axis_chunks_iter_mut(Axis(1), R::COL_CHUNK)
            .zip(states.iter_mut())
            .collect();
        let parts = map_items(items, opts.parallel, |k, (mut s_j, state)| {
            let c0 = k * R::COL_CHUNK;
            let bj = b.slice(s![c0..c0 + s_j.ncols(), ..]);
            R::gemm(ab, bj.t(), s_j.view_mut(), false);
            chunk(r0, c0, s_j, state)
        });
        after(r0, ab, sb.view(), parts);
    }
}

/// The number of chunks of [`Real::COL_CHUNK`] columns of `m` columns: the length of
/// [`visit_blocks`]'s `states`.
fn col_chunks<R: Real>(m: usize) -> usize {
    m.div_ceil(R::COL_CHUNK)
}

/// A state per chunk of `m` columns for a visit that keeps none.
fn no_states<R: Real>(m: usize) -> Vec<()> {
    vec![(); col_chunks::<R>(m)]
}

/// The [`Lse`] of `U V^T / tau` in one blocked pass: per block, the chunks of columns in
/// parallel, each giving its rows' partial `(max, sum)` and updating its columns' running pairs.
pub fn log_sum_exps<R: Real>(
    u: ArrayView2<R>,
    v: ArrayView2<R>,
    inv_tau: f64,
    opts: BlockOptions,
) -> Lse {
    let n = u.nrows();
    let mut row_max = Vec::with_capacity(n);
    let mut row_ln = Vec::with_capacity(n);
    let mut diag = vec![0.0; n];
    let mut col_max = vec![f64::NEG_INFINITY; n];
    let mut col_sum = vec![0.0; n];
    // Each chunk of columns keeps its columns' running (max, sum) pairs.
    let mut columns: Vec<(&mut [f64], &mut [f64])> = col_max
        .chunks_mut(R::COL_CHUNK)
        .zip(col_sum.chunks_mut(R::COL_CHUNK))
        .collect();
    visit_blocks(
        u,
        v,
        opts,
        &mut columns,
        |_, _, chunk, (cmax, csum)| {
            update_columns(chunk.view(), inv_tau, cmax, csum);
            chunk
                .outer_iter()
                .map(|row| match row.as_slice() {
                    Some(r) => row_max_sum(r, inv_tau),
                    None => row_max_sum(&row.to_vec(), inv_tau),
                })
                .collect::<Vec<(f64, f64)>>()
        },
        |r0, _, sb, row_parts| {
            for i in 0..sb.nrows() {
                let (m, sum) = merge_parts(row_parts.iter().map(|p| p[i]), inv_tau);
                row_max.push(m);
                row_ln.push(sum.ln());
                diag[r0 + i] = sb[[i, r0 + i]].to_f64();
            }
        },
    );
    Lse {
        inv_tau,
        row_max,
        row_ln,
        col_ln: col_sum.iter().map(|s| s.ln()).collect(),
        col_max,
        diag,
    }
}

/// The weighted per-anchor log-sum-exps ([`Prepass::AnchorLogSumExp`]) of the rows of
/// `A B^T / tau`, in one blocked pass (chunks of columns in parallel, merged in order).
fn anchor_log_sum_exps<R: Real, L: ContrastiveLoss + ?Sized>(
    loss: &L,
    a: ArrayView2<R>,
    b: ArrayView2<R>,
    inv_tau: f64,
    pairs: usize,
    opts: BlockOptions,
) -> Lse {
    let n = a.nrows();
    let joint = loss.views() == Views::Joint;
    let w = |x: usize, k: usize| loss.lse_weight(x, k, pairs);
    let (mut row_max, mut row_ln, mut diag) =
        (Vec::with_capacity(n), Vec::with_capacity(n), vec![0.0; n]);
    visit_blocks(
        a,
        b,
        opts,
        &mut no_states::<R>(b.nrows()),
        |r0, c0, chunk, ()| {
            chunk
                .outer_iter()
                .enumerate()
                .map(|(i, row)| {
                    weighted_row_max_sum(row.iter().map(|x| x.to_f64()), r0 + i, c0, inv_tau, &w)
                })
                .collect::<Vec<(f64, f64)>>()
        },
        |r0, _, sb, parts| {
            for i in 0..sb.nrows() {
                let (m, sum) = merge_parts(parts.iter().map(|p| p[i]), inv_tau);
                row_max.push(m);
                row_ln.push(sum.ln());
                diag[r0 + i] = sb[[i, positive_of(r0 + i, pairs, joint)]].to_f64();
            }
        },
    );
    Lse {
        inv_tau,
        row_max,
        row_ln,
        col_max: Vec::new(),
        col_ln: Vec::new(),
        diag,
    }
}

/// The pre-pass the loss asks for, over `A B^T`.
fn prepass<R: Real, L: ContrastiveLoss + ?Sized>(
    loss: &L,
    a: ArrayView2<R>,
    b: ArrayView2<R>,
    pairs: usize,
    opts: BlockOptions,
) -> Option<Lse> {
    match loss.prepass() {
        Prepass::None => None,
        Prepass::LogSumExp { inv_tau } => Some(log_sum_exps(a, b, inv_tau, opts)),
        Prepass::AnchorLogSumExp { inv_tau } => {
            Some(anchor_log_sum_exps(loss, a, b, inv_tau, pairs, opts))
        }
    }
}

/// `Z = [U; V]` (`2N x d`), the rows of the joint views.
fn stack<R: Real>(u: ArrayView2<R>, v: ArrayView2<R>) -> Array2<R> {
    ndarray::concatenate(Axis(0), &[u, v]).expect("the callers check that the shapes match")
}

/// The loss of `(U, V)` in blocks, without gradients (module documentation).
///
/// The rows are taken as given (row-normalise them first, or use [`super::evaluate`]); the
/// shapes must match (checked by the callers at the boundary: [`super::evaluate`]).
pub fn value<R: Real, L: ContrastiveLoss + ?Sized>(
    loss: &L,
    u: ArrayView2<R>,
    v: ArrayView2<R>,
    opts: BlockOptions,
) -> f64 {
    match loss.views() {
        Views::Cross => value_of(loss, u, v, u.nrows(), opts),
        Views::Joint => {
            let z = stack(u, v);
            value_of(loss, z.view(), z.view(), u.nrows(), opts)
        }
    }
}

/// [`value`] over the matrix `A B^T` of the loss's views, of `pairs` pairs.
fn value_of<R: Real, L: ContrastiveLoss + ?Sized>(
    loss: &L,
    u: ArrayView2<R>,
    v: ArrayView2<R>,
    pairs: usize,
    opts: BlockOptions,
) -> f64 {
    blocked::<R, L, false>(loss, u, v, pairs, opts).value
}

/// The loss of `(U, V)` and its gradients `dL/dU`, `dL/dV`, in blocks (module documentation).
///
/// The rows are taken as given; the shapes must match.
pub fn value_grad<R: Real, L: ContrastiveLoss + ?Sized>(
    loss: &L,
    u: ArrayView2<R>,
    v: ArrayView2<R>,
    opts: BlockOptions,
) -> LossGrad<R> {
    match loss.views() {
        Views::Cross => value_grad_of(loss, u, v, u.nrows(), opts),
        Views::Joint => {
            let n = u.nrows();
            let z = stack(u, v);
            let lg = value_grad_of(loss, z.view(), z.view(), n, opts);
            // dL/dZ = G Z + G^T Z.
            let dz = lg.du + lg.dv;
            LossGrad {
                value: lg.value,
                du: dz.slice(s![..n, ..]).to_owned(),
                dv: dz.slice(s![n.., ..]).to_owned(),
            }
        }
    }
}

/// [`value_grad`] over the matrix `A B^T` of the loss's views, of `pairs` pairs: the value,
/// `G B` and `G^T A`.
fn value_grad_of<R: Real, L: ContrastiveLoss + ?Sized>(
    loss: &L,
    u: ArrayView2<R>,
    v: ArrayView2<R>,
    pairs: usize,
    opts: BlockOptions,
) -> LossGrad<R> {
    blocked::<R, L, true>(loss, u, v, pairs, opts)
}

/// The one blocked loop of the driver (module documentation) over the matrix `A B^T` of the
/// loss's views, of `pairs` pairs: step 1 for the value; with `GRAD` also steps 2 and 3, the
/// gradients `G B` and `G^T A` (without, `du` and `dv` are empty, `0 x d`). Without `GRAD`, a
/// loss whose value is its pre-pass's ([`ContrastiveLoss::value_needs_blocks`]) skips the loop.
fn blocked<R: Real, L: ContrastiveLoss + ?Sized, const GRAD: bool>(
    loss: &L,
    u: ArrayView2<R>,
    v: ArrayView2<R>,
    pairs: usize,
    opts: BlockOptions,
) -> LossGrad<R> {
    let (n, d) = u.dim();
    let lse = prepass(loss, u, v, pairs, opts);
    let rows = if GRAD { n } else { 0 };
    let mut du = Array2::<R>::zeros((rows, d));
    let mut dv = Array2::<R>::zeros((rows, d));
    if !GRAD && lse.is_some() && !loss.value_needs_blocks() {
        return LossGrad {
            value: loss.finish(0.0, pairs, lse.as_ref()),
            du,
            dv,
        };
    }
    let mut total = 0.0;
    visit_blocks(
        u,
        v,
        opts,
        &mut no_states::<R>(n),
        // 1. S_B, then G_B in place, by chunks of columns.
        |r0, c0, chunk, ()| {
            let at = BlockAt {
                row0: r0,
                col0: c0,
                n,
                pairs,
                lse: lse.as_ref(),
            };
            loss.block::<R, GRAD>(chunk, &at)
        },
        |r0, ub, g, parts| {
            total += parts.iter().sum::<f64>();
            if !GRAD {
                return;
            }
            let r1 = r0 + g.nrows();
            // 2. (dL/dU)_B = G_B V, by chunks of the block's rows.
            let mut du_b = du.slice_mut(s![r0..r1, ..]);
            let rows: Vec<_> = du_b
                .axis_chunks_iter_mut(Axis(0), R::ROW_CHUNK)
                .zip(g.axis_chunks_iter(Axis(0), R::ROW_CHUNK))
                .collect();
            map_items(rows, opts.parallel, |_, (out, gr)| {
                R::gemm(gr, v, out, false)
            });
            // 3. (dL/dV)_J += G_B[:, J]^T U_B, by chunks of rows of dL/dV.
            let cols: Vec<_> = dv.axis_chunks_iter_mut(Axis(0), R::COL_CHUNK).collect();
            map_items(cols, opts.parallel, |k, out| {
                let c0 = k * R::COL_CHUNK;
                let gj = g.slice(s![.., c0..c0 + out.nrows()]);
                R::gemm(gj.t(), ub, out, true);
            });
        },
    );
    LossGrad {
        value: loss.finish(total, pairs, lse.as_ref()),
        du,
        dv,
    }
}
