//! The two precisions' implementations of [`Real`]: `f64` (the product is `ndarray`'s
//! `general_mat_mul`) and `f32` (the product is [`super::sgemm::sgemm`], the kernel chosen by
//! measurement). They live apart from the trait so that the kernels (`gemm`, `sgemm`) can use
//! the trait without a cycle: `real` <- `gemm` <- `sgemm` <- `precisions`.

use super::real::{Precision, Real};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

impl Real for f64 {
    const PRECISION: Precision = Precision::F64;
    const COL_CHUNK: usize = 256;
    const ROW_CHUNK: usize = 32;
    const DEFAULT_BLOCK: usize = 256;
    const EPS: f64 = f64::EPSILON;
    const MAX: f64 = f64::MAX;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NORM_EPS: Self = 1e-12;
    const LANES: usize = 4;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
    fn name() -> &'static str {
        "f64"
    }
    fn gemm(a: ArrayView2<f64>, b: ArrayView2<f64>, mut c: ArrayViewMut2<f64>, accumulate: bool) {
        let beta = if accumulate { 1.0 } else { 0.0 };
        general_mat_mul(1.0, &a, &b, beta, &mut c);
    }
}

impl Real for f32 {
    const PRECISION: Precision = Precision::F32;
    const COL_CHUNK: usize = 512;
    const ROW_CHUNK: usize = 128;
    const DEFAULT_BLOCK: usize = 1024;
    const EPS: f64 = f32::EPSILON as f64;
    const MAX: f64 = f32::MAX as f64;
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NORM_EPS: Self = 1e-12;
    const LANES: usize = 8;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
    fn name() -> &'static str {
        "f32"
    }
    fn gemm(a: ArrayView2<f32>, b: ArrayView2<f32>, c: ArrayViewMut2<f32>, accumulate: bool) {
        super::sgemm::sgemm(a, b, c, accumulate)
    }
}
