//! `ccem.sweep` (a resumable grid of runs into a directory) and `ccem.plot` (the CLI's figures).

use crate::convert::{self, value_error, Columns};
use ccem::grid::{parse_int_grid, parse_real_grid};
use ccem::plot::{self as figures, CurveQuantity, PanelInput, Quantity, ResultsTable};
use ccem::sweep::engine::{run_sweep_with, Silent};
use ccem::sweep::summary::summarize;
use ccem::sweep::{runner, Mode, RunOptions, Shard, SweepSpec};
use ccem::theory::BiasMode;
use ccem::LossKind;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::path::{Path, PathBuf};

/// A grid of reals: a CLI spelling (`"0.1..5:10"`, `"1,2,5"`), a number, or a sequence/array.
fn real_grid(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return parse_real_grid(s.to_str()?).map_err(convert::error);
    }
    let np = obj.py().import("numpy")?;
    let arr = np.call_method1("asarray", (obj,))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    if !matches!(kind.as_str(), "f" | "i" | "u") {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a grid like '0.1..5:10', a number or a sequence of numbers"
        )));
    }
    let flat = np
        .call_method1("asarray", (arr, "float64"))?
        .call_method0("ravel")?;
    let v: Vec<f64> = flat.call_method0("tolist")?.extract()?;
    if v.is_empty() {
        return Err(value_error(format!("{name}: the grid is empty")));
    }
    if let Some(x) = v.iter().find(|x| !x.is_finite()) {
        return Err(value_error(format!("{name}: {x} is not a finite number")));
    }
    Ok(v)
}

/// A grid of integers: a CLI spelling (`"4..50"`, `"4,8,16"`), an int, or a sequence/array.
fn int_grid(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<usize>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return parse_int_grid(s.to_str()?).map_err(convert::error);
    }
    real_grid(obj, name)?
        .into_iter()
        .map(|x| {
            if x >= 0.0 && x.fract() == 0.0 && x <= 1e15 {
                Ok(x as usize)
            } else {
                Err(value_error(format!(
                    "{name}: {x} is not a non-negative integer"
                )))
            }
        })
        .collect()
}

/// `b` (a number, `None` or `"tied"`) and `relative_bias` as the bias setting.
fn bias_mode(b: Option<&Bound<'_, PyAny>>, relative: Option<f64>) -> PyResult<Option<BiasMode>> {
    let b = match b {
        Some(x) if x.is_none() => None,
        Some(x) => match x.cast::<PyString>() {
            Ok(s) if s.to_str()?.trim().eq_ignore_ascii_case("tied") => Some(None),
            Ok(s) => {
                return Err(value_error(format!(
                    "invalid b = '{}': give a number or 'tied'",
                    s.to_str()?
                )))
            }
            Err(_) => Some(Some(x.extract::<f64>()?)),
        },
        None => None,
    };
    let mode = match (b, relative) {
        (Some(_), Some(_)) => return Err(value_error("give either b or relative_bias, not both")),
        (None, None) => None,
        (Some(None), None) => Some(BiasMode::Tied),
        (Some(Some(v)), None) => {
            ccem::error::check_finite("b", v).map_err(convert::error)?;
            Some(BiasMode::Fixed(v))
        }
        (None, Some(r)) => {
            ccem::error::check_finite("relative_bias", r).map_err(convert::error)?;
            Some(BiasMode::Relative(r))
        }
    };
    Ok(mode)
}

/// Runs a grid of ``(n, t)`` cells in parallel into the directory ``out`` (``ccem sweep``):
/// resumable, reproducible, shardable.
///
/// Writes ``out/config.json``, ``out/results.csv`` (one row per cell and seed, appended as cells
/// finish), ``out/summary.json`` and ``out/summary.md``. Interrupted? Call it again with the same
/// arguments: finished cells are kept and only the missing ones run. A directory holding another
/// configuration is refused (ValueError) and left as it is.
///
/// Args:
///     out: the output directory.
///     mode: ``"free"`` (free embeddings on the sphere) or ``"encoder"`` (the paper's network).
///     loss: ``"sigmoid"`` or ``"infonce"`` (then ``t`` is the temperature ``tau``).
///     n: batch sizes: ``"4..50"``, ``"4,8,16"``, an int or a sequence of ints.
///     t: scales: ``"0.1..5:10"`` (10 values), ``"0.5,1,2"``, a number or a sequence.
///     b: a fixed bias, or ``"tied"``/None for ``b = t`` (SigLIP's ``logit_bias`` is ``-b``).
///     relative_bias: ``r_b`` with ``b = r_b * t``.
///     seeds, seed, d_ratio (``d = round(d_ratio * n)``), steps, lr, layers, optimizer,
///     restarts, grad_tol: as ``ccem sweep``; shard: ``"I/K"``; threads: worker threads.
///     batch, batching, neg_variance_weight: mini-batch training (SPEC §8), as ``ccem sweep
///         --batch B --batching S --neg-variance-weight L`` (``B <= n`` for every ``n``).
///
/// Raises:
///     ValueError: a bad option, with the library's message.
///
/// Returns:
///     the rows of ``results.csv`` as a dict of numpy arrays, one per column, in cell order
///     (empty measurements are NaN).
///
/// Example:
///     >>> import ccem, tempfile
///     >>> r = ccem.sweep(tempfile.mkdtemp(), mode="free", n="4..6", t=[0.5, 2.0])
///     >>> r["n"].tolist(), bool(r["meets_theory"].all())
///     ([4, 4, 5, 5, 6, 6], True)
#[pyfunction]
#[pyo3(signature = (out, *, mode, n, t, loss="sigmoid", b=None, relative_bias=None, seeds=1,
    seed=0, d_ratio=1.0, steps=None, lr=None, layers=None, optimizer=None, restarts=None,
    grad_tol=None, shard=None, threads=None, batch=None, batching=None, neg_variance_weight=0.0))]
#[allow(clippy::too_many_arguments)]
pub fn sweep<'py>(
    py: Python<'py>,
    out: PathBuf,
    mode: &str,
    n: &Bound<'py, PyAny>,
    t: &Bound<'py, PyAny>,
    loss: &str,
    b: Option<&Bound<'py, PyAny>>,
    relative_bias: Option<f64>,
    seeds: usize,
    seed: u64,
    d_ratio: f64,
    steps: Option<usize>,
    lr: Option<f64>,
    layers: Option<usize>,
    optimizer: Option<String>,
    restarts: Option<usize>,
    grad_tol: Option<f64>,
    shard: Option<&str>,
    threads: Option<usize>,
    batch: Option<usize>,
    batching: Option<&str>,
    neg_variance_weight: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mode: Mode = mode.parse().map_err(convert::error)?;
    let objective: LossKind = loss.parse().map_err(convert::error)?;
    let bias = bias_mode(b, relative_bias)?;
    if objective == LossKind::InfoNce && bias.is_some() {
        return Err(value_error("b/relative_bias are for the sigmoid loss"));
    }
    let spec = SweepSpec {
        mode,
        objective,
        ns: int_grid(n, "n")?,
        ts: real_grid(t, "t")?,
        bias: bias.unwrap_or(BiasMode::Tied),
        seeds,
        base_seed: seed,
        d_ratio,
        ds: None,
        run: RunOptions {
            steps,
            lr,
            layers,
            optimizer,
            restarts,
            grad_tol,
            batch,
            batching: batching
                .map(str::parse)
                .transpose()
                .map_err(convert::error)?,
            neg_variance_weight: (neg_variance_weight != 0.0).then_some(neg_variance_weight),
        },
        shard: shard
            .map(Shard::parse)
            .transpose()
            .map_err(convert::error)?,
    }
    .check()
    .map_err(convert::error)?;
    let rows = crate::interrupt::interruptible(py, |cancel| -> ccem::Result<_> {
        let cell_runner = |c: &ccem::sweep::Cell| runner::run_cell_with(&spec, c, cancel);
        let outcome = run_sweep_with(&spec, &out, threads, &cell_runner, &mut Silent, cancel)?;
        summarize(&spec, &outcome.rows).write(&out)?;
        Ok(outcome.rows)
    })?;
    Columns::of(&rows)?.into_dict(py, &[rows.len()])
}

/// `DIR/results.csv` when `p` is a directory, else `p`.
fn read_table(p: &Path, objective: Option<&str>, mode: Option<&str>) -> ccem::Result<ResultsTable> {
    let path = if p.is_dir() {
        p.join("results.csv")
    } else {
        p.to_path_buf()
    };
    let table = figures::read_results(&path)?;
    if objective.is_none() && mode.is_none() {
        return Ok(table);
    }
    table.filtered(objective, mode)
}

/// Draws one of the CLI's figures (``ccem plot KIND``) into ``out`` (``.png`` or ``.svg``).
///
/// Kinds and the options they use (the CLI's, with ``curves=False`` for ``--no-curves``):
///
/// - ``"phase"``: heatmap of the measured ``s_pos`` over ``(n, t)`` with the theory's phase
///   boundaries (the paper's figure). ``input`` (a ``results.csv`` or a sweep directory),
///   ``input2`` (a second panel), ``title``, ``title2``, ``vmin`` (0), ``vmax`` (1), ``curves``,
///   ``objective``/``mode`` (row filters).
/// - ``"theory"``: map of the exact optimum. ``n`` (``"4..50"``), ``t`` (``"0.1..5:100"``),
///   ``b``/``relative_bias``, ``quantity`` (``"s_pos"``, ``"c_star"`` or ``"delta"``),
///   ``delta_max`` (3), ``title``, ``curves``.
/// - ``"diff"``: measured ``s_pos`` minus the theory. ``input``, ``limit``, ``title``, ``curves``,
///   ``objective``/``mode``.
/// - ``"curves"``: ``c*`` (or ``delta*``) and ``s+*``, ``s-*`` against ``t``. ``input``
///   (optional), ``n`` (the batch sizes, ``"5,10,20,50"``), ``t``, ``b``/``relative_bias``,
///   ``quantity`` (``"c_star"`` or ``"delta"``), ``delta_max``, ``objective``/``mode``.
/// - ``"loss-curve"``: the CCEM loss ``l(c)`` for a few ``t``. ``n`` (10), ``t``
///   (``"0.5,1,2,4"``), ``b``/``relative_bias``, ``relative``.
///
/// Grids (``n``, ``t``) take the CLI's spellings or sequences of numbers. SigLIP's
/// ``logit_bias`` is ``-b`` and its ``logit_scale`` is ``t``.
///
/// Example:
///     >>> import ccem, os, tempfile
///     >>> path = os.path.join(tempfile.mkdtemp(), "theory.png")
///     >>> ccem.plot("theory", out=path, n="4..30", t="0.1..5:40")
///     >>> os.path.getsize(path) > 0
///     True
#[pyfunction]
#[pyo3(signature = (kind, *, out, input=None, input2=None, title=None, title2=None, vmin=0.0,
    vmax=1.0, curves=true, objective=None, mode=None, n=None, t=None, b=None,
    relative_bias=None, quantity=None, delta_max=3.0, limit=None, relative=false))]
#[allow(clippy::too_many_arguments)]
pub fn plot<'py>(
    py: Python<'py>,
    kind: &str,
    out: PathBuf,
    input: Option<PathBuf>,
    input2: Option<PathBuf>,
    title: Option<String>,
    title2: Option<String>,
    vmin: f64,
    vmax: f64,
    curves: bool,
    objective: Option<String>,
    mode: Option<String>,
    n: Option<&Bound<'py, PyAny>>,
    t: Option<&Bound<'py, PyAny>>,
    b: Option<&Bound<'py, PyAny>>,
    relative_bias: Option<f64>,
    quantity: Option<&str>,
    delta_max: f64,
    limit: Option<f64>,
    relative: bool,
) -> PyResult<()> {
    let bias = bias_mode(b, relative_bias)?;
    let (obj, md) = (objective.as_deref(), mode.as_deref());
    let need_input = |p: &Option<PathBuf>| {
        p.clone()
            .ok_or_else(|| value_error(format!("plot '{kind}' needs input=")))
    };
    let ints = |x: Option<&Bound<'py, PyAny>>, default: &str| -> PyResult<Vec<usize>> {
        match x {
            Some(x) => int_grid(x, "n"),
            None => parse_int_grid(default).map_err(convert::error),
        }
    };
    let reals = |x: Option<&Bound<'py, PyAny>>, default: &str| -> PyResult<Vec<f64>> {
        match x {
            Some(x) => real_grid(x, "t"),
            None => parse_real_grid(default).map_err(convert::error),
        }
    };
    let result = match kind {
        "phase" => {
            let input = need_input(&input)?;
            let opts = figures::PhaseOptions { vmin, vmax, curves };
            py.detach(|| -> ccem::Result<()> {
                let mut panels = vec![PanelInput {
                    table: read_table(&input, obj, md)?,
                    title,
                }];
                if let Some(p) = &input2 {
                    panels.push(PanelInput {
                        table: read_table(p, obj, md)?,
                        title: title2,
                    });
                }
                figures::phase_diagram(&panels, &out, &opts)
            })
        }
        "theory" => {
            let opts = figures::TheoryMapOptions {
                ns: ints(n, "4..50")?,
                ts: reals(t, "0.1..5:100")?,
                bias: bias.unwrap_or(BiasMode::Tied),
                quantity: match quantity.unwrap_or("s_pos") {
                    "s_pos" => Quantity::SPos,
                    "c_star" => Quantity::CStar,
                    "delta" => Quantity::Delta,
                    q => {
                        return Err(value_error(format!(
                            "invalid quantity '{q}': use 's_pos', 'c_star' or 'delta'"
                        )))
                    }
                },
                delta_max,
                curves,
                title,
            };
            py.detach(|| figures::theory_map(&out, &opts))
        }
        "diff" => {
            let input = need_input(&input)?;
            let opts = figures::DiffOptions {
                limit,
                curves,
                title: None,
            };
            py.detach(|| -> ccem::Result<()> {
                let panel = PanelInput {
                    table: read_table(&input, obj, md)?,
                    title,
                };
                figures::diff_map(&panel, &out, &opts)
            })
        }
        "curves" => {
            let opts = figures::CurvesOptions {
                ns: ints(n, "5,10,20,50")?,
                ts: t.map(|t| real_grid(t, "t")).transpose()?,
                bias,
                left: match quantity.unwrap_or("c_star") {
                    "c_star" => CurveQuantity::CStar,
                    "delta" => CurveQuantity::Delta,
                    q => {
                        return Err(value_error(format!(
                            "invalid quantity '{q}': use 'c_star' or 'delta'"
                        )))
                    }
                },
                delta_max,
            };
            py.detach(|| -> ccem::Result<()> {
                let table = input
                    .as_deref()
                    .map(|p| read_table(p, obj, md))
                    .transpose()?;
                figures::curves(table.as_ref(), &out, &opts)
            })
        }
        "loss-curve" | "loss_curve" => {
            let ns = ints(n, "10")?;
            if ns.len() != 1 {
                return Err(value_error("plot 'loss-curve' takes one n"));
            }
            let opts = figures::LossCurveOptions {
                n: ns[0],
                ts: reals(t, "0.5,1,2,4")?,
                bias: bias.unwrap_or(BiasMode::Tied),
                relative,
            };
            py.detach(|| figures::loss_curve(&out, &opts))
        }
        other => {
            return Err(value_error(format!(
                "invalid kind '{other}': use 'phase', 'theory', 'diff', 'curves' or 'loss-curve'"
            )))
        }
    };
    result.map_err(convert::error)
}
