//! `ccem.theory`: the exact optimum on scalars or on numpy arrays that broadcast.
//!
//! Every cell is the library's [`Optimum`] (its `Serialize` gives the keys of
//! `ccem theory --format json`), with the phase boundaries of its `N` and bias setting after it.

use crate::convert::{self, value_error, Columns};
use ccem::theory::{BiasMode, Optimum};
use ccem::LossKind;
use numpy::PyReadonlyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString};
use serde::Serialize;

/// One cell of the sigmoid theory: the [`Optimum`] and the scales at which its `N` enters the
/// ETF phase and leaves the antipodal one under its bias setting (as `ccem theory` prints them).
#[derive(Serialize)]
struct SigmoidCell {
    #[serde(flatten)]
    optimum: Optimum,
    t_etf_boundary: Option<f64>,
    t_antipodal_boundary: Option<f64>,
    /// The mini-batch size `B` (with `batch=`), as `ccem theory --batch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
    /// The negative weight `w = (B-1)/(N-1)` (with `batch=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<f64>,
}

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

/// `b` as given: `None` or `"tied"` ties it to `t`.
fn is_tied(b: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    match b {
        None => Ok(true),
        Some(b) if b.is_none() => Ok(true),
        Some(b) => match b.cast::<PyString>() {
            Ok(s) if s.to_str()?.trim().eq_ignore_ascii_case("tied") => Ok(true),
            Ok(s) => Err(value_error(format!(
                "invalid b = '{}': give a number, an array or 'tied'",
                s.to_str()?
            ))),
            Err(_) => Ok(false),
        },
    }
}

/// The exact optimum of the sigmoid loss (SigLIP) or of InfoNCE (CLIP) for batch size ``n``.
///
/// Scalars give a dict of Python scalars; numpy arrays (or lists) broadcast against each other
/// and give a dict of numpy arrays of the broadcast shape (``n`` an int64 array, ``phase`` an
/// array of strings, nulls of the CLI as NaN). The keys are those of
/// ``ccem theory --format json``:
///
/// sigmoid: ``n, t, b, c_star, delta_star, s_pos, s_neg, loss, phase, t_etf_boundary,
/// t_antipodal_boundary``; infonce: ``n, tau, c_star, delta_star, s_pos, s_neg, loss,
/// loss_clip, phase``. InfoNCE's ``loss`` is the paper's (the sum of the row and column
/// cross-entropies); ``loss_clip`` is the same optimum in open_clip's ``ClipLoss`` convention
/// (their mean, ``loss / 2``).
///
/// The sigmoid loss has logits ``t * S_ij - b``: SigLIP's ``logit_scale`` (after ``exp``) is
/// ``t`` and its ``logit_bias`` is ``-b`` (a released model's bias of -12.7 is ``b = 12.7``).
/// ``c_star`` is the optimal CCEM parameter, ``s_pos = 1 - 2 c*`` and ``s_neg`` the optimal
/// positive and negative similarities, ``loss`` the minimal loss, ``phase`` one of ``etf``,
/// ``intermediate``, ``antipodal`` or ``degenerate`` (``t = 0``; ``c_star`` is then NaN).
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
/// Args:
///     n: batch size (>= 2), int or integer-valued array.
///     t: the scale (>= 0); required for the sigmoid loss.
///     b: the bias (default ``None`` or ``"tied"``: ``b = t``, the paper's setting).
///     relative_bias: ``r_b``, giving ``b = r_b * t`` (instead of ``b``).
///     loss: ``"sigmoid"`` or ``"infonce"``.
///     tau: the InfoNCE temperature (> 0); required for ``loss="infonce"``.
///     boundaries: compute ``t_etf_boundary`` and ``t_antipodal_boundary``.
///     batch: the mini-batch size ``B`` (``2 <= B <= n``), int or integer-valued array; sigmoid
///         only.
///
/// Raises:
///     ValueError: ``n < 2``, a negative or non-finite ``t``, ``batch`` outside ``2..=n``,
///         ``batch`` with InfoNCE, arguments that do not broadcast, or options of the other
///         loss.
///
/// Example:
///     >>> import ccem, numpy as np
///     >>> r = ccem.theory(32768, 117.8, 12.9)        # SigLIP's trained t and b, N = 32768
///     >>> r["phase"], round(r["s_pos"], 4)
///     ('intermediate', 0.4244)
///     >>> r = ccem.theory(np.arange(4, 51)[:, None], np.linspace(0.1, 5, 10))
///     >>> r["s_pos"].shape, r["phase"].dtype.kind
///     ((47, 10), 'U')
///     >>> r = ccem.theory(16, 2.0, 1.0, batch=4)      # batches of 4 push it toward the ETF
///     >>> round(r["s_pos"], 4), r["w"]
///     (0.8887, 0.2)
#[pyfunction]
#[pyo3(signature = (n, t=None, b=None, *, relative_bias=None, loss="sigmoid", tau=None, boundaries=true, batch=None))]
#[allow(clippy::too_many_arguments)]
pub fn theory<'py>(
    py: Python<'py>,
    n: &Bound<'py, PyAny>,
    t: Option<&Bound<'py, PyAny>>,
    b: Option<&Bound<'py, PyAny>>,
    relative_bias: Option<&Bound<'py, PyAny>>,
    loss: &str,
    tau: Option<&Bound<'py, PyAny>>,
    boundaries: bool,
    batch: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let batch = batch.filter(|b| !b.is_none());
    match loss.parse().map_err(convert::error)? {
        LossKind::Sigmoid => {
            if tau.is_some() {
                return Err(value_error(
                    "tau is for loss='infonce'; the sigmoid loss takes t and b",
                ));
            }
            let t = t.ok_or_else(|| {
                value_error("t is required for the sigmoid loss (e.g. ccem.theory(10, 1.0))")
            })?;
            let tied = is_tied(b)?;
            let mut args = vec![("n", n), ("t", t)];
            match (tied, relative_bias) {
                (false, Some(_)) => {
                    return Err(value_error("give either b or relative_bias, not both"))
                }
                (false, None) => args.push(("b", b.expect("not tied"))),
                (true, Some(r)) => args.push(("relative_bias", r)),
                (true, None) => {}
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
            let cells =
                |i: usize| sigmoid_cell(ns[i], ts[i], bias.mode(i), bs.map(|v| v[i]), boundaries);
            let out = py.detach(|| Output::build(ns.len(), bc.scalar, cells))?;
            out.into_py(py, &bc.shape)
        }
        LossKind::InfoNce => {
            if t.is_some() || b.is_some() || relative_bias.is_some() {
                return Err(value_error(
                    "t/b/relative_bias are for the sigmoid loss; InfoNCE takes tau",
                ));
            }
            if batch.is_some() {
                return Err(convert::error(ccem::theory::batch::infonce_expected_error()));
            }
            let tau = tau
                .ok_or_else(|| value_error("tau is required for loss='infonce' (e.g. tau=0.07)"))?;
            let bc = broadcast(py, &[("n", n), ("tau", tau)])?;
            let ns = bc.values[0]
                .iter()
                .map(|&x| size(x))
                .collect::<PyResult<Vec<_>>>()?;
            let taus = &bc.values[1];
            let out = py.detach(|| {
                Output::build(ns.len(), bc.scalar, |i| Optimum::infonce(ns[i], taus[i]))
            })?;
            out.into_py(py, &bc.shape)
        }
    }
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
            Output::One(rec) => convert::record(py, &rec),
            Output::Many(cols) => cols.into_dict(py, shape),
        }
    }
}

/// One cell of the sigmoid theory (of the expected loss over batches of `batch`, if given),
/// with its phase boundaries (SPEC §3.2, weighted with mini-batches as §8) if asked for. The
/// library checks the cell (`N >= 2`, `2 <= B <= N`, a valid loss) before the boundaries.
fn sigmoid_cell(
    n: usize,
    t: f64,
    m: BiasMode,
    batch: Option<usize>,
    with_boundaries: bool,
) -> ccem::Result<SigmoidCell> {
    let (optimum, w) = match batch {
        Some(bsz) => (
            Optimum::sigmoid_batch(n, bsz, t, m.bias(t))?,
            Some(ccem::theory::batch::negative_weight(n, bsz)?),
        ),
        None => (Optimum::sigmoid(n, t, m.bias(t))?, None),
    };
    let (t_etf_boundary, t_antipodal_boundary) = if with_boundaries {
        let wt = w.unwrap_or(1.0);
        (
            m.etf_boundary_weighted(n, wt),
            m.antipodal_boundary_weighted(n, wt),
        )
    } else {
        (None, None)
    };
    Ok(SigmoidCell {
        optimum,
        t_etf_boundary,
        t_antipodal_boundary,
        batch,
        w,
    })
}
