//! The losses and gradients in blocks of rows: memory `O(N * block)`, never `O(N^2)`.
//!
//! # Algorithm
//! The gradient of SPEC.md §1 is `dL/dU = G V`, `dL/dV = G^T U`, with `G = dL/dS`. Rather than
//! hold `S` and `G` (`N x N`), each pass walks over blocks of `block` rows:
//!
//! - **row pass**: `S_B = U_B V^T` (`block x N`), the loss terms and `G_B` in place of `S_B`,
//!   then `(dL/dU)_B = G_B V`;
//! - **column pass**: `S^T_B = V_B U^T` (a block of rows of `S^T`), `(G^T)_B` in place, then
//!   `(dL/dV)_B = (G^T)_B U`.
//!
//! The sigmoid loss needs one row pass and one column pass (4 `N^2 d` multiply-adds instead of
//! the dense 3, in exchange for `O(N block)` memory); InfoNCE first needs the row log-sum-exps
//! (one more `N^2 d` pass), its column pass yields the column log-sum-exps, and its row pass
//! comes last (5 `N^2 d`).
//!
//! # Threads and reproducibility
//! Blocks run in parallel with rayon when [`BlockOptions::parallel`] is set; every output row
//! is computed by exactly one block with the same sequence of operations, and partial loss sums
//! are added in block order. The result is therefore **bitwise identical for any thread count**.
//! It differs from the dense path only by floating-point summation order (relative `1e-12`,
//! checked by the tests); changing `block` changes the summation order of the loss the same way.

use super::infonce::{infonce_block, infonce_block_grad_in_place, row_lse};
use super::sigmoid::{sigmoid_block, sigmoid_block_grad_in_place};
use super::{Loss, LossGrad};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

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
            let lse_part = |a: ArrayView2<f64>, b: ArrayView2<f64>| {
                map_blocks(n, opts, |r0, r1| {
                    let sb = block_product(a, b, r0, r1);
                    infonce_block(sb.view(), r0, &row_lse(sb.view(), tau), tau)
                })
                .iter()
                .sum::<f64>()
            };
            (lse_part(u, v) + lse_part(v, u)) / n as f64
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
    let n = u.nrows();
    // One pass over blocks of rows of `a b^T`: the block's loss part and (G_B) c, stacked.
    let pass = |a: ArrayView2<f64>,
                b: ArrayView2<f64>,
                c: ArrayView2<f64>,
                kernel: &(dyn Fn(usize, &mut Array2<f64>) -> f64 + Sync)| {
        let parts = map_blocks(n, opts, |r0, r1| {
            let mut sb = block_product(a, b, r0, r1);
            let part = kernel(r0, &mut sb);
            let mut out = Array2::<f64>::zeros((r1 - r0, c.ncols()));
            general_mat_mul(1.0, &sb, &c, 0.0, &mut out);
            (part, out)
        });
        let mut total = 0.0;
        let mut grad = Array2::<f64>::zeros(c.raw_dim());
        for ((part, out), r0) in parts.into_iter().zip((0..n).step_by(opts.block.max(1))) {
            total += part;
            grad.slice_mut(s![r0..r0 + out.nrows(), ..]).assign(&out);
        }
        (total, grad)
    };
    match *loss {
        Loss::Sigmoid { t, b } => {
            let kernel = |r0: usize, sb: &mut Array2<f64>| {
                // G overwrites S in place: the kernel reads S_ij before it writes G_ij.
                sigmoid_block_grad_in_place(sb.view_mut(), r0, n, t, b)
            };
            let (total, du) = pass(u, v, v, &kernel);
            let (_, dv) = pass(v, u, u, &kernel);
            LossGrad {
                value: total / n as f64,
                du,
                dv,
            }
        }
        Loss::InfoNce { tau } => {
            // Row log-sum-exps r_i first (one pass without gradient).
            let r: Vec<f64> = map_blocks(n, opts, |r0, r1| {
                row_lse(block_product(u, v, r0, r1).view(), tau)
            })
            .into_iter()
            .flatten()
            .collect();
            // Column pass: the column log-sum-exps c_j of its own block, then G^T and dL/dV.
            let col_lse = std::sync::Mutex::new(vec![0.0; n]);
            let col_kernel = |r0: usize, sb: &mut Array2<f64>| {
                let c_block = row_lse(sb.view(), tau);
                col_lse.lock().expect("poisoned")[r0..r0 + c_block.len()].copy_from_slice(&c_block);
                infonce_block_grad_in_place(sb.view_mut(), r0, &c_block, &r, tau)
            };
            let (cols, dv) = pass(v, u, u, &col_kernel);
            let c = col_lse.into_inner().expect("poisoned");
            let row_kernel = |r0: usize, sb: &mut Array2<f64>| {
                let rows = r0..r0 + sb.nrows();
                infonce_block_grad_in_place(sb.view_mut(), r0, &r[rows], &c, tau)
            };
            let (rows, du) = pass(u, v, v, &row_kernel);
            LossGrad {
                value: (rows + cols) / n as f64,
                du,
                dv,
            }
        }
    }
}
