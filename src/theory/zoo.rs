//! The optimum of every loss of the zoo on the CCEM (SPEC.md §9, "The loss zoo on the CCEM").
//!
//! Lee, Lim, Lee and Sohn (*On the Similarities of Embeddings in Contrastive Learning*, ICML
//! 2025, arXiv:2506.09781) put the common contrastive losses in two families: InfoNCE-based
//! (a softmax over the positive and a set of negatives) and independently additive (`phi` of each
//! positive plus `psi` of each negative). On the CCEM (SPEC §2) every similarity is one of three
//! affine functions of `c in [0, 1]`,
//!
//! `s_+ = 1 - 2c`, `s_- = -(1-c)/(N-1) - c` (cross-view), `s_w = -(1-c)/(N-1) + c` (within-view),
//!
//! so each loss is a function `l(c)` of `c` alone, given here in closed form with its first two
//! derivatives ([`ZooLoss::value`], [`ZooLoss::derivative`], [`ZooLoss::second_derivative`]).
//! Each `l` is convex on `[0, 1]` (SPEC §9.2), so [`optimum`] reads the phase off the signs of
//! `l'` at the ends and finds `c*` as the root of the increasing `l'` by a safeguarded Newton
//! iteration (bisection whenever Newton would leave the bracket) to machine precision.
//!
//! | loss | family | `l(c)` on the CCEM (SPEC §9.1) |
//! |---|---|---|
//! | `simclr` | InfoNCE-based | `log(1 + (N-1) e^{x_-} + (N-1) e^{x_w})` |
//! | `dcl` | InfoNCE-based | `log((N-1) e^{x_-} + (N-1) e^{x_w})` |
//! | `dhel` | InfoNCE-based | `log(N-1) + x_w` |
//! | `infonce`, within-view `W` | InfoNCE-based | `2 log(1 + (N-1) e^{x_-} + W (N-1) e^{x_w})` |
//! | `spectral` | additive | `-2 s_+ + w s_-^2` |
//! | `sigmoid`, within-view `W` | additive | `softplus(b - t s_+) + w (N-1) [softplus(t s_- - b) + 2W softplus(t s_w - b)]` |
//!
//! with `x_- = (s_- - s_+)/tau = -(1-c) N/((N-1) tau)`,
//! `x_w = (s_w - s_+)/tau = (-N + c (3N-2))/((N-1) tau)` and `w` the mini-batch weight of the
//! negatives (`1` for the full batch).
//!
//! ```
//! use ccem::theory::zoo::{optimum, ZooLoss};
//! use ccem::theory::Phase;
//!
//! // SimCLR: the simplex ETF at every temperature, and a theorem covers every embedding.
//! let o = optimum(&ZooLoss::simclr(0.1)?, 16, None)?;
//! assert_eq!((o.phase, o.c, o.s_pos), (Phase::Etf, 0.0, 1.0));
//! assert!(o.global_optimum.is_some());
//!
//! // SigLIP at N = 16, t = b = 1 separates the negatives too far (c* > 0, Thm 5.3) ...
//! let sig = optimum(&ZooLoss::sigmoid(1.0, 1.0, 0.0)?, 16, None)?;
//! assert_eq!(sig.excess_separation, Some(true));
//! assert_eq!(sig.thm53_condition, Some(true));
//! // ... and within-view negatives past W = (N-2)/(2N) bring the ETF back (Lee et al.'s remedy).
//! let fixed = optimum(&ZooLoss::sigmoid(1.0, 1.0, 0.5)?, 16, None)?;
//! assert_eq!(fixed.phase, Phase::Etf);
//! # Ok::<(), ccem::Error>(())
//! ```

use super::{
    ccem_log_derivative_ratio_weighted, delta_of_c, s_neg_of_c, s_pos_of_c, s_within_of_c, Optimum,
    Phase,
};
use crate::error::{check_batch, Error, Result};
use crate::loss::{ContrastiveLoss, Loss, LossKind};
use crate::numerics::{log_sigmoid, sigmoid, softplus};
use serde::Serialize;

/// The two families of Lee et al. 2025 (their Definitions 3.1 and 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// A softmax over the positive and a set of negatives (Def. 3.1).
    InfoNceBased,
    /// `phi` of each positive similarity plus `psi` of each negative one (Def. 3.2).
    Additive,
}

/// A loss of the zoo with its parameters, valid by construction (SPEC §9).
///
/// Build it with [`ZooLoss::simclr`], [`ZooLoss::dcl`], [`ZooLoss::dhel`],
/// [`ZooLoss::spectral`], [`ZooLoss::sigmoid`], [`ZooLoss::infonce`] or, from a name and
/// optional parameters (a CLI or Python front end), [`ZooLoss::new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZooLoss(Kind);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    SimClr { tau: f64 },
    Dcl { tau: f64 },
    Dhel { tau: f64 },
    Spectral,
    Sigmoid { t: f64, b: f64, within_view: f64 },
    InfoNce { tau: f64, within_view: f64 },
}

/// The names [`ZooLoss::new`] accepts, in the order of SPEC §9.
pub const NAMES: [&str; 6] = ["simclr", "dcl", "dhel", "spectral", "sigmoid", "infonce"];

/// The family of a registered loss (Lee et al. 2025, Definitions 3.1 and 3.2): which CCEM
/// theory applies to it, with no loss's parameters needed.
pub fn family_of(kind: LossKind) -> Family {
    if kind.additive() {
        Family::Additive
    } else {
        Family::InfoNceBased
    }
}

/// The dimension `d` from which the CCEM optimum of a loss of `family` is its optimum over all
/// embeddings of `N` pairs (SPEC §9.5): `N - 1` for the InfoNCE-based losses (the simplex ETF
/// lives in `N - 1` dimensions), `N` for the additive ones (Lee, Chang, Sohn 2024).
pub fn needed_dimension(family: Family, n: usize) -> usize {
    match family {
        Family::InfoNceBased => n.saturating_sub(1),
        Family::Additive => n,
    }
}

/// The error for a mini-batch optimum asked of an InfoNCE-based loss (SPEC §9.4), naming it.
pub fn no_weighted_form(loss: &str) -> Error {
    Error::Config(format!(
        "the expected mini-batch loss has a closed form (negatives weighted by (B-1)/(N-1)) only \
         for the additive losses ({}); the {loss} loss is InfoNCE-based and has no weighted \
         equivalent: train it with batching shuffled, fixed, all or hardest",
        LossKind::ALL
            .iter()
            .filter(|k| k.additive())
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// A parameter error that names the loss and the parameter.
fn param_error(loss: &str, name: &str, value: f64, requirement: &str) -> Error {
    Error::Config(format!(
        "loss {loss}: invalid {name} = {value:?}: {requirement}"
    ))
}

fn check_tau(loss: &str, tau: f64) -> Result<f64> {
    if tau.is_finite() && tau > 0.0 {
        Ok(tau)
    } else {
        Err(param_error(loss, "tau", tau, "must be a finite number > 0"))
    }
}

fn check_within_view(loss: &str, w: f64) -> Result<f64> {
    if w.is_finite() && w >= 0.0 {
        Ok(w)
    } else {
        Err(param_error(
            loss,
            "within_view",
            w,
            "must be a finite number >= 0",
        ))
    }
}

impl ZooLoss {
    /// SimCLR's NT-Xent: `2N` anchors, each with its positive and all `2N - 2` other views as
    /// negatives in the denominator (with the positive), mean over anchors.
    ///
    /// # Errors
    /// `tau` not finite and `> 0` (the message names `simclr` and `tau`).
    pub fn simclr(tau: f64) -> Result<Self> {
        Ok(ZooLoss(Kind::SimClr {
            tau: check_tau("simclr", tau)?,
        }))
    }

    /// DCL (Yeh et al. 2022): SimCLR without the positive in the denominator.
    ///
    /// # Errors
    /// `tau` not finite and `> 0`.
    pub fn dcl(tau: f64) -> Result<Self> {
        Ok(ZooLoss(Kind::Dcl {
            tau: check_tau("dcl", tau)?,
        }))
    }

    /// DHEL (Koromilas et al. 2024): the denominator runs over the `N - 1` other views of the
    /// anchor's own modality.
    ///
    /// # Errors
    /// `tau` not finite and `> 0`.
    pub fn dhel(tau: f64) -> Result<Self> {
        Ok(ZooLoss(Kind::Dhel {
            tau: check_tau("dhel", tau)?,
        }))
    }

    /// The spectral contrastive loss (HaoChen et al. 2021):
    /// `-(2/N) sum_i S_ii + (1/(N(N-1))) sum_{i != j} S_ij^2`.
    pub fn spectral() -> Self {
        ZooLoss(Kind::Spectral)
    }

    /// The sigmoid loss (SPEC §1, paper sums) plus
    /// `(W/N) sum_{i != j} [softplus(t u_i.u_j - b) + softplus(t v_i.v_j - b)]`.
    ///
    /// # Errors
    /// `t` negative, non-finite or above [`crate::error::MAX_MAGNITUDE`]; `|b|` non-finite or
    /// above it; `W` negative or non-finite.
    pub fn sigmoid(t: f64, b: f64, within_view: f64) -> Result<Self> {
        let bad = |name: &str, v: f64, req: &str| param_error("sigmoid", name, v, req);
        if !(t.is_finite() && (0.0..=crate::error::MAX_MAGNITUDE).contains(&t)) {
            return Err(bad("t", t, "must be a finite number in [0, 1e250]"));
        }
        if !(b.is_finite() && b.abs() <= crate::error::MAX_MAGNITUDE) {
            return Err(bad("b", b, "must be a finite number in [-1e250, 1e250]"));
        }
        Ok(ZooLoss(Kind::Sigmoid {
            t,
            b,
            within_view: check_within_view("sigmoid", within_view)?,
        }))
    }

    /// CLIP's symmetric InfoNCE (ccem's convention: the sum of the row and column
    /// cross-entropies), where row `i`'s denominator gains `W sum_{k != i} e^{u_i.u_k/tau}` and
    /// column `j`'s gains `W sum_{k != j} e^{v_j.v_k/tau}`.
    ///
    /// # Errors
    /// `tau` not finite and `> 0`; `W` negative or non-finite.
    pub fn infonce(tau: f64, within_view: f64) -> Result<Self> {
        Ok(ZooLoss(Kind::InfoNce {
            tau: check_tau("infonce", tau)?,
            within_view: check_within_view("infonce", within_view)?,
        }))
    }

    /// A loss from its name (one of [`NAMES`]) and the parameters given: `tau` for `simclr`,
    /// `dcl`, `dhel` and `infonce`; `t` and `b` for `sigmoid` (`b` defaults to `t`, the paper's
    /// setting); `within_view` (default `0`) for `sigmoid` and `infonce` only.
    ///
    /// ```
    /// use ccem::theory::zoo::ZooLoss;
    /// assert_eq!(ZooLoss::new("dcl", Some(0.5), None, None, None)?, ZooLoss::dcl(0.5)?);
    /// let e = ZooLoss::new("simclr", Some(0.5), None, None, Some(1.0)).unwrap_err();
    /// assert!(e.to_string().contains("simclr") && e.to_string().contains("within_view"));
    /// assert!(ZooLoss::new("dhel", Some(-1.0), None, None, None).unwrap_err().to_string().contains("tau"));
    /// assert!(ZooLoss::new("nope", None, None, None, None).is_err());
    /// # Ok::<(), ccem::Error>(())
    /// ```
    ///
    /// # Errors
    /// An unknown name, a missing or invalid parameter, or a parameter the loss does not take
    /// (each message names the loss and the parameter).
    pub fn new(
        name: &str,
        tau: Option<f64>,
        t: Option<f64>,
        b: Option<f64>,
        within_view: Option<f64>,
    ) -> Result<Self> {
        if !NAMES.contains(&name) {
            return Err(Error::Config(format!(
                "unknown loss '{name}': expected one of {}",
                NAMES.join(", ")
            )));
        }
        let refuse = |param: &str| {
            Err(Error::Config(format!(
                "loss {name} does not take the parameter {param}"
            )))
        };
        let need = |param: &str| Error::Config(format!("loss {name} needs the parameter {param}"));
        let takes_tau = !matches!(name, "sigmoid" | "spectral");
        if !takes_tau && tau.is_some() {
            return refuse("tau");
        }
        if name != "sigmoid" && (t.is_some() || b.is_some()) {
            return refuse(if t.is_some() { "t" } else { "b" });
        }
        if !matches!(name, "sigmoid" | "infonce") && within_view.is_some() {
            return refuse("within_view");
        }
        let w = within_view.unwrap_or(0.0);
        match name {
            "simclr" => Self::simclr(tau.ok_or_else(|| need("tau"))?),
            "dcl" => Self::dcl(tau.ok_or_else(|| need("tau"))?),
            "dhel" => Self::dhel(tau.ok_or_else(|| need("tau"))?),
            "spectral" => Ok(Self::spectral()),
            "infonce" => Self::infonce(tau.ok_or_else(|| need("tau"))?, w),
            _ => {
                let t = t.ok_or_else(|| need("t"))?;
                Self::sigmoid(t, b.unwrap_or(t), w)
            }
        }
    }

    /// A loss from its name and `(key, value)` parameters, the form `ccem::Loss::params`
    /// lists them in: keys `tau`, `t`, `b`, `relative_bias` (`b = relative_bias * t`) and
    /// `within_view`; then as [`ZooLoss::new`].
    ///
    /// ```
    /// use ccem::theory::zoo::ZooLoss;
    /// let l = ZooLoss::from_params("sigmoid", &[("t", 2.0), ("relative_bias", 0.5), ("within_view", 1.0)])?;
    /// assert_eq!(l, ZooLoss::sigmoid(2.0, 1.0, 1.0)?);
    /// assert!(ZooLoss::from_params("simclr", &[("tau", 0.1), ("q", 1.0)]).is_err());
    /// # Ok::<(), ccem::Error>(())
    /// ```
    ///
    /// # Errors
    /// An unknown key, both `b` and `relative_bias`, and the errors of [`ZooLoss::new`].
    pub fn from_params(name: &str, params: &[(&str, f64)]) -> Result<Self> {
        let (mut tau, mut t, mut b, mut rel, mut within) = (None, None, None, None, None);
        for &(key, value) in params {
            let slot = match key {
                "tau" => &mut tau,
                "t" => &mut t,
                "b" => &mut b,
                "relative_bias" => &mut rel,
                "within_view" => &mut within,
                _ => {
                    return Err(Error::Config(format!(
                        "loss {name}: unknown parameter {key}"
                    )))
                }
            };
            *slot = Some(value);
        }
        if let Some(r) = rel {
            if b.is_some() {
                return Err(Error::Config(format!(
                    "loss {name}: give b or relative_bias, not both"
                )));
            }
            b = Some(r * t.unwrap_or(f64::NAN));
        }
        Self::new(name, tau, t, b, within)
    }

    /// The CCEM function of a registered loss with its parameters: the one place a registry
    /// loss is mapped to its theory (through its name and [`ContrastiveLoss::params`], so no
    /// loss kind is matched here).
    ///
    /// ```
    /// use ccem::theory::zoo::ZooLoss;
    /// use ccem::Loss;
    /// assert_eq!(ZooLoss::from_loss(&Loss::infonce(0.5)?)?, ZooLoss::infonce(0.5, 0.0)?);
    /// assert_eq!(ZooLoss::from_loss(&Loss::sigmoid(2.0, 1.0)?)?, ZooLoss::sigmoid(2.0, 1.0, 0.0)?);
    /// # Ok::<(), ccem::Error>(())
    /// ```
    ///
    /// # Errors
    /// A loss the zoo does not know (none today: every registered loss has its CCEM theory).
    pub fn from_loss(loss: &Loss) -> Result<Self> {
        Self::from_params(loss.name(), &loss.params())
    }

    /// The loss's name (one of [`NAMES`]).
    pub fn name(&self) -> &'static str {
        match self.0 {
            Kind::SimClr { .. } => "simclr",
            Kind::Dcl { .. } => "dcl",
            Kind::Dhel { .. } => "dhel",
            Kind::Spectral => "spectral",
            Kind::Sigmoid { .. } => "sigmoid",
            Kind::InfoNce { .. } => "infonce",
        }
    }

    /// Its family (Lee et al. 2025, Definitions 3.1 and 3.2).
    pub fn family(&self) -> Family {
        // Every name of the zoo is a registered loss ([`NAMES`]), so the parse never fails.
        self.name()
            .parse::<LossKind>()
            .map_or(Family::InfoNceBased, family_of)
    }

    /// Its parameters as `(name, value)` pairs, in output order (`tau`; or `t`, `b`).
    pub fn params(&self) -> Vec<(&'static str, f64)> {
        match self.0 {
            Kind::SimClr { tau }
            | Kind::Dcl { tau }
            | Kind::Dhel { tau }
            | Kind::InfoNce { tau, .. } => vec![("tau", tau)],
            Kind::Spectral => vec![],
            Kind::Sigmoid { t, b, .. } => vec![("t", t), ("b", b)],
        }
    }

    /// The within-view weight `W` for `sigmoid` and `infonce`; `None` for the others (whose
    /// within-view negatives, if any, are fixed by their definition).
    pub fn within_view(&self) -> Option<f64> {
        match self.0 {
            Kind::Sigmoid { within_view, .. } | Kind::InfoNce { within_view, .. } => {
                Some(within_view)
            }
            _ => None,
        }
    }

    /// The weight `w` of every negative term in the expected loss over uniformly drawn
    /// mini-batches of `batch` of the `n` pairs (SPEC §9.4): `(B-1)/(N-1)` for the sigmoid loss
    /// (paper sums over pairs, as SPEC §8), `1` for the spectral loss (a mean over pairs: every
    /// batch size gives the full-batch expectation).
    ///
    /// # Errors
    /// `B` outside `2..=N`; an InfoNCE-based loss (the log of a sum over the batch does not split
    /// over pairs: no weighted equivalent), the message naming the loss.
    pub fn batch_weight(&self, n: usize, batch: usize) -> Result<f64> {
        super::batch::check_mini_batch(n, batch)?;
        match self.0 {
            Kind::Sigmoid { .. } => super::batch::negative_weight(n, batch),
            Kind::Spectral => Ok(1.0),
            _ => Err(no_weighted_form(self.name())),
        }
    }

    /// `l(c)`, the loss of the CCEM with parameter `c` and `N = n` pairs (SPEC §9.1).
    ///
    /// # Panics
    /// May panic or return meaningless values for `n < 2`.
    pub fn value(&self, n: usize, c: f64) -> f64 {
        self.value_weighted(n, 1.0, c)
    }

    /// `l'(c)` (SPEC §9.1).
    pub fn derivative(&self, n: usize, c: f64) -> f64 {
        self.derivative_weighted(n, 1.0, c)
    }

    /// `l''(c) >= 0` (SPEC §9.2: convexity).
    pub fn second_derivative(&self, n: usize, c: f64) -> f64 {
        self.second_derivative_weighted(n, 1.0, c)
    }

    /// `l_w(c)`: the additive losses with every negative term weighted by `w` (SPEC §9.4); the
    /// InfoNCE-based losses ignore `w` (they have no weighted form).
    pub fn value_weighted(&self, n: usize, w: f64, c: f64) -> f64 {
        match self.0 {
            Kind::Spectral => {
                let sn = s_neg_of_c(n, c);
                -2.0 * s_pos_of_c(c) + w * sn * sn
            }
            Kind::Sigmoid { t, b, within_view } => {
                let nm1 = (n - 1) as f64;
                let (a, beta, gamma) = sigmoid_args(n, t, b, c);
                let within = if within_view > 0.0 {
                    2.0 * within_view * softplus(gamma)
                } else {
                    0.0
                };
                softplus(a) + w * nm1 * (softplus(beta) + within)
            }
            _ => {
                let (k, terms) = self.softmax_terms(n);
                k * lse(&terms, c)
            }
        }
    }

    /// `l_w'(c)` (SPEC §9.1, §9.4).
    pub fn derivative_weighted(&self, n: usize, w: f64, c: f64) -> f64 {
        let nm1 = (n - 1) as f64;
        let nm2 = n as f64 - 2.0;
        match self.0 {
            Kind::Spectral => 4.0 - 2.0 * w * s_neg_of_c(n, c) * nm2 / nm1,
            Kind::Sigmoid { t, b, within_view } => {
                let (a, beta, gamma) = sigmoid_args(n, t, b, c);
                2.0 * t * sigmoid(a) - w * t * nm2 * sigmoid(beta)
                    + w * 2.0 * within_view * t * n as f64 * sigmoid(gamma)
            }
            _ => {
                let (k, terms) = self.softmax_terms(n);
                let (mean, _) = softmax_slope_moments(&terms, c);
                k * mean
            }
        }
    }

    /// `l_w''(c) >= 0` (SPEC §9.2).
    pub fn second_derivative_weighted(&self, n: usize, w: f64, c: f64) -> f64 {
        let nm1 = (n - 1) as f64;
        let nm2 = n as f64 - 2.0;
        let nf = n as f64;
        let ds = |x: f64| {
            let s = sigmoid(x);
            s * (1.0 - s)
        };
        match self.0 {
            Kind::Spectral => 2.0 * w * nm2 * nm2 / (nm1 * nm1),
            Kind::Sigmoid { t, b, within_view } => {
                let (a, beta, gamma) = sigmoid_args(n, t, b, c);
                4.0 * t * t * ds(a)
                    + w * t * t * nm2 * nm2 / nm1 * ds(beta)
                    + w * 2.0 * within_view * t * t * nf * nf / nm1 * ds(gamma)
            }
            _ => {
                let (k, terms) = self.softmax_terms(n);
                let (_, var) = softmax_slope_moments(&terms, c);
                k * var
            }
        }
    }

    /// For an InfoNCE-based loss, `l(c) = k log sum_m n_m e^{x_m(c)}` with affine
    /// `x_m(c) = x0_m + x1_m c`: returns `k` and the terms `(log n_m, x0_m, x1_m)` (SPEC §9.1).
    /// Terms with `n_m = 0` are left out.
    fn softmax_terms(&self, n: usize) -> (f64, Vec<Term>) {
        let nm1 = (n - 1) as f64;
        let nf = n as f64;
        let (tau, k, pos, neg, within) = match self.0 {
            Kind::SimClr { tau } => (tau, 1.0, true, 1.0, 1.0),
            Kind::Dcl { tau } => (tau, 1.0, false, 1.0, 1.0),
            Kind::Dhel { tau } => (tau, 1.0, false, 0.0, 1.0),
            Kind::InfoNce { tau, within_view } => (tau, 2.0, true, 1.0, within_view),
            Kind::Spectral | Kind::Sigmoid { .. } => unreachable!("additive loss"),
        };
        let mut terms = Vec::with_capacity(3);
        if pos {
            terms.push(Term {
                log_count: 0.0,
                x0: 0.0,
                x1: 0.0,
            });
        }
        // x_- = (s_- - s_+)/tau = -(1-c) N/((N-1) tau).
        if neg > 0.0 {
            terms.push(Term {
                log_count: (neg * nm1).ln(),
                x0: -nf / (nm1 * tau),
                x1: nf / (nm1 * tau),
            });
        }
        // x_w = (s_w - s_+)/tau = (-N + c (3N-2))/((N-1) tau).
        if within > 0.0 {
            terms.push(Term {
                log_count: (within * nm1).ln(),
                x0: -nf / (nm1 * tau),
                x1: (3.0 * nf - 2.0) / (nm1 * tau),
            });
        }
        (k, terms)
    }
}

impl std::fmt::Display for ZooLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())?;
        for (name, v) in self.params() {
            write!(f, " {name}={v}")?;
        }
        if let Some(w) = self.within_view() {
            write!(f, " within_view={w}")?;
        }
        Ok(())
    }
}

/// One exponential term `n_m e^{x0 + x1 c}` of an InfoNCE-based loss on the CCEM.
#[derive(Clone, Copy, Debug)]
struct Term {
    log_count: f64,
    x0: f64,
    x1: f64,
}

impl Term {
    #[inline]
    fn exponent(&self, c: f64) -> f64 {
        self.log_count + self.x0 + self.x1 * c
    }
}

/// `log sum_m e^{exponent_m(c)}`, shifted by the largest exponent, with `log1p` of the rest so
/// that a value near `0` (the positive term dominating) keeps its relative precision.
fn lse(terms: &[Term], c: f64) -> f64 {
    let xs: Vec<f64> = terms.iter().map(|t| t.exponent(c)).collect();
    let (imax, m) = xs
        .iter()
        .copied()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |acc, (i, x)| {
                if x > acc.1 {
                    (i, x)
                } else {
                    acc
                }
            },
        );
    let rest: f64 = xs
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != imax)
        .map(|(_, &x)| (x - m).exp())
        .sum();
    m + rest.ln_1p()
}

/// The mean and variance of the slopes `x1_m` under the softmax weights `p_m(c)`:
/// `l' = k * mean`, `l'' = k * variance` (the variance as a sum of squares, so `>= 0` exactly).
fn softmax_slope_moments(terms: &[Term], c: f64) -> (f64, f64) {
    let l = lse(terms, c);
    let p: Vec<f64> = terms.iter().map(|t| (t.exponent(c) - l).exp()).collect();
    let total: f64 = p.iter().sum();
    let mean = terms.iter().zip(&p).map(|(t, p)| p * t.x1).sum::<f64>() / total;
    let var = terms
        .iter()
        .zip(&p)
        .map(|(t, p)| p * (t.x1 - mean) * (t.x1 - mean))
        .sum::<f64>()
        / total;
    (mean, var)
}

/// The three softplus arguments of the sigmoid loss on the CCEM: `a = b - t s_+`,
/// `beta = t s_- - b`, `gamma = t s_w - b` (SPEC §9.1), written as affine functions of `c`.
#[inline]
fn sigmoid_args(n: usize, t: f64, b: f64, c: f64) -> (f64, f64, f64) {
    let nm1 = (n - 1) as f64;
    let nm2 = n as f64 - 2.0;
    let a = b - t + 2.0 * t * c;
    let beta = -b - t / nm1 - t * c * nm2 / nm1;
    let gamma = -b - t / nm1 + t * c * n as f64 / nm1;
    (a, beta, gamma)
}

/// `log(e^x + e^y)`, exact for infinite arguments.
#[inline]
fn log_add_exp(x: f64, y: f64) -> f64 {
    let m = x.max(y);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + (-(x - y).abs()).exp().ln_1p()
}

/// The sign function of the sigmoid loss's `l_w'` with within-view weight `W` (SPEC §9.3):
/// `g(c) = log(2 sigmoid(a) + 2 w W N sigmoid(gamma)) - log(w (N-2)) - log sigmoid(beta)`,
/// strictly increasing, with the sign of `l_w'`, and its slope `g'(c) > 0`.
fn sigmoid_log_ratio(n: usize, t: f64, b: f64, within: f64, w: f64, c: f64) -> (f64, f64) {
    let nm1 = (n - 1) as f64;
    let nm2 = n as f64 - 2.0;
    let nf = n as f64;
    let (a, beta, gamma) = sigmoid_args(n, t, b, c);
    let la = std::f64::consts::LN_2 + log_sigmoid(a);
    let lg = (2.0 * w * within * nf).ln() + log_sigmoid(gamma);
    let lp = log_add_exp(la, lg);
    let g = lp - (w * nm2).ln() - log_sigmoid(beta);
    // P'/P: the average of the log-slopes of the two terms of P, weighted by their shares.
    let (pa, pg) = ((la - lp).exp(), (lg - lp).exp());
    let slope = pa * 2.0 * t * sigmoid(-a)
        + pg * t * nf / nm1 * sigmoid(-gamma)
        + t * nm2 / nm1 * sigmoid(-beta);
    (g, slope)
}

/// The root in `(0, 1)` of an increasing function `f` with `f(0) < 0 < f(1)`, given `f` and its
/// slope: Newton steps kept inside the shrinking bracket, bisection otherwise, until the bracket
/// or the step is at machine precision.
fn root_increasing(f: impl Fn(f64) -> (f64, f64)) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    let mut c = 0.5;
    for _ in 0..200 {
        let (g, h) = f(c);
        if g == 0.0 {
            return c;
        }
        if g < 0.0 {
            lo = c;
        } else {
            hi = c;
        }
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

/// The minimiser `c*` of the convex `l_w` on `[0, 1]` and its phase (SPEC §9.3), from the sign
/// of the derivative at the ends and its root in between.
fn minimise(loss: &ZooLoss, n: usize, w: f64) -> (f64, Phase) {
    let sign: Box<dyn Fn(f64) -> (f64, f64)> = match loss.0 {
        Kind::Sigmoid { t, b, within_view } => {
            Box::new(move |c| sigmoid_log_ratio(n, t, b, within_view, w, c))
        }
        _ => Box::new(|c| {
            (
                loss.derivative_weighted(n, w, c),
                loss.second_derivative_weighted(n, w, c),
            )
        }),
    };
    if sign(0.0).0 >= 0.0 {
        (0.0, Phase::Etf)
    } else if sign(1.0).0 <= 0.0 {
        (1.0, Phase::Antipodal)
    } else {
        (root_increasing(sign), Phase::Intermediate)
    }
}

/// Citations for [`ZooOptimum::global_optimum`]: which result says the CCEM optimum is the
/// optimum over all unit embeddings of `N` pairs in `R^d`, `d >= N` (SPEC §9.5).
pub mod citations {
    /// The sigmoid loss without within-view terms (and its mini-batch expectation, SPEC §8).
    pub const SIGMOID: &str = "Lee, Chang, Sohn 2024 (arXiv:2402.12613), CCEM optimality of the \
        sigmoid loss for d >= N; hypotheses checked in SPEC §9.5 (phi convex non-increasing, psi \
        convex non-decreasing)";
    /// The sigmoid loss with within-view terms (`W > 0`).
    pub const SIGMOID_WITHIN: &str = "SPEC §9.5 (the Jensen reduction of Lee, Chang, Sohn 2024 \
        extended to within-view negatives: phi convex non-increasing, both psi convex \
        non-decreasing, W >= 0), for d >= N";
    /// The InfoNCE-based losses: the simplex ETF.
    pub const INFONCE_BASED: &str = "Lee, Lim, Lee, Sohn 2025 (arXiv:2506.09781) Thm 5.1: the \
        simplex ETF with u_i = v_i is optimal; re-derived in SPEC §9.5 (each anchor's term convex \
        and non-decreasing in every s_neg - s_pos), for d >= N";
}

/// The optimum of a loss of the zoo on the CCEM for `N` pairs (SPEC §9), with the quantities of
/// Lee et al. 2025 at it.
///
/// Serialised with the keys `objective` (the loss's name), its parameters (`tau`; or `t`, `b`),
/// `within_view`, `n`, `batch`, `w`, `c`, `delta`, `s_pos`, `s_neg`, `s_within`, `loss`,
/// `loss_clip` (infonce only), `phase`, `alignment_slack`, `excess_separation`,
/// `thm53_condition`, `global_optimum` and `off_ccem_loss`; absent values are `null`.
#[derive(Clone, Debug, PartialEq)]
pub struct ZooOptimum {
    /// The loss.
    pub objective: ZooLoss,
    /// Number of pairs `N`.
    pub n: usize,
    /// The mini-batch size `B`, when the optimum is that of the expected mini-batch loss.
    pub batch: Option<usize>,
    /// The weight of the negative terms in the expected mini-batch loss (SPEC §9.4), with `batch`.
    pub w: Option<f64>,
    /// The minimiser `c* in [0, 1]` of `l` on the CCEM; `NaN` in the degenerate phase.
    pub c: f64,
    /// `delta* = sqrt(c*/(1-c*))` (`inf` when antipodal).
    pub delta: f64,
    /// `s_+* = 1 - 2c*`.
    pub s_pos: f64,
    /// `s_-* = -(1-c*)/(N-1) - c*`.
    pub s_neg: f64,
    /// The within-view similarity `u_i.u_j = v_i.v_j = -(1-c*)/(N-1) + c*`.
    pub s_within: f64,
    /// The minimal loss `l_w(c*)` (for `infonce`, ccem's convention: the sum of the row and
    /// column cross-entropies).
    pub loss: f64,
    /// The phase: `etf` (`c* = 0`), `intermediate`, `antipodal` (`c* = 1`), or `degenerate`
    /// (sigmoid with `t = 0`: the loss does not depend on the embedding).
    pub phase: Phase,
    /// Thm 5.2's slack `1 + s_- + 1/(N-1) - s_+`, which is `N c*/(N-1)` on the CCEM (SPEC §9.6).
    pub alignment_slack: f64,
    /// Additive losses: whether the optimum separates the negatives beyond the ETF
    /// (`c* > 0`, so `s_-* < -1/(N-1)` and `s_+* < 1`); `None` for the InfoNCE-based losses.
    pub excess_separation: Option<bool>,
    /// Additive losses with cross-view negatives only (Thm 5.3's hypothesis): its condition
    /// `-phi'(1) < ((N-2)/(2(N-1))) psi'(-1/(N-1))` (SPEC §9.6); `None` otherwise.
    pub thm53_condition: Option<bool>,
    /// The result that makes this CCEM optimum the optimum over all embeddings for `d >= N`,
    /// when one applies (see [`citations`]); `None` when only the CCEM family is covered.
    pub global_optimum: Option<&'static str>,
    /// A lower loss than `loss`, attained off the CCEM for `d >= N`, where one is known
    /// (spectral: `-2`, by orthonormal rows with `u_i = v_i`; SPEC §9.5).
    pub off_ccem_loss: Option<f64>,
}

impl ZooOptimum {
    /// For `infonce`, the minimal loss in open_clip's `ClipLoss` convention (`loss / 2`).
    pub fn loss_clip(&self) -> Option<f64> {
        matches!(self.objective.0, Kind::InfoNce { .. }).then_some(self.loss / 2.0)
    }
}

impl Serialize for ZooOptimum {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fin = |x: f64| x.is_finite().then_some(x);
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("objective", self.objective.name())?;
        for (name, value) in self.objective.params() {
            m.serialize_entry(name, &value)?;
        }
        m.serialize_entry("within_view", &self.objective.within_view())?;
        m.serialize_entry("n", &self.n)?;
        m.serialize_entry("batch", &self.batch)?;
        m.serialize_entry("w", &self.w)?;
        m.serialize_entry("c", &fin(self.c))?;
        m.serialize_entry("delta", &fin(self.delta))?;
        m.serialize_entry("s_pos", &fin(self.s_pos))?;
        m.serialize_entry("s_neg", &fin(self.s_neg))?;
        m.serialize_entry("s_within", &fin(self.s_within))?;
        m.serialize_entry("loss", &fin(self.loss))?;
        if let Some(l) = self.loss_clip() {
            m.serialize_entry("loss_clip", &fin(l))?;
        }
        m.serialize_entry("phase", &self.phase)?;
        m.serialize_entry("alignment_slack", &fin(self.alignment_slack))?;
        m.serialize_entry("excess_separation", &self.excess_separation)?;
        m.serialize_entry("thm53_condition", &self.thm53_condition)?;
        m.serialize_entry("global_optimum", &self.global_optimum)?;
        m.serialize_entry("off_ccem_loss", &self.off_ccem_loss)?;
        m.end()
    }
}

/// The exact optimum of `loss` on the CCEM of `n` pairs (SPEC §9.3); with `batch = Some(B)`, the
/// optimum of the expected loss over uniformly drawn mini-batches of `B` pairs (additive losses
/// only, SPEC §9.4; `B = N` is the full batch, bitwise).
///
/// For the sigmoid loss without within-view terms this is [`Optimum::sigmoid_weighted`]
/// (bitwise the same `c*`, phase and loss).
///
/// # Errors
/// `N < 2`; `B` outside `2..=N`; a batch for an InfoNCE-based loss.
pub fn optimum(loss: &ZooLoss, n: usize, batch: Option<usize>) -> Result<ZooOptimum> {
    check_batch(n)?;
    let w = match batch {
        Some(bs) => Some(loss.batch_weight(n, bs)?),
        None => None,
    };
    let wv = w.unwrap_or(1.0);
    let nm1 = (n - 1) as f64;
    let (c, phase, value) = match loss.0 {
        Kind::Sigmoid { t: 0.0, .. } => {
            (f64::NAN, Phase::Degenerate, loss.value_weighted(n, wv, 0.0))
        }
        Kind::Sigmoid {
            t,
            b,
            within_view: 0.0,
        } => {
            let o = Optimum::sigmoid_weighted_unchecked(n, t, b, wv);
            (o.c_star, o.phase, o.loss)
        }
        // CLIP's InfoNCE: the simplex ETF, its loss in the closed form of SPEC §3 (so the
        // records of `ccem theory --loss infonce` stay bitwise those of [`Optimum::infonce`]).
        Kind::InfoNce {
            tau,
            within_view: 0.0,
        } => {
            let o = Optimum::infonce_unchecked(n, tau);
            (o.c_star, o.phase, o.loss)
        }
        _ => {
            let (c, phase) = minimise(loss, n, wv);
            (c, phase, loss.value_weighted(n, wv, c))
        }
    };
    let additive = loss.family() == Family::Additive;
    let excess_separation = additive.then_some(c > 0.0);
    let thm53_condition = match loss.0 {
        // -phi'(1) = t sigmoid(b - t), psi'(x) = w (N-1) t sigmoid(t x - b) (mean convention):
        // the condition is g(0) < 0 for the log-ratio g of SPEC §3.1.
        Kind::Sigmoid { t, b, within_view } if within_view == 0.0 && t > 0.0 => {
            Some(ccem_log_derivative_ratio_weighted(n, t, b, wv, 0.0) < 0.0)
        }
        Kind::Sigmoid {
            within_view: 0.0, ..
        } => Some(false),
        // -phi'(1) = 2, psi'(x) = 2 w x: the right side is negative.
        Kind::Spectral => Some(2.0 < (n as f64 - 2.0) / (2.0 * nm1) * (-2.0 * wv / nm1)),
        _ => None,
    };
    let global_optimum = match loss.0 {
        Kind::Sigmoid {
            within_view: 0.0, ..
        } => Some(citations::SIGMOID),
        Kind::Sigmoid { .. } => Some(citations::SIGMOID_WITHIN),
        Kind::Spectral => None,
        _ => Some(citations::INFONCE_BASED),
    };
    let off_ccem_loss = matches!(loss.0, Kind::Spectral).then_some(-2.0);
    let degenerate = phase == Phase::Degenerate;
    let nan_if = |x: f64| if degenerate { f64::NAN } else { x };
    Ok(ZooOptimum {
        objective: *loss,
        n,
        batch,
        w,
        c,
        delta: nan_if(delta_of_c(c)),
        s_pos: nan_if(s_pos_of_c(c)),
        s_neg: nan_if(s_neg_of_c(n, c)),
        s_within: nan_if(s_within_of_c(n, c)),
        loss: value,
        phase,
        alignment_slack: nan_if(n as f64 * c / nm1),
        excess_separation: if degenerate { None } else { excess_separation },
        thm53_condition,
        global_optimum,
        off_ccem_loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_is_the_losss_own_statement() {
        // Lee et al. 2025, Definitions 3.1 and 3.2: the sigmoid and spectral losses are additive.
        for &kind in LossKind::ALL {
            let expected = if ["sigmoid", "spectral"].contains(&kind.as_str()) {
                Family::Additive
            } else {
                Family::InfoNceBased
            };
            assert_eq!(family_of(kind), expected, "{kind}");
        }
        assert!(no_weighted_form("dcl")
            .to_string()
            .contains("additive losses (sigmoid, spectral)"));
    }

    /// The general sigmoid path (the log-ratio with a within-view term) at `W = 0` agrees with
    /// §3's solver, which `optimum` returns there.
    #[test]
    fn general_sigmoid_path_at_w0_is_todays_solver() {
        for n in [2usize, 3, 4, 10, 16, 100, 32768] {
            for (t, b) in [
                (1.0, 1.0),
                (2.0, 2.0),
                (0.5, 0.5),
                (3.0, 1.0),
                (117.8, 12.9),
            ] {
                for w in [1.0, 0.25] {
                    let loss = ZooLoss::sigmoid(t, b, 0.0).unwrap();
                    let (c, phase) = minimise(&loss, n, w);
                    let today = Optimum::sigmoid_weighted(n, t, b, w).unwrap();
                    assert_eq!(phase, today.phase, "N={n} t={t} b={b} w={w}");
                    assert!((c - today.c_star).abs() <= 1e-13, "N={n} t={t} b={b}");
                    let g = sigmoid_log_ratio(n, t, b, 0.0, w, 0.3).0;
                    let g0 = ccem_log_derivative_ratio_weighted(n, t, b, w, 0.3);
                    assert!(g == g0 || (g - g0).abs() <= 1e-14 * g0.abs().max(1.0));
                }
            }
        }
    }

    /// The log-ratio has the sign of `l'` and its slope is `g'` (finite differences).
    #[test]
    fn sigmoid_log_ratio_sign_and_slope() {
        for n in [3usize, 10, 64] {
            for (t, b, wv) in [(1.0, 1.0, 0.1), (3.0, -1.0, 0.5), (20.0, 5.0, 0.05)] {
                let loss = ZooLoss::sigmoid(t, b, wv).unwrap();
                for c in [0.1, 0.4, 0.9] {
                    let (g, h) = sigmoid_log_ratio(n, t, b, wv, 1.0, c);
                    let d = loss.derivative(n, c);
                    if d.abs() > 1e-12 {
                        assert_eq!(g > 0.0, d > 0.0, "N={n} t={t} c={c}");
                    }
                    let e = 1e-6;
                    let fd = (sigmoid_log_ratio(n, t, b, wv, 1.0, c + e).0
                        - sigmoid_log_ratio(n, t, b, wv, 1.0, c - e).0)
                        / (2.0 * e);
                    assert!(
                        h > 0.0 && (fd - h).abs() <= 1e-6 * h.max(1.0),
                        "{fd} vs {h}"
                    );
                }
            }
        }
    }

    /// Where every sigmoid of `l'` underflows, the phase still comes out right.
    #[test]
    fn large_t_with_within_view() {
        let n = 32768;
        let wv = 1e-6;
        let loss = ZooLoss::sigmoid(2000.0, 1000.0, wv).unwrap();
        assert_eq!(loss.derivative(n, 0.0), 0.0);
        let o = optimum(&loss, n, None).unwrap();
        assert!(o.c.is_finite() && o.loss.is_finite());
        let (g0, _) = sigmoid_log_ratio(n, 2000.0, 1000.0, wv, 1.0, 0.0);
        assert_eq!(o.phase == Phase::Etf, g0 >= 0.0);
    }
}
