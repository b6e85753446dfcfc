//! The base layer: what every other module may use and what imports nothing above it.
//!
//! - [`real`]: the sealed [`Real`] trait (`f32`, `f64`), which carries each precision's matrix
//!   product and block sizes, so that one generic body serves both precisions, and the
//!   [`Precision`] that names them; it is also the float type of the encoder network (`f32`,
//!   the default, as PyTorch; `f64` for finite-difference checks and reference runs);
//! - [`sgemm`]: the float32 product of the loss path (the kernel chosen by measurement);
//! - [`gemm`]: the register-tiled kernel written for the encoder's small matrices, and the
//!   choice between it and the blocked product by size.
//!
//! See `docs/ARCHITECTURE.md` for the layers above.

pub mod gemm;
mod precisions;
pub mod real;
pub mod sgemm;

pub use real::{Precision, Real};
