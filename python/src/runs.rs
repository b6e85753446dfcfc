//! `ccem.optimize` (free embeddings) and `ccem.train` (the paper's encoder): one run each,
//! measured and compared with the theory, as a dict with the embeddings.

use crate::convert::{self, matrix_out};
use crate::interrupt::interruptible;
use crate::memory;
use ccem::encoder;
use ccem::geometry::QuantileLevel;
use ccem::matrix::Matrix;
use ccem::monitor::Cancel;
use ccem::optim::{self, FreeConfig};
use ccem::options::{LossOptions, MiniBatchOptions, OptimizeOptions, Spelling, TrainOptions};
use ccem::record::{OptimizeRecord, TrainRecord};
use ccem::Valid;
use ndarray::Array2;
use pyo3::prelude::*;
use pyo3::types::PyDict;

// The defaults in the signatures below are literals so that `help()` shows them; they must be
// the library's (checked at compile time).
const _: () = assert!(
    optim::DEFAULT_STEPS == 10000
        && optim::DEFAULT_GRAD_TOL == 1e-7
        && optim::DEFAULT_RESTARTS == 1
        && encoder::DEFAULT_LAYERS == 2
        && encoder::DEFAULT_STEPS == 100
        && encoder::DEFAULT_LR == 0.5
        && ccem::geometry::DEFAULT_MARGIN_QUANTILE == 0.05,
    "update the defaults of ccem.optimize / ccem.train to the library's"
);

/// The mini-batch options of `batch=`, `batching=`, `neg_variance_weight=`.
fn mini_batch(
    batch: Option<i64>,
    batching: Option<&str>,
    neg_variance_weight: f64,
) -> PyResult<MiniBatchOptions> {
    Ok(MiniBatchOptions {
        batch: batch.map(|b| convert::count(b, "batch")).transpose()?,
        batching: batching.map(str::to_string),
        neg_variance_weight,
    })
}

/// Adds `"U"` and `"V"` to a record's dict.
fn with_embeddings<'py>(
    py: Python<'py>,
    dict: Bound<'py, PyDict>,
    u: Array2<f64>,
    v: Array2<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    dict.set_item("U", matrix_out(py, Matrix::F64(u)))?;
    dict.set_item("V", matrix_out(py, Matrix::F64(v)))?;
    Ok(dict)
}

/// One run of `ccem optimize` on a checked configuration, measured and compared with the theory.
fn optimize_record(
    cfg: &Valid<FreeConfig>,
    level: QuantileLevel,
    cancel: &Cancel,
) -> ccem::Result<(OptimizeRecord, Array2<f64>, Array2<f64>)> {
    let r = optim::optimize_checked_with(cfg, cancel);
    if r.termination.is_stopped() {
        return Err(ccem::Error::Interrupted("ccem.optimize".into()));
    }
    let rec = OptimizeRecord::new(cfg, &r, level)?;
    Ok((rec, r.u, r.v))
}

/// Minimises the sigmoid or InfoNCE loss over free unit embeddings (``ccem optimize``) and
/// compares the optimum with the theory.
///
/// Rows of U and V live on the unit sphere (a Riemannian step with the projective retraction).
/// Defaults: Adam, ``lr`` 0.05 halving every 1000 steps down to 2% (``lr_schedule="step"``),
/// at most 10000 steps (50000 when ``t`` or ``b`` is learnt), stop when
/// ``|grad| <= grad_tol * sum|dL/dS|``, one start. The sigmoid
/// loss has logits ``t * S - b``: SigLIP's ``logit_scale`` is ``t``, its ``logit_bias`` is
/// ``-b``. The options are checked by the same library function as ``ccem optimize``'s.
///
/// Args:
///     n: batch size (>= 2); d: dimension (default n; the theory needs d >= n).
///     loss: a registered loss's name: ``"sigmoid"`` (takes ``t``,
///         ``b``, ``relative_bias``, ``within_view``), ``"infonce"`` (``tau``, ``within_view``),
///         ``"simclr"``, ``"dcl"``, ``"dhel"`` (``tau``) or ``"spectral"`` (no parameter).
///     tau: the temperature of the losses that have one (``> 0``).
///     within_view: the weight ``W >= 0`` of within-view negatives (sigmoid, infonce; default
///         0); refused, naming the loss, by the others.
///     t, b: fixed scale and bias (``b`` a number or ``"tied"``; default ``b = t``).
///     relative_bias: ``r_b`` with ``b = r_b * t`` fixed; ``True`` parametrises the bias as
///         ``b = r_b t`` with ``r_b`` learnt (with ``learn_b=True``, from ``init_b / t``), as
///         ``ccem optimize --relative-bias`` without a value.
///     learn_t: learn ``t = exp(t')`` from ``init_t`` (default 10, SigLIP's).
///     learn_b: learn ``b`` (or ``r_b`` with ``relative_bias=True``) from ``init_b`` (default
///         10); a fixed ``b`` or ``relative_bias`` value with it is refused.
///     optimizer: ``"adam"`` or ``"sgd"``; lr (default 0.05 / 1), momentum (SGD), steps,
///         grad_tol, restarts (the lowest final loss is kept), seed.
///     lr_schedule: ``"step"`` (the default: the rate halves every 1000 steps, down to 2%),
///         ``"constant"`` (as Bangachev et al. train) or ``"cosine"`` (annealed to 0 over
///         ``steps``); the record's ``lr_schedule``.
///     margin_quantile: the level p of ``margin_quantile`` (default 0.05).
///     batch: mini-batch size ``B`` (``2 <= B <= n``; default: the full batch), SPEC §8.
///     batching: ``"expected"`` (the exact expected loss, sigmoid only), ``"shuffled"`` (the
///         default with ``batch``), ``"fixed"``, ``"all"`` or ``"hardest"``, as
///         ``ccem optimize --batching``.
///     neg_variance_weight: weight ``lambda >= 0`` of the negative-variance penalty of Lee et
///         al. 2025 (default 0).
///     max_memory: the most memory the run may use, a size (``"512M"``, ``"8G"``) or a number
///         of bytes (default: the memory available), as ``ccem --max-memory``; a larger run is
///         refused before it starts.
///
/// Returns:
///     a dict with the keys of ``ccem optimize --format json``: the run (final ``t``, ``b``,
///     ``r_b`` or ``tau``; ``termination``: ``"converged"``, ``"step_limit"`` or
///     ``"diverged"``; ``loss``, and for InfoNCE ``loss_clip``, the same in open_clip's
///     ``ClipLoss`` convention, half of it), the measured embedding (``s_pos_mean``,
///     ``s_pos_std``, ``s_neg_mean``, ``s_neg_std``, ``c_fit``, ``gram_distance``), the theory's
///     prediction (``theory_c_star``, ``theory_s_pos``, ``theory_s_neg``, ``theory_loss``,
///     ``theory_phase``; ``None`` for ``d < n``), ``gram_distance_to_theory`` and
///     ``meets_theory``; plus ``"U"`` and ``"V"``, the ``n x d`` float64 embeddings (unit
///     rows). With ``batch``: ``batch``, ``batching``, ``w``, ``s_neg_mean_in_batch`` and
///     ``s_neg_std_in_batch``, the theory being the optimum of the expected mini-batch loss.
///
/// Raises:
///     ValueError: a bad option, with the library's message (e.g. ``batch`` that does not
///         divide ``n`` under ``shuffled``, ``batching="expected"`` with InfoNCE), or a run
///         that would need more memory than ``max_memory``.
///
/// Example:
///     >>> import ccem
///     >>> r = ccem.optimize(10, t=1.0)
///     >>> r["meets_theory"], r["U"].shape
///     (True, (10, 10))
///     >>> r = ccem.optimize(16, t=2.0, b=1.0, batch=4, batching="expected")
///     >>> round(r["s_pos_mean"], 4), round(r["theory_s_pos"], 4), r["w"]
///     (0.8887, 0.8887, 0.2)
#[pyfunction]
#[pyo3(signature = (n, *, d=None, loss="sigmoid", t=None, b=None, tau=None, relative_bias=None,
    within_view=None, learn_t=false, learn_b=false, init_t=None, init_b=None, optimizer="adam", lr=None,
    lr_schedule="step", momentum=0.0, steps=None, grad_tol=1e-7,
    restarts=1, seed=0, batch=None, batching=None, neg_variance_weight=0.0,
    margin_quantile=0.05, max_memory=None))]
#[allow(clippy::too_many_arguments)]
pub fn optimize<'py>(
    py: Python<'py>,
    n: i64,
    d: Option<i64>,
    loss: &str,
    t: Option<f64>,
    b: Option<&Bound<'py, PyAny>>,
    tau: Option<f64>,
    relative_bias: Option<&Bound<'py, PyAny>>,
    within_view: Option<f64>,
    learn_t: bool,
    learn_b: bool,
    init_t: Option<f64>,
    init_b: Option<f64>,
    optimizer: &str,
    lr: Option<f64>,
    lr_schedule: &str,
    momentum: f64,
    steps: Option<i64>,
    grad_tol: f64,
    restarts: i64,
    seed: u64,
    batch: Option<i64>,
    batching: Option<&str>,
    neg_variance_weight: f64,
    margin_quantile: f64,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut l = LossOptions::new(loss.parse().map_err(convert::error)?);
    l.t = t;
    l.b = convert::bias_arg(b)?;
    l.relative_bias = convert::relative_bias_arg(relative_bias)?;
    l.tau = tau;
    l.within_view = within_view;
    l.learn_t = learn_t;
    l.learn_b = learn_b;
    l.init_t = init_t;
    l.init_b = init_b;
    let mut o = OptimizeOptions::new(convert::count(n, "n")?, l);
    o.d = d.map(|d| convert::count(d, "d")).transpose()?;
    o.optimizer = optimizer.parse().map_err(convert::error)?;
    o.lr = lr;
    o.lr_schedule = Some(lr_schedule.to_string());
    o.momentum = momentum;
    o.steps = steps.map(|s| convert::count(s, "steps")).transpose()?;
    o.grad_tol = grad_tol;
    o.restarts = Some(convert::count(restarts, "restarts")?);
    o.seed = seed;
    o.mini_batch = mini_batch(batch, batching, neg_variance_weight)?;
    o.margin_quantile = margin_quantile;
    o.max_memory = memory::arg(max_memory)?;
    let r = o.resolve(Spelling::Keyword).map_err(convert::error)?;
    let (rec, u, v) = interruptible(py, |cancel| optimize_record(&r.config, r.level, cancel))?;
    with_embeddings(py, convert::record(py, &rec)?, u, v)
}

/// Trains the paper's ReLU encoder on Gaussian data (``ccem train``): one run of full-batch SGD.
///
/// The data are ``2n`` Gaussian points in ``R^{2d}``; the encoder is
/// ``ReLU(W2 ReLU(W1 x + b1) + b2)`` (a third layer with ``layers=3``), PyTorch's default
/// initialisation, rows normalised. The sigmoid loss has logits ``t * S - b`` (SigLIP's
/// ``logit_scale`` is ``t``, its ``logit_bias`` is ``-b``).
///
/// Args:
///     n: batch size (>= 2); d: embedding dimension (default n); layers: 2 or 3.
///     loss: a registered loss's name, as in :func:`optimize`: ``"sigmoid"`` (takes ``t`` and
///         ``b``, default ``b = t``, and ``within_view``), or a loss with a temperature
///         (``"infonce"``, ``"simclr"``, ``"dcl"``, ``"dhel"``: ``tau``, or ``t`` as the
///         temperature, as the paper's script and ``ccem train``), or ``"spectral"``.
///     within_view: the weight ``W >= 0`` of within-view negatives (sigmoid, infonce).
///     steps (default 100), lr (default 0.5), seed: of the data and the initial weights.
///     batch, batching, neg_variance_weight: mini-batch training (SPEC §8), as in
///         :func:`optimize` and ``ccem train --batch``.
///     margin_quantile: the level p of ``margin_quantile`` (default 0.05).
///     max_memory: the most memory the run may use (default: the memory available), as in
///         :func:`optimize`.
///
/// Returns:
///     a dict with the keys of ``ccem train --format json`` (the run, ``termination`` is
///     ``"diverged"`` when a non-finite value appeared, then the measurement and the theory as
///     in :func:`optimize`) plus ``"U"`` and ``"V"`` (float64, unit rows).
///
/// Raises:
///     ValueError: a bad option, with the library's message.
///
/// Example:
///     >>> import ccem
///     >>> r = ccem.train(20, t=3.0, seed=1)
///     >>> sorted(k for k in ("loss", "s_pos_mean", "theory_c_star", "U") if k in r)
///     ['U', 'loss', 's_pos_mean', 'theory_c_star']
#[pyfunction]
#[pyo3(signature = (n, *, d=None, layers=2, loss="sigmoid", t=None, b=None,
    tau=None, within_view=None, steps=100, lr=0.5, seed=0, batch=None, batching=None, neg_variance_weight=0.0,
    margin_quantile=0.05, max_memory=None))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    n: i64,
    d: Option<i64>,
    layers: i64,
    loss: &str,
    t: Option<f64>,
    b: Option<&Bound<'py, PyAny>>,
    tau: Option<f64>,
    within_view: Option<f64>,
    steps: i64,
    lr: f64,
    seed: u64,
    batch: Option<i64>,
    batching: Option<&str>,
    neg_variance_weight: f64,
    margin_quantile: f64,
    max_memory: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut l = LossOptions::new(loss.parse().map_err(convert::error)?);
    l.t = t;
    l.b = convert::bias_arg(b)?;
    l.tau = tau;
    l.within_view = within_view;
    let mut o = TrainOptions::new(convert::count(n, "n")?, l);
    o.d = d.map(|d| convert::count(d, "d")).transpose()?;
    o.layers = convert::count(layers, "layers")?;
    o.steps = convert::count(steps, "steps")?;
    o.lr = lr;
    o.seed = seed;
    o.mini_batch = mini_batch(batch, batching, neg_variance_weight)?;
    o.margin_quantile = margin_quantile;
    o.max_memory = memory::arg(max_memory)?;
    let r = o.resolve(Spelling::Keyword).map_err(convert::error)?;
    let (rec, u, v) = interruptible(py, |cancel| -> ccem::Result<_> {
        let run = encoder::train_checked_monitored(&r.config, &r.loss, cancel);
        if run.termination.is_stopped() {
            return Err(ccem::Error::Interrupted("ccem.train".into()));
        }
        let rec = TrainRecord::new(&r.config, &r.loss, &run, r.level)?;
        Ok((rec, run.u, run.v))
    })?;
    with_embeddings(py, convert::record(py, &rec)?, u, v)
}
