//! Free-embedding optimisation: minimise the sigmoid or InfoNCE loss directly over the
//! embeddings `(U, V)`, every row on the unit sphere `S^{d-1}` (SPEC.md §1, §3).
//!
//! This is the experiment that tests the theory of SPEC.md §3 without an encoder in the way:
//! for `d >= N` the minimiser of the sigmoid loss is the CCEM with the predicted `c*`, and the
//! InfoNCE minimiser is the simplex ETF; [`crate::Report`] judges a result against that.
//!
//! # Algorithm
//! - **Parametrisation.** Raw rows `X`, `Y` with `u_i = x_i / ||x_i||`. The raw rows are
//!   renormalised after every step, so at every evaluation `||x_i|| = 1` and the gradient
//!   through the normalisation, `dL/dx = (I - u u^T)(dL/du) / ||x||` (SPEC §1), is the
//!   Riemannian gradient of the loss on the product of spheres. A step followed by the
//!   renormalisation is a Riemannian step with the projective retraction `x -> x / ||x||`.
//!   The optimiser's state (momentum, Adam's moments) lives in the ambient `R^d` and is not
//!   transported.
//! - **Objective** (`objective.rs`): `S = U V^T`, `G = dL/dS` in place, `dL/dU = G V`,
//!   `dL/dV = G^T U`, all into buffers allocated once per call: the step loop does not
//!   allocate in this crate's code (`matrixmultiply`'s packing buffer aside).
//! - **Optimisers** ([`Optimizer`]): [`Adam`] and [`Sgd`] (optional momentum), on one flat
//!   vector holding `X`, `Y` and the learnt scalars.
//! - **Learning rate** ([`Schedule`]): `lr_k = lr * f(k)`; by default ([`DEFAULT_SCHEDULE`])
//!   halving every 1000 steps down to 2% of `lr`.
//! - **Stopping rule** (relative): the run stops (`converged`) as soon as
//!   `||grad||_F <= grad_tol * ||G||_1`, with `||grad||_F` the Riemannian gradient norm over
//!   every row of `U`, `V` and the learnt scalars, and `||G||_1 = sum_ij |dL/dS_ij|` the total
//!   size of the "forces" `G_ij v_j` whose sum is `dL/du_i` (so the ratio is at most about 1
//!   and measures how completely they cancel); otherwise after `steps` steps. With a learnt
//!   `t` the run stops instead when the margin has converged ([`learnt`]): `t` grows without
//!   end there and the gradient norm says nothing. An absolute
//!   tolerance would stop far too early where the loss is flat because `t` is small or the
//!   terms saturate (`||G||_1` scales like `t`, and like the loss itself for InfoNCE at small
//!   `tau`); the relative one needs no per-cell tuning.
//! - **Restarts:** `restarts` runs from independent random starts (rows iid Gaussian, then
//!   normalised); restart `r` draws from `ChaCha8Rng::seed_from_u64(seed)` on stream `r`.
//!   The run with the lowest final loss is kept (a diverged run never wins over a finite one).
//! - **InfoNCE steps on `log L`.** `L_info > 0`, so `log L_info` has the same minimisers and
//!   stationary points; its gradient `grad L / L` keeps its scale while the loss falls by
//!   orders of magnitude (at small `tau` it ends near `1e-5`). Adam's second-moment estimate
//!   otherwise lags behind that fall and shrinks the steps: measured on the 470-cell grid with
//!   `tau in linspace(0.1, 5, 10)`, stepping on `L` met the theory on 465 cells (the misses at
//!   `tau = 0.1`, `N <= 8`) in 1414 steps on average, stepping on `log L` on all 470 in 753.
//!   The stopping rule is scale-free and is applied to the gradient of `L` as before.
//! - **Learnable `t`, `b`** ([`scalars`]): `t = exp(t')`, `b` learnt directly or `b = r_b t`
//!   with `r_b` learnt, exactly as SigLIP trains them.
//!
//! # Determinism
//! A result depends only on the [`FreeConfig`] (which holds the seed): one call runs on the
//! calling thread, with no rayon and `matrixmultiply` without its threading feature. Sweeps
//! parallelise across cells.

mod adam;
mod batching;
pub mod learnt;
pub mod max_margin;
mod objective;
pub mod scalars;
mod sgd;

#[cfg(test)]
mod tests;

pub use adam::Adam;
pub use scalars::{scalar_gradients, ScalarFlags, Scalars};
pub use sgd::Sgd;

use crate::batch::MiniBatch;
use crate::error::{check_batch, check_nonneg, check_positive, Error, Result};
use crate::limits::MemoryLimit;
use crate::loss::{ContrastiveLoss, Loss, Tuned};
use crate::monitor::{Monitor, StepProgress, Unwatched, Watch};
use crate::valid::Valid;
use ndarray::Array2;
use objective::{Objective, Workspace};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// One update rule on a flat parameter vector.
pub trait Optimizer {
    /// Updates `params` given the gradient `grad` (same length) at learning rate `lr`.
    fn step(&mut self, params: &mut [f64], grad: &[f64], lr: f64);
    /// Forgets all state (momentum, moments, step count), as at construction.
    fn reset(&mut self);
}

/// Which optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// [`Adam`] with `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`.
    Adam,
    /// [`Sgd`] with [`FreeConfig::momentum`].
    Sgd,
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;

    /// `adam` or `sgd` (any case).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "adam" => Ok(OptimizerKind::Adam),
            "sgd" => Ok(OptimizerKind::Sgd),
            _ => Err(Error::Config(format!(
                "unknown optimizer '{s}': use adam or sgd"
            ))),
        }
    }
}

impl OptimizerKind {
    /// The default initial learning rate of this optimiser ([`DEFAULT_LR`],
    /// [`DEFAULT_LR_SGD`]).
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Adam => DEFAULT_LR,
            OptimizerKind::Sgd => DEFAULT_LR_SGD,
        }
    }

    /// `adam` or `sgd`.
    pub fn as_str(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::Sgd => "sgd",
        }
    }
}

/// How the learning rate changes with the step `k = 0, 1, ...`: `lr_k = lr * f(k)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// `f(k) = 1`.
    Constant,
    /// `f(k) = max(2^{-k / half_life}, floor)`: halves every `half_life` steps down to
    /// `floor`.
    Exponential {
        /// Steps per halving.
        half_life: f64,
        /// The smallest factor.
        floor: f64,
    },
    /// Cosine annealing to zero over `steps` steps (SPEC §3.2):
    /// `f(k) = (1 + cos(pi min(k, steps) / steps)) / 2`.
    Cosine {
        /// The steps of the whole run, `>= 1`.
        steps: usize,
    },
}

impl Schedule {
    /// The factor `f(k)`.
    #[inline]
    pub fn factor(&self, k: usize) -> f64 {
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Exponential { half_life, floor } => (-(k as f64) / half_life
                * std::f64::consts::LN_2)
                .exp()
                .max(floor),
            Schedule::Cosine { steps } => {
                let x = k.min(steps) as f64 / steps.max(1) as f64;
                0.5 * (1.0 + (std::f64::consts::PI * x).cos())
            }
        }
    }

    /// The schedule of a run of `steps` steps by its name: `step` ([`DEFAULT_SCHEDULE`]: the
    /// rate halves every 1000 steps, down to 2%), `constant` or `cosine` (annealed to zero
    /// over the `steps`).
    ///
    /// # Errors
    /// Any other name.
    pub fn named(name: &str, steps: usize) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "step" => Ok(DEFAULT_SCHEDULE),
            "constant" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine { steps }),
            _ => Err(Error::Config(format!(
                "unknown learning-rate schedule '{name}': use step, constant or cosine"
            ))),
        }
    }

    /// The schedule's name ([`Schedule::named`]): `step` for any exponential decay.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Exponential { .. } => "step",
            Schedule::Cosine { .. } => "cosine",
        }
    }
}

// The defaults below were chosen by measurement (`examples/free_grid.rs`: the 470 cells
// `N = 4..50`, `t in linspace(0.1, 5, 10)`, `d = N`, on this project's 2-core machine) to
// meet the theory (SPEC §3, [`S_POS_TOL`], [`GRAM_TOL`]) on every cell with `b = t`, `b = 1`,
// `b = -1`, `b = 3`, `r_b = 0.5`, `r_b = 1.5` and `r_b = -0.5`, and several seeds, in a few
// seconds per grid:
// - Adam, because it is indifferent to the gradient's scale (`t` spans 0.1..5 and beyond)
//   and its normalised steps leave the flat neighbourhood of the antipodal saddle quickly;
//   plain gradient descent with a large step was measured to stop next to it.
// - The exponential decay: a constant rate leaves Adam oscillating above the tolerance; a
//   half-life of 300 steps (floor 1e-3) froze the slow cells near the phase boundaries; 2000
//   steps left many cells oscillating. 1000 steps with floor 0.02 converged on every cell.
// - One restart: no cell of the grids above needed a second start (all failures seen while
//   tuning were slow convergence, never a wrong minimum).

/// The default optimiser: Adam.
pub const DEFAULT_OPTIMIZER: OptimizerKind = OptimizerKind::Adam;
/// The default initial learning rate for Adam.
pub const DEFAULT_LR: f64 = 0.05;
/// A reasonable initial learning rate for [`OptimizerKind::Sgd`] (gradients scale like `t`;
/// measured at `t <= 5`).
pub const DEFAULT_LR_SGD: f64 = 1.0;
/// The default schedule: halve every 1000 steps, down to 2% of the initial rate.
pub const DEFAULT_SCHEDULE: Schedule = Schedule::Exponential {
    half_life: 1000.0,
    floor: 0.02,
};
/// The default maximum number of steps (cells of the grid took 400-1000 on average, the
/// slowest a few thousand).
pub const DEFAULT_STEPS: usize = 10_000;
/// The default maximum number of steps when `t` or `b` is learnt: the loss then keeps falling as
/// `t` grows, and the margin converges slowly (N = 10, `--learn-t --learn-b --relative-bias`:
/// the margin's stopping rule fires after 41,900 steps, at margin 0.55518 of the bound 0.55556;
/// at 10,000 steps it is 0.5417).
pub const DEFAULT_STEPS_LEARNT: usize = 50_000;
/// The default relative gradient tolerance (see the stopping rule in the module docs).
pub const DEFAULT_GRAD_TOL: f64 = 1e-7;
/// The default number of random starts.
pub const DEFAULT_RESTARTS: usize = 1;
/// SigLIP's initial scale when `t` is learnt (SPEC §1: `t = 10`).
pub const SIGLIP_INIT_T: f64 = 10.0;
/// SigLIP's initial bias when `b` is learnt, in this crate's sign convention (SPEC §1:
/// open_clip's `b' = -10` is our `b = 10`).
pub const SIGLIP_INIT_B: f64 = 10.0;

/// One free-embedding optimisation problem and how to solve it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FreeConfig {
    /// Batch size `N >= 2`.
    pub n: usize,
    /// Dimension `d >= 1` (the theory of SPEC §3 needs `d >= N`).
    pub d: usize,
    /// The loss; for the sigmoid loss its `t`, `b` are the fixed values, or the initial ones of
    /// whatever is learnt.
    pub loss: Loss,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// Initial learning rate, finite and `> 0`.
    pub lr: f64,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// SGD momentum in `[0, 1)` (ignored by Adam).
    pub momentum: f64,
    /// Maximum number of steps per restart, `>= 1`.
    pub steps: usize,
    /// Stop when `||grad||_F <= grad_tol * ||G||_1` (module docs; finite, `>= 0`; `0` runs
    /// all `steps`).
    pub grad_tol: f64,
    /// Number of random starts, `>= 1`; the lowest final loss is kept.
    pub restarts: usize,
    /// Seed of the random starts.
    pub seed: u64,
    /// Learn `t = exp(t')` (sigmoid only; needs `t > 0`).
    pub learn_t: bool,
    /// Learn the bias (`b`, or `r_b` with `relative_bias`; sigmoid only).
    pub learn_b: bool,
    /// Parametrise the bias as `b = r_b t` (sigmoid only; needs `t > 0`; `r_b = b / t`).
    pub relative_bias: bool,
    /// Mini-batch training (SPEC §8, [`crate::batch`]); `None` is the full batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<MiniBatch>,
    /// Weight `lambda >= 0` of the negative-variance penalty of SPEC §8 (`0`: none).
    #[serde(default, skip_serializing_if = "batching::is_zero")]
    pub neg_variance_weight: f64,
    /// The most memory the run may use (default: the memory available when it is checked);
    /// not part of the problem, so not serialised.
    #[serde(skip)]
    pub max_memory: MemoryLimit,
}

impl FreeConfig {
    /// The problem `(n, d, loss)` from random starts drawn from `seed`, with the default solver
    /// settings (`DEFAULT_*`).
    pub fn new(n: usize, d: usize, loss: Loss, seed: u64) -> Self {
        FreeConfig {
            n,
            d,
            loss,
            optimizer: DEFAULT_OPTIMIZER,
            lr: DEFAULT_LR,
            schedule: DEFAULT_SCHEDULE,
            momentum: 0.0,
            steps: DEFAULT_STEPS,
            grad_tol: DEFAULT_GRAD_TOL,
            restarts: DEFAULT_RESTARTS,
            seed,
            learn_t: false,
            learn_b: false,
            relative_bias: false,
            batch: None,
            neg_variance_weight: 0.0,
            max_memory: MemoryLimit::Available,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// `n < 2`, `d < 1`, `steps < 1`, `lr` not finite and `> 0`, `restarts < 1`, `grad_tol`
    /// negative or non-finite, `momentum` outside `[0, 1)`, a schedule with a non-positive
    /// half-life or a floor outside `(0, 1]`, learnt `t`/`b` or a relative bias with InfoNCE,
    /// or with `t = 0` (learnt `t` or a relative bias); [`Error::TooLarge`] when the run would
    /// need more memory than it may use (`max_memory`, [`crate::limits`]).
    pub fn validate(&self) -> Result<()> {
        check_batch(self.n)?;
        if self.d < 1 {
            return Err(Error::Config(format!(
                "invalid dimension d = {}: need d >= 1",
                self.d
            )));
        }
        if self.steps < 1 {
            return Err(Error::Config(
                "invalid steps = 0: need at least one step".to_string(),
            ));
        }
        if self.restarts < 1 {
            return Err(Error::Config(
                "invalid restarts = 0: need at least one start".to_string(),
            ));
        }
        check_positive("lr", self.lr)?;
        check_nonneg("grad_tol", self.grad_tol)?;
        // Every restart's final loss is kept (`FreeResult::restart_losses`): 8 bytes each.
        self.max_memory.check(
            &format!(
                "optimize with N = {}, d = {}{}",
                self.n,
                self.d,
                if self.restarts > 1 {
                    format!(", {} restarts", self.restarts)
                } else {
                    String::new()
                }
            ),
            crate::limits::free_run_bytes(self.n, self.d) + 8.0 * self.restarts as f64,
        )?;
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(Error::InvalidParameter {
                name: "momentum",
                value: self.momentum,
                requirement: "must be in [0, 1)",
            });
        }
        if let Schedule::Cosine { steps } = self.schedule {
            if steps < 1 {
                return Err(Error::Config(
                    "invalid cosine schedule over 0 steps: need at least one".to_string(),
                ));
            }
        }
        if let Schedule::Exponential { half_life, floor } = self.schedule {
            check_positive("half_life", half_life)?;
            if !(floor > 0.0 && floor <= 1.0) {
                return Err(Error::InvalidParameter {
                    name: "floor",
                    value: floor,
                    requirement: "must be in (0, 1]",
                });
            }
        }
        self.validate_batch()?;
        match self.loss.tuned() {
            Some(Tuned::Sigmoid { t, .. }) => {
                if (self.learn_t || self.relative_bias) && t <= 0.0 {
                    return Err(Error::InvalidParameter {
                        name: "t",
                        value: t,
                        requirement: "must be > 0 to learn t = exp(t') or to use the relative \
                                      bias r_b = b / t",
                    });
                }
            }
            _ => {
                let other = self.loss;
                if self.learn_t || self.learn_b || self.relative_bias {
                    return Err(Error::Config(format!(
                        "learnt t/b and the relative bias are for SigLIP's sigmoid loss (without \
                         within-view negatives); the {} loss takes {}",
                        other.name(),
                        param_names(&other)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The configuration, checked ([`FreeConfig::validate`]): what [`optimize_checked`] takes.
    ///
    /// # Errors
    /// As [`FreeConfig::validate`].
    pub fn check(self) -> Result<Valid<Self>> {
        self.validate()?;
        Ok(Valid::new_unchecked(self))
    }

    fn flags(&self) -> ScalarFlags {
        ScalarFlags {
            learn_t: self.learn_t,
            learn_b: self.learn_b,
            relative_bias: self.relative_bias,
        }
    }
}

/// The result of [`optimize`]: the best restart's embedding and how it got there.
#[derive(Clone, Debug, PartialEq)]
pub struct FreeResult {
    /// `U`, `N x d`, unit rows.
    pub u: Array2<f64>,
    /// `V`, `N x d`, unit rows.
    pub v: Array2<f64>,
    /// The loss at `(U, V)` with the final `t`, `b`.
    pub loss: f64,
    /// The final scale `t` (the fixed one unless learnt; `NaN` for InfoNCE).
    pub t: f64,
    /// The final bias `b` (the fixed one unless learnt; `NaN` for InfoNCE).
    pub b: f64,
    /// Steps taken by the kept restart.
    pub steps_run: usize,
    /// How the kept restart ended: it met the gradient tolerance, ran out of steps, or produced a
    /// non-finite value (the last only when every restart did).
    pub termination: Termination,
    /// The Riemannian gradient norm `||grad||_F` at the returned point.
    pub grad_norm: f64,
    /// `||grad||_F / ||G||_1` at the returned point: what the stopping rule compares with
    /// `grad_tol`.
    pub grad_norm_relative: f64,
    /// Which restart was kept (`0`-based).
    pub best_restart: usize,
    /// The final loss of every restart, in order (`NaN` for a diverged one).
    pub restart_losses: Vec<f64>,
    /// The kept restart's batches whose negative pairs count as "in a batch" (SPEC §8,
    /// [`crate::batch::BatchSampler::last_batches`]); empty for the full batch and `expected`.
    pub last_batches: Vec<Vec<usize>>,
}

/// The parameter names of a loss, for messages (`tau`, `none`).
fn param_names(loss: &Loss) -> String {
    let p: Vec<&str> = loss.params().iter().map(|(k, _)| *k).collect();
    if p.is_empty() {
        "no parameter".into()
    } else {
        p.join(", ")
    }
}

impl FreeResult {
    /// The loss at the final `t`, `b` (for learnt scalars) or the configured one.
    pub fn final_loss(&self, cfg: &FreeConfig) -> Loss {
        match cfg.loss.tuned() {
            Some(Tuned::Sigmoid { .. }) => Loss::from(Tuned::Sigmoid {
                t: self.t,
                b: self.b,
            }),
            _ => cfg.loss,
        }
    }
}

/// How a run ended.
///
/// Written as `converged`, `step_limit`, `diverged` and `stopped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// The stopping rule was met (free embeddings: the relative gradient tolerance; with a learnt
    /// `t`, the margin's convergence, see [`learnt`]).
    Converged,
    /// Every step was taken without meeting a stopping rule (the encoder always ends so).
    StepLimit,
    /// A non-finite value appeared; the run stopped there.
    Diverged,
    /// The run's monitor stopped it ([`crate::monitor::Monitor`]); the result is the partial one
    /// reached then.
    Stopped,
}

impl Termination {
    /// From the two flags of a run (divergence wins).
    pub(crate) fn from_flags(converged: bool, diverged: bool) -> Self {
        if diverged {
            Termination::Diverged
        } else if converged {
            Termination::Converged
        } else {
            Termination::StepLimit
        }
    }

    /// `converged`, `step_limit`, `diverged` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Termination::Converged => "converged",
            Termination::StepLimit => "step_limit",
            Termination::Diverged => "diverged",
            Termination::Stopped => "stopped",
        }
    }

    /// Whether the run was stopped by its monitor.
    pub fn is_stopped(self) -> bool {
        self == Termination::Stopped
    }

    /// Whether the run diverged.
    pub fn is_diverged(self) -> bool {
        self == Termination::Diverged
    }

    /// Whether the run met its stopping rule.
    pub fn is_converged(self) -> bool {
        self == Termination::Converged
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one restart (its embedding stays in the shared buffer).
#[derive(Clone, Debug)]
struct RestartOutcome {
    loss: f64,
    t: f64,
    b: f64,
    steps_run: usize,
    converged: bool,
    grad_norm: f64,
    grad_norm_relative: f64,
    diverged: bool,
    /// The monitor stopped the run.
    stopped: bool,
    /// The batches of the end of a stochastic mini-batch run (empty otherwise).
    last_batches: Vec<Vec<usize>>,
}

/// Buffers of one [`optimize`] call, reused by every restart.
struct Solver {
    n: usize,
    d: usize,
    ws: Workspace,
    /// `[X (N x d) | Y (N x d) | learnt scalars]`.
    theta: Vec<f64>,
    grad: Vec<f64>,
    opt: Box<dyn Optimizer>,
}

/// Minimises the loss of `cfg` over free unit embeddings (module documentation).
///
/// # Errors
/// An invalid configuration ([`FreeConfig::validate`]). Divergence is not an error: it is
/// reported in [`FreeResult::termination`].
///
/// # Example
/// ```
/// use ccem::{optimize, FreeConfig, Loss, Report};
///
/// // N = 6 pairs in R^6 under the sigmoid loss with t = b = 1: the optimum is the predicted CCEM.
/// let loss = Loss::sigmoid(1.0, 1.0)?;
/// let r = optimize(&FreeConfig::new(6, 6, loss, 0))?;
/// assert!(r.termination.is_converged());
/// let report = Report::new(r.u.view(), r.v.view(), &loss)?;
/// assert_eq!(report.meets_theory(), Some(true));
/// # Ok::<(), ccem::Error>(())
/// ```
pub fn optimize(cfg: &FreeConfig) -> Result<FreeResult> {
    Ok(optimize_checked(&cfg.check()?))
}

/// [`optimize`] for a configuration already checked: it cannot fail.
pub fn optimize_checked(cfg: &Valid<FreeConfig>) -> FreeResult {
    optimize_checked_with(cfg, &Unwatched)
}

/// [`optimize`] watched by `monitor` ([`crate::monitor`]): it sees every restart's steps
/// ([`StepProgress::restart`]), and when it stops the run the result is the best of the restarts
/// so far (the stopped one included) with [`Termination::Stopped`]. With
/// [`crate::monitor::Unwatched`] this is [`optimize`], bitwise.
///
/// # Errors
/// As [`optimize`].
pub fn optimize_with(cfg: &FreeConfig, monitor: &dyn Monitor) -> Result<FreeResult> {
    Ok(optimize_checked_with(&cfg.check()?, monitor))
}

/// [`optimize_with`] for a configuration already checked: it cannot fail.
pub fn optimize_checked_with(cfg: &Valid<FreeConfig>, monitor: &dyn Monitor) -> FreeResult {
    let cfg: &FreeConfig = cfg;
    let watch = Watch::new(monitor, cfg.steps);
    let (n, d) = (cfg.n, cfg.d);
    let (t0, b0) = match cfg.loss.tuned() {
        Some(Tuned::Sigmoid { t, b }) => (t, b),
        _ => (f64::NAN, f64::NAN),
    };
    let n_scalars = Scalars::new(t0, b0, cfg.flags()).len();
    let len = 2 * n * d + n_scalars;
    let opt: Box<dyn Optimizer> = match cfg.optimizer {
        OptimizerKind::Adam => Box::new(Adam::new(len)),
        OptimizerKind::Sgd => Box::new(Sgd::new(len, cfg.momentum)),
    };
    let mut solver = Solver {
        n,
        d,
        ws: Workspace::new(n, d),
        theta: vec![0.0; len],
        grad: vec![0.0; len],
        opt,
    };
    solver.ws.set_penalty(cfg.penalty());
    let mut batched = batching::Batched::new(cfg);
    let mut best: Option<(usize, RestartOutcome, Vec<f64>)> = None;
    // Grown per restart, never preallocated: `restarts` may be huge (validate bounds it).
    let mut restart_losses = Vec::new();
    let mut stopped = false;
    for r in 0..cfg.restarts {
        let run = match batched.as_mut() {
            Some(bt) => solver.run_batched(cfg, bt, r, t0, b0, &watch),
            None => solver.run(cfg, r, t0, b0, &watch),
        };
        stopped = run.stopped;
        restart_losses.push(if run.diverged { f64::NAN } else { run.loss });
        let better = match &best {
            None => true,
            Some((_, b, _)) => !run.diverged && (b.diverged || run.loss < b.loss),
        };
        if better {
            best = Some((r, run.clone(), solver.theta[..2 * n * d].to_vec()));
        }
        if stopped {
            break;
        }
    }
    let (best_restart, run, theta) = best.expect("a valid configuration has restarts >= 1");
    let (xs, ys) = theta.split_at(n * d);
    FreeResult {
        u: Array2::from_shape_vec((n, d), xs.to_vec()).expect("N x d"),
        v: Array2::from_shape_vec((n, d), ys.to_vec()).expect("N x d"),
        loss: run.loss,
        t: run.t,
        b: run.b,
        steps_run: run.steps_run,
        termination: if stopped {
            Termination::Stopped
        } else {
            Termination::from_flags(run.converged, run.diverged)
        },
        grad_norm: run.grad_norm,
        grad_norm_relative: run.grad_norm_relative,
        best_restart,
        restart_losses,
        last_batches: run.last_batches,
    }
}

impl Solver {
    /// The random start of restart `r`: rows iid Gaussian from `ChaCha8Rng::seed_from_u64(seed)`
    /// on stream `r`, normalised; the scalars at `(t0, b0)`; the optimiser's state reset.
    /// Returns whether the normalisation failed (a diverged start) and the scalars.
    fn random_start(&mut self, cfg: &FreeConfig, r: u64, t0: f64, b0: f64) -> (bool, Scalars) {
        let (n, d) = (self.n, self.d);
        let nd = n * d;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(r);
        for e in self.theta[..2 * nd].iter_mut() {
            *e = StandardNormal.sample(&mut rng);
        }
        let diverged = !normalize(&mut self.theta[..2 * nd], d);
        let scalars = Scalars::new(t0, b0, cfg.flags());
        scalars.write(&mut self.theta[2 * nd..]);
        self.opt.reset();
        (diverged, scalars)
    }

    /// Restart `r`: a random start, then steps until the gradient test passes, `cfg.steps`, or
    /// the monitor stops it.
    fn run(
        &mut self,
        cfg: &FreeConfig,
        r: usize,
        t0: f64,
        b0: f64,
        watch: &Watch,
    ) -> RestartOutcome {
        let (n, d) = (self.n, self.d);
        let nd = n * d;
        let (mut diverged, mut scalars) = self.random_start(cfg, r as u64, t0, b0);
        let mut stopped = false;
        let mut reported = None;

        let mut tracker = cfg.learn_t.then(learnt::MarginTracker::new);
        let mut steps_run = 0;
        let mut converged = false;
        let mut grad_norm = f64::NAN;
        while !diverged {
            if watch.cancelled() {
                stopped = true;
                break;
            }
            // A due step also computes the loss: the gradient is bitwise the same.
            let due = watch.due(steps_run);
            let ev = self.evaluate(cfg, &scalars, due);
            grad_norm = norm(&self.grad);
            if !grad_norm.is_finite() || (ev.sum_h + ev.sum_hs).is_nan() {
                diverged = true;
                break;
            }
            if due {
                reported = Some(steps_run);
                if watch.report(&self.progress(cfg, r, steps_run, ev.loss, grad_norm, &scalars)) {
                    stopped = true;
                    break;
                }
            }
            if let Some(tr) = tracker.as_mut() {
                // Learnt t: stop when the margin has converged (learnt.rs).
                if tr.due(steps_run) {
                    let (p, q) = learnt::extremes(&self.theta[..nd], &self.theta[nd..2 * nd], n, d);
                    if tr.record((p - q) / 2.0) {
                        converged = true;
                        break;
                    }
                }
            } else if grad_norm <= cfg.grad_tol * ev.g_l1 {
                converged = true;
                break;
            }
            if steps_run == cfg.steps {
                break;
            }
            let lr = cfg.lr * cfg.schedule.factor(steps_run);
            if cfg.loss.steps_on_log() {
                // Step on log L (module docs); the InfoNCE kernels always compute L.
                if ev.loss > f64::MIN_POSITIVE {
                    let inv = 1.0 / ev.loss;
                    self.grad.iter_mut().for_each(|g| *g *= inv);
                }
            }
            steps_run += 1;
            if !self.step(lr, &mut scalars) {
                diverged = true;
                break;
            }
        }
        let mut grad_norm_relative = f64::NAN;
        let loss = if diverged {
            f64::NAN
        } else {
            let ev = self.evaluate(cfg, &scalars, true);
            grad_norm = norm(&self.grad);
            // `||G||_1 = 0` only when `t = 0`, where the gradient is exactly zero too.
            grad_norm_relative = if ev.g_l1 > 0.0 {
                grad_norm / ev.g_l1
            } else {
                0.0
            };
            if watch.observes() && reported != Some(steps_run) {
                // The last step of a run that ended before its step limit (its Break is moot).
                watch.report(&self.progress(cfg, r, steps_run, ev.loss, grad_norm, &scalars));
            }
            ev.loss
        };
        let (t, b) = scalar_values(&cfg.loss, &scalars);
        RestartOutcome {
            loss,
            t,
            b,
            steps_run,
            converged,
            grad_norm,
            grad_norm_relative,
            diverged: diverged || !loss.is_finite(),
            stopped,
            last_batches: Vec::new(),
        }
    }

    /// One optimiser step at `lr` on the gradient in `self.grad`, every row back on the
    /// sphere and the learnt scalars read back; `false` if a row's norm or a learnt scalar is
    /// no longer finite and positive (the run has diverged).
    fn step(&mut self, lr: f64, scalars: &mut Scalars) -> bool {
        let nd = self.n * self.d;
        self.opt.step(&mut self.theta, &self.grad, lr);
        if !normalize(&mut self.theta[..2 * nd], self.d) {
            return false;
        }
        scalars.read(&self.theta[2 * nd..]);
        scalars.is_empty() || (scalars.t().is_finite() && scalars.b().is_finite())
    }

    /// What a monitor sees after `step` steps of restart `r` at the current parameters: the
    /// margin is `O(N^2 d)` ([`learnt::extremes`]), the means `O(N d)`; computed only at due steps.
    fn progress(
        &self,
        cfg: &FreeConfig,
        r: usize,
        step: usize,
        loss: f64,
        grad_norm: f64,
        scalars: &Scalars,
    ) -> StepProgress {
        let (n, d) = (self.n, self.d);
        let (x, y) = self.theta[..2 * n * d].split_at(n * d);
        let (p, q) = learnt::extremes(x, y, n, d);
        let (s_pos, s_neg) = crate::monitor::mean_similarities(x, y, n, d);
        let (t, b) = match cfg.loss.tuned() {
            Some(Tuned::Sigmoid { .. }) => (Some(scalars.t()), Some(scalars.b())),
            _ => (None, None),
        };
        StepProgress {
            step,
            steps: cfg.steps,
            loss,
            grad_norm,
            t,
            b,
            margin: Some((p - q) / 2.0),
            s_pos: Some(s_pos),
            s_neg: Some(s_neg),
            restart: r,
        }
    }

    /// Loss (when `want_loss`) and the full gradient (rows and scalars) at `theta`.
    fn evaluate(
        &mut self,
        cfg: &FreeConfig,
        scalars: &Scalars,
        want_loss: bool,
    ) -> objective::StepEval {
        let nd = self.n * self.d;
        let obj = match cfg.loss.tuned() {
            Some(Tuned::Sigmoid { .. }) => Objective::Sigmoid {
                t: scalars.t(),
                b: scalars.b(),
                w: cfg.negative_weight(),
            },
            _ => Objective::from(cfg.loss),
        };
        let (xy, gs) = (&self.theta, &mut self.grad);
        let (gxy, gsc) = gs.split_at_mut(2 * nd);
        let (gx, gy) = gxy.split_at_mut(nd);
        let ev = self
            .ws
            .evaluate(obj, &xy[..nd], &xy[nd..2 * nd], gx, gy, want_loss);
        scalars.gradient(ev.sum_h, ev.sum_hs, gsc);
        ev
    }
}

/// The final `t` and `b` of a run: the scalars of a loss with learnable ones
/// ([`Tuned::Sigmoid`]), `NaN` for the others.
fn scalar_values(loss: &Loss, scalars: &Scalars) -> (f64, f64) {
    match loss.tuned() {
        Some(Tuned::Sigmoid { .. }) => (scalars.t(), scalars.b()),
        _ => (f64::NAN, f64::NAN),
    }
}

/// Puts every length-`d` row of `x` on the unit sphere; `false` if a row has zero or
/// non-finite norm.
fn normalize(x: &mut [f64], d: usize) -> bool {
    for row in x.chunks_exact_mut(d) {
        let nr = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(nr.is_finite() && nr > 0.0) {
            return false;
        }
        let inv = 1.0 / nr;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
    true
}

/// Euclidean norm of a flat vector.
fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}
