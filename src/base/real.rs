//! [`Real`]: the two floating-point types of `ccem` (`f32`, `f64`), with what differs between
//! them (the matrix product, the block and chunk sizes), so that every kernel above is written
//! once, generic over `R: Real` (SPEC §1.1: products in `R`, per-entry terms and sums in `f64`).
//!
//! The trait is sealed: the crate's kernels are only tested and tuned for these two types.
//!
//! ```
//! use ccem::base::{Precision, Real};
//! use ndarray::array;
//! fn square<R: Real>(a: ndarray::ArrayView2<R>) -> ndarray::Array2<R> {
//!     let mut c = ndarray::Array2::<R>::zeros((a.nrows(), a.nrows()));
//!     R::gemm(a, a.t(), c.view_mut(), false);
//!     c
//! }
//! assert_eq!(square(array![[1.0f32, 2.0]].view())[[0, 0]], 5.0);
//! assert_eq!(square(array![[1.0f64, 2.0]].view())[[0, 0]], 5.0);
//! assert_eq!(<f32 as Real>::PRECISION, Precision::F32);
//! ```

use crate::error::{Error, Result};
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The floating-point precision of a computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 products, float64 sums (SPEC §1.1).
    F32,
    /// float64 throughout.
    F64,
}

impl std::str::FromStr for Precision {
    type Err = Error;

    /// `"f32"`/`"float32"` or `"f64"`/`"float64"`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(Precision::F32),
            "f64" | "float64" => Ok(Precision::F64),
            other => Err(Error::Config(format!(
                "invalid precision '{other}': use 'f32' (float32 products, float64 sums) or \
                 'f64' (float64 throughout)"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// `f32` or `f64`: an element type of the blocked kernels.
///
/// Each kernel computes its products in `Self` ([`Real::gemm`]) and every per-entry term and
/// every sum in `f64` ([`Real::to_f64`], [`Real::from_f64`]), so that one generic body gives
/// the float64 path and the float32 path of SPEC §1.1.
pub trait Real:
    sealed::Sealed
    + ndarray::LinalgScalar
    + Copy
    + Send
    + Sync
    + PartialOrd
    + fmt::Debug
    + fmt::Display
    + 'static
{
    /// Which precision this is.
    const PRECISION: Precision;
    /// Columns of a block of `S` (and rows of `dL/dV`) per parallel task.
    const COL_CHUNK: usize;
    /// Rows of `dL/dU` per parallel task.
    const ROW_CHUNK: usize;
    /// The default rows per block of the blocked loss (memory `block x N` of `Self`), measured
    /// fastest on the development machine (`examples/loss_scale.rs`, `N = 4096, d = 768`).
    const DEFAULT_BLOCK: usize;
    /// The unit roundoff (machine epsilon) of `Self`, as `f64`.
    const EPS: f64;
    /// The largest finite value of `Self`, as `f64`.
    const MAX: f64;
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// The floor of the encoder's normalisation, `max(||y||, NORM_EPS)`: PyTorch's
    /// `F.normalize` default `1e-12`.
    const NORM_EPS: Self;
    /// Elements in a 256-bit vector: the width of the register tile of the encoder's products
    /// ([`crate::base::gemm`]).
    const LANES: usize;

    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Rounds an `f64` to `Self` (to nearest).
    fn from_f64(x: f64) -> Self;
    /// Whether the value is finite.
    fn finite(self) -> bool;
    /// The square root.
    fn sqrt(self) -> Self;
    /// `self * a + b` with one rounding (a fused multiply-add).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// The name of the type, `f32` or `f64`.
    fn name() -> &'static str;
    /// `C = A B` (`accumulate = false`) or `C += A B` on the calling thread, with the kernel
    /// chosen by measurement for this precision; deterministic (the result never depends on the
    /// thread count).
    ///
    /// # Panics
    /// Shapes that do not match (`A: m x k`, `B: k x n`, `C: m x n`); the kernels' callers
    /// slice the operands themselves, so this is an internal invariant.
    fn gemm(a: ArrayView2<Self>, b: ArrayView2<Self>, c: ArrayViewMut2<Self>, accumulate: bool);
}
