//! The float32 matrix products of the float32 loss path (`loss::precision`, `loss::driver`).
//!
//! Every product there is one call `C = A B` or `C += A B` on a fixed piece of the output, run
//! single-threaded inside a rayon task whose size does not depend on the thread count, so the
//! result is bitwise the same for any number of threads. The kernel is chosen by measurement
//! (`benches/loss_f32.rs`, SPEC §1.1); the library's candidates stay selectable through
//! [`sgemm_with`] so that the benchmark can compare them inside the loss itself.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// A float32 matrix-product kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `matrixmultiply::sgemm` (through `ndarray::linalg::general_mat_mul`).
    MatrixMultiply,
    /// The encoder's register-tiled AVX2/FMA kernel without packing (`src/base/gemm.rs`);
    /// a `B` without contiguous rows is copied first, and a column count that is not a multiple
    /// of 8 falls back to [`Kernel::MatrixMultiply`].
    Tiled,
}

/// The kernel of the float32 loss path: the fastest on the products of the blocked loss at
/// `N = 4096, d = 768` on the development machine, quiet (the `kernels` group of
/// `benches/loss_f32.rs`, which also measures the `gemm` and `faer` crates): `matrixmultiply` 116 GFLOP/s,
/// `gemm` 108, `faer` 73, the tiled kernel 45 (SPEC §1.1).
pub const DEFAULT_KERNEL: Kernel = Kernel::MatrixMultiply;

/// `C = A B` (`accumulate = false`) or `C += A B` (`accumulate = true`) in float32, with the
/// default kernel, on the calling thread. Deterministic: the result depends only on the inputs
/// and the machine, never on the thread count.
///
/// # Panics
/// Shapes that do not match (`A: m x k`, `B: k x n`, `C: m x n`).
///
/// # Example
/// ```
/// use ccem::base::sgemm::sgemm;
/// use ndarray::array;
/// let a = array![[1.0f32, 2.0], [3.0, 4.0]];
/// let mut c = ndarray::Array2::<f32>::zeros((2, 2));
/// sgemm(a.view(), a.t(), c.view_mut(), false);
/// assert_eq!(c, array![[5.0, 11.0], [11.0, 25.0]]);
/// ```
pub fn sgemm(a: ArrayView2<f32>, b: ArrayView2<f32>, c: ArrayViewMut2<f32>, accumulate: bool) {
    sgemm_with(DEFAULT_KERNEL, a, b, c, accumulate)
}

/// [`sgemm`] with a chosen kernel (for the benchmark's comparison).
///
/// # Panics
/// As [`sgemm`].
pub fn sgemm_with(
    kernel: Kernel,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    mut c: ArrayViewMut2<f32>,
    accumulate: bool,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert!(
        b.nrows() == k && c.dim() == (m, n),
        "sgemm: A is {m} x {k}, B is {} x {n}, C is {:?}",
        b.nrows(),
        c.dim()
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    let beta = if accumulate { 1.0 } else { 0.0 };
    match kernel {
        Kernel::MatrixMultiply => general_mat_mul(1.0, &a, &b, beta, &mut c),
        Kernel::Tiled => {
            if !n.is_multiple_of(8) || c.strides()[1] != 1 {
                return general_mat_mul(1.0, &a, &b, beta, &mut c);
            }
            if b.strides()[1] == 1 {
                super::gemm::gemm(a, b, c, accumulate);
            } else {
                let mut bc = Array2::<f32>::zeros((k, n));
                bc.assign(&b);
                super::gemm::gemm(a, bc.view(), c, accumulate);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    #[test]
    fn every_kernel_matches_the_f64_product() {
        for &(m, k, n) in &[(1, 1, 1), (5, 3, 8), (37, 70, 24), (64, 129, 77), (3, 0, 8)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 13) as f32 / 13.0);
            let bt = Array2::from_shape_fn((n, k), |(i, j)| ((i * 5 + j) % 11) as f32 / 11.0 - 0.5);
            let exact = a.mapv(f64::from).dot(&bt.t().mapv(f64::from));
            for kernel in [Kernel::MatrixMultiply, Kernel::Tiled] {
                for accumulate in [false, true] {
                    // C as a column window of a wider array, B as a transposed view.
                    let mut big = Array2::<f32>::from_elem((m, n + 3), 0.5);
                    sgemm_with(
                        kernel,
                        a.view(),
                        bt.t(),
                        big.slice_mut(s![.., 1..n + 1]),
                        accumulate,
                    );
                    let add = if accumulate { 0.5 } else { 0.0 };
                    for ((i, j), &e) in exact.indexed_iter() {
                        let got = f64::from(big[[i, j + 1]]);
                        assert!(
                            (got - e - add).abs() <= 1e-5 * (1.0 + e.abs()),
                            "{kernel:?} {m}x{k}x{n}"
                        );
                    }
                    assert!(big.column(0).iter().all(|&x| x == 0.5));
                    assert!(big.column(n + 1).iter().all(|&x| x == 0.5));
                }
            }
        }
    }
}
