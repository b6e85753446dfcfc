//! The contrastive losses of SPEC.md §1 and their exact gradients.
//!
//! - [`contrastive`]: the [`ContrastiveLoss`] trait, what a loss states (its terms on a block
//!   of `S = U V^T`, its pre-pass, its value);
//! - [`registry`]: the built-in losses, one line each, giving [`Loss`] and [`LossKind`];
//! - one file per loss: [`sigmoid`] (SigLIP), [`infonce`] (CLIP; the sum of the row and column
//!   cross-entropies, twice open_clip's `ClipLoss`, see [`infonce_clip`]), [`simclr`],
//!   [`dcl`], [`dhel`] (the InfoNCE-based losses over the `2N` views, sharing
//!   `anchor_softmax`'s arithmetic), [`spectral`]; [`params`] resolves their options;
//! - [`driver`]: the one blocked evaluation of any loss, in either precision (memory
//!   `O(N * block)`, bitwise independent of the thread count);
//! - [`evaluate`]: the entry point for a pair of embedding matrices (normalisation, precision,
//!   checks);
//! - [`embedding`]: from similarities to embeddings (`dL/dU = G V`, `dL/dV = G^T U`) and
//!   through the row normalisation `u = x / ||x||`;
//! - [`minibatch`]: the expected mini-batch loss (SPEC §8).
//!
//! [`Loss`] is the validated choice of loss and parameters that the rest of the crate passes
//! around.

pub(crate) mod anchor_softmax;
pub mod contrastive;
pub mod dcl;
pub mod dhel;
pub mod driver;
pub mod embedding;
pub mod evaluate;
pub mod infonce;
pub mod lse;
pub mod minibatch;
pub mod params;
pub mod precision;
pub mod registry;
/// The float32 products (their home is [`crate::base::sgemm`]; re-exported for the existing path).
pub use crate::base::sgemm;
pub mod sigmoid;
pub(crate) mod sigmoid_grad;
pub mod simclr;
pub mod spectral;

pub use contrastive::{BlockAt, ContrastiveLoss, Prepass, Tuned, Views};
pub use dcl::Dcl;
pub use dhel::Dhel;
pub use driver::{BlockOptions, LossGrad};
pub use embedding::{loss_grad_raw, loss_grad_uv, normalize_rows, Normalized};
pub use infonce::{infonce_clip, infonce_loss, infonce_loss_grad, InfoNce};
pub use lse::Lse;
pub use params::{FromParams, LossParams};
pub use registry::{Loss, LossKind, WithLoss};
pub use sigmoid::{sigmoid_loss, sigmoid_loss_grad, Sigmoid};
pub use simclr::SimClr;
pub use spectral::Spectral;

use crate::error::Result;

impl Loss {
    /// The sigmoid loss with scale `t` and bias `b` ([`Sigmoid::new`]).
    ///
    /// # Example
    /// ```
    /// use ccem::loss::{ContrastiveLoss, Loss};
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
    ///
    /// # Errors
    /// As [`Sigmoid::new`].
    pub fn sigmoid(t: f64, b: f64) -> Result<Self> {
        Ok(Sigmoid::new(t, b)?.into())
    }

    /// The sigmoid loss in the relative-bias form, `b = r_b t` ([`Sigmoid::relative`]).
    ///
    /// # Errors
    /// As [`Sigmoid::relative`].
    pub fn sigmoid_relative(t: f64, r_b: f64) -> Result<Self> {
        Ok(Sigmoid::relative(t, r_b)?.into())
    }

    /// Symmetric InfoNCE with temperature `tau` ([`InfoNce::new`]).
    ///
    /// # Errors
    /// As [`InfoNce::new`].
    pub fn infonce(tau: f64) -> Result<Self> {
        Ok(InfoNce::new(tau)?.into())
    }

    /// The loss's name (`sigmoid`, `infonce`, ...).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}

#[cfg(test)]
mod tests;
