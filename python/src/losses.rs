//! `ccem.sigmoid_loss`, `ccem.infonce_loss` and `ccem.ccem_embedding`.

use crate::convert::{self, matrix, matrix_out};
use ccem::geometry::Ccem;
use ccem::loss::embedding::{backprop_normalization, check_all_finite, check_pair};
use ccem::loss::{
    blocked_loss, blocked_loss_grad, infonce_clip, normalize_rows, BlockOptions, Loss,
};
use ndarray::Array2;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// A loss and, when asked for, its gradients `(dL/dU, dL/dV)`.
type ValueGrad = (f64, Option<(Array2<f64>, Array2<f64>)>);

/// The loss of `(U, V)` and, with `grad`, its gradients with respect to the rows as given
/// (through the row normalisation when `normalize`). Memory `O(N * block)`: the library's blocked
/// kernels, bitwise independent of the thread count.
fn value_grad(
    loss: &Loss,
    u: Array2<f64>,
    v: Array2<f64>,
    grad: bool,
    normalize: bool,
) -> ccem::Result<ValueGrad> {
    check_pair(u.view(), v.view())?;
    check_all_finite(u.view(), "U")?;
    check_all_finite(v.view(), "V")?;
    let opts = BlockOptions::default();
    if !normalize {
        if !grad {
            return Ok((blocked_loss(loss, u.view(), v.view(), opts), None));
        }
        let lg = blocked_loss_grad(loss, u.view(), v.view(), opts);
        return Ok((lg.value, Some((lg.du, lg.dv))));
    }
    let nu = normalize_rows(u.view(), "U")?;
    let nv = normalize_rows(v.view(), "V")?;
    if !grad {
        return Ok((blocked_loss(loss, nu.u.view(), nv.u.view(), opts), None));
    }
    let lg = blocked_loss_grad(loss, nu.u.view(), nv.u.view(), opts);
    let dx = backprop_normalization(nu.u.view(), nu.norms.view(), lg.du.view());
    let dy = backprop_normalization(nv.u.view(), nv.norms.view(), lg.dv.view());
    Ok((lg.value, Some((dx, dy))))
}

/// Shared by both losses: read the arrays, compute without the GIL, return a float or a tuple.
/// `clip`: InfoNCE in open_clip's convention (the loss and its gradients through
/// [`infonce_clip`]).
fn call<'py>(
    py: Python<'py>,
    loss: Loss,
    u: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    grad: bool,
    normalize: bool,
    clip: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let u = matrix(u, "U")?;
    let v = matrix(v, "V")?;
    let (pu, pv) = (u.precision, v.precision);
    let (mut value, mut grads) = py
        .detach(|| value_grad(&loss, u.data, v.data, grad, normalize))
        .map_err(convert::error)?;
    if clip {
        // ClipLoss is linear in ccem's InfoNCE: so are its gradients.
        value = infonce_clip(value);
        if let Some((du, dv)) = &mut grads {
            du.mapv_inplace(infonce_clip);
            dv.mapv_inplace(infonce_clip);
        }
    }
    match grads {
        None => Ok(value.into_pyobject(py)?.into_any()),
        Some((du, dv)) => Ok(PyTuple::new(
            py,
            [
                value.into_pyobject(py)?.into_any(),
                matrix_out(py, du, pu),
                matrix_out(py, dv, pv),
            ],
        )?
        .into_any()),
    }
}

/// The sigmoid (SigLIP) loss of the pairs ``(U[i], V[i])``.
///
/// ``L = (1/N) sum_ij softplus(-z_ij (t S_ij - b))`` with ``S = U V^T`` (rows normalised first
/// when ``normalize``), ``z_ii = 1`` and ``z_ij = -1`` otherwise. SigLIP's ``logit_scale``
/// (after ``exp``) is ``t`` and its ``logit_bias`` is ``-b``: a released model's bias of -12.7 is
/// ``b = 12.7`` here. The value equals open_clip's ``SigLipLoss`` on the same logits.
///
/// Args:
///     U, V: ``N x d`` float32 or float64 arrays (any memory layout); row i of U pairs with row
///         i of V. Torch tensors: pass ``x.detach().cpu().numpy()``.
///     t: the scale (>= 0).
///     b: the bias (default: ``b = t``).
///     grad: also return the gradients.
///     normalize: put the rows on the unit sphere first; the gradients are then taken through
///         the normalisation, with respect to the rows as given.
///
/// Returns:
///     the loss (a float), or with ``grad=True`` the tuple ``(loss, dU, dV)``; each gradient
///     has its input's dtype (computed in float64).
///
/// Raises:
///     TypeError: U or V is not float32/float64 (integers, float16, objects).
///     ValueError: shapes differ or are not 2-D, N < 2, NaN/inf entries, a zero row, t < 0.
///
/// Example:
///     >>> import ccem, numpy as np
///     >>> U, V = np.random.default_rng(0).normal(size=(2, 8, 4))
///     >>> loss, dU, dV = ccem.sigmoid_loss(U, V, t=10.0, b=10.0, grad=True)
///     >>> dU.shape
///     (8, 4)
#[pyfunction]
#[pyo3(signature = (U, V, t, b=None, *, grad=false, normalize=true))]
#[allow(non_snake_case)]
pub fn sigmoid_loss<'py>(
    py: Python<'py>,
    U: &Bound<'py, PyAny>,
    V: &Bound<'py, PyAny>,
    t: f64,
    b: Option<f64>,
    grad: bool,
    normalize: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let loss = Loss::sigmoid(t, b.unwrap_or(t)).map_err(convert::error)?;
    call(py, loss, U, V, grad, normalize, false)
}

/// The symmetric InfoNCE (CLIP) loss of the pairs ``(U[i], V[i])`` at temperature ``tau``.
///
/// ``L = (1/N) sum_i [lse_j(S_ij/tau) - S_ii/tau] + (1/N) sum_j [lse_i(S_ij/tau) - S_jj/tau]``:
/// the *sum* of the row and column cross-entropies (the paper's definition), which is twice
/// open_clip's ``ClipLoss`` (their mean); divide by 2 to compare with CLIP training logs. CLIP's
/// ``logit_scale`` (after ``exp``) is ``1/tau``.
///
/// Args, returns and errors as :func:`sigmoid_loss`, with ``tau > 0`` in place of ``t``, ``b``,
/// and:
///
/// Args:
///     convention: ``"paper"`` (the default) for the sum of the two cross-entropies, as above,
///         ``ccem``'s ``loss`` everywhere; ``"clip"`` for open_clip's ``ClipLoss``, their mean
///         (half the value, and half the gradients): the number a CLIP training log shows, and
///         ``ccem``'s ``loss_clip`` / ``infonce_loss_clip`` keys.
///
/// Example:
///     >>> import ccem, numpy as np
///     >>> U, V = ccem.ccem_embedding(8, 8, 0.0)   # the simplex ETF
///     >>> round(ccem.infonce_loss(U, V, 0.5), 6)
///     1.075219
///     >>> ccem.infonce_loss(U, V, 0.5, convention="clip") == ccem.infonce_loss(U, V, 0.5) / 2
///     True
#[pyfunction]
#[pyo3(signature = (U, V, tau, *, grad=false, normalize=true, convention="paper"))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn infonce_loss<'py>(
    py: Python<'py>,
    U: &Bound<'py, PyAny>,
    V: &Bound<'py, PyAny>,
    tau: f64,
    grad: bool,
    normalize: bool,
    convention: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let clip = match convention {
        "paper" => false,
        "clip" => true,
        other => {
            return Err(convert::value_error(format!(
                "invalid convention '{other}': use 'paper' (the sum of the two cross-entropies) \
                 or 'clip' (open_clip's ClipLoss, their mean)"
            )))
        }
    };
    let loss = Loss::infonce(tau).map_err(convert::error)?;
    call(py, loss, U, V, grad, normalize, clip)
}

/// The double-Constant Embedding Model ``(U, V)``: ``N`` pairs in ``R^d`` with parameter ``c``.
///
/// ``u_i = sqrt(1-c) x_i + sqrt(c) e``, ``v_i = sqrt(1-c) x_i - sqrt(c) e`` with ``x_i`` the
/// simplex ETF and ``e`` orthogonal to it, so ``s_pos = 1 - 2c``,
/// ``s_neg = -(1-c)/(N-1) - c``. ``c = 0`` is the simplex ETF, ``c = 1`` the antipodal embedding.
/// With a ``seed``, both are rotated by the same random orthogonal ``d x d`` matrix.
///
/// Args:
///     n: batch size (>= 2).
///     d: dimension (>= n).
///     c: the CCEM parameter in [0, 1] (e.g. ``ccem.theory(...)["c_star"]``).
///     seed: rotate by a random orthogonal matrix drawn from this seed.
///
/// Returns:
///     ``(U, V)``, two ``n x d`` float64 arrays with unit rows.
///
/// Example:
///     >>> import ccem
///     >>> U, V = ccem.ccem_embedding(10, 12, 0.25, seed=1)
///     >>> round(float((U * V).sum(1).mean()), 12)   # s_pos = 1 - 2c
///     0.5
#[pyfunction]
#[pyo3(signature = (n, d, c, *, seed=None))]
pub fn ccem_embedding<'py>(
    py: Python<'py>,
    n: i64,
    d: i64,
    c: f64,
    seed: Option<u64>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let (n, d) = (convert::count(n, "n")?, convert::count(d, "d")?);
    let model = Ccem::from_c(n, d, c).map_err(convert::error)?;
    let (u, v) = py.detach(|| match seed {
        Some(s) => model.build_rotated(s),
        None => model.build(),
    });
    Ok((
        matrix_out(py, u, convert::Precision::F64),
        matrix_out(py, v, convert::Precision::F64),
    ))
}
