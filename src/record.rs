//! The records of one run, `ccem optimize` / `ccem train` (and `ccem.optimize` / `ccem.train`):
//! the run's settings and outcome, then its [`Report`] (the embedding measured and compared
//! with the theory, SPEC §3, §4, §8). One home for the keys that the CLI prints and the Python
//! package returns.
//!
//! ```
//! use ccem::record::OptimizeRecord;
//! use ccem::geometry::QuantileLevel;
//! use ccem::{FreeConfig, Loss};
//!
//! let cfg = FreeConfig::new(6, 6, Loss::sigmoid(2.0, 1.0)?, 0).check()?;
//! let run = ccem::optim::optimize_checked(&cfg);
//! let rec = OptimizeRecord::new(&cfg, &run, QuantileLevel::default())?;
//! assert_eq!(rec.report.meets_theory(), Some(true));
//! # Ok::<(), ccem::Error>(())
//! ```

use crate::batch::MiniBatch;
use crate::encoder::{EncoderConfig, EncoderResult};
use crate::error::Result;
use crate::geometry::QuantileLevel;
use crate::loss::{BlockOptions, ContrastiveLoss, Loss, LossKind};
use crate::optim::Termination;
use crate::optim::{learnt::log_loss_rate, FreeConfig, FreeResult};
use crate::report::Report;
use crate::valid::Valid;
use ndarray::Array2;
use serde::Serialize;

/// The mini-batch keys of a run (SPEC §8), absent for the full batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MiniBatchKeys {
    /// Mini-batch size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Batching strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batching: Option<&'static str>,
    /// Negative weight `(B-1)/(N-1)` of the expected loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<f64>,
}

impl MiniBatchKeys {
    /// The keys of a mini-batch setting (`None`: the full batch).
    pub fn of(mb: Option<MiniBatch>) -> Self {
        MiniBatchKeys {
            batch: mb.map(|mb| mb.size()),
            batching: mb.map(|mb| mb.batching().as_str()),
            w: mb.map(|mb| mb.weight()),
        }
    }
}

/// How a run was trained, for its report: the mini-batch setting, whether the
/// negative-variance penalty was on, and the batches of its end (SPEC §8).
#[derive(Clone, Copy, Debug)]
pub struct Training<'a> {
    /// The mini-batch setting (`None`: the full batch).
    pub batch: Option<MiniBatch>,
    /// Whether the negative-variance penalty was on.
    pub penalised: bool,
    /// The batches of the run's end (empty for `expected` and the full batch).
    pub last_batches: &'a [Vec<usize>],
}

/// The report of a run's embedding `(U, V)`: measured (none after a divergence) and compared with
/// the theory for `loss`, of the expected mini-batch loss for a mini-batch run.
///
/// # Errors
/// A non-finite entry in an embedding that did not diverge.
pub fn run_report(
    (u, v): (&Array2<f64>, &Array2<f64>),
    diverged: bool,
    loss: &Loss,
    level: QuantileLevel,
    training: &Training,
) -> Result<Report> {
    let (n, d) = u.dim();
    Ok(if diverged {
        Report::unmeasured(n, d, loss)
    } else {
        Report::new_with(u.view(), v.view(), loss, level, BlockOptions::default())?.with_in_batch(
            u.view(),
            v.view(),
            training.last_batches,
        )
    }
    .with_training(training.batch, training.penalised, loss))
}

/// `(t, b, tau)` of a loss, as the records print them.
fn parameters(loss: &Loss) -> (Option<f64>, Option<f64>, Option<f64>) {
    let p = loss.params();
    let get = |name: &str| p.iter().find(|(k, _)| *k == name).map(|&(_, v)| v);
    (get("t"), get("b"), get("tau"))
}

/// `loss` in open_clip's convention, for a loss that has one ([`ContrastiveLoss::clip_value`]).
fn loss_clip(loss: &Loss, value: f64) -> Option<f64> {
    loss.clip_value(value)
}

/// One optimisation of free embeddings (`ccem optimize`), measured and compared with the
/// theory.
#[derive(Clone, Debug, Serialize)]
pub struct OptimizeRecord {
    /// Batch size.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// The loss.
    pub objective: LossKind,
    /// Final scale (learnt or fixed); `None` for InfoNCE.
    pub t: Option<f64>,
    /// Final bias; `None` for InfoNCE.
    pub b: Option<f64>,
    /// Final relative bias `b / t` when the bias is relative.
    pub r_b: Option<f64>,
    /// InfoNCE's temperature.
    pub tau: Option<f64>,
    /// Whether `t` was learnt.
    pub learn_t: bool,
    /// Whether `b` was learnt.
    pub learn_b: bool,
    /// `adam` or `sgd`.
    pub optimizer: &'static str,
    /// Learning rate.
    pub lr: f64,
    /// The learning-rate schedule: `step`, `constant` or `cosine` ([`crate::optim::Schedule`]).
    pub lr_schedule: &'static str,
    /// Seed.
    pub seed: u64,
    /// Restarts run.
    pub restarts: usize,
    /// The restart kept (lowest loss).
    pub best_restart: usize,
    /// Steps of the kept restart.
    pub steps_run: usize,
    /// Why it stopped.
    pub termination: Termination,
    /// Final gradient norm.
    pub grad_norm: f64,
    /// Final gradient norm relative to the loss.
    pub grad_norm_relative: f64,
    /// Final loss.
    pub loss: f64,
    /// InfoNCE: `loss` in open_clip's convention (half of ccem's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_clip: Option<f64>,
    /// The embedding measured and compared with the theory.
    #[serde(flatten)]
    pub report: Report,
    /// Learnt t: `-log(L) / t`, which tends to `margin` when the bias sits at `margin_bias`.
    pub log_loss_rate: Option<f64>,
    /// The final loss of every restart.
    pub restart_losses: Vec<f64>,
    /// The mini-batch keys.
    #[serde(flatten)]
    pub mini_batch: MiniBatchKeys,
    /// The weight of the negative-variance penalty, when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neg_variance_weight: Option<f64>,
}

impl OptimizeRecord {
    /// The record of run `r` of `cfg`, its margins at quantile level `level`.
    ///
    /// # Errors
    /// As [`run_report`].
    pub fn new(cfg: &Valid<FreeConfig>, r: &FreeResult, level: QuantileLevel) -> Result<Self> {
        let diverged = r.termination.is_diverged();
        let final_loss = if diverged {
            cfg.loss
        } else {
            r.final_loss(cfg)
        };
        let (t, b, tau) = parameters(&final_loss);
        let training = Training {
            batch: cfg.batch,
            penalised: cfg.neg_variance_weight > 0.0,
            last_batches: &r.last_batches,
        };
        Ok(OptimizeRecord {
            n: cfg.n,
            d: cfg.d,
            objective: final_loss.kind(),
            t,
            b,
            r_b: match (t, b) {
                (Some(t), Some(b)) if cfg.relative_bias => Some(b / t),
                _ => None,
            },
            tau,
            learn_t: cfg.learn_t,
            learn_b: cfg.learn_b,
            optimizer: cfg.optimizer.as_str(),
            lr: cfg.lr,
            lr_schedule: cfg.schedule.name(),
            seed: cfg.seed,
            restarts: cfg.restarts,
            best_restart: r.best_restart,
            steps_run: r.steps_run,
            termination: r.termination,
            grad_norm: r.grad_norm,
            grad_norm_relative: r.grad_norm_relative,
            loss: r.loss,
            loss_clip: loss_clip(&final_loss, r.loss),
            report: run_report((&r.u, &r.v), diverged, &final_loss, level, &training)?,
            log_loss_rate: log_loss_rate(cfg, r),
            restart_losses: r.restart_losses.clone(),
            mini_batch: MiniBatchKeys::of(cfg.batch),
            neg_variance_weight: (cfg.neg_variance_weight != 0.0)
                .then_some(cfg.neg_variance_weight),
        })
    }
}

/// One training of the paper's encoder (`ccem train`), measured and compared with the theory.
#[derive(Clone, Debug, Serialize)]
pub struct TrainRecord {
    /// Batch size.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Layers of the encoder.
    pub layers: usize,
    /// The loss.
    pub objective: LossKind,
    /// Scale; `None` for InfoNCE.
    pub t: Option<f64>,
    /// Bias; `None` for InfoNCE.
    pub b: Option<f64>,
    /// InfoNCE's temperature.
    pub tau: Option<f64>,
    /// Steps run.
    pub steps: usize,
    /// Learning rate.
    pub lr: f64,
    /// Seed.
    pub seed: u64,
    /// Why it stopped.
    pub termination: Termination,
    /// Final loss.
    pub loss: f64,
    /// InfoNCE: `loss` in open_clip's convention (half of ccem's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_clip: Option<f64>,
    /// The embedding measured and compared with the theory.
    #[serde(flatten)]
    pub report: Report,
    /// The mini-batch keys.
    #[serde(flatten)]
    pub mini_batch: MiniBatchKeys,
}

impl TrainRecord {
    /// The record of run `r` of `cfg` with `loss`, its margins at quantile level `level`.
    ///
    /// # Errors
    /// As [`run_report`].
    pub fn new(
        cfg: &Valid<EncoderConfig>,
        loss: &Loss,
        r: &EncoderResult,
        level: QuantileLevel,
    ) -> Result<Self> {
        let (t, b, tau) = parameters(loss);
        let training = Training {
            batch: cfg.batch,
            penalised: cfg.neg_variance_weight > 0.0,
            last_batches: &r.last_batches,
        };
        Ok(TrainRecord {
            n: cfg.n,
            d: cfg.d,
            layers: cfg.layers,
            objective: loss.kind(),
            t,
            b,
            tau,
            steps: r.steps_run,
            lr: cfg.lr,
            seed: cfg.seed,
            termination: r.termination,
            loss: r.loss,
            loss_clip: loss_clip(loss, r.loss),
            report: run_report(
                (&r.u, &r.v),
                r.termination.is_diverged(),
                loss,
                level,
                &training,
            )?,
            mini_batch: MiniBatchKeys::of(cfg.batch),
        })
    }
}

/// The prediction keys of a theory record ([`with_dimension`]), emptied where the CCEM optimum
/// does not apply.
const PREDICTION_KEYS: [&str; 9] = [
    "c_star",
    "delta_star",
    "s_pos",
    "s_neg",
    "loss",
    "loss_clip",
    "phase",
    "t_etf_boundary",
    "t_antipodal_boundary",
];

/// A theory record (any `Serialize` struct with a key `n`) in dimension `d` (SPEC §7): `d`
/// after `n`, then `ccem_applies` (`d >= needed(N)`: `N` for the sigmoid loss, `N - 1` for
/// InfoNCE), `margin_bound = N / (2(N-1))` and `max_margin` (the command that finds the
/// maximum-margin constellation where the CCEM does not apply); below, the prediction keys are
/// `null`. What `ccem theory --d` prints and `ccem.theory(d=)` returns.
///
/// # Errors
/// A record that does not serialise to an object.
pub fn with_dimension<T: serde::Serialize>(
    r: &T,
    d: usize,
    needed: impl Fn(usize) -> usize,
) -> Result<serde_json::Value> {
    use serde_json::{Map, Value};
    let not_object = || crate::error::Error::Config("a theory record is not an object".to_string());
    let Value::Object(m) = serde_json::to_value(r).map_err(|_| not_object())? else {
        return Err(not_object());
    };
    let n = m.get("n").and_then(Value::as_u64).unwrap_or(0) as usize;
    let applies = d >= needed(n);
    let mut o = Map::new();
    for (k, v) in m {
        let blank = !applies && PREDICTION_KEYS.contains(&k.as_str());
        o.insert(k.clone(), if blank { Value::Null } else { v });
        if k == "n" {
            o.insert("d".into(), d.into());
        }
    }
    o.insert("ccem_applies".into(), applies.into());
    o.insert(
        "margin_bound".into(),
        crate::geometry::margin_bound(n.max(2)).into(),
    );
    o.insert(
        "max_margin".into(),
        (!applies)
            .then(|| format!("ccem max-margin --n {n} --d {d}"))
            .into(),
    );
    Ok(Value::Object(o))
}
