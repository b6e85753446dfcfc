//! The base layer: what every other module may use and what imports nothing above it.
//!
//! - [`real`]: the sealed [`Real`] trait (`f32`, `f64`), which carries each precision's matrix
//!   product and block sizes, so that one generic body serves both precisions, and the
//!   [`Precision`] that names them.
//!
//! See `docs/ARCHITECTURE.md` for the layers above.

pub mod real;

pub use real::{Precision, Real};
