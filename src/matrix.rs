//! [`Matrix`]: an `N x d` embedding matrix in the precision it came in (float32 or float64).
//!
//! A float32 `.npy` file ([`crate::io::read_matrix_any`]) or a float32 numpy array stays
//! float32, so that the float32 path of the losses and of `inspect` runs on it without a copy in
//! float64 (SPEC §1.1); float64 stays float64. [`Matrix::to_precision`] converts when a caller
//! asks for the other precision.
//!
//! ```
//! use ccem::matrix::Matrix;
//! use ccem::loss::precision::Precision;
//! use ndarray::array;
//! let m = Matrix::F32(array![[1.0f32, 2.0], [3.0, 4.0]]);
//! assert_eq!(m.precision(), Precision::F32);
//! assert_eq!(m.dim(), (2, 2));
//! let wide = m.to_precision(Precision::F64);
//! assert_eq!(wide.into_f64()[[1, 0]], 3.0);
//! ```

use crate::base::Precision;
use crate::error::{Error, Result};
use ndarray::Array2;
use ndarray::ArrayView2;

/// An owned matrix of either precision.
#[derive(Clone, Debug, PartialEq)]
pub enum Matrix {
    /// float32 values.
    F32(Array2<f32>),
    /// float64 values.
    F64(Array2<f64>),
}

impl Matrix {
    /// The precision of the values.
    pub fn precision(&self) -> Precision {
        match self {
            Matrix::F32(_) => Precision::F32,
            Matrix::F64(_) => Precision::F64,
        }
    }

    /// `(rows, columns)`.
    pub fn dim(&self) -> (usize, usize) {
        match self {
            Matrix::F32(a) => a.dim(),
            Matrix::F64(a) => a.dim(),
        }
    }

    /// The matrix in precision `p`: unchanged if it already is, else converted (float64 to
    /// float32 rounds to nearest; float32 to float64 is exact).
    pub fn to_precision(self, p: Precision) -> Matrix {
        match (self, p) {
            (Matrix::F64(a), Precision::F32) => Matrix::F32(a.mapv(|x| x as f32)),
            (Matrix::F32(a), Precision::F64) => Matrix::F64(a.mapv(f64::from)),
            (m, _) => m,
        }
    }

    /// Checks a pair: the same shape, at least two rows, every entry finite (naming `U` or
    /// `V` and the entry otherwise).
    ///
    /// # Errors
    /// [`crate::Error::ShapeMismatch`], [`crate::Error::BatchTooSmall`] or
    /// [`crate::Error::NonFinite`].
    pub fn check_pair(u: &Matrix, v: &Matrix) -> Result<()> {
        fn finite(m: &Matrix, which: &'static str) -> Result<()> {
            match m {
                Matrix::F32(a) => check_all_finite(a.view(), which),
                Matrix::F64(a) => check_all_finite(a.view(), which),
            }
        }
        match (u, v) {
            (Matrix::F32(a), Matrix::F32(b)) => check_pair(a.view(), b.view())?,
            (Matrix::F32(a), Matrix::F64(b)) => check_pair(a.view(), b.view())?,
            (Matrix::F64(a), Matrix::F32(b)) => check_pair(a.view(), b.view())?,
            (Matrix::F64(a), Matrix::F64(b)) => check_pair(a.view(), b.view())?,
        }
        finite(u, "U")?;
        finite(v, "V")
    }

    /// The precision a pair runs in by default: float32 when both are float32, else float64.
    pub fn common_precision(a: &Matrix, b: &Matrix) -> Precision {
        match (a, b) {
            (Matrix::F32(_), Matrix::F32(_)) => Precision::F32,
            _ => Precision::F64,
        }
    }

    /// The values as float64 (exact for float32).
    pub fn into_f64(self) -> Array2<f64> {
        match self {
            Matrix::F64(a) => a,
            Matrix::F32(a) => a.mapv(f64::from),
        }
    }
}

impl From<Array2<f64>> for Matrix {
    fn from(a: Array2<f64>) -> Self {
        Matrix::F64(a)
    }
}

impl From<Array2<f32>> for Matrix {
    fn from(a: Array2<f32>) -> Self {
        Matrix::F32(a)
    }
}

/// Checks that `U` and `V` have the same shape and at least two rows.
pub fn check_pair<A, B>(u: ArrayView2<A>, v: ArrayView2<B>) -> Result<()> {
    if u.dim() != v.dim() {
        return Err(Error::ShapeMismatch {
            u_rows: u.nrows(),
            u_cols: u.ncols(),
            v_rows: v.nrows(),
            v_cols: v.ncols(),
        });
    }
    crate::error::check_batch(u.nrows())?;
    Ok(())
}

/// Checks that every entry of `x` (float64 or float32) is finite; `which` names the matrix in
/// the error.
pub fn check_all_finite<T: Copy + Into<f64>>(x: ArrayView2<T>, which: &'static str) -> Result<()> {
    for ((row, col), &value) in x.indexed_iter() {
        if !value.into().is_finite() {
            return Err(Error::NonFinite { which, row, col });
        }
    }
    Ok(())
}
