//! `ccem.sweep` (a resumable grid of runs into a directory) and `ccem.plot` (the CLI's figures).

use crate::convert::{self, value_error, Columns};
use crate::memory;
use ccem::grid::{parse_int_grid, parse_real_grid};
use ccem::limits::MemoryLimit;
use ccem::options::{parse_bias, GridArg, MiniBatchOptions, Spelling, SweepOptions};
use ccem::plot::{self as figures, CurveQuantity, PanelInput, Quantity, ResultsTable};
use ccem::sweep::engine::{run_sweep_with, Silent};
use ccem::sweep::runner;
use ccem::sweep::summary::summarize;
use ccem::theory::BiasMode;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::path::{Path, PathBuf};

/// A grid of reals: a CLI spelling (`"0.1..5:10"`, `"1,2,5"`), a number, or a sequence/array
/// (checked by the library, [`GridArg::reals`]).
fn real_grid_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<GridArg<f64>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(GridArg::Text(s.to_str()?.to_string()));
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
    Ok(GridArg::Values(flat.call_method0("tolist")?.extract()?))
}

/// A grid of integers: a CLI spelling (`"4..50"`, `"4,8,16"`), an int, or a sequence/array.
fn int_grid_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<GridArg<usize>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(GridArg::Text(s.to_str()?.to_string()));
    }
    let GridArg::Values(v) = real_grid_arg(obj, name)? else {
        unreachable!("not a string")
    };
    v.into_iter()
        .map(|x| {
            if x >= 0.0 && x.fract() == 0.0 && x <= 1e15 {
                Ok(x as usize)
            } else {
                Err(value_error(format!(
                    "{name}: {x} is not a non-negative integer"
                )))
            }
        })
        .collect::<PyResult<Vec<usize>>>()
        .map(GridArg::Values)
}

/// The values of a grid of reals.
fn real_grid(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    real_grid_arg(obj, name)?
        .reals(name, Spelling::Keyword)
        .map_err(convert::error)
}

/// The values of a grid of integers.
fn int_grid(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<usize>> {
    int_grid_arg(obj, name)?
        .ints(name, Spelling::Keyword)
        .map_err(convert::error)
}

/// `b` (a number, `None` or `"tied"`) and `relative_bias` as the bias setting; `None` when
/// neither is given ([`ccem::options::parse_bias`]).
fn bias_mode(b: Option<&Bound<'_, PyAny>>, relative: Option<f64>) -> PyResult<Option<BiasMode>> {
    let b = convert::bias_arg(b)?;
    if b.is_none() && relative.is_none() {
        return Ok(None);
    }
    parse_bias(b.as_ref(), relative, Spelling::Keyword)
        .map(Some)
        .map_err(convert::error)
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
///     n: batch sizes: ``"4..50"``, ``"4,8,16"``, an int or a sequence of ints.
///     t: scales: ``"0.1..5:10"`` (10 values), ``"0.5,1,2"``, a number or a sequence (for a
///         loss with a temperature, an alias of ``tau``).
///     loss: ``"sigmoid"``, ``"infonce"``, ``"simclr"``, ``"dcl"``, ``"dhel"`` or ``"spectral"``
///         (SPEC §1, §9); each cell is compared with the loss's optimum on the CCEM (SPEC §9).
///     tau: the swept temperatures of a loss that has one (a grid as ``t``); ``spectral``
///         takes neither ``t`` nor ``tau``.
///     within_view: the weight ``W >= 0`` of within-view negatives (``sigmoid``, ``infonce``).
///     b: a fixed bias, or ``"tied"``/None for ``b = t`` (SigLIP's ``logit_bias`` is ``-b``).
///     relative_bias: ``r_b`` with ``b = r_b * t``.
///     seeds, seed, d_ratio (``d = round(d_ratio * n)``, default 1), steps, lr, layers,
///     optimizer, restarts, grad_tol: as ``ccem sweep``; shard: ``"I/K"``; threads: worker
///     threads (>= 1; default: all cores).
///     d: a grid of dimensions (``"2..12"``, ``[2, 3, 5]``) instead of ``d_ratio``: the cells
///         are every ``(n, d)`` pair, ``d < n`` included, as ``ccem sweep --d``.
///     batch, batching, neg_variance_weight: mini-batch training (SPEC §8), as ``ccem sweep
///         --batch B --batching S --neg-variance-weight L`` (``B <= n`` for every ``n``).
///     max_memory: the most memory the sweep may use, a size (``"512M"``) or a number of bytes
///         (default: the memory available), as ``ccem --max-memory``; not saved in
///         ``config.json`` (a sweep resumes under another limit).
///
/// Raises:
///     ValueError: a bad option, with the library's message, or a sweep that would need more
///         memory than ``max_memory``.
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
#[pyo3(signature = (out, *, mode, n, t=None, loss="sigmoid", tau=None, within_view=None, b=None, relative_bias=None, seeds=1,
    seed=0, d_ratio=None, d=None, steps=None, lr=None, layers=None, optimizer=None,
    restarts=None, grad_tol=None, shard=None, threads=None, batch=None, batching=None,
    neg_variance_weight=0.0, max_memory=None))]
#[allow(clippy::too_many_arguments)]
pub fn sweep<'py>(
    py: Python<'py>,
    out: PathBuf,
    mode: &str,
    n: &Bound<'py, PyAny>,
    t: Option<&Bound<'py, PyAny>>,
    loss: &str,
    tau: Option<&Bound<'py, PyAny>>,
    within_view: Option<f64>,
    b: Option<&Bound<'py, PyAny>>,
    relative_bias: Option<f64>,
    seeds: i64,
    seed: u64,
    d_ratio: Option<f64>,
    d: Option<&Bound<'py, PyAny>>,
    steps: Option<i64>,
    lr: Option<f64>,
    layers: Option<i64>,
    optimizer: Option<String>,
    restarts: Option<i64>,
    grad_tol: Option<f64>,
    shard: Option<String>,
    threads: Option<i64>,
    batch: Option<i64>,
    batching: Option<String>,
    neg_variance_weight: f64,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let count = |x: Option<i64>, name: &str| x.map(|x| convert::count(x, name)).transpose();
    let mut o = SweepOptions::new(
        mode.parse().map_err(convert::error)?,
        loss.parse().map_err(convert::error)?,
        int_grid_arg(n, "n")?,
        GridArg::Values(Vec::new()),
    );
    let grid = |x: Option<&Bound<'py, PyAny>>, name: &str| {
        x.filter(|x| !x.is_none())
            .map(|x| real_grid_arg(x, name))
            .transpose()
    };
    o.t = grid(t, "t")?;
    o.tau = grid(tau, "tau")?;
    o.within_view = within_view;
    o.b = convert::bias_arg(b)?;
    o.relative_bias = relative_bias;
    o.seeds = convert::count(seeds, "seeds")?;
    o.seed = seed;
    o.d_ratio = d_ratio;
    o.d = d
        .filter(|d| !d.is_none())
        .map(|d| int_grid_arg(d, "d"))
        .transpose()?;
    o.steps = count(steps, "steps")?;
    o.lr = lr;
    o.layers = count(layers, "layers")?;
    o.optimizer = optimizer;
    o.restarts = count(restarts, "restarts")?;
    o.grad_tol = grad_tol;
    o.mini_batch = MiniBatchOptions {
        batch: count(batch, "batch")?,
        batching,
        neg_variance_weight,
    };
    o.shard = shard;
    o.threads = count(threads, "threads")?;
    o.max_memory = memory::arg(max_memory)?;
    let r = o.resolve(Spelling::Keyword).map_err(convert::error)?;
    let spec = r.spec;
    let rows = crate::interrupt::interruptible(py, |cancel| -> ccem::Result<_> {
        let cell_runner = |c: &ccem::sweep::Cell| runner::run_cell_with(&spec, c, cancel);
        let outcome = run_sweep_with(&spec, &out, r.threads, &cell_runner, &mut Silent, cancel)?;
        summarize(&spec, &outcome.rows).write(&out)?;
        Ok(outcome.rows)
    })?;
    Columns::of(&rows)?.into_dict(py, &[rows.len()])
}

/// `DIR/results.csv` when `p` is a directory, else `p`.
fn read_table(
    p: &Path,
    objective: Option<&str>,
    mode: Option<&str>,
    max_memory: MemoryLimit,
) -> ccem::Result<ResultsTable> {
    let path = if p.is_dir() {
        p.join("results.csv")
    } else {
        p.to_path_buf()
    };
    let table = figures::read_results(&path, max_memory)?;
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
/// - ``"margin"``: the maximum margin of ``n`` pairs in ``R^d`` over ``(n, d)``, as a fraction
///   of the ETF bound (``ccem plot margin``). ``n`` (``"3..12"``), ``d`` (``"2..12"``),
///   ``restarts``, ``steps_per_stage``, ``seed`` (0), ``title``.
/// - ``"diff"``: measured ``s_pos`` minus the theory. ``input``, ``limit``, ``title``, ``curves``,
///   ``objective``/``mode``.
/// - ``"curves"``: ``c*`` (or ``delta*``) and ``s+*``, ``s-*`` against ``t``. ``input``
///   (optional), ``n`` (the batch sizes, ``"5,10,20,50"``), ``t``, ``b``/``relative_bias``,
///   ``quantity`` (``"c_star"`` or ``"delta"``), ``delta_max``, ``objective``/``mode``.
/// - ``"loss-curve"``: the CCEM loss ``l(c)`` for a few ``t``. ``n`` (10), ``t``
///   (``"0.5,1,2,4"``), ``b``/``relative_bias``, ``relative``.
///
/// Every kind takes ``max_memory``: the most memory reading a results file or a margin cell's
/// run may use, a size (``"512M"``) or a number of bytes (default: the memory available), as
/// ``ccem --max-memory``. An option that the kind does not take is refused (``ValueError``), as
/// the CLI refuses an unknown flag. Grids (``n``, ``t``, ``d``) take the CLI's spellings or sequences of numbers. SigLIP's
/// ``logit_bias`` is ``-b`` and its ``logit_scale`` is ``t``.
///
/// Example:
///     >>> import ccem, os, tempfile
///     >>> path = os.path.join(tempfile.mkdtemp(), "theory.png")
///     >>> ccem.plot("theory", out=path, n="4..30", t="0.1..5:40")
///     >>> os.path.getsize(path) > 0
///     True
#[pyfunction]
#[pyo3(signature = (kind, *, out, input=None, input2=None, title=None, title2=None, vmin=None,
    vmax=None, curves=None, objective=None, mode=None, n=None, t=None, b=None,
    relative_bias=None, quantity=None, delta_max=None, limit=None, relative=None, d=None,
    restarts=None, steps_per_stage=None, seed=None, max_memory=None))]
#[allow(clippy::too_many_arguments)]
pub fn plot<'py>(
    py: Python<'py>,
    kind: &str,
    out: PathBuf,
    input: Option<PathBuf>,
    input2: Option<PathBuf>,
    title: Option<String>,
    title2: Option<String>,
    vmin: Option<f64>,
    vmax: Option<f64>,
    curves: Option<bool>,
    objective: Option<String>,
    mode: Option<String>,
    n: Option<&Bound<'py, PyAny>>,
    t: Option<&Bound<'py, PyAny>>,
    b: Option<&Bound<'py, PyAny>>,
    relative_bias: Option<f64>,
    quantity: Option<&str>,
    delta_max: Option<f64>,
    limit: Option<f64>,
    relative: Option<bool>,
    d: Option<&Bound<'py, PyAny>>,
    restarts: Option<i64>,
    steps_per_stage: Option<i64>,
    seed: Option<u64>,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    let max_memory = memory::limit(max_memory)?;
    // The options each kind takes, as `ccem plot KIND` (an option of another kind is refused,
    // as the command line refuses an unknown flag).
    let given: [(&str, bool); 21] = [
        ("input", input.is_some()),
        ("input2", input2.is_some()),
        ("title", title.is_some()),
        ("title2", title2.is_some()),
        ("vmin", vmin.is_some()),
        ("vmax", vmax.is_some()),
        ("curves", curves.is_some()),
        ("objective", objective.is_some()),
        ("mode", mode.is_some()),
        ("n", n.is_some()),
        ("t", t.is_some()),
        ("b", b.is_some()),
        ("relative_bias", relative_bias.is_some()),
        ("quantity", quantity.is_some()),
        ("delta_max", delta_max.is_some()),
        ("limit", limit.is_some()),
        ("relative", relative.is_some()),
        ("d", d.is_some()),
        ("restarts", restarts.is_some()),
        ("steps_per_stage", steps_per_stage.is_some()),
        ("seed", seed.is_some()),
    ];
    let takes: &[&str] = match kind {
        "phase" => &[
            "input",
            "input2",
            "title",
            "title2",
            "vmin",
            "vmax",
            "curves",
            "objective",
            "mode",
        ],
        "theory" => &[
            "n",
            "t",
            "b",
            "relative_bias",
            "quantity",
            "delta_max",
            "title",
            "curves",
        ],
        "margin" => &["n", "d", "restarts", "steps_per_stage", "seed", "title"],
        "diff" => &["input", "limit", "title", "curves", "objective", "mode"],
        "curves" => &[
            "input",
            "n",
            "t",
            "b",
            "relative_bias",
            "quantity",
            "delta_max",
            "objective",
            "mode",
        ],
        "loss-curve" | "loss_curve" => &["n", "t", "b", "relative_bias", "relative"],
        other => {
            return Err(value_error(format!(
                "invalid kind '{other}': use 'phase', 'theory', 'margin', 'diff', 'curves' or \
                 'loss-curve'"
            )))
        }
    };
    if let Some((name, _)) = given.iter().find(|(k, g)| *g && !takes.contains(k)) {
        return Err(value_error(format!(
            "{name} is not an option of plot '{kind}', which takes {}",
            takes.join(", ")
        )));
    }
    let (vmin, vmax) = (vmin.unwrap_or(0.0), vmax.unwrap_or(1.0));
    let curves = curves.unwrap_or(true);
    let delta_max = delta_max.unwrap_or(3.0);
    let relative = relative.unwrap_or(false);
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
                    table: read_table(&input, obj, md, max_memory)?,
                    title,
                }];
                if let Some(p) = &input2 {
                    panels.push(PanelInput {
                        table: read_table(p, obj, md, max_memory)?,
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
        "margin" => {
            let defaults = figures::MarginMapOptions::default();
            let count = |x: Option<i64>, name: &str, default: usize| {
                x.map_or(Ok(default), |x| convert::count(x, name))
            };
            let opts = figures::MarginMapOptions {
                ns: ints(n, "3..12")?,
                ds: match d {
                    Some(d) => int_grid(d, "d")?,
                    None => parse_int_grid("2..12").map_err(convert::error)?,
                },
                restarts: count(restarts, "restarts", defaults.restarts)?,
                hops: defaults.hops,
                steps_per_stage: count(
                    steps_per_stage,
                    "steps_per_stage",
                    defaults.steps_per_stage,
                )?,
                seed: seed.unwrap_or(0),
                title,
                max_memory,
            };
            py.detach(|| -> ccem::Result<()> {
                let cells = figures::margin_cells(&opts)?;
                figures::margin_map(&cells, &out, opts.title.as_deref())
            })
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
                    table: read_table(&input, obj, md, max_memory)?,
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
                    .map(|p| read_table(p, obj, md, max_memory))
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
        _ => unreachable!("the kind was checked above"),
    };
    result.map_err(convert::error)
}
