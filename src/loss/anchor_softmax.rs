//! The arithmetic shared by the InfoNCE-based losses that sum one cross-entropy per anchor
//! (SPEC §1.6): `simclr`, `dcl`, `dhel` and `infonce` with within-view negatives.
//!
//! # Formula (SPEC §1.6)
//! Over the anchors `a` of the loss's views ([`super::contrastive::Views`]), with the weights
//! `w_ak >= 0` of [`ContrastiveLoss::lse_weight`] and a scale `c` (`1 / 2N` for the mean over
//! `2N` anchors, `1 / N` for ccem's InfoNCE convention):
//!
//! `L = c sum_a [ln sum_k w_ak e^{S_ak / tau} - S_a,pos(a) / tau]`,
//!
//! `dL/dS_ak = (c / tau) (w_ak e^{S_ak / tau} / D_a - [k = pos(a)])`, `D_a = sum_k w_ak e^{S_ak/tau}`.
//!
//! The pre-pass ([`super::contrastive::Prepass::AnchorLogSumExp`]) gives each `D_a` as
//! `(m_a, ln_a)`, so a term is `(m_a - S_a,pos) / tau + ln_a` and the gradient's exponent
//! `(S_ak - m_a) / tau - ln_a` is never large (SPEC §1.0).

use super::contrastive::{BlockAt, ContrastiveLoss};
use super::lse::Lse;
use super::sigmoid_grad::exp_nonpos;
use crate::base::Real;
use ndarray::ArrayViewMut2;

/// Overwrites a block of `S` (or `K`) with `G = dL/dS` of the per-anchor cross-entropies
/// (module documentation), `scale` being `c`. The value comes from [`finish`] (this returns 0).
pub(crate) fn block<R: Real, L: ContrastiveLoss + ?Sized, const GRAD: bool>(
    loss: &L,
    mut s: ArrayViewMut2<R>,
    at: &BlockAt,
    joint: bool,
    scale: f64,
) -> f64 {
    if !GRAD {
        return 0.0;
    }
    let lse = at
        .lse
        .expect("the driver runs the pre-pass this loss asks for");
    let it = lse.inv_tau;
    let c = scale * it;
    let ncols = s.ncols();
    for (i, mut row) in s.outer_iter_mut().enumerate() {
        let a = at.row0 + i;
        let (m, l) = (lse.row_max[a], lse.row_ln[a]);
        for (j, e) in row.iter_mut().enumerate() {
            let w = loss.lse_weight(a, at.col0 + j, at.pairs);
            *e = if w > 0.0 {
                R::from_f64(c * w * exp_nonpos(((e.to_f64() - m) * it - l).min(0.0)))
            } else {
                R::from_f64(0.0)
            };
        }
        let pos = if joint {
            at.positive_col(i, ncols)
        } else {
            at.diag_col(i, ncols)
        };
        if let Some(j) = pos {
            row[j] = R::from_f64(row[j].to_f64() - c);
        }
    }
    0.0
}

/// `c sum_a [(m_a - S_a,pos) / tau + ln_a]` from the pre-pass.
pub(crate) fn finish(lse: Option<&Lse>, scale: f64) -> f64 {
    let lse = lse.expect("the driver runs the pre-pass this loss asks for");
    let it = lse.inv_tau;
    let sum: f64 = (0..lse.row_max.len())
        .map(|a| (lse.row_max[a] - lse.diag[a]) * it + lse.row_ln[a])
        .sum();
    scale * sum
}

/// Whether anchors `a` and `k` are views of the same modality (both `u` or both `v`).
#[inline]
pub(crate) fn same_view(a: usize, k: usize, pairs: usize) -> bool {
    (a < pairs) == (k < pairs)
}

/// The positive of anchor `a` among the `2N` joint views.
#[inline]
pub(crate) fn positive(a: usize, pairs: usize) -> usize {
    super::lse::positive_of(a, pairs, true)
}

/// Defines a loss of the joint views that is the mean over the `2N` anchors of one
/// cross-entropy with temperature `tau` and the weights `$weight` (an expression of `a`, `k`
/// and `pairs`): its type, constructor, [`super::params::FromParams`] and
/// [`ContrastiveLoss`]. `simclr`, `dcl` and `dhel` differ only in their name and weights.
macro_rules! anchor_loss {
    ($(#[$doc:meta])* $ty:ident = $name:literal, |$a:ident, $k:ident, $pairs:ident| $weight:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $ty {
            /// The temperature `tau > 0`.
            pub tau: f64,
        }

        impl $ty {
            /// The loss with temperature `tau`.
            ///
            /// # Errors
            /// [`crate::Error::InvalidParameter`] unless `tau` is positive and finite.
            pub fn new(tau: f64) -> crate::error::Result<Self> {
                Ok($ty {
                    tau: crate::error::check_positive("tau", tau)?,
                })
            }
        }

        impl crate::loss::params::FromParams for $ty {
            const PARAMS: &'static [&'static str] = &["tau"];

            /// `tau` (required); no other parameter.
            fn from_params(p: &crate::loss::params::LossParams) -> crate::error::Result<Self> {
                use crate::loss::params::LossParams;
                p.only($name, Self::PARAMS)?;
                crate::loss::params::named($name, Self::new(LossParams::need($name, "tau", p.tau)?))
            }
        }

        impl crate::loss::contrastive::ContrastiveLoss for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn params(&self) -> Vec<(&'static str, f64)> {
                vec![("tau", self.tau)]
            }

            fn views(&self) -> crate::loss::contrastive::Views {
                crate::loss::contrastive::Views::Joint
            }

            #[allow(unused_variables)]
            fn lse_weight(&self, $a: usize, $k: usize, $pairs: usize) -> f64 {
                $weight
            }

            fn prepass(&self) -> crate::loss::contrastive::Prepass {
                crate::loss::contrastive::Prepass::AnchorLogSumExp {
                    inv_tau: 1.0 / self.tau,
                }
            }

            fn value_needs_blocks(&self) -> bool {
                false
            }

            fn block<R: crate::base::Real, const GRAD: bool>(
                &self,
                s: ndarray::ArrayViewMut2<R>,
                at: &crate::loss::contrastive::BlockAt,
            ) -> f64 {
                crate::loss::anchor_softmax::block::<R, Self, GRAD>(
                    self,
                    s,
                    at,
                    true,
                    0.5 / at.pairs as f64,
                )
            }

            fn finish(&self, _block_sum: f64, n: usize, lse: Option<&crate::loss::lse::Lse>) -> f64 {
                crate::loss::anchor_softmax::finish(lse, 0.5 / n as f64)
            }
        }
    };
}
pub(crate) use anchor_loss;
