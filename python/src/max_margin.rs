//! `ccem.max_margin`: the maximum-margin search of `ccem max-margin` (SPEC §7.2–7.3), as a dict
//! with the embeddings.

use crate::convert::{self, matrix_out};
use crate::memory;
use ccem::geometry::QuantileLevel;
use ccem::matrix::Matrix;
use ccem::optim::max_margin::{max_margin as search, MaxMarginConfig, MaxMarginRecord};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The largest margin ``(min S_ii - max_{i != j} S_ij) / 2`` of ``n`` pairs of unit vectors in
/// ``R^d`` (``ccem max-margin``): structured and random starts, a smooth max-min ascent, basin
/// hopping, then Newton on the KKT system of the active constraints (certified to 1e-10).
///
/// Args:
///     n: pairs (>= 2); d: dimension (default n).
///     seed: of the random starts (the result is the same for any number of threads).
///     restarts: random starts (default: 32, fewer for large ``n * d``).
///     hops: basin-hopping rounds of 4 perturbations (default: 16, fewer for large ``n * d``).
///     steps: Adam steps per start over 12 sharpness stages (default 3600).
///     lr: the first stage's learning rate (default 0.05).
///     polish: run the exact polish (default True; without it nothing is certified).
///     margin_quantile: the level ``p`` of ``margin_quantile``.
///     max_memory: the most memory the run may use, a size (``"512M"``) or a number of bytes
///         (default: the memory available), as ``ccem --max-memory``.
///
/// Returns:
///     a dict with the keys of ``ccem max-margin --format json`` (``margin``, ``known_best``,
///     ``gap_to_known``, ``termination``: ``"converged"`` when certified, ``"step_limit"``, or
///     ``"diverged"``; ``contacts``, ``contact_pairs``, ``rattlers``, ``seconds``, ...) plus
///     ``"U"`` and ``"V"`` (float64, unit rows).
///
/// Raises:
///     ValueError: a bad option, or a run over the memory or work limit.
///
/// Example:
///     >>> import ccem
///     >>> r = ccem.max_margin(24, 4, restarts=2, hops=0)
///     >>> round(r["margin"], 12), r["known_code"], r["termination"], r["contacts"]
///     (0.25, '24_cell', 'converged', 96)
#[pyfunction]
#[pyo3(signature = (n, d=None, *, seed=0, restarts=None, hops=None, steps=None, lr=None,
    polish=true, margin_quantile=0.05, max_memory=None))]
#[allow(clippy::too_many_arguments)]
pub fn max_margin<'py>(
    py: Python<'py>,
    n: i64,
    d: Option<i64>,
    seed: u64,
    restarts: Option<i64>,
    hops: Option<i64>,
    steps: Option<i64>,
    lr: Option<f64>,
    polish: bool,
    margin_quantile: f64,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let n = convert::count(n, "n")?;
    let d = d.map(|d| convert::count(d, "d")).transpose()?.unwrap_or(n);
    let level = QuantileLevel::new(margin_quantile).map_err(convert::error)?;
    let mut cfg = MaxMarginConfig::new(n, d, seed)
        .map_err(convert::error)?
        .with_max_memory(memory::limit(max_memory)?);
    if let Some(r) = restarts {
        cfg = cfg
            .with_restarts(convert::count(r, "restarts")?)
            .map_err(convert::error)?;
    }
    if let Some(h) = hops {
        cfg = cfg.with_hops(convert::count(h, "hops")?);
    }
    if let Some(s) = steps {
        cfg = cfg
            .with_steps(convert::count(s, "steps")?)
            .map_err(convert::error)?;
    }
    if let Some(lr) = lr {
        cfg = cfg.with_lr(lr).map_err(convert::error)?;
    }
    let cfg = cfg.with_polish(polish);
    let (rec, r) = py
        .detach(|| -> ccem::Result<_> {
            let clock = std::time::Instant::now();
            let r = search(&cfg)?;
            let rec = MaxMarginRecord::new(&cfg, &r, level, clock.elapsed().as_secs_f64())?;
            Ok((rec, r))
        })
        .map_err(convert::error)?;
    let dict = convert::record(py, &rec)?;
    dict.set_item("U", matrix_out(py, Matrix::F64(r.u)))?;
    dict.set_item("V", matrix_out(py, Matrix::F64(r.v)))?;
    Ok(dict)
}
