//! From similarities to embeddings (SPEC.md §1, "Gradients").
//!
//! With `S = U V^T` and `G = dL/dS`: `dL/dU = G V` and `dL/dV = G^T U`. Through the row
//! normalisation `u = x / ||x||`: `dL/dx = (I - u u^T)(dL/du) / ||x||`.

use super::Loss;
use crate::error::{Error, Result};
use crate::loss::ContrastiveLoss;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};

pub use super::driver::LossGrad;

/// Rows put on the unit sphere, with the norms they had.
#[derive(Clone, Debug)]
pub struct Normalized {
    /// `u_i = x_i / ||x_i||`.
    pub u: Array2<f64>,
    /// `||x_i||`.
    pub norms: Array1<f64>,
}

pub use crate::matrix::{check_all_finite, check_pair};

/// `u_i = x_i / ||x_i||` for every row.
///
/// # Errors
/// A non-finite entry ([`Error::NonFinite`]), or a row of zero norm or of a norm that overflows
/// ([`Error::ZeroRow`]), naming `which` and the row.
pub fn normalize_rows(x: ArrayView2<f64>, which: &'static str) -> Result<Normalized> {
    check_all_finite(x, which)?;
    // Scaled where the squares would under- or overflow (`numerics::norm_from`).
    let norms: Array1<f64> = x
        .outer_iter()
        .map(|r| crate::numerics::norm_from(r.dot(&r), r.iter().copied()))
        .collect();
    if let Some((row, &norm)) = norms
        .iter()
        .enumerate()
        .find(|(_, &nr)| !(nr.is_finite() && nr > 0.0))
    {
        return Err(Error::ZeroRow { which, row, norm });
    }
    let mut u = x.to_owned();
    Zip::from(u.rows_mut())
        .and(&norms)
        .for_each(|mut r, &nr| r /= nr);
    Ok(Normalized { u, norms })
}

/// `dL/dx_i = (dL/du_i - (u_i . dL/du_i) u_i) / ||x_i||`: the gradient through the normalisation.
pub fn backprop_normalization(
    u: ArrayView2<f64>,
    norms: ArrayView1<f64>,
    du: ArrayView2<f64>,
) -> Array2<f64> {
    let mut dx = du.to_owned();
    Zip::from(dx.rows_mut())
        .and(u.rows())
        .and(&norms)
        .for_each(|mut g, ur, &nr| {
            let proj = g.dot(&ur);
            g.scaled_add(-proj, &ur);
            g /= nr;
        });
    dx
}

/// `S = U V^T`.
pub fn similarity(u: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
    u.dot(&v.t())
}

/// The loss of `(U, V)` and its gradients `dL/dU = G V`, `dL/dV = G^T U`, computed densely
/// (`S` and `G` held in full: memory `O(N^2)`). For large `N` use
/// [`driver::value_grad`](super::driver::value_grad).
///
/// The rows are taken as given (not normalised); see [`loss_grad_raw`] for raw inputs.
pub fn loss_grad_uv(loss: &Loss, u: ArrayView2<f64>, v: ArrayView2<f64>) -> LossGrad {
    let n = u.nrows();
    let s = similarity(u, v);
    let mut g = Array2::<f64>::zeros((n, n));
    let value = loss.value_grad_s(s.view(), g.view_mut());
    let mut du = Array2::<f64>::zeros(u.raw_dim());
    let mut dv = Array2::<f64>::zeros(v.raw_dim());
    general_mat_mul(1.0, &g, &v, 0.0, &mut du);
    general_mat_mul(1.0, &g.t(), &u, 0.0, &mut dv);
    LossGrad { value, du, dv }
}

/// The loss of the row-normalised `(X / ||X||, Y / ||Y||)` and its gradient with respect to the
/// raw `X` and `Y`, through the normalisation (SPEC §1).
///
/// # Errors
/// Shapes differ, `N < 2`, or a row cannot be normalised.
pub fn loss_grad_raw(loss: &Loss, x: ArrayView2<f64>, y: ArrayView2<f64>) -> Result<LossGrad> {
    check_pair(x, y)?;
    let nx = normalize_rows(x, "X")?;
    let ny = normalize_rows(y, "Y")?;
    let lg = loss_grad_uv(loss, nx.u.view(), ny.u.view());
    Ok(LossGrad {
        value: lg.value,
        du: backprop_normalization(nx.u.view(), nx.norms.view(), lg.du.view()),
        dv: backprop_normalization(ny.u.view(), ny.norms.view(), lg.dv.view()),
    })
}

/// Mean of the positive similarities `S_ii` and of the negative ones `S_ij, i != j`, without
/// forming `S`: `sum_{i,j} S_ij = (sum_i u_i) . (sum_j v_j)`.
pub fn mean_similarities(u: ArrayView2<f64>, v: ArrayView2<f64>) -> (f64, f64) {
    let n = u.nrows() as f64;
    let pos: f64 = Zip::from(u.rows())
        .and(v.rows())
        .fold(0.0, |acc, a, b| acc + a.dot(&b));
    let total = u.sum_axis(Axis(0)).dot(&v.sum_axis(Axis(0)));
    (pos / n, (total - pos) / (n * (n - 1.0)))
}

/// The row normalisation `u = x / ||x||` and its backward pass (SPEC §1) in each precision:
/// [`normalize_rows`] and [`backprop_normalization`] for `f64`,
/// [`super::precision::normalize_rows_f32`] and [`super::precision::backprop_normalization_f32`]
/// for `f32` (norms accumulated in `f64`).
pub(crate) trait RowNormalize: crate::base::Real {
    /// The rows on the unit sphere and the norms they had.
    fn normalize(x: ArrayView2<Self>, which: &'static str) -> Result<(Array2<Self>, Array1<f64>)>;
    /// `dL/dx` from `dL/du` (SPEC §1).
    fn backprop(u: ArrayView2<Self>, norms: ArrayView1<f64>, du: ArrayView2<Self>) -> Array2<Self>;
    /// The matrix in [`crate::matrix::Matrix`].
    fn wrap(a: Array2<Self>) -> crate::matrix::Matrix;
}

impl RowNormalize for f64 {
    fn normalize(x: ArrayView2<f64>, which: &'static str) -> Result<(Array2<f64>, Array1<f64>)> {
        let n = normalize_rows(x, which)?;
        Ok((n.u, n.norms))
    }
    fn backprop(u: ArrayView2<f64>, norms: ArrayView1<f64>, du: ArrayView2<f64>) -> Array2<f64> {
        backprop_normalization(u, norms, du)
    }
    fn wrap(a: Array2<f64>) -> crate::matrix::Matrix {
        crate::matrix::Matrix::F64(a)
    }
}

impl RowNormalize for f32 {
    fn normalize(x: ArrayView2<f32>, which: &'static str) -> Result<(Array2<f32>, Array1<f64>)> {
        let n = super::precision::normalize_rows_f32(x, which)?;
        Ok((n.u, n.norms))
    }
    fn backprop(u: ArrayView2<f32>, norms: ArrayView1<f64>, du: ArrayView2<f32>) -> Array2<f32> {
        super::precision::backprop_normalization_f32(u, norms, du)
    }
    fn wrap(a: Array2<f32>) -> crate::matrix::Matrix {
        crate::matrix::Matrix::F32(a)
    }
}
