//! `ccem.inspect`: measure an embedding against the CCEM and the theory.

use crate::convert::{self, matrix};
use crate::memory;
use ccem::inspect::inspect as inspect_pair;
use ccem::options::{InspectOptions, Spelling};
use pyo3::prelude::*;
use pyo3::types::PyDict;

// The defaults in the signature below are literals so that `help()` shows them (a constant
// shows as `...`); they must be the library's (checked at compile time).
const _: () = assert!(
    ccem::options::DEFAULT_INSPECT_T == 10.0
        && ccem::options::DEFAULT_INSPECT_TAU == 0.07
        && ccem::geometry::DEFAULT_MARGIN_QUANTILE == 0.05
        && ccem::inspect::DEFAULT_INSPECT_BLOCK == 1024,
    "update the defaults of ccem.inspect to the library's"
);

/// Measures an embedding ``(U, V)`` against the CCEM and the theory; the keys of
/// ``ccem inspect --format json``.
///
/// Statistics of the positive similarities ``S_ii`` (``s_pos_mean``, ``s_pos_std``, min, max;
/// ``std`` is the population standard deviation), the negative ones ``S_ij, i != j``
/// (``s_neg_*``), the within-modality ones (``within_u_*``, ``within_v_*``), the least-squares
/// CCEM parameter ``c_fit`` with its ``gram_distance``, both losses (``sigmoid_loss`` at ``t``,
/// ``b``; ``infonce_loss`` at ``tau``, the sum of both cross-entropies = 2x open_clip's
/// ``ClipLoss``, and ``infonce_loss_clip``, the same in CLIP's convention), the theory's
/// prediction for ``N``, ``d``, ``t``, ``b`` (``theory_*``; ``None`` for ``d < N``), the Gram
/// distance to it and ``meets_theory``, and Thm 5.2's ``alignment_slack``
/// ``1 + s_neg_mean + 1/(N-1) - s_pos_mean`` (Lee et al. 2025; ``>= 0`` for unit rows, ``None``
/// with ``normalize=False``). SigLIP's ``logit_scale`` is ``t`` and its
/// ``logit_bias`` is ``-b``.
///
/// Args:
///     U, V: ``N x d`` float32/float64 arrays, any layout; row i of U pairs with row i of V.
///     t: the sigmoid scale (default 10, SigLIP's initial value).
///     b: the sigmoid bias, a number or ``"tied"`` (default ``b = t``).
///     tau: the InfoNCE temperature (default 0.07).
///     normalize: put the rows on the unit sphere first (default).
///     margin_quantile: the level p of ``margin_quantile`` (default 0.05).
///     precision: ``"f32"`` or ``"f64"``; default: ``"f32"`` when both arrays are float32,
///         else ``"f64"``.
///     quantile: ``"exact"`` (a second pass) or ``"histogram"`` (none; the error bound is
///         ``margin_quantile_error``); default: exact up to N = 4096.
///     block: rows per block.
///     loss: a registry loss name (``ccem.loss``'s) to evaluate too: ``loss_value``, with ``t``,
///         ``b``, ``tau`` as it takes them.
///     within_view: the within-view weight ``W`` of that loss (``sigmoid``, ``infonce``).
///     max_memory: the most memory the copies and passes may use, a size (``"512M"``) or a
///         number of bytes (default: the memory available), as ``ccem --max-memory``.
///
/// Everything comes from one blocked pass over ``U V^T`` (``passes`` says how many ran); the
/// within-modality statistics from ``sum_i u_i`` and ``U^T U``.
///
/// Example:
///     >>> import ccem
///     >>> U, V = ccem.ccem_embedding(16, 16, 0.3, seed=0)
///     >>> r = ccem.inspect(U, V, t=2.0, b=2.0)
///     >>> round(r["c_fit"], 9), round(r["s_pos_mean"], 9)
///     (0.3, 0.4)
#[pyfunction]
#[pyo3(signature = (U, V, *, t=10.0, b=None, tau=0.07, normalize=true, margin_quantile=0.05, precision=None, quantile=None, block=1024, loss=None, within_view=None, max_memory=None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn inspect<'py>(
    py: Python<'py>,
    U: &Bound<'py, PyAny>,
    V: &Bound<'py, PyAny>,
    t: f64,
    b: Option<&Bound<'py, PyAny>>,
    tau: f64,
    normalize: bool,
    margin_quantile: f64,
    precision: Option<&str>,
    quantile: Option<&str>,
    block: i64,
    loss: Option<String>,
    within_view: Option<f64>,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = InspectOptions {
        t,
        b: convert::bias_arg(b)?,
        tau,
        normalize,
        margin_quantile,
        precision: precision.map(str::to_string),
        quantile: quantile.map(str::to_string),
        block: convert::count(block, "block")?,
        loss,
        within_view,
        max_memory: memory::arg(max_memory)?,
    }
    .resolve(Spelling::Keyword)
    .map_err(convert::error)?;
    let u = matrix(U, "U", cfg.max_memory)?;
    let v = matrix(V, "V", cfg.max_memory)?;
    let rec = py
        .detach(|| inspect_pair(u, v, &cfg))
        .map_err(convert::error)?;
    convert::record(py, &rec)
}
