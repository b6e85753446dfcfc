//! The floating-point types the encoder network can run in: `f32` (the default, as PyTorch) and
//! `f64` (for finite-difference checks and for reference runs).
//!
//! The trait is sealed: the products (`gemm.rs`), the vectorisation and the tolerances are
//! made for these two types only.

use ndarray::LinalgScalar;
use std::fmt::{Debug, Display};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point type for the encoder network (`f32` or `f64`; sealed).
///
/// The loss on `S = U V^T` is always evaluated in `f64` whatever the network type (SPEC §1
/// numerics); only the network (products, ReLU, normalisation, SGD) runs in `Self`.
pub trait Scalar:
    LinalgScalar + PartialOrd + Debug + Display + Send + Sync + sealed::Sealed
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// The floor of the normalisation, `max(||y||, EPS)`: PyTorch's `F.normalize` default `1e-12`.
    const NORM_EPS: Self;
    /// Elements in a 256-bit vector: the width of the register tile of the products.
    const LANES: usize;
    /// Rounds an `f64` to `Self` (exact for `f64`).
    fn from_f64(x: f64) -> Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// The square root.
    fn sqrt(self) -> Self;
    /// `self * a + b` with one rounding (a fused multiply-add).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Neither NaN nor infinite.
    fn is_finite(self) -> bool;
    /// The name of the type, `f32` or `f64`.
    fn name() -> &'static str;
}

impl Scalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NORM_EPS: Self = 1e-12;
    const LANES: usize = 8;
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    fn name() -> &'static str {
        "f32"
    }
}

impl Scalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NORM_EPS: Self = 1e-12;
    const LANES: usize = 4;
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    fn name() -> &'static str {
        "f64"
    }
}
