//! Symmetric InfoNCE, the CLIP loss (SPEC.md §1).
//!
//! `L_info(S; tau) = (1/N) sum_i [r_i - S_ii/tau] + (1/N) sum_j [c_j - S_jj/tau]` with the row and
//! column log-sum-exps `r_i = log sum_j e^{S_ij/tau}`, `c_j = log sum_i e^{S_ij/tau}`; gradient
//! `G = (P_row + P_col - 2I) / (N tau)`, `P_row,ij = e^{S_ij/tau - r_i}`, `P_col,ij = e^{S_ij/tau - c_j}`.
//! Every exponent is shifted by its log-sum-exp, so `tau` down to `1e-3` (and below) stays finite.
//!
//! # Convention
//! `ccem`'s symmetric InfoNCE is the **sum** of the row and the column cross-entropies, as in the
//! paper (Lee, Chang, Sohn 2024). open_clip's `ClipLoss` takes their **mean**, so its value is
//! exactly half of ours; [`infonce_clip`] converts, and every output that prints an InfoNCE loss
//! prints the CLIP value beside it (`infonce_loss_clip`, `loss_clip`).

use super::anchor_softmax::{self, same_view};
use super::contrastive::{dense, BlockAt, ContrastiveLoss, Prepass, Tuned, Views};
use super::lse::Lse;
use super::params::{check_within, named, FromParams, LossParams};
use super::sigmoid_grad::exp_nonpos;
use crate::base::Real;
use crate::error::{check_positive, Result};
use crate::numerics::softplus;
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// Symmetric InfoNCE (CLIP's loss) with temperature `tau > 0`, as the **sum** of the row and
/// the column cross-entropies (SPEC §1; [`infonce_clip`] gives open_clip's mean):
/// `L = (1/N) sum_i [r_i - S_ii/tau] + (1/N) sum_j [c_j - S_jj/tau]`,
/// `G = (P_row + P_col - 2I) / (N tau)`.
///
/// ```
/// use ccem::loss::infonce::InfoNce;
/// use ccem::loss::contrastive::ContrastiveLoss;
/// use ndarray::array;
/// let loss = InfoNce::new(1.0)?;
/// let s = array![[1.0, 0.0], [0.0, 1.0]];
/// assert!((loss.value_s(s.view()) - 2.0 * (-1.0f64).exp().ln_1p()).abs() < 1e-15);
/// assert!(InfoNce::new(0.0).is_err());
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoNce {
    /// Temperature (divides the similarities), `> 0`.
    pub tau: f64,
    /// The weight `W >= 0` of the within-view negatives in each denominator (SPEC §1.6): row
    /// `i`'s gains `W sum_{k != i} e^{u_i . u_k / tau}`, column `j`'s
    /// `W sum_{k != j} e^{v_j . v_k / tau}`. `0` is CLIP's loss; at `1` the loss is exactly twice
    /// `simclr`.
    #[serde(default, rename = "within_view", skip_serializing_if = "is_zero")]
    pub within: f64,
}

/// `x == 0` (serde: the within-view weight is written only when it is used).
pub(crate) fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl InfoNce {
    /// Symmetric InfoNCE with temperature `tau`.
    ///
    /// # Errors
    /// `tau <= 0` or non-finite.
    pub fn new(tau: f64) -> Result<Self> {
        Ok(InfoNce {
            tau: check_positive("tau", tau)?,
            within: 0.0,
        })
    }

    /// InfoNCE with within-view negatives of weight `within` (SPEC §1.6).
    ///
    /// # Errors
    /// As [`InfoNce::new`], or a negative or non-finite `within`.
    pub fn with_within(tau: f64, within: f64) -> Result<Self> {
        Ok(InfoNce {
            within: check_within("infonce", within)?,
            ..Self::new(tau)?
        })
    }
}

impl FromParams for InfoNce {
    const PARAMS: &'static [&'static str] = &["tau", "within_view"];

    /// `tau` (required) and `within_view` (default 0).
    fn from_params(p: &LossParams) -> Result<Self> {
        p.only("infonce", Self::PARAMS)?;
        let tau = LossParams::need("infonce", "tau", p.tau)?;
        named(
            "infonce",
            Self::with_within(tau, p.within_view.unwrap_or(0.0)),
        )
    }
}

impl ContrastiveLoss for InfoNce {
    fn name(&self) -> &'static str {
        "infonce"
    }

    fn params(&self) -> Vec<(&'static str, f64)> {
        if self.within > 0.0 {
            vec![("tau", self.tau), ("within_view", self.within)]
        } else {
            vec![("tau", self.tau)]
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

    /// Without within-view negatives, the optimiser's InfoNCE kernel ([`Tuned::InfoNce`]).
    fn tuned(&self) -> Option<Tuned> {
        (self.within == 0.0).then_some(Tuned::InfoNce { tau: self.tau })
    }

    /// `true`: the loss falls by orders of magnitude at small `tau` (`optim`'s module
    /// documentation).
    fn steps_on_log(&self) -> bool {
        true
    }

    /// `a_ij = t(i, j) + t(j, i)` with `t(i, j) = log(1 + (B-1) e^{Z_ij - Z_ii}) +
    /// log(1 + (B-1) e^{Z_ji - Z_ii})`, `Z = S / tau`: the growth of the two cross-entropies of
    /// pairs `i` and `j` when each is the other's negative in a batch of `B` whose other
    /// negatives sit where this one does (Cho et al.).
    fn pair_affinity(&self, s: ArrayView2<f64>, i: usize, j: usize, b: usize) -> f64 {
        let tau = self.tau;
        let lb = ((b - 1) as f64).ln();
        let term = |i: usize, j: usize| {
            let zii = s[[i, i]] / tau;
            softplus(lb + s[[i, j]] / tau - zii) + softplus(lb + s[[j, i]] / tau - zii)
        };
        term(i, j) + term(j, i)
    }

    /// With within-view negatives: `0` for the anchor itself, `W` for its own modality's
    /// other views, `1` for the other modality's.
    fn lse_weight(&self, a: usize, k: usize, pairs: usize) -> f64 {
        if a == k {
            0.0
        } else if same_view(a, k, pairs) {
            self.within
        } else {
            1.0
        }
    }

    fn prepass(&self) -> Prepass {
        if self.within > 0.0 {
            Prepass::AnchorLogSumExp {
                inv_tau: 1.0 / self.tau,
            }
        } else {
            Prepass::LogSumExp {
                inv_tau: 1.0 / self.tau,
            }
        }
    }

    fn value_needs_blocks(&self) -> bool {
        false
    }

    /// `G_ij = (e^{S_ij/tau - r_i} + e^{S_ij/tau - c_j} - 2 delta_ij) / (N tau)`, each
    /// exponent formed as `(S_ij - m_i)/tau - ln_i <= 0` ([`Lse`]); the terms themselves are
    /// in [`ContrastiveLoss::finish`], so the block sum is `0`.
    fn block<R: Real, const GRAD: bool>(&self, mut s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
        if self.within > 0.0 {
            return anchor_softmax::block::<R, Self, GRAD>(
                self,
                s,
                at,
                true,
                1.0 / at.pairs as f64,
            );
        }
        if !GRAD {
            return 0.0;
        }
        let lse = at
            .lse
            .expect("the driver runs the pre-pass this loss asks for");
        let it = lse.inv_tau;
        let scale = it / at.n as f64;
        let ncols = s.ncols();
        let cm = &lse.col_max[at.col0..at.col0 + ncols];
        let cl = &lse.col_ln[at.col0..at.col0 + ncols];
        for (i, mut row) in s.outer_iter_mut().enumerate() {
            let (mi, li) = (lse.row_max[at.row0 + i], lse.row_ln[at.row0 + i]);
            let diag = at.diag_col(i, ncols);
            let s_diag = diag.map(|j| row[j].to_f64());
            for ((e, &mj), &lj) in row.iter_mut().zip(cm).zip(cl) {
                let x = e.to_f64();
                let p = exp_nonpos(((x - mi) * it - li).min(0.0))
                    + exp_nonpos(((x - mj) * it - lj).min(0.0));
                *e = R::from_f64(scale * p);
            }
            if let (Some(j), Some(x)) = (diag, s_diag) {
                let p = exp_nonpos(((x - mi) * it - li).min(0.0))
                    + exp_nonpos(((x - cm[j]) * it - cl[j]).min(0.0));
                row[j] = R::from_f64(scale * (p - 2.0));
            }
        }
        0.0
    }

    /// `(1/N) sum_i [(m_i - S_ii)/tau + ln_i] + (1/N) sum_j [(m'_j - S_jj)/tau + ln'_j]`: every
    /// term is `>= 0`, so the value is never negative, for any `tau > 0` (SPEC §1, "Numerics").
    fn finish(&self, _block_sum: f64, n: usize, lse: Option<&Lse>) -> f64 {
        if self.within > 0.0 {
            return anchor_softmax::finish(lse, 1.0 / n as f64);
        }
        let lse = lse.expect("the driver runs the pre-pass this loss asks for");
        let it = lse.inv_tau;
        let rows: f64 = (0..n)
            .map(|i| (lse.row_max[i] - lse.diag[i]) * it + lse.row_ln[i])
            .sum();
        let cols: f64 = (0..n)
            .map(|j| (lse.col_max[j] - lse.diag[j]) * it + lse.col_ln[j])
            .sum();
        (rows + cols) / n as f64
    }

    fn clip_value(&self, value: f64) -> Option<f64> {
        Some(infonce_clip(value))
    }
}

/// `L_info(S; tau)` for a square `S` (SPEC §1): the sum of the row and the column
/// cross-entropies of `S / tau`, over `N`. Each term is `(m_i - S_ii) / tau + ln_i` with
/// `m_i` its row's (column's) maximum ([`Lse`]), so the value is never negative, for any
/// `tau > 0` (SPEC §1.0).
///
/// A `tau` that is not positive and finite gives `NaN` (use [`InfoNce::new`] to validate).
pub fn infonce_loss(s: ArrayView2<f64>, tau: f64) -> f64 {
    if !(tau > 0.0 && tau.is_finite()) {
        return f64::NAN;
    }
    let mut scratch = s.to_owned();
    dense::<f64, _, false>(&InfoNce { tau, within: 0.0 }, scratch.view_mut())
}

/// [`infonce_loss`] and its gradient `G = (P_row + P_col - 2I)/(N tau)` written into `g`.
pub fn infonce_loss_grad(s: ArrayView2<f64>, tau: f64, mut g: ArrayViewMut2<f64>) -> f64 {
    if !(tau > 0.0 && tau.is_finite()) {
        g.fill(f64::NAN);
        return f64::NAN;
    }
    g.assign(&s);
    dense::<f64, _, true>(&InfoNce { tau, within: 0.0 }, g)
}

/// An InfoNCE value of `ccem` (the sum of the two cross-entropies) in open_clip's `ClipLoss`
/// convention (their mean): `value / 2`. See the module's "Convention".
///
/// ```
/// use ccem::loss::{infonce_clip, infonce_loss};
/// use ndarray::array;
///
/// let s = array![[1.0, 0.0], [0.0, 1.0]];
/// let ours = infonce_loss(s.view(), 1.0);
/// // Each cross-entropy term is log(1 + e^{-1}); ccem sums rows and columns, CLIP averages them.
/// assert!((ours - 2.0 * (-1.0f64).exp().ln_1p()).abs() < 1e-15);
/// assert_eq!(infonce_clip(ours), ours / 2.0);
/// ```
pub fn infonce_clip(value: f64) -> f64 {
    0.5 * value
}
