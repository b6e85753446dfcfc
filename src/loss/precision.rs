//! The float32 path of the losses and their gradients (SPEC.md §1, "float32 path").
//!
//! The losses, gradients and blocking of [`super::driver`] with `R = f32` are the float32 path;
//! this module holds what is specific to it (the row normalisation of `f32` rows) and states its
//! contract:
//!
//! - the matrix products `S_B = U_B V^T`, `G_B V` and `G_B^T U_B` run in float32
//!   ([`super::sgemm`], the kernel chosen by measurement), as PyTorch's do;
//! - every entry's loss term and gradient is evaluated in float64 from the float32 `S_ij` and
//!   rounded once to float32 when stored in `G`; the sums over pairs (the loss, the row and
//!   column log-sum-exps, the per-row statistics) accumulate in float64;
//! - the row normalisation computes each norm in float64.
//!
//! # Accuracy (tested against the float64 path, `N` up to 4096, `d = 768`)
//! The loss agrees to a relative `1e-5` and each gradient to `1e-4` of its Frobenius norm
//! (SPEC §1.1; `t` up to 100, `tau` down to 0.01). The error comes from the float32 products:
//! `S_ij` carries an absolute error of order `sqrt(d) 2^-24`, which the logit `t S - b` scales
//! by `t`. At `N = 4096, d = 768` (`bench/loss_vs_torch.py`) the float32 and float64 losses
//! agree to `1e-8` relative, and both agree with PyTorch's float32 loss to `6e-8`.
//!
//! # Threads and reproducibility
//! As in [`super::driver`]: fixed chunks of the output per task, blocks in order, partial sums
//! added in chunk order, each product single-threaded within its task. Every result is bitwise
//! independent of the thread count (tested with pools of 1 and 2 threads).
//!
//! # Example
//! ```
//! use ccem::loss::precision::normalize_rows_f32;
//! use ccem::loss::{driver, BlockOptions, Loss};
//! use ndarray::Array2;
//! let x = Array2::from_shape_fn((6, 4), |(i, j)| ((i * 3 + j) % 5) as f32 - 2.0);
//! let u = normalize_rows_f32(x.view(), "U").unwrap().u;
//! let loss = Loss::sigmoid(10.0, 10.0).unwrap();
//! let whole = BlockOptions { block: 6, parallel: true };
//! let dense = driver::value_grad(&loss, u.view(), u.view(), whole);
//! let opts = BlockOptions { block: 4, parallel: true };
//! let blocked = driver::value_grad(&loss, u.view(), u.view(), opts);
//! assert!((dense.value - blocked.value).abs() < 1e-12 * dense.value);
//! ```

use super::LossGrad;
use crate::error::{Error, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Zip};

pub use crate::base::Precision;

/// A loss value (float64) with its float32 gradients with respect to the two embedding matrices.
pub type LossGradF32 = LossGrad<f32>;

/// float32 rows put on the unit sphere, with the norms they had (float64).
#[derive(Clone, Debug)]
pub struct NormalizedF32 {
    /// `u_i = x_i / ||x_i||`, rounded to float32.
    pub u: Array2<f32>,
    /// `||x_i||`, accumulated in float64.
    pub norms: Array1<f64>,
}

/// `u_i = x_i / ||x_i||` for every row, the norm accumulated in float64.
///
/// # Errors
/// A row of zero or non-finite norm ([`Error::ZeroRow`]), naming `which` and the row.
pub fn normalize_rows_f32(x: ArrayView2<f32>, which: &'static str) -> Result<NormalizedF32> {
    let norms: Array1<f64> = x
        .outer_iter()
        .map(|r| {
            r.iter()
                .map(|&a| f64::from(a) * f64::from(a))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    if let Some((row, &norm)) = norms
        .iter()
        .enumerate()
        .find(|(_, &nr)| !(nr.is_finite() && nr > 0.0))
    {
        return Err(Error::ZeroRow { which, row, norm });
    }
    let mut u = Array2::<f32>::zeros(x.raw_dim());
    Zip::from(u.rows_mut())
        .and(x.rows())
        .and(&norms)
        .for_each(|mut ur, xr, &nr| ur.zip_mut_with(&xr, |a, &b| *a = (f64::from(b) / nr) as f32));
    Ok(NormalizedF32 { u, norms })
}

/// `dL/dx_i = (dL/du_i - (u_i . dL/du_i) u_i) / ||x_i||` (SPEC §1), each row's dot product in
/// float64, the result rounded to float32.
pub fn backprop_normalization_f32(
    u: ArrayView2<f32>,
    norms: ArrayView1<f64>,
    du: ArrayView2<f32>,
) -> Array2<f32> {
    let mut dx = Array2::<f32>::zeros(du.raw_dim());
    Zip::from(dx.rows_mut())
        .and(u.rows())
        .and(du.rows())
        .and(&norms)
        .for_each(|mut out, ur, gr, &nr| {
            let proj: f64 = ur
                .iter()
                .zip(gr.iter())
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            Zip::from(&mut out)
                .and(&ur)
                .and(&gr)
                .for_each(|o, &a, &g| *o = ((f64::from(g) - proj * f64::from(a)) / nr) as f32);
        });
    dx
}

#[cfg(test)]
mod tests;
