//! `ccem.inspect`: measure an embedding against the CCEM and the theory.

use crate::convert::{self, matrix, value_error};
use ccem::loss::{blocked_loss, infonce_clip, normalize_rows, BlockOptions, Loss};
use ccem::Report;
use ndarray::Array2;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;

/// The keys of `ccem inspect --format json`: the inputs and the losses, the library's
/// [`Report`] (measured, then the sigmoid theory), and the measurement's other statistics.
#[derive(Serialize)]
struct InspectRecord {
    n: usize,
    d: usize,
    normalized: bool,
    t: f64,
    b: f64,
    tau: f64,
    sigmoid_loss: f64,
    infonce_loss: f64,
    infonce_loss_clip: f64,
    #[serde(flatten)]
    report: Report,
    s_pos_min: f64,
    s_pos_max: f64,
    s_neg_min: f64,
    s_neg_max: f64,
    within_u_mean: f64,
    within_u_std: f64,
    within_v_mean: f64,
    within_v_std: f64,
    c_from_s_pos: f64,
}

fn inspect_record(
    u: Array2<f64>,
    v: Array2<f64>,
    (sig, info): (Loss, Loss),
    normalize: bool,
    block: usize,
) -> ccem::Result<InspectRecord> {
    let (u, v) = if normalize {
        (
            normalize_rows(u.view(), "U")?.u,
            normalize_rows(v.view(), "V")?.u,
        )
    } else {
        (u, v)
    };
    // Checks the shapes and the values, measures, and compares with the theory.
    let report = Report::new(u.view(), v.view(), &sig)?;
    let m = report
        .measurement
        .expect("Report::new measures the embedding");
    let opts = BlockOptions {
        block,
        parallel: true,
    };
    let (Loss::Sigmoid { t, b }, Loss::InfoNce { tau }) = (sig, info) else {
        unreachable!("constructed as a sigmoid loss and InfoNCE");
    };
    let infonce_loss = blocked_loss(&info, u.view(), v.view(), opts);
    Ok(InspectRecord {
        n: report.n,
        d: report.d,
        normalized: normalize,
        t,
        b,
        tau,
        sigmoid_loss: blocked_loss(&sig, u.view(), v.view(), opts),
        infonce_loss,
        infonce_loss_clip: infonce_clip(infonce_loss),
        report,
        s_pos_min: m.pos.min,
        s_pos_max: m.pos.max,
        s_neg_min: m.neg.min,
        s_neg_max: m.neg.max,
        within_u_mean: m.within_u.mean,
        within_u_std: m.within_u.std,
        within_v_mean: m.within_v.mean,
        within_v_std: m.within_v.std,
        c_from_s_pos: m.c_from_s_pos,
    })
}

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
/// distance to it and ``meets_theory``. SigLIP's ``logit_scale`` is ``t`` and its
/// ``logit_bias`` is ``-b``.
///
/// Args:
///     U, V: ``N x d`` float32/float64 arrays, any layout; row i of U pairs with row i of V.
///     t: the sigmoid scale (default 10, SigLIP's initial value).
///     b: the sigmoid bias (default ``b = t``).
///     tau: the InfoNCE temperature (default 0.07).
///     normalize: put the rows on the unit sphere first (default).
///     block: rows per block (memory ``O(N * block)``).
///
/// Example:
///     >>> import ccem
///     >>> U, V = ccem.ccem_embedding(16, 16, 0.3, seed=0)
///     >>> r = ccem.inspect(U, V, t=2.0, b=2.0)
///     >>> round(r["c_fit"], 9), round(r["s_pos_mean"], 9)
///     (0.3, 0.4)
#[pyfunction]
#[pyo3(signature = (U, V, *, t=10.0, b=None, tau=0.07, normalize=true, block=256))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub fn inspect<'py>(
    py: Python<'py>,
    U: &Bound<'py, PyAny>,
    V: &Bound<'py, PyAny>,
    t: f64,
    b: Option<f64>,
    tau: f64,
    normalize: bool,
    block: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let sig = Loss::sigmoid(t, b.unwrap_or(t)).map_err(convert::error)?;
    let info = Loss::infonce(tau).map_err(convert::error)?;
    if block == 0 {
        return Err(value_error("block must be >= 1"));
    }
    let u = matrix(U, "U")?.data;
    let v = matrix(V, "V")?.data;
    let rec = py
        .detach(|| inspect_record(u, v, (sig, info), normalize, block))
        .map_err(convert::error)?;
    convert::record(py, &rec)
}
