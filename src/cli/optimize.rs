//! `ccem optimize`: minimise a loss over free unit embeddings and compare the optimum with the
//! theory (SPEC §1, §3, §4).

use super::output::{print_records, Format, SaveArgs};
use anyhow::{bail, Result};
use ccem::optim::{self, OptimizerKind};
use ccem::options::{BiasArg, LossOptions, MemoryArg, MiniBatchOptions, OptimizeOptions, Spelling};
use ccem::LossKind;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem optimize --n 10 --t 1                        # sigmoid, b = t = 1, d = N: lands on the CCEM with c*
  ccem optimize --n 8 --t 3 --b 1 --format json
  ccem optimize --n 30 --t 2 --relative-bias 0.5    # b = 0.5 t
  ccem optimize --n 10 --loss infonce --tau 0.5     # the simplex ETF
  ccem optimize --n 16 --learn-t --learn-b          # SigLIP: t = exp(t'), b learnt, from t = b = 10
  ccem optimize --n 16 --learn-t --learn-b --relative-bias --lr-schedule constant --steps 5000
  ccem optimize --n 20 --t 1 --restarts 4 --seed 3 --save-u U.npy --save-v V.npy
  ccem optimize --n 8 --learn-t --learn-b --relative-bias   # t, r_b learnt: stops when the margin converges
  ccem optimize --n 16 --t 2 --b 1 --batch 4                      # shuffled batches of 4
  ccem optimize --n 16 --t 2 --b 1 --batch 4 --batching expected  # the exact expected loss
  ccem optimize --n 16 --t 2 --b 1 --batch 4 --batching fixed --neg-variance-weight 1

Rows of U and V live on the unit sphere: raw rows are renormalised after every step (a Riemannian
step with the projective retraction). Defaults: Adam, lr 0.05 halving every 1000 steps down to 2%
(--lr-schedule step; or constant, as Bangachev et al. train; or cosine), at most 10000 steps
(50000 when t or b is learnt),
stop when |grad| <= grad-tol * sum|dL/dS|, one start. The record's lr_schedule names the schedule.
Output: the run (termination: converged, step_limit or diverged), the measured embedding
(s_pos_mean, s_pos_std, s_neg_mean, s_neg_std, c_fit, gram_distance) and the theory's prediction
(theory_c_star, theory_s_pos, theory_s_neg, theory_loss, theory_phase; empty for d < N, InfoNCE:
d < N-1). meets_theory: |s_pos_mean - theory_s_pos| <= 1e-3 and gram_distance_to_theory <= 1e-3.
margin = (min S_ii - max S_ij)/2, margin_bias = (min S_ii + max S_ij)/2, margin_bound = N/(2(N-1)),
margin_quantile = (q_p(S_ii) - q_(1-p)(S_ij))/2 (numpy's linear quantile, p = --margin-quantile).
With --learn-t the run stops when the margin has converged (not on the gradient norm), and
log_loss_rate = -log(L)/t is reported.
With --batch B: batch, batching, w = (B-1)/(N-1), s_neg_mean_in_batch and s_neg_std_in_batch
(the negatives sharing a batch; shuffled: the last epoch's partition), and the theory_* keys are
the optimum of the expected mini-batch loss (none for InfoNCE with B < N or with the penalty).
InfoNCE is the sum of the row and column cross-entropies (the paper's convention), twice
open_clip's ClipLoss (their mean); loss_clip / infonce_loss_clip give the CLIP value.")]
pub struct OptimizeArgs {
    /// Batch size N (>= 2)
    #[arg(long)]
    pub n: usize,
    /// Embedding dimension (default: N; the theory needs d >= N)
    #[arg(long)]
    pub d: Option<usize>,
    /// Which loss
    #[arg(long, value_parser = super::theory::loss_parser(), default_value_t = LossKind::Sigmoid)]
    pub loss: LossKind,
    /// Sigmoid scale t (fixed; with --learn-t use --init-t)
    #[arg(long, allow_hyphen_values = true)]
    pub t: Option<f64>,
    /// Sigmoid bias b, logit t*S - b (default: b = t; with --learn-b use --init-b)
    #[arg(long, value_name = "B|tied", allow_hyphen_values = true)]
    pub b: Option<String>,
    /// Relative bias b = r_b t: alone, r_b = b/t is the parameter (learnt with --learn-b);
    /// with a value R, r_b = R
    #[arg(
        long,
        value_name = "R",
        num_args = 0..=1,
        allow_negative_numbers = true,
        conflicts_with = "b"
    )]
    pub relative_bias: Option<Option<f64>>,
    /// Temperature tau of the losses that have one (infonce, simclr, dcl, dhel)
    #[arg(long, allow_hyphen_values = true)]
    pub tau: Option<f64>,
    /// Weight W >= 0 of within-view negatives (u_i.u_j, v_i.v_j), for the losses that take it
    /// (sigmoid, infonce; default 0; Lee et al.'s remedy is W = 1)
    #[arg(long, value_name = "W", allow_hyphen_values = true)]
    pub within_view: Option<f64>,
    /// Learn the scale as t = exp(t') (SigLIP)
    #[arg(long)]
    pub learn_t: bool,
    /// Learn the bias (b, or r_b with --relative-bias)
    #[arg(long)]
    pub learn_b: bool,
    /// Initial t when learnt [default: 10, SigLIP's]
    #[arg(long, allow_hyphen_values = true)]
    pub init_t: Option<f64>,
    /// Initial b when learnt [default: 10, SigLIP's b' = -10 in this sign convention]
    #[arg(long, allow_hyphen_values = true)]
    pub init_b: Option<f64>,
    /// Optimiser
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,
    /// Initial learning rate [default: 0.05 for adam, 1 for sgd]
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// Learning-rate schedule: step (halve every 1000 steps, down to 2%), constant, or cosine
    /// (annealed to 0 over --steps) [default: step]
    #[arg(long, value_name = "step|constant|cosine")]
    pub lr_schedule: Option<String>,
    /// SGD momentum in [0, 1)
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub momentum: f64,
    /// Maximum number of steps per start [default: 10000, or 50000 with --learn-t/--learn-b]
    #[arg(long)]
    pub steps: Option<usize>,
    /// Relative gradient tolerance: stop when |grad| <= G * sum|dL/dS| (0: run every step)
    #[arg(long, value_name = "G", default_value_t = optim::DEFAULT_GRAD_TOL, allow_hyphen_values = true)]
    pub grad_tol: f64,
    /// Random starts; the lowest final loss is kept [default: 1]
    #[arg(long)]
    pub restarts: Option<usize>,
    /// Removed: refused with a pointer to `ccem max-margin --n N --d D`, the maximum-margin
    /// search (its own options and output)
    #[arg(long)]
    pub max_margin: bool,
    /// Quantile level p of margin_quantile = (q_p(S_ii) - q_{1-p}(S_ij)) / 2
    #[arg(long, value_name = "P", default_value_t = ccem::geometry::DEFAULT_MARGIN_QUANTILE, allow_hyphen_values = true)]
    pub margin_quantile: f64,
    /// Seed of the random starts
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub save: SaveArgs,
    #[command(flatten)]
    pub mini_batch: MiniBatchArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The mini-batch options shared by `optimize`, `train` and `sweep` (SPEC §8).
#[derive(clap::Args, Debug, Clone)]
pub struct MiniBatchArgs {
    /// Mini-batch size B (2 <= B <= N; B = N is the full batch)
    #[arg(long, value_name = "B")]
    pub batch: Option<usize>,
    /// How batches are chosen: expected (exact expected loss, sigmoid only), shuffled (new
    /// partition each epoch; default), fixed (one partition), all (every C(N,B) batch),
    /// hardest (OSGD: the batch of largest loss; every step an exact search over all C(N,B)
    /// batches when C(N,B) <= 1e5, else, for B | N and N <= 1024, Cho et al.'s even-sized
    /// spectral clustering into N/B batches once per epoch, stepped hardest first)
    #[arg(long, value_name = "STRATEGY", requires = "batch")]
    pub batching: Option<String>,
    /// Weight lambda of the negative-variance penalty of Lee et al. 2025 (mean of
    /// (S_ij + 1/(N-1))^2 over the negative pairs of each batch)
    #[arg(
        long,
        value_name = "LAMBDA",
        default_value_t = 0.0,
        allow_hyphen_values = true
    )]
    pub neg_variance_weight: f64,
}

impl MiniBatchArgs {
    /// The raw mini-batch options (resolved by the library).
    pub fn options(&self) -> MiniBatchOptions {
        MiniBatchOptions {
            batch: self.batch,
            batching: self.batching.clone(),
            neg_variance_weight: self.neg_variance_weight,
        }
    }
}

/// `adam` or `sgd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerArg {
    /// Adam (beta1 0.9, beta2 0.999, eps 1e-8).
    Adam,
    /// Gradient descent, optionally with --momentum.
    Sgd,
}

impl From<OptimizerArg> for OptimizerKind {
    fn from(o: OptimizerArg) -> Self {
        match o {
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
        }
    }
}

impl OptimizeArgs {
    /// The raw options, resolved by the library ([`OptimizeOptions::resolve`]).
    pub fn options(&self) -> OptimizeOptions {
        let mut loss = LossOptions::new(self.loss);
        loss.t = self.t;
        loss.b = self.b.as_deref().map(BiasArg::from);
        loss.relative_bias = self.relative_bias;
        loss.tau = self.tau;
        loss.within_view = self.within_view;
        loss.learn_t = self.learn_t;
        loss.learn_b = self.learn_b;
        loss.init_t = self.init_t;
        loss.init_b = self.init_b;
        let mut o = OptimizeOptions::new(self.n, loss);
        o.d = self.d;
        o.optimizer = self.optimizer.into();
        o.lr = self.lr;
        o.lr_schedule = self.lr_schedule.clone();
        o.momentum = self.momentum;
        o.steps = self.steps;
        o.grad_tol = self.grad_tol;
        o.restarts = self.restarts;
        o.seed = self.seed;
        o.mini_batch = self.mini_batch.options();
        o.margin_quantile = self.margin_quantile;
        o.outputs = self.save.paths();
        o
    }
}

pub fn run(a: &OptimizeArgs, max_memory: Option<MemoryArg>) -> Result<()> {
    if a.max_margin {
        bail!(
            "--max-margin has moved to its own command: ccem max-margin --n {} --d {} (see \
             `ccem max-margin --help`)",
            a.n,
            a.d.unwrap_or(a.n)
        );
    }
    // Every option and output path is checked before the work.
    let mut opts = a.options();
    opts.max_memory = max_memory;
    let r = opts.resolve(Spelling::Flag)?;
    let run = optim::optimize_checked(&r.config);
    let diverged = run.termination.is_diverged();
    // Measured, and compared with the theory (of the expected loss for a mini-batch run).
    let record = ccem::record::OptimizeRecord::new(&r.config, &run, r.level)?;
    r.outputs.write(&run.u, &run.v)?;
    print_records(a.format, &[record])?;
    if diverged {
        return Err(super::ExitStatus {
            code: super::ExitStatus::DIVERGED,
            message: "every start diverged (a non-finite value appeared); try a smaller --lr"
                .into(),
        }
        .into());
    }
    Ok(())
}
