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

/// `(sigmoid(x), e^{-|x|})` from one exponential, exact for every finite `x`.
#[inline(always)]
fn sigmoid_and_exp(x: f64) -> (f64, f64) {
    let q = (-x.abs()).exp();
    let r = 1.0 / (1.0 + q);
    (if x >= 0.0 { r } else { q * r }, q)
}

/// What [`sigmoid_grad_sums_in_place`] returns besides `G`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SigmoidSums {
    /// The loss, or `NaN` when it was not asked for.
    pub loss: f64,
    /// `sum_ij H_ij`, `H = dL/dlogit`.
    pub sum_h: f64,
    /// `sum_ij H_ij S_ij`.
    pub sum_hs: f64,
    /// `||G||_1 = sum_ij |G_ij|`.
    pub g_l1: f64,
}

/// The free-embedding optimiser's kernel over a row-major `N x N` `S` in place (SPEC §1):
/// `G = t H` with `H_ij = dL/dlogit_ij = -(z_ij/N) sigmoid(-z_ij x_ij)`, `x_ij = t S_ij - b`,
/// plus `sum H`, `sum H S` (for the gradients of learnt `t`, `b`), `||G||_1` and (when `LOSS`)
/// the loss `(1/N) sum softplus(-z_ij x_ij)`. Every negative term (and its `H`) is multiplied by
/// `w` (SPEC §8: the expected mini-batch loss; `w = 1` is the plain loss, bitwise). Each term shares one `exp(-|x|)` between its
/// sigmoid and its softplus, so every finite logit gives finite values; the loss value costs one
/// more `log1p` per entry and is only computed when asked for.
///
/// # Panics
/// `sg.len()` must be `n * n` (each row is split at its diagonal entry).
pub(crate) fn sigmoid_grad_sums_in_place<const LOSS: bool>(
    sg: &mut [f64],
    n: usize,
    t: f64,
    b: f64,
    w: f64,
) -> SigmoidSums {
    let inv_n = 1.0 / n as f64;
    let (mut loss, mut sum_h, mut sum_hs, mut sum_abs) = (0.0, 0.0, 0.0, 0.0);
    for (i, row) in sg.chunks_exact_mut(n).enumerate() {
        let (before, rest) = row.split_at_mut(i);
        let (diag, after) = rest.split_first_mut().expect("row i has an entry i");
        // Negative pairs (z = -1): term softplus(x), H = sigmoid(x) / N.
        for e in before.iter_mut().chain(after.iter_mut()) {
            let s = *e;
            let x = t * s - b;
            let (sig, q) = sigmoid_and_exp(x);
            let h = w * sig * inv_n;
            sum_h += h;
            sum_abs += h;
            sum_hs += h * s;
            *e = t * h;
            if LOSS {
                loss += w * (x.max(0.0) + q.ln_1p());
            }
        }
        // The positive pair (z = +1): term softplus(-x), H = -sigmoid(-x) / N.
        let s = *diag;
        let x = t * s - b;
        let (sig, q) = sigmoid_and_exp(-x);
        let h = -sig * inv_n;
        sum_h += h;
        sum_abs -= h;
        sum_hs += h * s;
        *diag = t * h;
        if LOSS {
            loss += (-x).max(0.0) + q.ln_1p();
        }
    }
    SigmoidSums {
        loss: if LOSS { loss * inv_n } else { f64::NAN },
        sum_h,
        sum_hs,
        g_l1: t * sum_abs,
    }
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
