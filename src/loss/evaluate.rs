//! [`evaluate`]: a loss, and on request its gradients, for a pair of matrices in either
//! precision: the one entry point the Python package (and any caller with embeddings of unknown
//! precision) uses.
//!
//! float32 input runs on the float32 path ([`super::precision`]: float32 products, float64
//! sums; SPEC §1.1), float64 input on the float64 path ([`super::driver`]), unless
//! [`EvalOptions::precision`] says otherwise. Both are blocked (memory `O(N * block)`) and bitwise
//! independent of the thread count.
//!
//! ```
//! use ccem::loss::evaluate::{evaluate, EvalOptions};
//! use ccem::loss::precision::Precision;
//! use ccem::loss::Loss;
//! use ccem::matrix::Matrix;
//! use ndarray::array;
//!
//! let u = array![[1.0f32, 0.0], [0.0, 1.0], [-1.0, 0.5]];
//! let loss = Loss::sigmoid(10.0, 10.0)?;
//! let opts = EvalOptions { grad: true, ..EvalOptions::default() };
//! let r = evaluate(&loss, Matrix::F32(u.clone()), Matrix::F32(u), &opts)?;
//! assert_eq!(r.precision, Precision::F32);
//! let (du, _) = r.grads.unwrap();
//! assert_eq!(du.precision(), Precision::F32);
//! # Ok::<(), ccem::Error>(())
//! ```

use super::contrastive::ContrastiveLoss;
use super::driver::{self, LossGrad};
use super::embedding::RowNormalize;
use super::{BlockOptions, Loss};
use crate::base::Precision;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use ndarray::Array2;

/// The blocking that is fastest in each precision on the development machine
/// (`examples/loss_scale`, `N = 4096, d = 768`): [`crate::base::Real::DEFAULT_BLOCK`] rows, 256 in float64
/// (`block x N` float64 of extra memory), 1024 in float32, where larger blocks amortise the
/// packing of the float32 products.
pub fn default_block(p: Precision) -> BlockOptions {
    match p {
        Precision::F32 => BlockOptions::for_precision::<f32>(),
        Precision::F64 => BlockOptions::for_precision::<f64>(),
    }
}

/// What [`evaluate`] computes, and how.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalOptions {
    /// Also the gradients with respect to the rows as given.
    pub grad: bool,
    /// Put the rows on the unit sphere first (the gradients then go through the normalisation).
    pub normalize: bool,
    /// The precision of the products; `None`: float32 when both inputs are float32, else
    /// float64.
    pub precision: Option<Precision>,
    /// The blocking; `None`: [`default_block`] of the precision.
    pub block: Option<BlockOptions>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            grad: false,
            normalize: true,
            precision: None,
            block: None,
        }
    }
}

/// A loss value with, on request, its gradients `(dL/dU, dL/dV)` in the precision it was
/// computed in.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// The loss.
    pub value: f64,
    /// The gradients, when asked for.
    pub grads: Option<(Matrix, Matrix)>,
    /// The precision of the computation.
    pub precision: Precision,
}

/// The generic body of [`evaluate_with`] in precision `R`.
fn run<R: RowNormalize, L: ContrastiveLoss + ?Sized>(
    loss: &L,
    u: Array2<R>,
    v: Array2<R>,
    opts: &EvalOptions,
    block: BlockOptions,
) -> Result<(f64, Option<(Matrix, Matrix)>)> {
    let (u, v, norms) = if opts.normalize {
        let (u, nu) = R::normalize(u.view(), "U")?;
        let (v, nv) = R::normalize(v.view(), "V")?;
        (u, v, Some((nu, nv)))
    } else {
        (u, v, None)
    };
    if !opts.grad {
        return Ok((driver::value(loss, u.view(), v.view(), block), None));
    }
    let LossGrad { value, du, dv } = driver::value_grad(loss, u.view(), v.view(), block);
    let (du, dv) = match norms {
        Some((nu, nv)) => (
            R::backprop(u.view(), nu.view(), du.view()),
            R::backprop(v.view(), nv.view(), dv.view()),
        ),
        None => (du, dv),
    };
    Ok((value, Some((R::wrap(du), R::wrap(dv)))))
}

/// The loss of `(U, V)` (module documentation): [`evaluate_with`] for a registered [`Loss`].
///
/// # Errors
/// Shapes differ, `N < 2`, a non-finite entry, (with `normalize`) a zero row, or a loss or
/// gradient that overflows the precision.
pub fn evaluate(loss: &Loss, u: Matrix, v: Matrix, opts: &EvalOptions) -> Result<Evaluation> {
    evaluate_with(loss, u, v, opts)
}

/// The loss of `(U, V)` for any [`ContrastiveLoss`], a registered one or one defined outside the
/// crate (module documentation).
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_with<L: ContrastiveLoss + ?Sized>(
    loss: &L,
    u: Matrix,
    v: Matrix,
    opts: &EvalOptions,
) -> Result<Evaluation> {
    Matrix::check_pair(&u, &v)?;
    let precision = opts
        .precision
        .unwrap_or_else(|| Matrix::common_precision(&u, &v));
    let block = opts.block.unwrap_or_else(|| default_block(precision));
    let (value, grads) = match (u.to_precision(precision), v.to_precision(precision)) {
        (Matrix::F64(u), Matrix::F64(v)) => run(loss, u, v, opts, block)?,
        (Matrix::F32(u), Matrix::F32(v)) => run(loss, u, v, opts, block)?,
        _ => unreachable!("both converted to one precision above"),
    };
    let finite = |m: &Matrix| match m {
        Matrix::F32(a) => a.iter().all(|x| x.is_finite()),
        Matrix::F64(a) => a.iter().all(|x| x.is_finite()),
    };
    if !value.is_finite()
        || grads
            .as_ref()
            .is_some_and(|(a, b)| !finite(a) || !finite(b))
    {
        return Err(Error::Config(format!(
            "the {} loss or its gradient overflows {precision} ({value}): the rows (or the \
             logits) are too large; normalise the rows or scale them down",
            loss.name()
        )));
    }
    Ok(Evaluation {
        value,
        grads,
        precision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn data(n: usize, d: usize, seed: usize) -> Array2<f64> {
        Array2::from_shape_fn((n, d), |(i, j)| {
            (((i * 31 + j * 17 + seed * 7) % 23) as f64 / 23.0 - 0.45)
                + if i % d == j { 1.0 } else { 0.0 }
        })
    }

    #[test]
    fn both_precisions_agree_and_keep_their_own() {
        let (x, y) = (data(40, 12, 1), data(40, 12, 2));
        for loss in [
            Loss::sigmoid(5.0, 2.0).unwrap(),
            Loss::infonce(0.1).unwrap(),
        ] {
            for normalize in [true, false] {
                let opts = EvalOptions {
                    grad: true,
                    normalize,
                    ..EvalOptions::default()
                };
                let r64 = evaluate(&loss, x.clone().into(), y.clone().into(), &opts).unwrap();
                let r32 = evaluate(
                    &loss,
                    x.mapv(|a| a as f32).into(),
                    y.mapv(|a| a as f32).into(),
                    &opts,
                )
                .unwrap();
                assert_eq!(
                    (r64.precision, r32.precision),
                    (Precision::F64, Precision::F32)
                );
                assert!((r32.value - r64.value).abs() <= 1e-5 * r64.value.abs());
                let (a, _) = r32.grads.unwrap();
                let (b, _) = r64.grads.unwrap();
                assert_eq!(a.precision(), Precision::F32);
                let (a, b) = (a.into_f64(), b.into_f64());
                let err = (&a - &b).mapv(|e| e * e).sum().sqrt();
                let norm = b.mapv(|e| e * e).sum().sqrt();
                assert!(err <= 1e-4 * norm, "{err} vs {norm}");
                // The value alone is the value of the gradient call.
                let plain = EvalOptions {
                    grad: false,
                    ..opts
                };
                let v = evaluate(&loss, x.clone().into(), y.clone().into(), &plain).unwrap();
                assert_eq!(v.value, r64.value);
                assert!(v.grads.is_none());
            }
        }
    }

    #[test]
    fn precision_can_be_forced_and_mixed_inputs_run_in_f64() {
        let (x, y) = (data(10, 4, 3), data(10, 4, 4));
        let loss = Loss::sigmoid(3.0, 1.0).unwrap();
        let forced = EvalOptions {
            precision: Some(Precision::F32),
            ..EvalOptions::default()
        };
        let a = evaluate(&loss, x.clone().into(), y.clone().into(), &forced).unwrap();
        let b = evaluate(
            &loss,
            x.mapv(|a| a as f32).into(),
            y.mapv(|a| a as f32).into(),
            &EvalOptions::default(),
        )
        .unwrap();
        assert_eq!(a.value, b.value);
        let mixed = evaluate(
            &loss,
            x.mapv(|a| a as f32).into(),
            y.clone().into(),
            &EvalOptions::default(),
        )
        .unwrap();
        assert_eq!(mixed.precision, Precision::F64);
    }

    #[test]
    fn bad_input_is_an_error_in_both_precisions() {
        let loss = Loss::sigmoid(3.0, 1.0).unwrap();
        let o = EvalOptions::default();
        let mut x = data(5, 3, 0);
        x[[1, 1]] = f64::NAN;
        assert!(evaluate(&loss, x.clone().into(), data(5, 3, 1).into(), &o).is_err());
        assert!(evaluate(
            &loss,
            x.mapv(|a| a as f32).into(),
            data(5, 3, 1).mapv(|a| a as f32).into(),
            &o
        )
        .is_err());
        assert!(evaluate(&loss, data(5, 3, 0).into(), data(4, 3, 1).into(), &o).is_err());
        let mut z = data(5, 3, 0).mapv(|a| a as f32);
        z.row_mut(2).fill(0.0);
        assert!(evaluate(&loss, z.into(), data(5, 3, 1).mapv(|a| a as f32).into(), &o).is_err());
        assert!(evaluate(&loss, data(1, 3, 0).into(), data(1, 3, 1).into(), &o).is_err());
        // Overflowing products are an error, not a NaN or an infinity.
        let raw = EvalOptions {
            normalize: false,
            grad: true,
            ..EvalOptions::default()
        };
        let huge = Array2::from_elem((3, 2), 1e200);
        let e = evaluate(&loss, huge.clone().into(), huge.into(), &raw).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
        let h32 = Array2::from_elem((3, 2), 1e30f32);
        assert!(evaluate(&loss, h32.clone().into(), h32.into(), &raw).is_err());
    }
}
