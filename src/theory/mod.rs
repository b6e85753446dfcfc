//! The exact optimum of the sigmoid loss (SPEC.md §3) and of InfoNCE on the CCEM.
//!
//! For `d >= N` a minimiser of the sigmoid loss over all embeddings is a CCEM (Lee, Chang, Sohn
//! 2024), so the optimum is the minimiser `c*` of the one-variable convex function
//!
//! `l(c) = softplus(b - t + 2tc) + (N-1) softplus(-b - t/(N-1) - t c (N-2)/(N-1))`
//!
//! over `c in [0, 1]` ([`ccem_loss`]). Its derivative [`ccem_loss_derivative`] is monotone, so
//! the phase is read off its signs at the two ends and `c*` is its root, found by a safeguarded
//! Newton iteration (a bisection step whenever Newton would leave the bracket) to machine
//! precision (SPEC §3).
//!
//! [`Optimum`] is the optimum of either loss; [`predict`] is the theory's prediction for the
//! minimiser over all embeddings in `R^d`, the one that every measured result is compared with
//! (see [`crate::Report`]).
//!
//! # Precision at large `t` and `N` (SPEC §3.1)
//! At SigLIP-like values (`N = 32768`, `t = 117.8`, `b = 12.9`, illustrative: the checkpoint
//! google/siglip-base-patch16-224 has `exp(logit_scale) = 117.33`, `logit_bias = -12.93`) both
//! sigmoids of `l'` are
//! near `1e-17` and the loss near `1e-16`; at larger `t` they underflow to `0`, and `l' = 0 - 0`
//! would give a wrong phase. The sign of `l'` is therefore read from the log-ratio
//! [`ccem_log_derivative_ratio`]
//!
//! `g(c) = log 2 + log sigmoid(a) - log(N-2) - log sigmoid(beta)`,
//!
//! (`a`, `beta` the two arguments of [`ccem_loss`]), which has the sign of `l'`, is strictly
//! increasing with slope `g' = 2t sigmoid(-a) + t (N-2)/(N-1) sigmoid(-beta) > 0`, and involves
//! only log-sigmoids, exact in floating point for every finite argument. `c*` is the root of `g`
//! by a safeguarded Newton iteration (bisection whenever Newton would leave the bracket), run
//! until the bracket closes. With `g` evaluated to an absolute error of a few ulps of
//! `|a| + |beta| + log N`, the computed `c*` is within
//! `eps_c = 8 eps (|a| + |beta| + log N + 1) / g'(c*)` of the exact root (`eps = 2^-52`):
//! at SigLIP's values `|a| + |beta| ~ 84`, `g' ~ 3t`, so `eps_c ~ 4e-16` (tested against the
//! closed form of the exponential regime).

pub mod batch;
mod bias;
pub mod record;
pub mod zoo;
pub use batch::BatchOptimum;
pub use bias::BiasMode;

use crate::error::{check_batch, check_positive, Result};
use crate::loss::{Loss, LossKind};
use crate::numerics::{log_sigmoid, sigmoid, softplus};
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

/// The CCEM loss with every negative pair weighted by `w > 0` (SPEC §8, "Mini-batches"):
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
/// (SPEC §8); `w = 1` is [`ccem_loss_derivative`], bitwise.
#[inline]
pub fn ccem_loss_derivative_weighted(n: usize, t: f64, b: f64, w: f64, c: f64) -> f64 {
    let nm2 = (n as f64) - 2.0;
    2.0 * t * sigmoid(b - t + 2.0 * t * c) - w * t * nm2 * sigmoid(neg_arg(n, t, b, c))
}

/// `l_w''(c) = 4 t^2 sigmoid'(a) + w t^2 (N-2)^2/(N-1) sigmoid'(beta)` (SPEC §8); `>= 0` for
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

/// The exact optimum of a loss on the CCEM for `N` pairs (SPEC §3): for the sigmoid loss the
/// minimiser `c*` of [`ccem_loss`], for InfoNCE the simplex ETF (`c* = 0`).
///
/// For `d >= N` this is also the optimum over all embeddings of `N` pairs in `R^d` (see
/// [`predict`]). Serialised with the keys `n`, then `t` and `b` (sigmoid) or `tau` (InfoNCE),
/// `c_star`, `delta_star`, `s_pos`, `s_neg`, `loss`, `loss_clip` (InfoNCE only) and `phase`;
/// non-finite numbers become `null`.
///
/// # Example
/// ```
/// use ccem::{Loss, Optimum, Phase};
///
/// // The paper's setting t = b: N = 10 at t = 1 lies between the two phase boundaries.
/// let o = Optimum::sigmoid(10, 1.0, 1.0)?;
/// assert_eq!(o.phase, Phase::Intermediate);
/// assert!(o.c_star > 0.0 && o.c_star < 1.0);
/// assert!((o.s_pos - (1.0 - 2.0 * o.c_star)).abs() < 1e-15);
///
/// // InfoNCE: the simplex ETF at every temperature.
/// let e = Optimum::of(10, &Loss::infonce(0.5)?)?;
/// assert_eq!((e.phase, e.c_star, e.s_pos), (Phase::Etf, 0.0, 1.0));
/// assert_eq!(e.loss_clip(), Some(e.loss / 2.0));
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimum {
    /// Batch size.
    pub n: usize,
    /// The loss whose optimum this is, with its parameters.
    pub objective: Loss,
    /// The optimal `c* in [0, 1]`; `NaN` in the degenerate phase `t = 0`.
    pub c_star: f64,
    /// `delta* = sqrt(c*/(1-c*))`; `inf` when antipodal, `NaN` when degenerate.
    pub delta_star: f64,
    /// Optimal positive similarity `s_+* = 1 - 2c*`.
    pub s_pos: f64,
    /// Optimal negative similarity `s_-* = -(1-c*)/(N-1) - c*`.
    pub s_neg: f64,
    /// The minimal loss: `l(c*)` for the sigmoid loss, the InfoNCE loss of the ETF (ccem's
    /// convention, the sum of the two cross-entropies: see [`Optimum::loss_clip`]).
    pub loss: f64,
    /// The phase.
    pub phase: Phase,
}

impl Optimum {
    /// The optimum of `loss` for `n` pairs.
    ///
    /// # Errors
    /// `N < 2` ([`crate::Error::BatchTooSmall`]); a loss whose CCEM optimum is not its optimum
    /// over all embeddings (the spectral loss, SPEC §9.5: see [`zoo::optimum`] for its CCEM
    /// optimum).
    pub fn of(n: usize, loss: &Loss) -> Result<Self> {
        check_batch(n)?;
        Self::covered(n, loss).ok_or_else(|| {
            crate::error::Error::Config(format!(
                "the CCEM optimum of the {} loss is not its optimum over all embeddings (SPEC \
                 §9.5; its optimum on the CCEM is theory::zoo::optimum, `ccem theory --loss {}`)",
                loss.name(),
                loss.name()
            ))
        })
    }

    /// [`Optimum::of`] for `n >= 2` (not checked), or `None` for a loss whose CCEM optimum no
    /// theorem makes the optimum over all embeddings ([`zoo::ZooOptimum::global_optimum`]).
    /// Every loss goes through its CCEM theory ([`zoo::ZooLoss::from_loss`], [`zoo::optimum`]):
    /// the sigmoid loss and InfoNCE without within-view negatives get exactly §3's optimum.
    pub fn covered(n: usize, loss: &Loss) -> Option<Self> {
        Self::covered_batch(n, loss, None).ok().flatten()
    }

    /// [`Optimum::covered`] of the expected loss over mini-batches of `batch` (SPEC §8, §9.4).
    fn covered_batch(n: usize, loss: &Loss, batch: Option<usize>) -> Result<Option<Self>> {
        let o = zoo::optimum(&zoo::ZooLoss::from_loss(loss)?, n, batch)?;
        Ok(o.global_optimum.map(|_| Optimum {
            n,
            objective: *loss,
            c_star: o.c,
            delta_star: o.delta,
            s_pos: o.s_pos,
            s_neg: o.s_neg,
            loss: o.loss,
            phase: o.phase,
        }))
    }

    /// The exact optimum of the sigmoid loss with scale `t` and bias `b` (SPEC §3).
    ///
    /// # Errors
    /// `N < 2`, `t` negative, non-finite or above [`crate::error::MAX_MAGNITUDE`], `|b|`
    /// non-finite or above it.
    pub fn sigmoid(n: usize, t: f64, b: f64) -> Result<Self> {
        check_batch(n)?;
        crate::error::check_scale("t", t)?;
        crate::error::check_bias("b", b)?;
        Ok(Self::sigmoid_unchecked(n, t, b))
    }

    /// [`Optimum::sigmoid`] without the argument checks, for inner loops over validated grids.
    ///
    /// # Panics
    /// The arguments must satisfy `n >= 2`, finite `t >= 0` and finite `b`: otherwise the result
    /// is meaningless (and `n = 0` panics in debug builds on the `n - 1` underflow).
    pub fn sigmoid_unchecked(n: usize, t: f64, b: f64) -> Self {
        Self::sigmoid_weighted_unchecked(n, t, b, 1.0)
    }

    /// The optimum of the sigmoid loss whose negative pairs are weighted by `w` (SPEC §8): the
    /// expected mini-batch loss for `w = (B-1)/(N-1)` ([`Optimum::sigmoid_batch`] takes `B`
    /// instead). The fields are those of the weighted problem (`loss = l_w(c*)`); `w = 1` is
    /// [`Optimum::sigmoid`], bitwise.
    ///
    /// # Errors
    /// As [`Optimum::sigmoid`], and `w` not finite and `> 0`.
    pub fn sigmoid_weighted(n: usize, t: f64, b: f64, w: f64) -> Result<Self> {
        check_batch(n)?;
        crate::error::check_scale("t", t)?;
        crate::error::check_bias("b", b)?;
        check_positive("w", w)?;
        Ok(Self::sigmoid_weighted_unchecked(n, t, b, w))
    }

    /// The optimum of the expected sigmoid loss over uniformly drawn mini-batches of `batch` of
    /// the `n` pairs (SPEC §8): [`Optimum::sigmoid_weighted`] at `w = (B-1)/(N-1)`.
    /// `batch = n` is [`Optimum::sigmoid`], bitwise.
    ///
    /// ```
    /// use ccem::Optimum;
    /// let b4 = Optimum::sigmoid_batch(16, 4, 2.0, 1.0)?;
    /// assert!((b4.s_pos - 0.89).abs() < 0.01);
    /// assert_eq!(Optimum::sigmoid_batch(16, 16, 2.0, 1.0)?, Optimum::sigmoid(16, 2.0, 1.0)?);
    /// # Ok::<(), ccem::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`batch::negative_weight`] and [`Optimum::sigmoid`].
    pub fn sigmoid_batch(n: usize, batch: usize, t: f64, b: f64) -> Result<Self> {
        let w = batch::negative_weight(n, batch)?;
        Self::sigmoid_weighted(n, t, b, w)
    }

    /// [`Optimum::sigmoid_weighted`] without the argument checks.
    ///
    /// # Panics
    /// As [`Optimum::sigmoid_unchecked`]; `w` must be finite and positive.
    pub fn sigmoid_weighted_unchecked(n: usize, t: f64, b: f64, w: f64) -> Self {
        let objective = Loss::Sigmoid(crate::loss::Sigmoid { t, b, within: 0.0 });
        if t == 0.0 {
            let nm1 = (n - 1) as f64;
            return Optimum {
                n,
                objective,
                c_star: f64::NAN,
                delta_star: f64::NAN,
                s_pos: f64::NAN,
                s_neg: f64::NAN,
                loss: softplus(b) + w * nm1 * softplus(-b),
                phase: Phase::Degenerate,
            };
        }
        let (c, phase) = if ccem_log_derivative_ratio_weighted(n, t, b, w, 0.0) >= 0.0 {
            (0.0, Phase::Etf)
        } else if ccem_log_derivative_ratio_weighted(n, t, b, w, 1.0) <= 0.0 {
            (1.0, Phase::Antipodal)
        } else {
            (root_of_derivative(n, t, b, w), Phase::Intermediate)
        };
        Optimum {
            n,
            objective,
            c_star: c,
            delta_star: delta_of_c(c),
            s_pos: s_pos_of_c(c),
            s_neg: s_neg_of_c(n, c),
            loss: ccem_loss_weighted(n, t, b, w, c),
            phase,
        }
    }

    /// The InfoNCE optimum on the CCEM: the simplex ETF for every `tau > 0`, and its loss.
    ///
    /// # Formula
    /// On the ETF every row of `S/tau` is `1/tau` on the diagonal and `-1/((N-1) tau)` elsewhere,
    /// so each cross-entropy term is `log(1 + (N-1) e^{-N/((N-1) tau)})`; rows and columns give
    /// twice that: `loss = 2 softplus(log(N-1) - N/((N-1) tau))` (SPEC §3, in ccem's convention,
    /// the sum of the row and column cross-entropies).
    ///
    /// # Errors
    /// `N < 2`, `tau <= 0` or non-finite.
    pub fn infonce(n: usize, tau: f64) -> Result<Self> {
        check_batch(n)?;
        check_positive("tau", tau)?;
        Ok(Self::infonce_unchecked(n, tau))
    }

    pub(crate) fn infonce_unchecked(n: usize, tau: f64) -> Self {
        let nm1 = (n - 1) as f64;
        Optimum {
            n,
            objective: Loss::InfoNce(crate::loss::InfoNce { tau, within: 0.0 }),
            c_star: 0.0,
            delta_star: 0.0,
            s_pos: 1.0,
            s_neg: -1.0 / nm1,
            loss: 2.0 * softplus(nm1.ln() - n as f64 / (nm1 * tau)),
            phase: Phase::Etf,
        }
    }

    /// Which loss.
    pub fn kind(&self) -> LossKind {
        self.objective.kind()
    }

    /// For InfoNCE, the optimal loss in open_clip's `ClipLoss` convention (the mean of the two
    /// cross-entropies): `loss / 2`. `None` for the sigmoid loss.
    pub fn loss_clip(&self) -> Option<f64> {
        crate::loss::ContrastiveLoss::clip_value(&self.objective, self.loss)
    }
}

impl Serialize for Optimum {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("n", &self.n)?;
        for (name, value) in crate::loss::ContrastiveLoss::params(&self.objective) {
            m.serialize_entry(name, &value)?;
        }
        m.serialize_entry("c_star", &self.c_star)?;
        m.serialize_entry("delta_star", &self.delta_star)?;
        m.serialize_entry("s_pos", &self.s_pos)?;
        m.serialize_entry("s_neg", &self.s_neg)?;
        m.serialize_entry("loss", &self.loss)?;
        if let Some(l) = self.loss_clip() {
            m.serialize_entry("loss_clip", &l)?;
        }
        m.serialize_entry("phase", &self.phase)?;
        m.end()
    }
}

/// The theory's prediction for the minimiser of `loss` over all embeddings of `n` pairs on the
/// unit sphere of `R^d` (SPEC §3): the [`Optimum`] on the CCEM where the theory covers `d`, that
/// is `d >= N` for the sigmoid loss (Lee, Chang, Sohn 2024) and `d >= N - 1` for InfoNCE (the
/// simplex ETF); `None` otherwise (smaller `d`, or `N < 2`).
///
/// At `t = 0` the prediction is the degenerate phase: the loss does not depend on the embedding.
///
/// # Example
/// ```
/// use ccem::{predict, Loss};
///
/// let loss = Loss::sigmoid(1.0, 1.0)?;
/// assert!(predict(10, 10, &loss).is_some());
/// assert!(predict(10, 9, &loss).is_none()); // d < N: the theory makes no prediction
/// # Ok::<(), ccem::Error>(())
/// ```
pub fn predict(n: usize, d: usize, loss: &Loss) -> Option<Optimum> {
    let needed = zoo::needed_dimension(zoo::family_of(loss.kind()), n);
    if n >= 2 && d >= needed {
        Optimum::covered(n, loss)
    } else {
        None
    }
}

/// [`predict`] for training on mini-batches of `batch` of the `n` pairs: the optimum of the
/// expected mini-batch loss (SPEC §8), which for the sigmoid loss is the full-batch loss with
/// every negative pair weighted by `w = (B-1)/(N-1)` ([`Optimum::sigmoid_batch`]). `batch = n`
/// is [`predict`], bitwise. `Ok(None)` where [`predict`] makes no prediction (`d` too small).
///
/// ```
/// use ccem::{predict, predict_batch, Loss};
/// let loss = Loss::sigmoid(2.0, 1.0)?;
/// assert_eq!(predict_batch(16, 16, &loss, 16)?, predict(16, 16, &loss));
/// assert!(predict_batch(16, 16, &loss, 4)?.unwrap().s_pos > 0.85);
/// assert!(predict_batch(16, 16, &Loss::infonce(0.5)?, 4).is_err());
/// # Ok::<(), ccem::Error>(())
/// ```
///
/// # Errors
/// `batch` outside `2..=n`; InfoNCE with `batch < n` (it has no weighted equivalent).
pub fn predict_batch(n: usize, d: usize, loss: &Loss, batch: usize) -> Result<Option<Optimum>> {
    batch::check_mini_batch(n, batch)?;
    if batch == n {
        return Ok(predict(n, d, loss));
    }
    let optimum = Optimum::covered_batch(n, loss, Some(batch))?;
    Ok(optimum.filter(|_| d >= zoo::needed_dimension(zoo::family_of(loss.kind()), n)))
}

/// `g(c) = log 2 + log sigmoid(a) - log(N-2) - log sigmoid(beta)`, with
/// `a = b - t + 2tc` and `beta = -b - t/(N-1) - tc(N-2)/(N-1)` (SPEC §3.1): the log of the ratio
/// of the two terms of `l'(c)`, so it has the sign of `l'` (`+inf` for `N = 2`, where `l' > 0`),
/// and it stays exact where both terms underflow. [`ccem_log_derivative_ratio_weighted`] at
/// `w = 1`.
///
/// ```
/// use ccem::theory::{ccem_log_derivative_ratio, ccem_loss_derivative};
/// let (n, t, b, c) = (10, 2.0, 1.0, 0.3);
/// let g = ccem_log_derivative_ratio(n, t, b, c);
/// assert_eq!(g > 0.0, ccem_loss_derivative(n, t, b, c) > 0.0);
/// // Where both sigmoids of l' underflow, g still has the right sign.
/// assert_eq!(ccem_loss_derivative(32768, 2000.0, 1000.0, 0.0), 0.0);
/// assert!(ccem_log_derivative_ratio(32768, 2000.0, 1000.0, 0.0) < 0.0);
/// ```
#[inline]
pub fn ccem_log_derivative_ratio(n: usize, t: f64, b: f64, c: f64) -> f64 {
    ccem_log_derivative_ratio_weighted(n, t, b, 1.0, c)
}

/// [`ccem_log_derivative_ratio`] for the loss whose negative terms are weighted by `w > 0`
/// (SPEC §8, `l_w'`): `g_w(c) = log 2 + log sigmoid(a) - log(w (N-2)) - log sigmoid(beta)`, the
/// sign of `l_w'(c)`. `w = 1` is bitwise [`ccem_log_derivative_ratio`].
///
/// ```
/// use ccem::theory::{ccem_log_derivative_ratio_weighted, ccem_loss_derivative_weighted};
/// let (n, t, b, w, c) = (16, 2.0, 1.0, 0.2, 0.3);
/// let g = ccem_log_derivative_ratio_weighted(n, t, b, w, c);
/// assert_eq!(g > 0.0, ccem_loss_derivative_weighted(n, t, b, w, c) > 0.0);
/// ```
#[inline]
pub fn ccem_log_derivative_ratio_weighted(n: usize, t: f64, b: f64, w: f64, c: f64) -> f64 {
    let nm2 = (n as f64) - 2.0;
    std::f64::consts::LN_2 + log_sigmoid(b - t + 2.0 * t * c)
        - (w * nm2).ln()
        - log_sigmoid(neg_arg(n, t, b, c))
}

/// `g'(c) = 2t sigmoid(-a) + t (N-2)/(N-1) sigmoid(-beta) > 0` for [`ccem_log_derivative_ratio`]
/// (independent of the weight `w`).
#[inline]
fn ccem_log_derivative_ratio_slope(n: usize, t: f64, b: f64, c: f64) -> f64 {
    let nm1 = (n - 1) as f64;
    let nm2 = (n as f64) - 2.0;
    2.0 * t * sigmoid(-(b - t + 2.0 * t * c)) + t * nm2 / nm1 * sigmoid(-neg_arg(n, t, b, c))
}

/// Root of the increasing `g_w` ([`ccem_log_derivative_ratio_weighted`]) on `(0, 1)`, given
/// `g_w(0) < 0 < g_w(1)`: Newton steps kept inside the shrinking bracket, bisection otherwise;
/// stops when the bracket or the step is at machine precision (error bound in the module docs).
fn root_of_derivative(n: usize, t: f64, b: f64, w: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    let mut c = 0.5;
    for _ in 0..200 {
        let g = ccem_log_derivative_ratio_weighted(n, t, b, w, c);
        if g == 0.0 {
            return c;
        }
        if g < 0.0 {
            lo = c;
        } else {
            hi = c;
        }
        let h = ccem_log_derivative_ratio_slope(n, t, b, c);
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

/// The ETF threshold of `t = b` when every negative pair is weighted by `w` (SPEC §8): the
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

/// The antipodal threshold of `t = b` when every negative pair is weighted by `w` (SPEC §8):
/// the optimum is antipodal iff `t <= (1/2) log(w (N-2)/2)`. `None` when `w (N-2) <= 2`: there
/// is then no antipodal phase at `t = b > 0` (every `N` when `B <= 3`).
pub fn antipodal_threshold_tied_weighted(n: usize, w: f64) -> Option<f64> {
    let wn = w * (n as f64 - 2.0);
    (wn > 2.0).then(|| 0.5 * (wn / 2.0).ln())
}

#[cfg(test)]
mod tests;
