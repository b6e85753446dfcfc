//! `ccem.sigmoid_loss`, `ccem.infonce_loss` and `ccem.ccem_embedding`.

use crate::convert::{self, matrix, matrix_out};
use crate::memory;
use ccem::geometry::Ccem;
use ccem::loss::evaluate::{evaluate, EvalOptions};
use ccem::loss::precision::Precision;
use ccem::loss::{infonce_clip, Loss, LossKind, LossParams};
use ccem::matrix::Matrix;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// Shared by both losses: read the arrays, compute without the GIL (the library's
/// [`evaluate`]), return a float or a tuple whose gradients have their inputs' dtypes.
/// `clip`: InfoNCE in open_clip's convention (the loss and its gradients through
/// [`infonce_clip`]).
#[allow(clippy::too_many_arguments)]
fn call<'py>(
    py: Python<'py>,
    loss: Loss,
    u: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    grad: bool,
    normalize: bool,
    precision: Option<&str>,
    clip: bool,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let limit = memory::limit(max_memory)?;
    let opts = EvalOptions {
        grad,
        normalize,
        precision: convert::parse::<Precision>(precision)?,
        ..EvalOptions::default()
    };
    let u = matrix(u, "U", limit)?;
    let v = matrix(v, "V", limit)?;
    let (pu, pv) = (u.precision(), v.precision());
    let r = py
        .detach(|| evaluate(&loss, u, v, &opts))
        .map_err(convert::error)?;
    let scale = |m: Matrix| match (clip, m) {
        // ClipLoss is linear in ccem's InfoNCE: so are its gradients.
        (true, Matrix::F64(a)) => Matrix::F64(a.mapv(infonce_clip)),
        (true, Matrix::F32(a)) => Matrix::F32(a.mapv(|x| x / 2.0)),
        (false, m) => m,
    };
    let value = if clip { infonce_clip(r.value) } else { r.value };
    match r.grads {
        None => Ok(value.into_pyobject(py)?.into_any()),
        Some((du, dv)) => Ok(PyTuple::new(
            py,
            [
                value.into_pyobject(py)?.into_any(),
                matrix_out(py, scale(du).to_precision(pu)),
                matrix_out(py, scale(dv).to_precision(pv)),
            ],
        )?
        .into_any()),
    }
}

/// The sigmoid (SigLIP) loss of the pairs ``(U[i], V[i])``.
///
/// ``L = (1/N) sum_ij softplus(-z_ij (t S_ij - b))`` with ``S = U V^T`` (rows normalised first
/// when ``normalize``), ``z_ii = 1`` and ``z_ij = -1`` otherwise. SigLIP's ``logit_scale``
/// (after ``exp``) is ``t`` and its ``logit_bias`` is ``-b``: google/siglip-base-patch16-224's
/// ``logit_bias = -12.93`` is ``b = 12.93`` here (its ``exp(logit_scale) = 117.33`` is ``t``). The value equals open_clip's ``SigLipLoss`` on the same logits.
///
/// Args:
///     U, V: ``N x d`` float32 or float64 arrays (any memory layout); row i of U pairs with row
///         i of V. Torch tensors: pass ``x.detach().cpu().numpy()``.
///     t: the scale (>= 0).
///     b: the bias (default: ``b = t``).
///     grad: also return the gradients.
///     normalize: put the rows on the unit sphere first; the gradients are then taken through
///         the normalisation, with respect to the rows as given.
///     precision: ``"f32"`` (float32 products, float64 sums, as PyTorch's float32 loss) or
///         ``"f64"``; default: ``"f32"`` when both arrays are float32, else ``"f64"``. float32
///         agrees with float64 to 1e-5 in the loss and 1e-4 of the gradient's norm.
///     max_memory: the most memory the copies of U and V may use, a size (``"512M"``) or a
///         number of bytes (default: the memory available), as ``ccem --max-memory``.
///
/// Returns:
///     the loss (a float), or with ``grad=True`` the tuple ``(loss, dU, dV)``; each gradient
///     has its input's dtype.
///
/// Raises:
///     TypeError: U or V is not float32/float64 (integers, float16, objects).
///     ValueError: shapes differ or are not 2-D, N < 2, NaN/inf entries, a zero row, t < 0,
///         an unknown precision, arrays larger than ``max_memory``.
///
/// Example:
///     >>> import ccem, numpy as np
///     >>> U, V = np.random.default_rng(0).normal(size=(2, 8, 4))
///     >>> loss, dU, dV = ccem.sigmoid_loss(U, V, t=10.0, b=10.0, grad=True)
///     >>> dU.shape
///     (8, 4)
#[pyfunction]
#[pyo3(signature = (U, V, t, b=None, *, grad=false, normalize=true, precision=None, max_memory=None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn sigmoid_loss<'py>(
    py: Python<'py>,
    U: &Bound<'py, PyAny>,
    V: &Bound<'py, PyAny>,
    t: f64,
    b: Option<f64>,
    grad: bool,
    normalize: bool,
    precision: Option<&str>,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let loss = Loss::sigmoid(t, b.unwrap_or(t)).map_err(convert::error)?;
    call(
        py, loss, U, V, grad, normalize, precision, false, max_memory,
    )
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
#[pyo3(signature = (U, V, tau, *, grad=false, normalize=true, convention="paper", precision=None, max_memory=None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn infonce_loss<'py>(
    py: Python<'py>,
    U: &Bound<'py, PyAny>,
    V: &Bound<'py, PyAny>,
    tau: f64,
    grad: bool,
    normalize: bool,
    convention: &str,
    precision: Option<&str>,
    max_memory: Option<&Bound<'py, PyAny>>,
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
    call(py, loss, U, V, grad, normalize, precision, clip, max_memory)
}

/// Any loss of ccem by name, and optionally its gradients (`docs/SPEC.md` §1, §1.6, §1.7).
///
/// Args:
///     U, V: the two embedding matrices (N x d, numpy, float32 or float64).
///     name: the loss: "sigmoid", "infonce", "simclr", "dcl", "dhel" or "spectral".
///     grad: also return dL/dU and dL/dV.
///     normalize: normalise the rows first (gradients through the normalisation).
///     precision: "f32" or "f64" (default: the inputs').
///     t, b, relative_bias: the sigmoid's scale and bias (b = relative_bias * t).
///     tau: the temperature of infonce, simclr, dcl and dhel.
///     within_view: the weight W >= 0 of within-view negatives (sigmoid, infonce).
///     max_memory: the most memory the copies of U and V may use, a size ("512M") or a
///         number of bytes (default: the memory available), as `ccem --max-memory`.
///
/// Returns:
///     L, or (L, dU, dV) with grad=True. `infonce` is ccem's sum of the two cross-entropies
///     (twice open_clip's ClipLoss); `simclr`, `dcl` and `dhel` are the means over the 2N
///     anchors of the reference code (solo-learn's `*_loss_func` with z = [U; V]).
///
/// Raises:
///     ValueError: an unknown name, a parameter the loss does not take or needs, or a bad
///         value (each message names the loss and the parameter); bad matrices.
///
/// Example:
///     >>> import numpy as np, ccem
///     >>> U = np.eye(3); V = np.eye(3)
///     >>> round(ccem.loss(U, V, "simclr", tau=0.5), 6) > 0
///     True
#[pyfunction]
#[pyo3(signature = (U, V, name, *, grad=false, normalize=true, precision=None, t=None, b=None, relative_bias=None, tau=None, within_view=None, max_memory=None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn loss<'py>(
    py: Python<'py>,
    U: &Bound<'py, PyAny>,
    V: &Bound<'py, PyAny>,
    name: &str,
    grad: bool,
    normalize: bool,
    precision: Option<&str>,
    t: Option<f64>,
    b: Option<f64>,
    relative_bias: Option<f64>,
    tau: Option<f64>,
    within_view: Option<f64>,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let kind: LossKind = name.parse().map_err(convert::error)?;
    let params = LossParams {
        t,
        b,
        relative_bias,
        tau,
        within_view,
    };
    let loss = Loss::build(kind, &params).map_err(convert::error)?;
    call(
        py, loss, U, V, grad, normalize, precision, false, max_memory,
    )
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
///     max_memory: the most memory the construction may use, a size (``"512M"``) or a number
///         of bytes (default: the memory available), as ``ccem --max-memory``.
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
#[pyo3(signature = (n, d, c, *, seed=None, max_memory=None))]
pub fn ccem_embedding<'py>(
    py: Python<'py>,
    n: i64,
    d: i64,
    c: f64,
    seed: Option<u64>,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let (n, d) = (convert::count(n, "n")?, convert::count(d, "d")?);
    let model = Ccem::from_c_within(n, d, c, memory::limit(max_memory)?).map_err(convert::error)?;
    let (u, v) = crate::interrupt::interruptible(py, |cancel| match seed {
        Some(s) => model.build_rotated_with(s, cancel),
        None => Ok(model.build()),
    })?;
    Ok((
        matrix_out(py, Matrix::F64(u)),
        matrix_out(py, Matrix::F64(v)),
    ))
}
