//! `ccem.theory`: the exact optimum on scalars or on numpy arrays that broadcast.
//!
//! Every cell is one of the library's theory records ([`ccem::theory::record`]: the keys of
//! `ccem theory --format json`): [`SigmoidRecord`] (with the phase boundaries of its `N` and
//! bias setting), [`Optimum`] for InfoNCE, [`ZooRecord`] for every other loss (SPEC §9).

use crate::convert::{self, value_error, Columns};
use ccem::loss::{Loss, LossParams};
use ccem::options::{parse_bias, BiasArg, Spelling, TheoryOptions, TheoryPath};
use ccem::theory::record::{SigmoidRecord, ZooRecord};
use ccem::theory::zoo::{self, ZooLoss};
use ccem::theory::{BiasMode, Optimum};
use ccem::LossKind;
use numpy::PyReadonlyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString};
use serde::Serialize;

/// How the bias is given: tied (`b = t`), fixed per cell, or relative per cell.
enum Bias {
    Tied,
    Fixed(Vec<f64>),
    Relative(Vec<f64>),
}

impl Bias {
    fn mode(&self, i: usize) -> BiasMode {
        match self {
            Bias::Tied => BiasMode::Tied,
            Bias::Fixed(b) => BiasMode::Fixed(b[i]),
            Bias::Relative(r) => BiasMode::Relative(r[i]),
        }
    }
}

/// The inputs broadcast against each other, flattened, with the common shape; `scalar` when
/// every input is 0-dimensional.
struct Broadcast {
    shape: Vec<usize>,
    scalar: bool,
    values: Vec<Vec<f64>>,
}

fn broadcast(py: Python<'_>, args: &[(&str, &Bound<'_, PyAny>)]) -> PyResult<Broadcast> {
    // Fast path: plain Python numbers need no numpy.
    if args
        .iter()
        .all(|(_, a)| a.is_exact_instance_of::<PyFloat>() || a.is_exact_instance_of::<PyInt>())
    {
        return Ok(Broadcast {
            shape: Vec::new(),
            scalar: true,
            values: args
                .iter()
                .map(|(_, a)| Ok(vec![a.extract::<f64>()?]))
                .collect::<PyResult<_>>()?,
        });
    }
    let np = py.import("numpy")?;
    let mut arrays = Vec::with_capacity(args.len());
    for (name, a) in args {
        let arr = np.call_method1("asarray", (a,))?;
        let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
        if !matches!(kind.as_str(), "f" | "i" | "u" | "b") {
            return Err(PyTypeError::new_err(format!(
                "{name} must be a number or a numeric array, got dtype {}",
                arr.getattr("dtype")?.str()?
            )));
        }
        arrays.push(np.call_method1("asarray", (arr, "float64"))?);
    }
    let scalar = arrays
        .iter()
        .map(|a| a.getattr("ndim")?.extract::<usize>())
        .collect::<PyResult<Vec<_>>>()?
        .iter()
        .all(|&d| d == 0);
    let b = np
        .call_method1("broadcast_arrays", pyo3::types::PyTuple::new(py, &arrays)?)
        .map_err(|e| value_error(format!("the arguments do not broadcast together: {e}")))?;
    let mut shape = Vec::new();
    let mut values = Vec::with_capacity(args.len());
    for a in b.try_iter()? {
        let a = a?;
        shape = a.getattr("shape")?.extract()?;
        let flat = np.call_method1("ascontiguousarray", (a.call_method0("ravel")?,))?;
        let flat: PyReadonlyArray1<f64> = flat.extract()?;
        values.push(flat.as_slice()?.to_vec());
    }
    Ok(Broadcast {
        shape,
        scalar,
        values,
    })
}

/// A batch size (`n` or `batch`) from a float holding an integer.
fn size(n: f64) -> PyResult<usize> {
    if !(n.is_finite() && n.fract() == 0.0 && (0.0..=1e15).contains(&n)) {
        return Err(value_error(format!(
            "invalid batch size {n}: it must be an integer >= 2"
        )));
    }
    Ok(n as usize)
}

/// `b` as given: `None` or `"tied"` ties it to `t` (`Ok(None)`); a string holding a number is
/// that number; anything else is the array of biases. Strings are parsed by the library
/// ([`ccem::options::parse_bias`]).
fn bias_arg<'py>(b: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(b) = b.filter(|b| !b.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = b.cast::<PyString>() {
        let text = BiasArg::Text(s.to_str()?.to_string());
        return match parse_bias(Some(&text), None, Spelling::Keyword).map_err(convert::error)? {
            BiasMode::Fixed(v) => Ok(Some(PyFloat::new(b.py(), v).into_any())),
            _ => Ok(None),
        };
    }
    Ok(Some(b.clone()))
}

/// The exact optimum of a contrastive loss on the CCEM for batch size ``n`` (SPEC §3, §9).
///
/// Scalars give a dict of Python scalars; numpy arrays (or lists) broadcast against each other
/// and give a dict of numpy arrays of the broadcast shape (``n`` an int64 array, ``phase`` an
/// array of strings, nulls of the CLI as NaN). In a dict of scalars "no value" is always
/// ``None`` (the CLI's ``null``). The keys are those of
/// ``ccem theory --format json``:
///
/// sigmoid: ``n, t, b, c_star, delta_star, s_pos, s_neg, loss, phase, t_etf_boundary,
/// t_antipodal_boundary``; infonce: ``n, tau, c_star, delta_star, s_pos, s_neg, loss,
/// loss_clip, phase``. InfoNCE's ``loss`` is the paper's (the sum of the row and column
/// cross-entropies); ``loss_clip`` is the same optimum in open_clip's ``ClipLoss`` convention
/// (their mean, ``loss / 2``). Every other loss (``simclr``, ``dcl``, ``dhel``, ``spectral``),
/// and sigmoid or infonce with ``within_view > 0``, gives the CCEM optimum of SPEC §9, as
/// ``ccem theory --loss NAME``: ``n``, the loss's parameters, ``within_view, c_star,
/// delta_star, s_pos, s_neg, s_within, loss, phase, alignment_slack, excess_separation,
/// thm53_condition, global_optimum, off_ccem_loss`` (``batch`` and ``w`` with ``batch=``).
///
/// The sigmoid loss has logits ``t * S_ij - b``: SigLIP's ``logit_scale`` (after ``exp``) is
/// ``t`` and its ``logit_bias`` is ``-b`` (google/siglip-base-patch16-224 has
/// ``exp(logit_scale) = 117.33`` and ``logit_bias = -12.93``: ``t = 117.33``, ``b = 12.93``).
/// ``c_star`` is the optimal CCEM parameter, ``s_pos = 1 - 2 c*`` and ``s_neg`` the optimal
/// positive and negative similarities, ``loss`` the minimal loss, ``phase`` one of ``etf``,
/// ``intermediate``, ``antipodal`` or ``degenerate`` (``t = 0``; ``c_star`` is then ``None``,
/// NaN in arrays).
/// ``delta_star`` is ``inf`` in the antipodal phase (the CLI's JSON prints ``null``). The
/// boundaries are the scales ``t > 0`` at which this ``n`` enters or leaves the ETF phase (the
/// smallest, if two) and the antipodal phase, for this bias setting (``None``/NaN when there is
/// none in ``(0, inf)``; SPEC §3.2): closed forms, or a bracketed Newton iteration of about a
/// microsecond for the ETF boundary of a fixed or relative bias. ``boundaries=False`` skips
/// them.
///
/// ``batch=B`` gives the optimum of the expected loss over uniformly drawn mini-batches of
/// ``B`` of the ``n`` pairs (negatives weighted by ``w = (B-1)/(n-1)``, SPEC §8), as
/// ``ccem theory --batch B``: the keys ``batch`` and ``w`` follow, and the boundaries are the
/// weighted ones. ``batch`` broadcasts like the other arguments; ``batch=n`` is the full batch.
/// InfoNCE has no such form and raises.
///
/// ``d=D`` places the optimum in dimension ``D``, as ``ccem theory --d D``: the keys ``d``
/// (after ``n``), ``ccem_applies`` (``D >= n``; InfoNCE ``D >= n - 1``), ``margin_bound``
/// (``n / (2(n-1))``) and ``max_margin`` (the command that finds the maximum-margin
/// constellation) are added, and where the CCEM optimum does not apply its prediction keys are
/// ``None`` (NaN in arrays), SPEC §7.
///
/// Args:
///     n: batch size (>= 2), int or integer-valued array.
///     t: the scale (>= 0); required for the sigmoid loss.
///     b: the bias (default ``None`` or ``"tied"``: ``b = t``, the paper's setting).
///     relative_bias: ``r_b``, giving ``b = r_b * t`` (instead of ``b``).
///     loss: a registered loss's name: ``"sigmoid"``, ``"infonce"``, ``"simclr"``, ``"dcl"``,
///         ``"dhel"`` or ``"spectral"``.
///     tau: the temperature (> 0), required for the losses that have one (infonce, simclr,
///         dcl, dhel).
///     within_view: the weight ``W >= 0`` of within-view negatives (sigmoid, infonce), one
///         number; refused, naming the loss, by the others.
///     boundaries: compute ``t_etf_boundary`` and ``t_antipodal_boundary``.
///     batch: the mini-batch size ``B`` (``2 <= B <= n``), int or integer-valued array; the
///         additive losses only (sigmoid, spectral).
///     d: the embedding dimension (>= 1), as ``ccem theory --d``.
///
/// Raises:
///     ValueError: ``n < 2``, a negative or non-finite ``t``, ``batch`` outside ``2..=n``,
///         ``batch`` with InfoNCE, arguments that do not broadcast, or options of the other
///         loss.
///
/// Example:
///     >>> import ccem, numpy as np
///     >>> r = ccem.theory(32768, 117.33, 12.93)  # google/siglip-base-patch16-224's t, -b
///     >>> r["phase"], round(r["s_pos"], 4)
///     ('intermediate', 0.4251)
///     >>> r = ccem.theory(np.arange(4, 51)[:, None], np.linspace(0.1, 5, 10))
///     >>> r["s_pos"].shape, r["phase"].dtype.kind
///     ((47, 10), 'U')
///     >>> r = ccem.theory(16, 2.0, 1.0, batch=4)      # batches of 4 push it toward the ETF
///     >>> round(r["s_pos"], 4), r["w"]
///     (0.8887, 0.2)
#[pyfunction]
#[pyo3(signature = (n, t=None, b=None, *, relative_bias=None, loss="sigmoid", tau=None, within_view=None, boundaries=true, batch=None, d=None))]
#[allow(clippy::too_many_arguments)]
pub fn theory<'py>(
    py: Python<'py>,
    n: &Bound<'py, PyAny>,
    t: Option<&Bound<'py, PyAny>>,
    b: Option<&Bound<'py, PyAny>>,
    relative_bias: Option<&Bound<'py, PyAny>>,
    loss: &str,
    tau: Option<&Bound<'py, PyAny>>,
    within_view: Option<f64>,
    boundaries: bool,
    batch: Option<&Bound<'py, PyAny>>,
    d: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let given = |x: Option<&Bound<'py, PyAny>>| x.is_some_and(|x| !x.is_none());
    let kind: LossKind = loss.parse().map_err(convert::error)?;
    let d = d.map(|d| convert::count(d, "d")).transpose()?;
    // The combination, checked by the same library function as `ccem theory`'s.
    let path = TheoryOptions {
        loss: kind,
        t: given(t),
        b: given(b),
        relative_bias: given(relative_bias),
        tau: given(tau),
        within_view: within_view.is_some(),
        batch: given(batch),
        d,
    }
    .resolve(within_view, Spelling::Keyword)
    .map_err(convert::error)?;
    let (t, relative_bias, tau) = (
        t.filter(|x| !x.is_none()),
        relative_bias.filter(|x| !x.is_none()),
        tau.filter(|x| !x.is_none()),
    );
    let batch = batch.filter(|b| !b.is_none());
    match path {
        TheoryPath::Sigmoid => {
            let t = t.expect("checked: t is given");
            let b = bias_arg(b)?;
            let tied = b.is_none();
            let mut args = vec![("n", n), ("t", t)];
            match (&b, relative_bias) {
                (Some(b), _) => args.push(("b", b)),
                (None, Some(r)) => args.push(("relative_bias", r)),
                (None, None) => {}
            }
            if let Some(bs) = batch {
                args.push(("batch", bs));
            }
            let bc = broadcast(py, &args)?;
            let mut vals = bc.values.into_iter();
            let ns = vals.next().expect("n");
            let ts = vals.next().expect("t");
            let bias = match (tied, relative_bias) {
                (false, _) => Bias::Fixed(vals.next().expect("b")),
                (true, Some(_)) => {
                    let r = vals.next().expect("relative_bias");
                    if let Some(&x) = r.iter().find(|x| !x.is_finite()) {
                        ccem::error::check_finite("relative_bias", x).map_err(convert::error)?;
                    }
                    Bias::Relative(r)
                }
                (true, None) => Bias::Tied,
            };
            let ns = ns.into_iter().map(size).collect::<PyResult<Vec<_>>>()?;
            let bs: Option<Vec<usize>> = match batch {
                Some(_) => Some(
                    vals.next()
                        .expect("batch")
                        .into_iter()
                        .map(size)
                        .collect::<PyResult<_>>()?,
                ),
                None => None,
            };
            let bs = bs.as_deref();
            let cells = |i: usize| {
                SigmoidRecord::new(ns[i], ts[i], bias.mode(i), bs.map(|v| v[i]), boundaries)
            };
            let out = py.detach(|| {
                Output::build(ns.len(), bc.scalar, |i| in_dimension(cells(i)?, d, |n| n))
            })?;
            out.into_py(py, &bc.shape)
        }
        TheoryPath::InfoNce => {
            let tau = tau.expect("checked: tau is given");
            let bc = broadcast(py, &[("n", n), ("tau", tau)])?;
            let ns = bc.values[0]
                .iter()
                .map(|&x| size(x))
                .collect::<PyResult<Vec<_>>>()?;
            let taus = &bc.values[1];
            let out = py.detach(|| {
                Output::build(ns.len(), bc.scalar, |i| {
                    in_dimension(Optimum::infonce(ns[i], taus[i])?, d, |n| {
                        n.saturating_sub(1)
                    })
                })
            })?;
            out.into_py(py, &bc.shape)
        }
        TheoryPath::Zoo => {
            // The swept parameter (t with its bias, or tau), n and batch, broadcast.
            let mut args = vec![("n", n)];
            let scale = kind.takes("t");
            let b = if scale { bias_arg(b)? } else { None };
            if scale {
                args.push(("t", t.expect("checked: t is given")));
                match (&b, relative_bias) {
                    (Some(b), _) => args.push(("b", b)),
                    (None, Some(r)) => args.push(("relative_bias", r)),
                    (None, None) => {}
                }
            } else if kind.takes("tau") {
                args.push(("tau", tau.expect("checked: tau is given")));
            }
            if let Some(bs) = batch {
                args.push(("batch", bs));
            }
            let bc = broadcast(py, &args)?;
            let mut vals = bc.values.into_iter();
            let ns = vals
                .next()
                .expect("n")
                .into_iter()
                .map(size)
                .collect::<PyResult<Vec<_>>>()?;
            let xs = (scale || kind.takes("tau")).then(|| vals.next().expect("t or tau"));
            let bias = match (scale, &b, relative_bias) {
                (true, Some(_), _) => Bias::Fixed(vals.next().expect("b")),
                (true, None, Some(_)) => Bias::Relative(vals.next().expect("relative_bias")),
                _ => Bias::Tied,
            };
            let bs: Option<Vec<usize>> = match batch {
                Some(_) => Some(
                    vals.next()
                        .expect("batch")
                        .into_iter()
                        .map(size)
                        .collect::<PyResult<_>>()?,
                ),
                None => None,
            };
            let cell = |i: usize| -> ccem::Result<ZooRecord> {
                let x = xs.as_ref().map(|v| v[i]);
                let t = x.filter(|_| scale);
                let params = LossParams {
                    t,
                    b: t.map(|t| bias.mode(i).bias(t)),
                    relative_bias: None,
                    tau: x.filter(|_| !scale),
                    within_view,
                };
                let loss = ZooLoss::from_loss(&Loss::build(kind, &params)?)?;
                Ok(ZooRecord::new(zoo::optimum(
                    &loss,
                    ns[i],
                    bs.as_ref().map(|v| v[i]),
                )?))
            };
            let family = zoo::family_of(kind);
            let out = py.detach(|| {
                Output::build(ns.len(), bc.scalar, |i| {
                    in_dimension(cell(i)?, d, |n| zoo::needed_dimension(family, n))
                })
            })?;
            out.into_py(py, &bc.shape)
        }
    }
}

/// A cell, with `d=` annotated as `ccem theory --d` does ([`ccem::record::with_dimension`]).
fn in_dimension<T: Serialize>(
    rec: T,
    d: Option<usize>,
    needed: impl Fn(usize) -> usize,
) -> ccem::Result<Cell<T>> {
    Ok(match d {
        None => Cell::Plain(rec),
        Some(d) => Cell::InDimension(ccem::record::with_dimension(&rec, d, needed)?),
    })
}

/// A theory cell, plain or annotated with a dimension.
#[derive(Serialize)]
#[serde(untagged)]
enum Cell<T> {
    Plain(T),
    InDimension(serde_json::Value),
}

/// The result of a theory call: one record (scalar inputs) or columns (array inputs).
enum Output<T> {
    One(T),
    Many(Columns),
}

impl<T: Serialize + Send> Output<T> {
    /// Computes the `len` cells with `cell`, in parallel chunks for arrays.
    fn build(
        len: usize,
        scalar: bool,
        cell: impl Fn(usize) -> ccem::Result<T> + Sync,
    ) -> PyResult<Self> {
        if scalar {
            return Ok(Output::One(cell(0).map_err(convert::error)?));
        }
        Ok(Output::Many(Columns::build(len, |r| {
            r.map(&cell)
                .collect::<ccem::Result<Vec<T>>>()
                .map_err(convert::error)
        })?))
    }

    /// A dict of scalars, or of arrays of `shape`.
    fn into_py<'py>(self, py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyDict>> {
        match self {
            Output::One(rec) => {
                // "No value" is None in a dict of scalars (NaN only inside arrays).
                let dict = convert::record(py, &rec)?;
                let nan_keys: Vec<_> = dict
                    .iter()
                    .filter(|(_, v)| {
                        v.is_exact_instance_of::<PyFloat>()
                            && v.extract::<f64>().is_ok_and(f64::is_nan)
                    })
                    .map(|(k, _)| k)
                    .collect();
                for k in nan_keys {
                    dict.set_item(k, py.None())?;
                }
                Ok(dict)
            }
            Output::Many(cols) => cols.into_dict(py, shape),
        }
    }
}
