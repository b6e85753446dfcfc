//! The contrastive losses of SPEC.md §1 and their exact gradients.
//!
//! - [`sigmoid`]: `L_sig(U, V; t, b) = (1/N) sum_{i,j} softplus(-z_ij (t S_ij - b))`.
//! - [`infonce`]: symmetric InfoNCE with temperature `tau`, the sum of the row and column
//!   cross-entropies (twice open_clip's `ClipLoss`, see [`infonce_clip`]).
//! - [`embedding`]: from similarities to embeddings (`dL/dU = G V`, `dL/dV = G^T U`) and through
//!   the row normalisation `u = x / ||x||`.
//! - [`blocked`]: the same values and gradients in row blocks, memory `O(N * block)` instead of
//!   `O(N^2)`, parallel over blocks and independent of the thread count.
//! - [`precision`]: the float32 path of all of the above (float32 products, float64 sums;
//!   SPEC §1.1), with its matrix kernel in [`sgemm`].
//!
//! [`Loss`] is the validated choice of loss and parameters that the rest of the crate passes
//! around.

pub mod blocked;
pub mod embedding;
pub mod evaluate;
pub mod infonce;
pub mod minibatch;
pub mod precision;
pub mod sgemm;
pub mod sigmoid;
pub(crate) mod sigmoid_grad;

pub use blocked::{blocked_loss, blocked_loss_grad, BlockOptions};
pub use embedding::{loss_grad_raw, loss_grad_uv, normalize_rows, LossGrad, Normalized};
pub use infonce::{infonce_clip, infonce_loss, infonce_loss_grad};
pub use sigmoid::{sigmoid_loss, sigmoid_loss_grad};

use crate::error::{check_finite, check_nonneg, check_positive, Result};
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// The kind of a loss, without its parameters: `sigmoid` (SigLIP) or `infonce` (CLIP).
///
/// Written and parsed as `sigmoid` and `infonce` (the `objective` column of `results.csv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LossKind {
    /// The sigmoid loss of SigLIP (SPEC §1).
    #[serde(rename = "sigmoid")]
    Sigmoid,
    /// Symmetric InfoNCE, the loss of CLIP (SPEC §1).
    #[serde(rename = "infonce")]
    InfoNce,
}

impl LossKind {
    /// `sigmoid` or `infonce`.
    pub fn as_str(self) -> &'static str {
        match self {
            LossKind::Sigmoid => "sigmoid",
            LossKind::InfoNce => "infonce",
        }
    }
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LossKind {
    type Err = crate::Error;

    /// `sigmoid` or `infonce` (any case).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sigmoid" => Ok(LossKind::Sigmoid),
            "infonce" => Ok(LossKind::InfoNce),
            _ => Err(crate::Error::Config(format!(
                "unknown loss '{s}': use sigmoid or infonce"
            ))),
        }
    }
}

/// Which loss, with its validated parameters.
///
/// Construct with [`Loss::sigmoid`], [`Loss::sigmoid_relative`] or [`Loss::infonce`]; the fields
/// are then known to be valid and kernels do not re-check them.
///
/// # Example
/// ```
/// use ccem::Loss;
/// use ndarray::{array, Array2};
///
/// // Two pairs, each positive pair aligned and the negatives orthogonal: S = I.
/// let s = array![[1.0, 0.0], [0.0, 1.0]];
/// let loss = Loss::sigmoid(2.0, 1.0)?; // logit t S - b
/// let mut g = Array2::zeros((2, 2));
/// let value = loss.value_grad_s(s.view(), g.view_mut());
/// // (1/N) sum_ij softplus(-z_ij (t S_ij - b)): 2 positives at logit 1, 2 negatives at -1.
/// let sp = |x: f64| x.exp().ln_1p();
/// assert!((value - (2.0 * sp(-1.0) + 2.0 * sp(-1.0)) / 2.0).abs() < 1e-15);
/// assert!(g[[0, 0]] < 0.0 && g[[0, 1]] > 0.0); // pull positives together, push negatives apart
/// assert!(Loss::sigmoid(-1.0, 0.0).is_err());
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "objective", rename_all = "lowercase")]
pub enum Loss {
    /// Sigmoid loss with scale `t >= 0` and bias `b` (logit `t S - b`).
    Sigmoid {
        /// Scale (inverse temperature).
        t: f64,
        /// Bias.
        b: f64,
    },
    /// Symmetric InfoNCE with temperature `tau > 0`.
    #[serde(rename = "infonce")]
    InfoNce {
        /// Temperature (divides the similarities).
        tau: f64,
    },
}

impl Loss {
    /// The sigmoid loss with scale `t` and bias `b`.
    ///
    /// # Errors
    /// `t` negative, non-finite or above [`crate::error::MAX_MAGNITUDE`]; `|b|` non-finite or above it.
    pub fn sigmoid(t: f64, b: f64) -> Result<Self> {
        Ok(Loss::Sigmoid {
            t: crate::error::check_scale("t", t)?,
            b: crate::error::check_bias("b", b)?,
        })
    }

    /// The sigmoid loss in the relative-bias form: logit `t (S - r_b)`, i.e. `b = r_b t`
    /// (SPEC §1, Bangachev et al. 2025).
    ///
    /// # Errors
    /// As [`Loss::sigmoid`].
    pub fn sigmoid_relative(t: f64, r_b: f64) -> Result<Self> {
        check_finite("r_b", r_b)?;
        Self::sigmoid(t, r_b * check_nonneg("t", t)?)
    }

    /// Symmetric InfoNCE with temperature `tau`.
    ///
    /// # Errors
    /// `tau <= 0` or non-finite.
    pub fn infonce(tau: f64) -> Result<Self> {
        Ok(Loss::InfoNce {
            tau: check_positive("tau", tau)?,
        })
    }

    /// `sigmoid` or `infonce`.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Which kind of loss this is.
    pub fn kind(&self) -> LossKind {
        match self {
            Loss::Sigmoid { .. } => LossKind::Sigmoid,
            Loss::InfoNce { .. } => LossKind::InfoNce,
        }
    }

    /// The loss of a square similarity matrix `S = U V^T`.
    pub fn value_s(&self, s: ArrayView2<f64>) -> f64 {
        match *self {
            Loss::Sigmoid { t, b } => sigmoid_loss(s, t, b),
            Loss::InfoNce { tau } => infonce_loss(s, tau),
        }
    }

    /// The gradient `G = dL/dS` alone, written into `g` (same shape as `s`), for training steps
    /// that do not report the loss: for the sigmoid loss a vectorised kernel without the loss
    /// value (`sigmoid_grad.rs`, equal to [`Loss::value_grad_s`]'s `G` to 1e-15, tested), for
    /// InfoNCE [`Loss::value_grad_s`]. Returns `false` if a non-finite value appeared (InfoNCE;
    /// the sigmoid kernel is finite for every finite `S`).
    pub fn grad_s(&self, s: ArrayView2<f64>, mut g: ArrayViewMut2<f64>) -> bool {
        match *self {
            Loss::Sigmoid { t, b } => {
                let n = s.nrows();
                match (s.as_slice(), g.as_slice_mut()) {
                    (Some(s), Some(g)) => {
                        sigmoid_grad::sigmoid_grad_s(s, g, n, t, b);
                        true
                    }
                    _ => sigmoid_loss_grad(s, t, b, g).is_finite(),
                }
            }
            Loss::InfoNce { tau } => infonce_loss_grad(s, tau, g).is_finite(),
        }
    }

    /// The loss of `S` and its gradient `G = dL/dS`, written into `g` (same shape as `s`).
    pub fn value_grad_s(&self, s: ArrayView2<f64>, g: ArrayViewMut2<f64>) -> f64 {
        match *self {
            Loss::Sigmoid { t, b } => sigmoid_loss_grad(s, t, b, g),
            Loss::InfoNce { tau } => infonce_loss_grad(s, tau, g),
        }
    }
}

#[cfg(test)]
mod tests;
