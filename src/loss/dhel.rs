//! `dhel`: the decoupled hyperspherical energy loss (Koromilas et al. 2024): within-view negatives only (SPEC §1.6).
//!
//! # Formula
//! Over the `2N` views `Z = [U; V]` with `K = Z Z^T`, every view `a` an anchor whose positive
//! is its pair's other view `a+`:
//!
//! `L = (1 / 2N) sum_a [ln sum_k w_ak e^{K_ak / tau} - K_aa+ / tau]`, where `w_ak = 1` for the `N - 1` other views of the anchor's own modality (`k != a`, same side of `Z`).
//!
//! This is `dhel_loss_func`'s value for `z = [U; V]` and `indexes = [0..N, 0..N]` on one process
//! (`leechungpa/embedding-similarity-cl`, `solo/losses/`), tested against a port of it. The
//! arithmetic is `loss::anchor_softmax`'s.

use super::anchor_softmax::{self, same_view};
use super::contrastive::{BlockAt, ContrastiveLoss, Prepass, Views};
use super::lse::Lse;
use super::params::{named, FromParams, LossParams};
use crate::base::Real;
use crate::error::{check_positive, Result};
use ndarray::ArrayViewMut2;
use serde::{Deserialize, Serialize};

/// The `dhel` loss with temperature `tau` (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dhel {
    /// The temperature `tau > 0`.
    pub tau: f64,
}

impl Dhel {
    /// The loss with temperature `tau`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] unless `tau` is positive and finite.
    pub fn new(tau: f64) -> Result<Self> {
        Ok(Dhel {
            tau: check_positive("tau", tau)?,
        })
    }
}

impl FromParams for Dhel {
    const PARAMS: &'static [&'static str] = &["tau"];

    /// `tau` (required); no other parameter.
    fn from_params(p: &LossParams) -> Result<Self> {
        p.only("dhel", Self::PARAMS)?;
        named("dhel", Self::new(LossParams::need("dhel", "tau", p.tau)?))
    }
}

impl ContrastiveLoss for Dhel {
    fn name(&self) -> &'static str {
        "dhel"
    }

    fn params(&self) -> Vec<(&'static str, f64)> {
        vec![("tau", self.tau)]
    }

    fn views(&self) -> Views {
        Views::Joint
    }

    fn lse_weight(&self, a: usize, k: usize, pairs: usize) -> f64 {
        f64::from(u8::from(a != k && same_view(a, k, pairs)))
    }

    fn prepass(&self) -> Prepass {
        Prepass::AnchorLogSumExp {
            inv_tau: 1.0 / self.tau,
        }
    }

    fn value_needs_blocks(&self) -> bool {
        false
    }

    fn block<R: Real, const GRAD: bool>(&self, s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
        anchor_softmax::block::<R, Self, GRAD>(self, s, at, true, 0.5 / at.pairs as f64)
    }

    fn finish(&self, _block_sum: f64, n: usize, lse: Option<&Lse>) -> f64 {
        anchor_softmax::finish(lse, 0.5 / n as f64)
    }
}
