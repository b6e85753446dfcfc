//! `ccem.optimize` (free embeddings) and `ccem.train` (the paper's encoder): one run each,
//! measured and compared with the theory, as a dict with the embeddings.

use crate::convert::{self, matrix_out, value_error};
use crate::interrupt::interruptible;
use ccem::batch::MiniBatch;
use ccem::encoder::{self, EncoderConfig};
use ccem::geometry::QuantileLevel;
use ccem::loss::Loss;
use ccem::matrix::Matrix;
use ccem::monitor::Cancel;
use ccem::optim::{self, FreeConfig, OptimizerKind};
use ccem::record::{OptimizeRecord, TrainRecord};
use ccem::{LossKind, Valid};
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
        && encoder::DEFAULT_LR == 0.5,
    "update the defaults of ccem.optimize / ccem.train to the library's"
);

/// The mini-batch setting of `batch=`/`batching=` (validated by the library).
fn mini_batch(
    n: usize,
    batch: Option<i64>,
    batching: Option<&str>,
    loss: &Loss,
) -> PyResult<Option<MiniBatch>> {
    let batch = batch.map(|b| convert::count(b, "batch")).transpose()?;
    MiniBatch::from_options(n, batch, batching, loss).map_err(convert::error)
}

/// The options of `ccem.optimize` that decide the loss.
struct LossArgs<'a> {
    loss: &'a str,
    t: Option<f64>,
    b: Option<f64>,
    tau: Option<f64>,
    relative_bias: Option<f64>,
    learn_t: bool,
    learn_b: bool,
    init_t: Option<f64>,
    init_b: Option<f64>,
}

/// The loss to start from, as `ccem optimize` builds it from its options.
fn start_loss(a: &LossArgs) -> PyResult<Loss> {
    let loss = match a.loss.parse().map_err(convert::error)? {
        LossKind::InfoNce => {
            if a.t.is_some() || a.b.is_some() || a.relative_bias.is_some() {
                return Err(value_error(
                    "t/b/relative_bias are for the sigmoid loss; InfoNCE takes tau",
                ));
            }
            if a.learn_t || a.learn_b || a.init_t.is_some() || a.init_b.is_some() {
                return Err(value_error(
                    "learn_t/learn_b/init_t/init_b are for the sigmoid loss",
                ));
            }
            let tau = a
                .tau
                .ok_or_else(|| value_error("tau is required for loss='infonce' (e.g. tau=0.5)"))?;
            Loss::infonce(tau)
        }
        LossKind::Sigmoid => {
            if a.tau.is_some() {
                return Err(value_error(
                    "tau is for loss='infonce'; the sigmoid loss takes t and b",
                ));
            }
            let t = if a.learn_t {
                if a.t.is_some() {
                    return Err(value_error(
                        "t fixes the scale; with learn_t=True give its start as init_t (default 10)",
                    ));
                }
                a.init_t.unwrap_or(optim::SIGLIP_INIT_T)
            } else {
                if a.init_t.is_some() {
                    return Err(value_error(
                        "init_t is the start of a learnt scale: add learn_t=True, or fix it with t",
                    ));
                }
                a.t.ok_or_else(|| {
                    value_error("t is required for the sigmoid loss (e.g. t=1.0), or learn_t=True")
                })?
            };
            if a.b.is_some() && a.relative_bias.is_some() {
                return Err(value_error("give either b or relative_bias, not both"));
            }
            let b = if a.learn_b {
                if a.b.is_some() {
                    return Err(value_error(
                        "b fixes the bias; with learn_b=True give its start as init_b (default 10)",
                    ));
                }
                match (a.relative_bias, a.init_b) {
                    (Some(_), Some(_)) => {
                        return Err(value_error(
                            "with learn_b=True, relative_bias is the start of the learnt r_b: \
                             give it or init_b, not both",
                        ))
                    }
                    (Some(r), None) => r * t,
                    (None, b0) => b0.unwrap_or(optim::SIGLIP_INIT_B),
                }
            } else {
                if a.init_b.is_some() {
                    return Err(value_error(
                        "init_b is the start of a learnt bias: add learn_b=True, or fix it with b",
                    ));
                }
                match (a.relative_bias, a.b) {
                    (Some(r), _) => {
                        ccem::error::check_finite("relative_bias", r).map_err(convert::error)?;
                        r * t
                    }
                    (None, b) => b.unwrap_or(t),
                }
            };
            Loss::sigmoid(t, b)
        }
    };
    loss.map_err(convert::error)
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
    cancel: &Cancel,
) -> ccem::Result<(OptimizeRecord, Array2<f64>, Array2<f64>)> {
    let r = optim::optimize_checked_with(cfg, cancel);
    if r.termination.is_stopped() {
        return Err(ccem::Error::Interrupted("ccem.optimize".into()));
    }
    let rec = OptimizeRecord::new(cfg, &r, QuantileLevel::default())?;
    Ok((rec, r.u, r.v))
}

/// Minimises the sigmoid or InfoNCE loss over free unit embeddings (``ccem optimize``) and
/// compares the optimum with the theory.
///
/// Rows of U and V live on the unit sphere (a Riemannian step with the projective retraction).
/// Defaults: Adam, ``lr`` 0.05 halving every 1000 steps down to 2%, at most 10000 steps, stop
/// when ``|grad| <= grad_tol * sum|dL/dS|``, one start. The sigmoid loss has logits
/// ``t * S - b``: SigLIP's ``logit_scale`` is ``t``, its ``logit_bias`` is ``-b``.
///
/// Args:
///     n: batch size (>= 2); d: dimension (default n; the theory needs d >= n).
///     loss: ``"sigmoid"`` (takes ``t``, ``b``) or ``"infonce"`` (takes ``tau``).
///     t, b: fixed scale and bias (default ``b = t``).
///     relative_bias: ``r_b`` with ``b = r_b * t`` fixed; with ``learn_b=True`` the start of the
///         learnt ``r_b``.
///     learn_t: learn ``t = exp(t')`` from ``init_t`` (default 10, SigLIP's).
///     learn_b: learn ``b`` from ``init_b`` (default 10), or ``r_b`` (see relative_bias).
///     optimizer: ``"adam"`` or ``"sgd"``; lr (default 0.05 / 1), momentum (SGD), steps,
///         grad_tol, restarts (the lowest final loss is kept), seed.
///     batch: mini-batch size ``B`` (``2 <= B <= n``; default: the full batch), SPEC §8.
///     batching: ``"expected"`` (the exact expected loss, sigmoid only), ``"shuffled"`` (the
///         default with ``batch``), ``"fixed"``, ``"all"`` or ``"hardest"``, as
///         ``ccem optimize --batching``.
///     neg_variance_weight: weight ``lambda >= 0`` of the negative-variance penalty of Lee et
///         al. 2025 (default 0).
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
///         divide ``n`` under ``shuffled``, ``batching="expected"`` with InfoNCE).
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
    learn_t=false, learn_b=false, init_t=None, init_b=None, optimizer="adam", lr=None,
    momentum=0.0, steps=10000, grad_tol=1e-7,
    restarts=1, seed=0, batch=None, batching=None, neg_variance_weight=0.0))]
#[allow(clippy::too_many_arguments)]
pub fn optimize<'py>(
    py: Python<'py>,
    n: i64,
    d: Option<i64>,
    loss: &str,
    t: Option<f64>,
    b: Option<f64>,
    tau: Option<f64>,
    relative_bias: Option<f64>,
    learn_t: bool,
    learn_b: bool,
    init_t: Option<f64>,
    init_b: Option<f64>,
    optimizer: &str,
    lr: Option<f64>,
    momentum: f64,
    steps: i64,
    grad_tol: f64,
    restarts: i64,
    seed: u64,
    batch: Option<i64>,
    batching: Option<&str>,
    neg_variance_weight: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let n = convert::count(n, "n")?;
    let d = d.map(|d| convert::count(d, "d")).transpose()?;
    let (steps, restarts) = (
        convert::count(steps, "steps")?,
        convert::count(restarts, "restarts")?,
    );
    let start = start_loss(&LossArgs {
        loss,
        t,
        b,
        tau,
        relative_bias,
        learn_t,
        learn_b,
        init_t,
        init_b,
    })?;
    let optimizer: OptimizerKind = optimizer.parse().map_err(convert::error)?;
    let mut cfg = FreeConfig::new(n, d.unwrap_or(n), start, seed);
    cfg.optimizer = optimizer;
    cfg.lr = lr.unwrap_or(optimizer.default_lr());
    cfg.momentum = momentum;
    cfg.steps = steps;
    cfg.grad_tol = grad_tol;
    cfg.restarts = restarts;
    cfg.learn_t = learn_t;
    cfg.learn_b = learn_b;
    cfg.relative_bias = relative_bias.is_some();
    cfg.batch = mini_batch(n, batch, batching, &start)?;
    cfg.neg_variance_weight = neg_variance_weight;
    let cfg = cfg.check().map_err(convert::error)?;
    let (rec, u, v) = interruptible(py, |cancel| optimize_record(&cfg, cancel))?;
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
///     loss: ``"sigmoid"`` (takes ``t`` and ``b``, default ``b = t``) or ``"infonce"`` (takes
///         ``tau``).
///     steps (default 100), lr (default 0.5), seed: of the data and the initial weights.
///     batch, batching, neg_variance_weight: mini-batch training (SPEC §8), as in
///         :func:`optimize` and ``ccem train --batch``.
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
    tau=None, steps=100, lr=0.5, seed=0, batch=None, batching=None, neg_variance_weight=0.0))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    n: i64,
    d: Option<i64>,
    layers: i64,
    loss: &str,
    t: Option<f64>,
    b: Option<f64>,
    tau: Option<f64>,
    steps: i64,
    lr: f64,
    seed: u64,
    batch: Option<i64>,
    batching: Option<&str>,
    neg_variance_weight: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let n = convert::count(n, "n")?;
    let d = d.map(|d| convert::count(d, "d")).transpose()?;
    let (layers, steps) = (
        convert::count(layers, "layers")?,
        convert::count(steps, "steps")?,
    );
    let loss = match loss.parse().map_err(convert::error)? {
        LossKind::Sigmoid => {
            if tau.is_some() {
                return Err(value_error(
                    "tau is for loss='infonce'; the sigmoid loss takes t and b",
                ));
            }
            let t = t.ok_or_else(|| value_error("t is required (e.g. t=1.0)"))?;
            Loss::sigmoid(t, b.unwrap_or(t))
        }
        LossKind::InfoNce => {
            if t.is_some() || b.is_some() {
                return Err(value_error(
                    "t/b are for the sigmoid loss; InfoNCE takes tau",
                ));
            }
            let tau = tau.ok_or_else(|| value_error("tau is required for loss='infonce'"))?;
            Loss::infonce(tau)
        }
    }
    .map_err(convert::error)?;
    let cfg = EncoderConfig {
        n,
        d: d.unwrap_or(n),
        layers,
        steps,
        lr,
        seed,
        batch: mini_batch(n, batch, batching, &loss)?,
        neg_variance_weight,
    }
    .check()
    .map_err(convert::error)?;
    let (rec, u, v) = interruptible(py, |cancel| -> ccem::Result<_> {
        let r = encoder::train_checked_monitored(&cfg, &loss, cancel);
        if r.termination.is_stopped() {
            return Err(ccem::Error::Interrupted("ccem.train".into()));
        }
        let rec = TrainRecord::new(&cfg, &loss, &r, QuantileLevel::default())?;
        Ok((rec, r.u, r.v))
    })?;
    with_embeddings(py, convert::record(py, &rec)?, u, v)
}
