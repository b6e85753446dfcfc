//! `dcl`: the decoupled contrastive loss (Yeh et al. 2022): SimCLR without the positive in the denominator (SPEC §1.6).
//!
//! # Formula
//! Over the `2N` views `Z = [U; V]` with `K = Z Z^T`, every view `a` an anchor whose positive
//! is its pair's other view `a+`:
//!
//! `L = (1 / 2N) sum_a [ln sum_k w_ak e^{K_ak / tau} - K_aa+ / tau]`, where `w_ak = 1` for every `k` other than `a` and `a+` (the `2N - 2` negatives).
//!
//! This is `dcl_loss_func`'s value for `z = [U; V]` and `indexes = [0..N, 0..N]` on one process
//! (`leechungpa/embedding-similarity-cl`, `solo/losses/`), tested against a port of it. The
//! arithmetic is `loss::anchor_softmax`'s.

use super::anchor_softmax::{self, positive};
use super::contrastive::{BlockAt, ContrastiveLoss, Prepass, Views};
use super::lse::Lse;
use super::params::{named, FromParams, LossParams};
use crate::base::Real;
use crate::error::{check_positive, Result};
use ndarray::ArrayViewMut2;
use serde::{Deserialize, Serialize};

/// The `dcl` loss with temperature `tau` (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dcl {
    /// The temperature `tau > 0`.
    pub tau: f64,
}

impl Dcl {
    /// The loss with temperature `tau`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] unless `tau` is positive and finite.
    pub fn new(tau: f64) -> Result<Self> {
        Ok(Dcl {
            tau: check_positive("tau", tau)?,
        })
    }
}

impl FromParams for Dcl {
    const PARAMS: &'static [&'static str] = &["tau"];

    /// `tau` (required); no other parameter.
    fn from_params(p: &LossParams) -> Result<Self> {
        p.only("dcl", Self::PARAMS)?;
        named("dcl", Self::new(LossParams::need("dcl", "tau", p.tau)?))
    }
}

impl ContrastiveLoss for Dcl {
    fn name(&self) -> &'static str {
        "dcl"
    }

    fn params(&self) -> Vec<(&'static str, f64)> {
        vec![("tau", self.tau)]
    }

    fn views(&self) -> Views {
        Views::Joint
    }

    fn lse_weight(&self, a: usize, k: usize, pairs: usize) -> f64 {
        f64::from(u8::from(a != k && k != positive(a, pairs)))
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
