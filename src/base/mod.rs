//! The base layer: what every other module may use and what imports nothing above it.
//!
//! - [`real`]: the sealed [`Real`] trait (`f32`, `f64`), which carries each precision's matrix
//!   product and block sizes, so that one generic body serves both precisions, and the
//!   [`Precision`] that names them;
//! - [`sgemm`]: the float32 product of the loss path (the kernel chosen by measurement);
//! - [`gemm`]: the register-tiled kernel written for the encoder's small matrices, and the
//!   choice between it and the blocked product by size;
//! - [`scalar`]: the encoder network's float type ([`scalar::Scalar`]).
//!
//! See `docs/ARCHITECTURE.md` for the layers above.

pub mod gemm;
pub mod real;
pub mod scalar;
pub mod sgemm;

pub use real::{Precision, Real};
