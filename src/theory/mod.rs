//! The exact optimum of the sigmoid loss (SPEC.md §3) and of InfoNCE on the CCEM.
//!
//! For `d >= N` a minimiser of the sigmoid loss over all embeddings is a CCEM (Lee, Chang, Sohn
//! 2024), so the optimum is the minimiser `c*` of the one-variable convex function
//!
//! `l(c) = softplus(b - t + 2tc) + (N-1) softplus(-b - t/(N-1) - t c (N-2)/(N-1))`
//!
//! over `c in [0, 1]` ([`ccem_loss`]). Its derivative [`ccem_loss_derivative`] is monotone, so
//! the phase is read off its signs at the two ends and `c*` is its root, found by a safeguarded
//! Newton iteration (bisection whenever Newton would leave the bracket) to machine precision.

pub mod batch;
mod bias;
pub use batch::BatchOptimum;
pub use bias::BiasMode;

use crate::error::{check_batch, check_finite, check_nonneg, check_positive, Result};
use crate::numerics::{sigmoid, softplus};
use serde::{Deserialize, Serialize};

/// Which structure the optimum of the sigmoid loss takes (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `c* = 0`: the simplex ETF (`s_+ = 1`, `s_- = -1/(N-1)`).
    Etf,
    /// `0 < c* < 1`: a CCEM strictly between the two ends.
    Intermediate,
    /// `c* = 1`: every `u_i = e`, `v_i = -e` (`s_+ = s_- = -1`).
    Antipodal,
    /// `t = 0`: the loss does not depend on the embedding; every CCEM is optimal.
    Degenerate,
}

impl Phase {
    /// The lower-case name used in every output (`etf`, `intermediate`, `antipodal`, `degenerate`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Etf => "etf",
            Phase::Intermediate => "intermediate",
            Phase::Antipodal => "antipodal",
            Phase::Degenerate => "degenerate",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CCEM loss as a function of `c = delta^2 / (1 + delta^2)` (SPEC §3):
///
/// `l(c) = softplus(b - t + 2tc) + (N-1) softplus(-b - t/(N-1) - t c (N-2)/(N-1))`.
///
/// It equals the sigmoid loss `L_sig` of the CCEM with that `c` (the `1/N` normalisation makes it
/// one positive term and `N-1` negative terms).
#[inline]
pub fn ccem_loss(n: usize, t: f64, b: f64, c: f64) -> f64 {
    ccem_loss_weighted(n, t, b, 1.0, c)
}

/// `l'(c) = 2t sigmoid(b - t + 2tc) - t (N-2) sigmoid(-b - t/(N-1) - t c (N-2)/(N-1))` (SPEC §3).
#[inline]
pub fn ccem_loss_derivative(n: usize, t: f64, b: f64, c: f64) -> f64 {
    ccem_loss_derivative_weighted(n, t, b, 1.0, c)
}

/// `l''(c) = 4 t^2 sigmoid'(a) + t^2 (N-2)^2/(N-1) sigmoid'(beta)`, with `a`, `beta` the two
/// arguments of [`ccem_loss`] and `sigmoid' = sigmoid (1 - sigmoid)`; always `>= 0` (convexity).
#[inline]
pub fn ccem_loss_second_derivative(n: usize, t: f64, b: f64, c: f64) -> f64 {
    ccem_loss_second_derivative_weighted(n, t, b, 1.0, c)
}

/// The CCEM loss with every negative pair weighted by `w > 0` (SPEC §7, "Mini-batches"):
///
/// `l_w(c) = softplus(b - t + 2tc) + w (N-1) softplus(-b - t/(N-1) - t c (N-2)/(N-1))`.
///
/// With `w = (B-1)/(N-1)` it is the expected sigmoid loss over uniformly drawn batches of size
/// `B` ([`crate::theory::batch`]); `w = 1` is [`ccem_loss`], bitwise (a product with `1.0` is
/// exact).
#[inline]
pub fn ccem_loss_weighted(n: usize, t: f64, b: f64, w: f64, c: f64) -> f64 {
    let nm1 = (n - 1) as f64;
    softplus(b - t + 2.0 * t * c) + w * nm1 * softplus(neg_arg(n, t, b, c))
}

/// `l_w'(c) = 2t sigmoid(b - t + 2tc) - w t (N-2) sigmoid(-b - t/(N-1) - t c (N-2)/(N-1))`
/// (SPEC §7); `w = 1` is [`ccem_loss_derivative`], bitwise.
#[inline]
pub fn ccem_loss_derivative_weighted(n: usize, t: f64, b: f64, w: f64, c: f64) -> f64 {
    let nm2 = (n as f64) - 2.0;
    2.0 * t * sigmoid(b - t + 2.0 * t * c) - w * t * nm2 * sigmoid(neg_arg(n, t, b, c))
}

/// `l_w''(c) = 4 t^2 sigmoid'(a) + w t^2 (N-2)^2/(N-1) sigmoid'(beta)` (SPEC §7); `>= 0` for
/// `w >= 0`, and `w = 1` is [`ccem_loss_second_derivative`], bitwise.
#[inline]
pub fn ccem_loss_second_derivative_weighted(n: usize, t: f64, b: f64, w: f64, c: f64) -> f64 {
    let nm1 = (n - 1) as f64;
    let nm2 = (n as f64) - 2.0;
    let sa = sigmoid(b - t + 2.0 * t * c);
    let sb = sigmoid(neg_arg(n, t, b, c));
    4.0 * t * t * sa * (1.0 - sa) + w * t * t * nm2 * nm2 / nm1 * sb * (1.0 - sb)
}

/// The argument of the negative-pair softplus: `t s_- - b` with `s_- = -(1-c)/(N-1) - c`.
#[inline]
fn neg_arg(n: usize, t: f64, b: f64, c: f64) -> f64 {
    let nm1 = (n - 1) as f64;
    let nm2 = (n as f64) - 2.0;
    -b - t / nm1 - t * c * nm2 / nm1
}

/// Positive similarity of the CCEM with parameter `c`: `s_+ = 1 - 2c` (SPEC §2).
#[inline]
pub fn s_pos_of_c(c: f64) -> f64 {
    1.0 - 2.0 * c
}

/// Negative similarity of the CCEM with parameter `c`: `s_- = -(1-c)/(N-1) - c` (SPEC §2).
#[inline]
pub fn s_neg_of_c(n: usize, c: f64) -> f64 {
    -(1.0 - c) / ((n - 1) as f64) - c
}

/// Within-modality similarity of the CCEM: `u_i . u_j = -(1-c)/(N-1) + c` (SPEC §2).
#[inline]
pub fn s_within_of_c(n: usize, c: f64) -> f64 {
    -(1.0 - c) / ((n - 1) as f64) + c
}

/// `delta = sqrt(c / (1 - c))`, `inf` at `c = 1` (SPEC §3).
#[inline]
pub fn delta_of_c(c: f64) -> f64 {
    if c >= 1.0 {
        f64::INFINITY
    } else {
        (c / (1.0 - c)).sqrt()
    }
}

/// `c = delta^2 / (1 + delta^2)`, `1` at `delta = inf` (SPEC §2).
#[inline]
pub fn c_of_delta(delta: f64) -> f64 {
    if delta.is_infinite() {
        1.0
    } else {
        delta * delta / (1.0 + delta * delta)
    }
}

/// The exact optimum of the sigmoid loss for `N` pairs, scale `t` and bias `b` (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SigmoidOptimum {
    /// Batch size.
    pub n: usize,
    /// Scale (inverse temperature).
    pub t: f64,
    /// Bias (logit `t S - b`).
    pub b: f64,
    /// The optimal `c* in [0, 1]`; `NaN` (JSON `null`) in the degenerate phase `t = 0`.
    pub c_star: f64,
    /// `delta* = sqrt(c*/(1-c*))`; `inf` (JSON `null`) when antipodal, `NaN` when degenerate.
    pub delta_star: f64,
    /// Optimal positive similarity `s_+* = 1 - 2c*`.
    pub s_pos: f64,
    /// Optimal negative similarity `s_-* = -(1-c*)/(N-1) - c*`.
    pub s_neg: f64,
    /// The minimal loss `l(c*)`.
    pub loss: f64,
    /// The phase.
    pub phase: Phase,
}

impl SigmoidOptimum {
    /// Solves for the optimum.
    ///
    /// # Errors
    /// `N < 2`, `t` negative or non-finite, `b` non-finite.
    pub fn solve(n: usize, t: f64, b: f64) -> Result<Self> {
        check_batch(n)?;
        check_nonneg("t", t)?;
        check_finite("b", b)?;
        Ok(Self::solve_unchecked(n, t, b))
    }

    /// [`SigmoidOptimum::solve`] without the argument checks, for inner loops over validated grids.
    pub fn solve_unchecked(n: usize, t: f64, b: f64) -> Self {
        Self::solve_weighted_unchecked(n, t, b, 1.0)
    }

    /// The optimum of the loss whose negative pairs are weighted by `w` (SPEC §7): the expected
    /// mini-batch loss for `w = (B-1)/(N-1)` ([`batch::BatchOptimum`] takes `B` instead). The
    /// fields are those of the weighted problem (`loss = l_w(c*)`); `w = 1` is
    /// [`SigmoidOptimum::solve`], bitwise.
    ///
    /// # Errors
    /// As [`SigmoidOptimum::solve`], and `w` not finite and `> 0`.
    pub fn solve_weighted(n: usize, t: f64, b: f64, w: f64) -> Result<Self> {
        check_batch(n)?;
        check_nonneg("t", t)?;
        check_finite("b", b)?;
        check_positive("w", w)?;
        Ok(Self::solve_weighted_unchecked(n, t, b, w))
    }

    /// [`SigmoidOptimum::solve_weighted`] without the argument checks.
    pub fn solve_weighted_unchecked(n: usize, t: f64, b: f64, w: f64) -> Self {
        if t == 0.0 {
            let nm1 = (n - 1) as f64;
            return SigmoidOptimum {
                n,
                t,
                b,
                c_star: f64::NAN,
                delta_star: f64::NAN,
                s_pos: f64::NAN,
                s_neg: f64::NAN,
                loss: softplus(b) + w * nm1 * softplus(-b),
                phase: Phase::Degenerate,
            };
        }
        let (c, phase) = if ccem_loss_derivative_weighted(n, t, b, w, 0.0) >= 0.0 {
            (0.0, Phase::Etf)
        } else if ccem_loss_derivative_weighted(n, t, b, w, 1.0) <= 0.0 {
            (1.0, Phase::Antipodal)
        } else {
            (root_of_derivative(n, t, b, w), Phase::Intermediate)
        };
        SigmoidOptimum {
            n,
            t,
            b,
            c_star: c,
            delta_star: delta_of_c(c),
            s_pos: s_pos_of_c(c),
            s_neg: s_neg_of_c(n, c),
            loss: ccem_loss_weighted(n, t, b, w, c),
            phase,
        }
    }
}

/// Root of the increasing `l'` on `(0, 1)`, given `l'(0) < 0 < l'(1)`: Newton steps kept inside
/// the shrinking bracket, bisection otherwise; stops when the bracket or the step is at machine
/// precision.
fn root_of_derivative(n: usize, t: f64, b: f64, w: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    let mut c = 0.5;
    for _ in 0..200 {
        let g = ccem_loss_derivative_weighted(n, t, b, w, c);
        if g == 0.0 {
            return c;
        }
        if g < 0.0 {
            lo = c;
        } else {
            hi = c;
        }
        let h = ccem_loss_second_derivative_weighted(n, t, b, w, c);
        let newton = c - g / h;
        let next = if h > 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (next - c).abs() <= 4.0 * f64::EPSILON * c.abs().max(f64::MIN_POSITIVE)
            || hi - lo <= 4.0 * f64::EPSILON
        {
            return next;
        }
        c = next;
    }
    c
}

/// The ETF threshold of the paper's setting `t = b` (SPEC §3): the optimum is the simplex ETF iff
/// `t >= ((N-1)/N) log(N-3)`. Defined for `N >= 4`; `None` below (for `N <= 3` and `t = b > 0` the
/// optimum is always the ETF).
pub fn etf_threshold_tied(n: usize) -> Option<f64> {
    etf_threshold_tied_weighted(n, 1.0)
}

/// The ETF threshold of `t = b` when every negative pair is weighted by `w` (SPEC §7): the
/// optimum is the ETF iff `t >= ((N-1)/N) log(w (N-2) - 1)`. `None` when `w (N-2) < 2`, where
/// the optimum is the ETF for every `t = b > 0`; `w = 1` is [`etf_threshold_tied`].
pub fn etf_threshold_tied_weighted(n: usize, w: f64) -> Option<f64> {
    let wn = w * (n as f64 - 2.0);
    (wn >= 2.0).then(|| ((n - 1) as f64 / n as f64) * (wn - 1.0).ln())
}

/// The antipodal threshold of the paper's setting `t = b` (SPEC §3): the optimum is antipodal iff
/// `t <= (1/2) log((N-2)/2)`. Defined for `N >= 5` (it is `0` at `N = 4`); `None` below.
pub fn antipodal_threshold_tied(n: usize) -> Option<f64> {
    (n >= 4).then(|| 0.5 * ((n as f64 - 2.0) / 2.0).ln())
}

/// The antipodal threshold of `t = b` when every negative pair is weighted by `w` (SPEC §7):
/// the optimum is antipodal iff `t <= (1/2) log(w (N-2)/2)`. `None` when `w (N-2) <= 2`: there
/// is then no antipodal phase at `t = b > 0` (every `N` when `B <= 3`).
pub fn antipodal_threshold_tied_weighted(n: usize, w: f64) -> Option<f64> {
    let wn = w * (n as f64 - 2.0);
    (wn > 2.0).then(|| 0.5 * (wn / 2.0).ln())
}

/// The InfoNCE optimum on the CCEM: the simplex ETF for every `tau > 0` (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct InfoNceOptimum {
    /// Batch size.
    pub n: usize,
    /// Temperature.
    pub tau: f64,
    /// Always `0` (ETF).
    pub c_star: f64,
    /// Always `0`.
    pub delta_star: f64,
    /// `1`.
    pub s_pos: f64,
    /// `-1/(N-1)`.
    pub s_neg: f64,
    /// The symmetric InfoNCE loss of the ETF: `2 softplus(log(N-1) - N/((N-1) tau))`.
    pub loss: f64,
    /// Always [`Phase::Etf`].
    pub phase: Phase,
}

impl InfoNceOptimum {
    /// The ETF and its loss.
    ///
    /// # Formula
    /// On the ETF every row of `S/tau` is `1/tau` on the diagonal and `-1/((N-1) tau)` elsewhere,
    /// so each cross-entropy term is `log(1 + (N-1) e^{-N/((N-1) tau)})`; rows and columns give
    /// twice that.
    ///
    /// # Errors
    /// `N < 2`, `tau <= 0` or non-finite.
    pub fn solve(n: usize, tau: f64) -> Result<Self> {
        check_batch(n)?;
        check_positive("tau", tau)?;
        let nm1 = (n - 1) as f64;
        let loss = 2.0 * softplus(nm1.ln() - n as f64 / (nm1 * tau));
        Ok(InfoNceOptimum {
            n,
            tau,
            c_star: 0.0,
            delta_star: 0.0,
            s_pos: 1.0,
            s_neg: -1.0 / nm1,
            loss,
            phase: Phase::Etf,
        })
    }
}

#[cfg(test)]
mod tests;
