//! The sigmoid loss of SigLIP (SPEC.md §1).
//!
//! `L_sig(U, V; t, b) = (1/N) sum_{i,j} softplus(-z_ij (t S_ij - b))`, `z_ii = +1`, `z_ij = -1`,
//! with gradient `G_ij = dL/dS_ij = -(z_ij t / N) sigmoid(-z_ij (t S_ij - b))`.
//! Each term shares one `exp(-|x|)` between its softplus and its sigmoid, so the pair is exact
//! and finite for every finite logit (`t` up to `1e4` and beyond).

use ndarray::{ArrayView2, ArrayViewMut2};

/// Softplus and its derivative (sigmoid) at `x`, from one exponential:
/// `softplus(x) = max(x,0) + log1p(e^{-|x|})`, `sigmoid(x) = 1/(1+e^{-|x|})` or `e^{-|x|}/(1+e^{-|x|})`.
#[inline(always)]
fn softplus_and_sigmoid(x: f64) -> (f64, f64) {
    let e = (-x.abs()).exp();
    let sp = x.max(0.0) + e.ln_1p();
    let r = 1.0 / (1.0 + e);
    let sg = if x >= 0.0 { r } else { e * r };
    (sp, sg)
}

/// Sum of the loss terms `softplus(-z_ij (t S_ij - b))` of a block of rows of `S` whose first row
/// is row `row0` of the full matrix (so the positives are at `(i, row0 + i)`); **not** divided by
/// `N`.
///
/// Used both for row blocks of `S` and for row blocks of `S^T` (column blocks of `S`): the
/// loss treats rows and columns alike.
pub(crate) fn sigmoid_block(s: ArrayView2<f64>, row0: usize, t: f64, b: f64) -> f64 {
    let mut total = 0.0;
    for (i, srow) in s.outer_iter().enumerate() {
        let diag = row0 + i;
        for (j, &sij) in srow.iter().enumerate() {
            let x = t * sij - b;
            total += crate::numerics::softplus(if j == diag { -x } else { x });
        }
    }
    total
}

/// As [`sigmoid_block`] for the block of `S` whose top-left entry is `(row0, col0)` of the full
/// matrix, and overwrites it in place with the gradient block
/// `G_ij = -(z_ij t / n) sigmoid(-z_ij (t S_ij - b))` (each entry is read before it is written).
pub(crate) fn sigmoid_block_grad_in_place(
    mut sg: ArrayViewMut2<f64>,
    row0: usize,
    col0: usize,
    n: usize,
    t: f64,
    b: f64,
) -> f64 {
    let scale = t / n as f64;
    let mut total = 0.0;
    for (i, mut row) in sg.outer_iter_mut().enumerate() {
        // Local column of the positive pair (may lie outside this block).
        let diag = (row0 + i).wrapping_sub(col0);
        for (j, e) in row.iter_mut().enumerate() {
            let x = t * *e - b;
            if j == diag {
                let (sp, sgm) = softplus_and_sigmoid(-x);
                total += sp;
                *e = -scale * sgm;
            } else {
                let (sp, sgm) = softplus_and_sigmoid(x);
                total += sp;
                *e = scale * sgm;
            }
        }
    }
    total
}

/// `L_sig(S; t, b) = (1/N) sum_{i,j} softplus(-z_ij (t S_ij - b))` for a square `S` (SPEC §1).
pub fn sigmoid_loss(s: ArrayView2<f64>, t: f64, b: f64) -> f64 {
    sigmoid_block(s, 0, t, b) / s.nrows() as f64
}

/// [`sigmoid_loss`] and its gradient `G_ij = -(z_ij t/N) sigmoid(-z_ij (t S_ij - b))` written
/// into `g` (SPEC §1).
pub fn sigmoid_loss_grad(s: ArrayView2<f64>, t: f64, b: f64, mut g: ArrayViewMut2<f64>) -> f64 {
    let n = s.nrows();
    g.assign(&s);
    sigmoid_block_grad_in_place(g, 0, 0, n, t, b) / n as f64
}
