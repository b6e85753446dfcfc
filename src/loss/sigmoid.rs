//! The sigmoid loss of SigLIP (SPEC.md §1).
//!
//! `L_sig(U, V; t, b) = (1/N) sum_{i,j} softplus(-z_ij (t S_ij - b))`, `z_ii = +1`, `z_ij = -1`,
//! with gradient `G_ij = dL/dS_ij = -(z_ij t / N) sigmoid(-z_ij (t S_ij - b))`.
//! Each term shares one `exp(-|x|)` between its softplus and its sigmoid, so the pair is exact
//! and finite for every finite logit (`t` up to `1e4` and beyond).

use super::contrastive::{dense, BlockAt, ContrastiveLoss, Tuned, Views};
use super::params::{check_within, named, FromParams, LossParams};
use super::sigmoid_grad::exp_nonpos;
use crate::base::Real;
use crate::error::{check_bias, check_finite, check_nonneg, check_scale, Result};
use crate::numerics::softplus;
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// The sigmoid loss of SigLIP with scale `t >= 0` and bias `b`: logit `t S_ij - b` (SPEC §1).
///
/// `L = (1/N) sum_{i,j} softplus(-z_ij (t S_ij - b))`, `z_ii = +1`, `z_ij = -1` (`i != j`);
/// `G_ij = -(z_ij t / N) sigmoid(-z_ij (t S_ij - b))`.
///
/// ```
/// use ccem::loss::sigmoid::Sigmoid;
/// use ccem::loss::contrastive::ContrastiveLoss;
/// use ndarray::array;
/// let loss = Sigmoid::new(2.0, 1.0)?;
/// let s = array![[1.0, 0.0], [0.0, 1.0]];
/// let sp = |x: f64| x.exp().ln_1p();
/// assert!((loss.value_s(s.view()) - 2.0 * sp(-1.0)).abs() < 1e-15);
/// assert!(Sigmoid::new(-1.0, 0.0).is_err());
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sigmoid {
    /// Scale (inverse temperature), `0 <= t <= MAX_MAGNITUDE`.
    pub t: f64,
    /// Bias, `|b| <= MAX_MAGNITUDE`.
    pub b: f64,
    /// The weight `W >= 0` of the within-view negatives (SPEC §1.6): the loss gains
    /// `(W/N) sum_{i != j} [softplus(t u_i.u_j - b) + softplus(t v_i.v_j - b)]`. `0` is
    /// SigLIP's loss (every algorithm's tuned path); Lee et al.'s remedy is `W = 1`.
    #[serde(
        default,
        rename = "within_view",
        skip_serializing_if = "super::infonce::is_zero"
    )]
    pub within: f64,
}

impl Sigmoid {
    /// The sigmoid loss with scale `t` and bias `b`.
    ///
    /// # Errors
    /// `t` negative, non-finite or above [`crate::error::MAX_MAGNITUDE`]; `|b|` non-finite or
    /// above it.
    pub fn new(t: f64, b: f64) -> Result<Self> {
        Ok(Sigmoid {
            t: check_scale("t", t)?,
            b: check_bias("b", b)?,
            within: 0.0,
        })
    }

    /// This loss with within-view negatives of weight `within` (SPEC §1.6).
    ///
    /// # Errors
    /// A negative or non-finite `within`.
    pub fn with_within(self, within: f64) -> Result<Self> {
        Ok(Sigmoid {
            within: check_within("sigmoid", within)?,
            ..self
        })
    }

    /// Whether this is SigLIP's loss itself (no within-view negatives), the one every tuned
    /// path (the learnt `t` and `b`, the mini-batch strategies, the theory of SPEC §3) is for.
    pub fn is_plain(&self) -> bool {
        self.within == 0.0
    }

    /// The relative-bias form: logit `t (S - r_b)`, i.e. `b = r_b t` (SPEC §1, Bangachev et al.
    /// 2025).
    ///
    /// # Errors
    /// As [`Sigmoid::new`], or a non-finite `r_b`.
    pub fn relative(t: f64, r_b: f64) -> Result<Self> {
        check_finite("r_b", r_b)?;
        Self::new(t, r_b * check_nonneg("t", t)?)
    }
}

impl FromParams for Sigmoid {
    const PARAMS: &'static [&'static str] = &["t", "b", "relative_bias", "within_view"];
    const ADDITIVE: bool = true;

    /// `t` (required), then `b` or `relative_bias` (default `b = 0`), and `within_view`
    /// (default 0).
    fn from_params(p: &LossParams) -> Result<Self> {
        p.only("sigmoid", Self::PARAMS)?;
        let t = LossParams::need("sigmoid", "t", p.t)?;
        let base = match (p.b, p.relative_bias) {
            (Some(_), Some(_)) => {
                return Err(crate::error::Error::Config(
                    "the sigmoid loss takes b or relative_bias, not both".into(),
                ))
            }
            (_, Some(r)) => named("sigmoid", Self::relative(t, r))?,
            (b, None) => named("sigmoid", Self::new(t, b.unwrap_or(0.0)))?,
        };
        base.with_within(p.within_view.unwrap_or(0.0))
    }
}

impl ContrastiveLoss for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }

    fn params(&self) -> Vec<(&'static str, f64)> {
        if self.within > 0.0 {
            vec![("t", self.t), ("b", self.b), ("within_view", self.within)]
        } else {
            vec![("t", self.t), ("b", self.b)]
        }
    }

    /// Cross views; the joint views with within-view negatives.
    fn views(&self) -> Views {
        if self.within > 0.0 {
            Views::Joint
        } else {
            Views::Cross
        }
    }

    /// Without within-view negatives, the optimiser's sigmoid kernel ([`Tuned::Sigmoid`]).
    fn tuned(&self) -> Option<Tuned> {
        self.is_plain().then_some(Tuned::Sigmoid {
            t: self.t,
            b: self.b,
        })
    }

    /// Without within-view negatives, `softplus(-z (t s - b))` (`z = +1` for a positive, `-1`
    /// for a negative): the loss is `(1/N)` times their sum over `S`.
    fn pair_term(&self, s: f64, positive: bool) -> Option<f64> {
        if !self.is_plain() {
            return None;
        }
        let logit = self.t * s - self.b;
        Some(softplus(if positive { -logit } else { logit }))
    }

    /// The terms `softplus(-z_ij (t S_ij - b))` of the block, each from one `exp(-|y|)`
    /// (`softplus_sigmoid`), summed in `f64` lanes; with `GRAD`, `G_ij` in place.
    fn block<R: Real, const GRAD: bool>(&self, mut s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
        if self.within > 0.0 {
            return self.joint_block::<R, GRAD>(s, at);
        }
        let ncols = s.ncols();
        let mut total = 0.0;
        for (i, mut row) in s.outer_iter_mut().enumerate() {
            let diag = at.diag_col(i, ncols);
            total += match row.as_slice_mut() {
                Some(r) => sigmoid_row_dispatch::<R, GRAD>(r, diag, self.t, self.b, at.n),
                None => {
                    let mut r = row.to_vec();
                    let v = sigmoid_row_dispatch::<R, GRAD>(&mut r, diag, self.t, self.b, at.n);
                    if GRAD {
                        row.iter_mut().zip(&r).for_each(|(a, &x)| *a = x);
                    }
                    v
                }
            };
        }
        total
    }

    /// [`sigmoid_loss`] (exact `exp`/`ln_1p`; the optimiser's and the encoder's dense path).
    fn value_s(&self, s: ArrayView2<f64>) -> f64 {
        if self.within > 0.0 {
            let mut scratch = s.to_owned();
            return dense::<f64, Self, false>(self, scratch.view_mut());
        }
        sigmoid_loss(s, self.t, self.b)
    }

    /// [`sigmoid_loss_grad`].
    fn value_grad_s(&self, s: ArrayView2<f64>, mut g: ArrayViewMut2<f64>) -> f64 {
        if self.within > 0.0 {
            g.assign(&s);
            return dense::<f64, Self, true>(self, g);
        }
        sigmoid_loss_grad(s, self.t, self.b, g)
    }

    /// The vectorised gradient kernel without the loss value (`sigmoid_grad.rs`, equal to
    /// [`ContrastiveLoss::value_grad_s`]'s `G` to 1e-15, tested); always finite.
    fn grad_s(&self, s: ArrayView2<f64>, mut g: ArrayViewMut2<f64>) -> bool {
        if self.within > 0.0 {
            let v = self.value_grad_s(s, g.view_mut());
            return v.is_finite() && g.iter().all(|x| x.is_finite());
        }
        let n = s.nrows();
        match (s.as_slice(), g.as_slice_mut()) {
            (Some(s), Some(g)) => {
                super::sigmoid_grad::sigmoid_grad_s(s, g, n, self.t, self.b);
                true
            }
            _ => sigmoid_loss_grad(s, self.t, self.b, g).is_finite(),
        }
    }
}

impl Sigmoid {
    /// A block of `K` (the joint views, SPEC §1.6): the cross-view terms from the `U V^T`
    /// quadrant (rows `< N`, columns `>= N`; the `V U^T` quadrant is its transpose and is left
    /// out), the within-view negatives `softplus(t K_ak - b)` of weight `W` from the two
    /// within-view quadrants (`k != a`), nothing from the anchors themselves.
    fn joint_block<R: Real, const GRAD: bool>(&self, mut s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
        let n = at.pairs;
        let inv_n = 1.0 / n as f64;
        let mut total = 0.0;
        for (i, mut row) in s.outer_iter_mut().enumerate() {
            let a = at.row0 + i;
            for (j, e) in row.iter_mut().enumerate() {
                let k = at.col0 + j;
                let (weight, z) = if a == k || (a >= n && k < n) {
                    (0.0, 1.0)
                } else if a < n && k >= n {
                    (1.0, if k - n == a { 1.0 } else { -1.0 })
                } else {
                    (self.within, -1.0)
                };
                if weight == 0.0 {
                    if GRAD {
                        *e = R::from_f64(0.0);
                    }
                    continue;
                }
                let y = -z * (self.t * e.to_f64() - self.b);
                let (sp, sg) = softplus_sigmoid(y);
                total += weight * sp;
                if GRAD {
                    *e = R::from_f64(-z * weight * self.t * sg * inv_n);
                }
            }
        }
        total
    }
}

/// Lanes of the vectorised `f64` sums (a fixed number: the summation order does not depend on
/// the machine).
const LANES: usize = 8;

/// `ln(1 + e)` for `e` in `[0, 1]`, branch-free: `2 atanh(z)`, `z = e / (2 + e)` in `[0, 1/3]`,
/// by its series `2 z sum_k z^{2k} / (2k + 1)` to `k = 13` (truncation below `2e-15` relative).
#[inline(always)]
pub(crate) fn ln1p_unit(e: f64) -> f64 {
    let z = e / (2.0 + e);
    let w = z * z;
    let mut p = 1.0 / 29.0;
    for k in (0..14).rev() {
        p = p * w + 1.0 / (2 * k + 1) as f64;
    }
    2.0 * z * p
}

/// `softplus(y) = ln(1 + e^y)`, branch-free from one `exp(-|y|)` (relative error below `1e-15`).
#[inline(always)]
pub(crate) fn softplus_fast(y: f64) -> f64 {
    y.max(0.0) + ln1p_unit(exp_nonpos(-y.abs()))
}

/// The loss term `softplus(y)` and its derivative `sigmoid(y)`, from one `exp(-|y|)`.
#[inline(always)]
fn softplus_sigmoid(y: f64) -> (f64, f64) {
    let e = exp_nonpos(-y.abs());
    let sp = y.max(0.0) + ln1p_unit(e);
    let r = 1.0 / (1.0 + e);
    (sp, if y >= 0.0 { r } else { e * r })
}

/// Sum of the loss terms of a contiguous run of entries that are all negatives
/// (`y = t S - b`) or all positives (`y = -(t S - b)`, `sign = -1`); with `WRITE`, each entry is
/// overwritten by its gradient `-sign * scale * sigmoid(y)` (a positive's gradient is negative).
#[inline(always)]
fn sigmoid_run<R: Real, const WRITE: bool>(
    xs: &mut [R],
    sign: f64,
    t: f64,
    b: f64,
    scale: f64,
) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for ch in &mut chunks {
        for (x, a) in ch.iter_mut().zip(acc.iter_mut()) {
            let (sp, sg) = softplus_sigmoid(sign * (t * x.to_f64() - b));
            *a += sp;
            if WRITE {
                *x = R::from_f64(sign * scale * sg);
            }
        }
    }
    let mut tail = 0.0;
    for x in chunks.into_remainder() {
        let (sp, sg) = softplus_sigmoid(sign * (t * x.to_f64() - b));
        tail += sp;
        if WRITE {
            *x = R::from_f64(sign * scale * sg);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// One row of a block of `S`: its loss terms summed, and with `WRITE` the row overwritten by
/// `G_ij = -(z_ij t / n) sigmoid(-z_ij (t S_ij - b))`; `diag` is the local column of the
/// positive pair, if it lies in this row.
#[inline(always)]
fn sigmoid_row<R: Real, const WRITE: bool>(
    row: &mut [R],
    diag: Option<usize>,
    t: f64,
    b: f64,
    n: usize,
) -> f64 {
    let scale = t / n as f64;
    match diag {
        Some(j) if j < row.len() => {
            let (left, rest) = row.split_at_mut(j);
            let (mid, right) = rest.split_at_mut(1);
            let l = sigmoid_run::<R, WRITE>(left, 1.0, t, b, scale);
            let m = sigmoid_run::<R, WRITE>(mid, -1.0, t, b, scale);
            let r = sigmoid_run::<R, WRITE>(right, 1.0, t, b, scale);
            l + m + r
        }
        _ => sigmoid_run::<R, WRITE>(row, 1.0, t, b, scale),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sigmoid_row_avx2<R: Real, const WRITE: bool>(
    row: &mut [R],
    diag: Option<usize>,
    t: f64,
    b: f64,
    n: usize,
) -> f64 {
    sigmoid_row::<R, WRITE>(row, diag, t, b, n)
}

/// [`sigmoid_row`] in the AVX2 build where the CPU has it (no fused multiply-add, so both builds
/// give bitwise the same result).
fn sigmoid_row_dispatch<R: Real, const WRITE: bool>(
    row: &mut [R],
    diag: Option<usize>,
    t: f64,
    b: f64,
    n: usize,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { sigmoid_row_avx2::<R, WRITE>(row, diag, t, b, n) };
    }
    sigmoid_row::<R, WRITE>(row, diag, t, b, n)
}

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
