//! `spectral`: the spectral contrastive loss (HaoChen et al. 2021), an independently additive
//! loss with `phi(x) = -2x` and `psi(x) = x^2` (SPEC §1.7).
//!
//! # Formula
//! `L = -(2/N) sum_i S_ii + (1 / (N (N - 1))) sum_{i != j} S_ij^2`,
//!
//! `dL/dS_ii = -2/N`, `dL/dS_ij = 2 S_ij / (N (N - 1))` for `i != j`. It has no parameter.

use super::contrastive::{BlockAt, ContrastiveLoss};
use super::params::{FromParams, LossParams};
use crate::base::Real;
use crate::error::Result;
use ndarray::ArrayViewMut2;
use serde::{Deserialize, Serialize};

/// The spectral contrastive loss (module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spectral {}

impl FromParams for Spectral {
    const PARAMS: &'static [&'static str] = &[];
    const ADDITIVE: bool = true;

    /// No parameter.
    fn from_params(p: &LossParams) -> Result<Self> {
        p.only("spectral", Self::PARAMS)?;
        Ok(Spectral {})
    }
}

impl ContrastiveLoss for Spectral {
    fn name(&self) -> &'static str {
        "spectral"
    }

    fn params(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// The block's `sum -2 S_ii + sum_{i != j} S_ij^2 / (N - 1)` (the driver divides by `N`).
    fn block<R: Real, const GRAD: bool>(&self, mut s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
        let n = at.pairs as f64;
        let inv_nm1 = 1.0 / (n - 1.0);
        let g_off = 2.0 / (n * (n - 1.0));
        let ncols = s.ncols();
        let mut total = 0.0;
        for (i, mut row) in s.outer_iter_mut().enumerate() {
            let diag = at.diag_col(i, ncols);
            let s_diag = diag.map(|j| row[j].to_f64());
            let mut sq = 0.0;
            for e in row.iter_mut() {
                let x = e.to_f64();
                sq += x * x;
                if GRAD {
                    *e = R::from_f64(g_off * x);
                }
            }
            total += sq * inv_nm1;
            if let (Some(j), Some(x)) = (diag, s_diag) {
                total -= x * x * inv_nm1 + 2.0 * x;
                if GRAD {
                    row[j] = R::from_f64(-2.0 / n);
                }
            }
        }
        total
    }
}
