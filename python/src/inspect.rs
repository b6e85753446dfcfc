//! `ccem.inspect`: measure an embedding against the CCEM and the theory.

use crate::convert::{self, matrix, value_error};
use ccem::geometry::{measure, Stats};
use ccem::loss::embedding::{check_all_finite, check_pair};
use ccem::loss::{blocked_loss, normalize_rows, BlockOptions, Loss};
use ccem::theory::{Phase, SigmoidOptimum};
use ndarray::Array2;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;

/// The keys of `ccem inspect --format json`.
#[derive(Serialize)]
struct InspectRecord {
    n: usize,
    d: usize,
    normalized: bool,
    s_pos_mean: f64,
    s_pos_std: f64,
    s_pos_min: f64,
    s_pos_max: f64,
    s_neg_mean: f64,
    s_neg_std: f64,
    s_neg_min: f64,
    s_neg_max: f64,
    within_u_mean: f64,
    within_u_std: f64,
    within_v_mean: f64,
    within_v_std: f64,
    c_fit: f64,
    c_from_s_pos: f64,
    gram_distance: f64,
    t: f64,
    b: f64,
    sigmoid_loss: f64,
    tau: f64,
    infonce_loss: f64,
    theory_c_star: f64,
    theory_s_pos: f64,
    theory_phase: Phase,
    theory_loss: f64,
    gram_distance_to_theory: f64,
    theory_applies: bool,
}

fn inspect_record(
    u: Array2<f64>,
    v: Array2<f64>,
    sig: Loss,
    info: Loss,
    normalize: bool,
    block: usize,
) -> ccem::Result<InspectRecord> {
    check_pair(u.view(), v.view())?;
    check_all_finite(u.view(), "U")?;
    check_all_finite(v.view(), "V")?;
    let (u, v) = if normalize {
        (
            normalize_rows(u.view(), "U")?.u,
            normalize_rows(v.view(), "V")?.u,
        )
    } else {
        (u, v)
    };
    let opts = BlockOptions {
        block,
        parallel: true,
    };
    let m = measure(u.view(), v.view(), opts);
    let (n, d) = u.dim();
    let (t, b) = match sig {
        Loss::Sigmoid { t, b } => (t, b),
        Loss::InfoNce { .. } => unreachable!("constructed as sigmoid"),
    };
    let tau = match info {
        Loss::InfoNce { tau } => tau,
        Loss::Sigmoid { .. } => unreachable!("constructed as infonce"),
    };
    let theory = SigmoidOptimum::solve(n, t, b)?;
    let pick = |s: &Stats| (s.mean, s.std, s.min, s.max);
    let (pm, ps, pmin, pmax) = pick(&m.pos);
    let (nm, ns, nmin, nmax) = pick(&m.neg);
    Ok(InspectRecord {
        n,
        d,
        normalized: normalize,
        s_pos_mean: pm,
        s_pos_std: ps,
        s_pos_min: pmin,
        s_pos_max: pmax,
        s_neg_mean: nm,
        s_neg_std: ns,
        s_neg_min: nmin,
        s_neg_max: nmax,
        within_u_mean: m.within_u.mean,
        within_u_std: m.within_u.std,
        within_v_mean: m.within_v.mean,
        within_v_std: m.within_v.std,
        c_fit: m.c_fit,
        c_from_s_pos: m.c_from_s_pos,
        gram_distance: m.gram_distance,
        t,
        b,
        sigmoid_loss: blocked_loss(&sig, u.view(), v.view(), opts),
        tau,
        infonce_loss: blocked_loss(&info, u.view(), v.view(), opts),
        theory_c_star: theory.c_star,
        theory_s_pos: theory.s_pos,
        theory_phase: theory.phase,
        theory_loss: theory.loss,
        gram_distance_to_theory: if theory.c_star.is_nan() {
            f64::NAN
        } else {
            m.gram_distance_to(theory.c_star)
        },
        theory_applies: d >= n,
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
/// ``ClipLoss``), and the theory's optimum for ``N``, ``t``, ``b`` (``theory_*``; it applies for
/// ``d >= N``). SigLIP's ``logit_scale`` is ``t`` and its ``logit_bias`` is ``-b``.
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
        .detach(|| inspect_record(u, v, sig, info, normalize, block))
        .map_err(convert::error)?;
    convert::record(py, &rec)
}
