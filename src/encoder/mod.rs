//! The paper's encoder experiment (SPEC.md §5): a ReLU network trained with full-batch SGD on a
//! contrastive loss over synthetic Gaussian pairs, and the similarities it ends with.
//!
//! - Data: `N` inputs `x^u_i` and `N` inputs `x^v_i`, all iid `N(0, I_{2d})` in `R^{2d}`; the
//!   positive pair is `(x^u_i, x^v_i)`.
//! - Encoder (one network shared by both sides): `f(x) = ReLU(W2 ReLU(W1 x + b1) + b2)`,
//!   `W1: d x 2d`, `W2: d x d`, optionally a third layer `ReLU(W3 . + b3)`; PyTorch `nn.Linear`
//!   init, every weight and bias `~ Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
//! - `u_i = f(x^u_i) / max(||f(x^u_i)||, 1e-12)`, likewise `v_i`; loss `L(S)` on `S = U V^T`
//!   ([`crate::loss::Loss`], SPEC §1); full-batch SGD with learning rate `lr`, no momentum.
//! - Reported: `s_pos = mean_i S_ii`, `s_neg = mean_{i != j} S_ij` and the loss after the last
//!   step ([`EncoderResult`]).
//!
//! [`train`] runs one configuration; [`Encoder`] is the network with its workspace (forward,
//! analytic backward, SGD step) for finer control, in `f32` or `f64` ([`Real`]).
//!
//! # Precision
//! [`train`] runs the network in `f32`, like the PyTorch reference (`bench/torch_reference.py`), and
//! evaluates the loss and its gradient on `S` in `f64`. Measured on the project's 2-core AVX2
//! machine (`benches/encoder.rs`), a step in `f32` is 1.2x faster than in `f64` at `N = d = 10`,
//! 1.5x at 20 and 1.7-1.8x from 30 to 50, where the paper's sweep spends most of its time (an
//! AVX2 register holds 8 `f32` but 4 `f64`). The reported numbers are statistics of a noisy
//! 100-step run: `f32` rounding (~1e-7 relative) is far below the seed-to-seed spread, and the
//! `f32` sweep agrees with PyTorch's as well as two PyTorch seeds agree with each other.
//! [`train_with`] runs the same algorithm in `f64` when wanted (the finite-difference tests do).
//!
//! # Speed
//! One run allocates everything once ([`Encoder::new`]). Per step it does `28 N d^2 + 6 N^2 d`
//! flops of matrix products (two layers) and the `N^2` sigmoids of `dL/dS` in a vectorised kernel
//! ([`ContrastiveLoss::grad_s`]). The kernel of each product is chosen by size
//! ([`GemmKernel::Auto`], `gemm.rs`): below [`BLOCKED_MIN_MACS`] multiply-adds (the paper's
//! `N, d <= 50` and somewhat beyond) a packing-free register-tiled kernel on the calling thread
//! (70-85 GFLOP/s in `f32` at these sizes; about 3 us per step at `N = d = 10`, 15 us at 25 and
//! 80 us at 50); above it `matrixmultiply` in fixed row blocks of the output ([`block_rows`]),
//! run in parallel on the rayon pool, so one large run uses every core (docs/PERFORMANCE.md).
//!
//! # Determinism
//! A result depends only on `(config, loss, seed)`, the precision and whether the CPU has FMA
//! (the products use fused multiply-adds when it does): every draw comes from
//! `ChaCha8Rng::seed_from_u64(seed)` in a fixed order, every sum runs in a fixed order, and a
//! blocked product cuts its output into the same fixed blocks whatever the number of threads, so
//! the result is bitwise independent of it. Sweeps parallelise across runs.

mod batched;
mod network;

#[cfg(test)]
mod tests;

pub use crate::base::gemm::{block_rows, gemm_kernel, GemmKernel, BLOCKED_MIN_MACS};
pub use crate::base::Real;
pub use network::Encoder;

use crate::batch::MiniBatch;
use crate::error::{check_batch, check_positive, Error, Result};
use crate::limits::MemoryLimit;
use crate::loss::{ContrastiveLoss, Loss};
use crate::monitor::{Monitor, StepProgress, Unwatched, Watch};
use crate::optim::Termination;
use crate::valid::Valid;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// The learning rate of the paper's experiment (SPEC §5).
pub const DEFAULT_LR: f64 = 0.5;
/// The number of SGD steps of the paper's figure (SPEC §5; the paper's script defaults to 3000).
pub const DEFAULT_STEPS: usize = 100;
/// The default number of layers (SPEC §5: two, a flag adds a third).
pub const DEFAULT_LAYERS: usize = 2;

/// One run of the encoder experiment (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    /// Batch size `N` (number of positive pairs), `>= 2`.
    pub n: usize,
    /// Embedding dimension `d` (inputs live in `R^{2d}`), `>= 1`; the paper uses `d = N`.
    pub d: usize,
    /// Number of layers, 2 or 3.
    pub layers: usize,
    /// Number of full-batch SGD steps, `>= 1`.
    pub steps: usize,
    /// Learning rate, finite and `> 0`.
    pub lr: f64,
    /// Seed of the data and the initial network.
    pub seed: u64,
    /// Mini-batch training (SPEC §8, [`crate::batch`]); `None` is the full batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<MiniBatch>,
    /// Weight `lambda >= 0` of the negative-variance penalty of SPEC §8 (`0`: none).
    #[serde(default, skip_serializing_if = "batched::is_zero")]
    pub neg_variance_weight: f64,
    /// The most memory the run may use (default: the memory available when it is checked);
    /// not part of the experiment, so not serialised.
    #[serde(skip)]
    pub max_memory: MemoryLimit,
}

impl EncoderConfig {
    /// The paper's setting for batch size `n` and dimension `d`: 2 layers, 100 steps, lr 0.5.
    pub fn new(n: usize, d: usize, seed: u64) -> Self {
        EncoderConfig {
            n,
            d,
            layers: DEFAULT_LAYERS,
            steps: DEFAULT_STEPS,
            lr: DEFAULT_LR,
            seed,
            batch: None,
            neg_variance_weight: 0.0,
            max_memory: MemoryLimit::Available,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::BatchTooSmall`] for `n < 2`; [`Error::InvalidParameter`] for an `lr` that is not
    /// finite and `> 0`; [`Error::Config`] for `d = 0`, `layers` not 2 or 3, or `steps = 0`;
    /// [`Error::TooLarge`] when the run would need more memory than it may use
    /// (`max_memory`, [`crate::limits`]).
    pub fn validate(&self) -> Result<()> {
        check_batch(self.n)?;
        if self.d == 0 {
            return Err(Error::Config(
                "encoder dimension d = 0: use d >= 1 (the paper uses d = N)".into(),
            ));
        }
        if !(self.layers == 2 || self.layers == 3) {
            return Err(Error::Config(format!(
                "encoder layers = {}: use 2 (the paper's network) or 3",
                self.layers
            )));
        }
        if self.steps == 0 {
            return Err(Error::Config(
                "encoder steps = 0: use at least 1 SGD step (the paper uses 100)".into(),
            ));
        }
        check_positive("lr", self.lr)?;
        crate::loss::minibatch::NegVariance::new(self.neg_variance_weight, self.n)?;
        if let Some(mb) = self.batch {
            if mb.n() != self.n {
                return Err(Error::Config(format!(
                    "the mini-batch setting is for N = {} but the encoder has N = {}",
                    mb.n(),
                    self.n
                )));
            }
            if mb.batching() == crate::batch::Batching::Hardest && !mb.is_full() {
                crate::batch::hardest::check_hardest(self.n, mb.size())?;
            }
        }
        self.max_memory.check(
            &format!("training the encoder with N = {}, d = {}", self.n, self.d),
            crate::limits::encoder_run_bytes(self.n, self.d, self.layers),
        )
    }

    /// Checks that training with `loss` fits the memory limit: a loss of the joint views
    /// ([`crate::loss::Views::Joint`]) adds the `2N x 2N` buffers of `K = E E^T` and
    /// `G = dL/dK` (about `5 (2N)^2` numbers) to [`crate::limits::encoder_run_bytes`].
    ///
    /// # Errors
    /// [`Error::TooLarge`] when it does not fit.
    pub fn check_loss(&self, loss: &Loss) -> Result<()> {
        if loss.views() != crate::loss::Views::Joint {
            return Ok(());
        }
        let m = 2.0 * self.n as f64;
        self.max_memory.check(
            &format!(
                "training the encoder with N = {}, d = {} on the {} loss",
                self.n,
                self.d,
                loss.name()
            ),
            crate::limits::encoder_run_bytes(self.n, self.d, self.layers) + 5.0 * 8.0 * m * m,
        )
    }

    /// The configuration, checked ([`EncoderConfig::validate`]): what [`train_checked`] takes.
    ///
    /// # Errors
    /// As [`EncoderConfig::validate`].
    pub fn check(self) -> Result<Valid<Self>> {
        self.validate()?;
        Ok(Valid::new_unchecked(self))
    }
}

/// What a run of the encoder ends with (SPEC §5).
///
/// All statistics are taken after the last step, from a final forward pass (as the reference
/// does). If the run diverged they are those of the parameters at which the divergence was
/// detected, typically NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderResult {
    /// `s_pos = (1/N) sum_i S_ii`, the mean positive similarity (the paper's "normalized
    /// similarity").
    pub s_pos: f64,
    /// `s_neg = (1/(N(N-1))) sum_{i != j} S_ij`, the mean negative similarity.
    pub s_neg: f64,
    /// The loss `L(S)` at the final parameters.
    pub loss: f64,
    /// [`Termination::Diverged`] if a non-finite value (loss, activation norm or parameter)
    /// appeared (training then stopped early), [`Termination::Stopped`] if the monitor stopped
    /// it ([`train_monitored`]), [`Termination::StepLimit`] otherwise.
    pub termination: Termination,
    /// The number of SGD steps applied (`cfg.steps` unless the run diverged).
    pub steps_run: usize,
    /// The final normalised embeddings `U` (`N x d`).
    pub u: Array2<f64>,
    /// The final normalised embeddings `V` (`N x d`).
    pub v: Array2<f64>,
    /// Mini-batch runs (SPEC §8): the batches whose negative pairs count as "in a batch"
    /// ([`crate::batch::BatchSampler::last_batches`]); empty otherwise.
    pub last_batches: Vec<Vec<usize>>,
}

/// Trains the paper's encoder (SPEC §5) with `cfg` on `loss`, the network in `f32` and the loss
/// in `f64` (see the module doc, "Precision").
///
/// # Errors
/// An invalid configuration ([`EncoderConfig::validate`]). Divergence is not an error: it is
/// reported in [`EncoderResult::termination`].
///
/// # Example
/// ```
/// use ccem::{encoder, EncoderConfig, Loss};
///
/// let mut cfg = EncoderConfig::new(6, 6, 1);
/// cfg.steps = 20;
/// let r = encoder::train(&cfg, &Loss::sigmoid(2.0, 2.0)?)?;
/// assert!(!r.termination.is_diverged());
/// assert_eq!((r.u.dim(), r.steps_run), ((6, 6), 20));
/// assert!(r.s_pos > r.s_neg); // positive pairs end up closer than negative ones
/// # Ok::<(), ccem::Error>(())
/// ```
pub fn train(cfg: &EncoderConfig, loss: &Loss) -> Result<EncoderResult> {
    cfg.check_loss(loss)?;
    Ok(train_checked(&cfg.check()?, loss))
}

/// [`train`] for a configuration already checked: it cannot fail.
pub fn train_checked(cfg: &Valid<EncoderConfig>, loss: &Loss) -> EncoderResult {
    run::<f32>(cfg, loss, None, &Unwatched)
}

/// [`train`] watched by `monitor` ([`crate::monitor`]): it sees the steps (the loss, the
/// gradient norm over every weight and bias, `s_pos`, `s_neg`), and when it stops the run the
/// result is that of the parameters reached, with [`Termination::Stopped`]. With
/// [`crate::monitor::Unwatched`] this is [`train`], bitwise.
///
/// # Errors
/// As [`train`].
pub fn train_monitored(
    cfg: &EncoderConfig,
    loss: &Loss,
    monitor: &dyn Monitor,
) -> Result<EncoderResult> {
    cfg.check_loss(loss)?;
    Ok(train_checked_monitored(&cfg.check()?, loss, monitor))
}

/// [`train_monitored`] for a configuration already checked: it cannot fail.
pub fn train_checked_monitored(
    cfg: &Valid<EncoderConfig>,
    loss: &Loss,
    monitor: &dyn Monitor,
) -> EncoderResult {
    run::<f32>(cfg, loss, None, monitor)
}

/// The loss seen by an observer of [`train_with`]: `observer(k, L_k)`.
pub type LossObserver<'a> = &'a mut dyn FnMut(usize, f64);

/// [`train`] with the network in `T` (`f32` or `f64`) and an optional observer of the loss.
///
/// `observer(k, L_k)` is called with the loss `L_k` at the parameters after `k` SGD steps: for
/// `k = 0..steps_run` before each step, and once more for `k = steps_run` after the last step (the
/// final loss). A diverged run stops at the first non-finite value, which the observer sees.
/// The steps need only the gradient (cheaper than the value for the sigmoid loss): the loss is
/// evaluated at each step only for an observer, so observing a run does not change it.
///
/// # Errors
/// As [`train`].
pub fn train_with<T: Real>(
    cfg: &EncoderConfig,
    loss: &Loss,
    observer: Option<LossObserver<'_>>,
) -> Result<EncoderResult> {
    let valid = cfg.check()?;
    cfg.check_loss(loss)?;
    if let Some(mb) = cfg.batch {
        // The mini-batch setting must be one for this loss (InfoNCE has no `expected`).
        MiniBatch::new(mb.n(), mb.size(), Some(mb.batching()), loss)?;
    }
    Ok(run::<T>(&valid, loss, observer, &Unwatched))
}

/// What a monitor sees of `net` after `step` steps (its gradient and `S` are those of the last
/// evaluation at these parameters).
fn progress<T: Real>(
    net: &Encoder<T>,
    loss: &Loss,
    value: f64,
    step: usize,
    steps: usize,
) -> StepProgress {
    let mut sq = 0.0;
    for l in 0..net.layers() {
        sq += net
            .weight_grad(l)
            .iter()
            .map(|g| g.to_f64().powi(2))
            .sum::<f64>();
        sq += net
            .bias_grad(l)
            .iter()
            .map(|g| g.to_f64().powi(2))
            .sum::<f64>();
    }
    let s = net.similarities();
    let n = s.nrows() as f64;
    let trace: f64 = s.diag().sum();
    let params = loss.params();
    let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|&(_, v)| v);
    let (t, b) = (param("t"), param("b"));
    StepProgress {
        step,
        steps,
        loss: value,
        grad_norm: sq.sqrt(),
        t,
        b,
        margin: None,
        s_pos: Some(trace / n),
        s_neg: Some((s.sum() - trace) / (n * (n - 1.0))),
        restart: 0,
    }
}

/// The training loop of [`train_with`] on a checked configuration.
fn run<T: Real>(
    cfg: &Valid<EncoderConfig>,
    loss: &Loss,
    mut observer: Option<LossObserver<'_>>,
    monitor: &dyn Monitor,
) -> EncoderResult {
    let watch = Watch::new(monitor, cfg.steps);
    if cfg.batch.is_some_and(|mb| !mb.is_full()) || cfg.neg_variance_weight != 0.0 {
        return batched::train_batched::<T>(cfg, loss, observer, &watch);
    }
    let mut net = Encoder::<T>::from_valid(cfg);
    let mut steps_run = 0;
    let mut diverged = false;
    let mut stopped = false;
    for k in 0..cfg.steps {
        if watch.cancelled() {
            stopped = true;
            break;
        }
        if !net.grad(loss) {
            diverged = true;
            break;
        }
        if let Some(obs) = observer.as_mut() {
            obs(k, net.last_loss(loss));
        }
        if watch.due(k) && watch.report(&progress(&net, loss, net.last_loss(loss), k, cfg.steps)) {
            stopped = true;
            break;
        }
        steps_run += 1;
        if !net.sgd_step(cfg.lr) {
            diverged = true;
            break;
        }
    }
    let value = net.loss(loss);
    diverged |= !value.is_finite();
    if let Some(obs) = observer.as_mut() {
        obs(steps_run, value);
    }
    if !diverged && watch.observes() && !stopped {
        // The gradient at the final parameters, for the report only.
        net.grad(loss);
        watch.report(&progress(&net, loss, value, steps_run, cfg.steps));
    }
    let s = net.similarities();
    let n = cfg.n as f64;
    let trace: f64 = s.diag().sum();
    let s_pos = trace / n;
    let s_neg = (s.sum() - trace) / (n * (n - 1.0));
    EncoderResult {
        s_pos,
        s_neg,
        loss: value,
        termination: if stopped {
            Termination::Stopped
        } else {
            Termination::from_flags(false, diverged)
        },
        steps_run,
        u: net.u().mapv(Real::to_f64),
        v: net.v().mapv(Real::to_f64),
        last_batches: Vec::new(),
    }
}
