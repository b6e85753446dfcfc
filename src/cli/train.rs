//! `ccem train`: one run of the paper's encoder experiment (SPEC §5).

use super::output::{print_records, Format, SaveArgs};
use anyhow::{bail, Context, Result};
use ccem::encoder;
use ccem::options::{BiasArg, LossOptions, MemoryArg, Spelling, TrainOptions};
use ccem::LossKind;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem train --n 20 --loss sigmoid --t 3            # t = b = 3, 100 steps of SGD, lr 0.5, d = N
  ccem train --n 20 --loss infonce --tau 0.5 --steps 3000 --format json
  ccem train --n 30 --d 60 --layers 3 --loss sigmoid --t 1 --b 2 --seed 4 --save-u U.npy --save-v V.npy

The data are 2N Gaussian points in R^{2d}; the encoder is ReLU(W2 ReLU(W1 x + b1) + b2) (a third
layer with --layers 3), PyTorch's default init, rows normalised, full-batch SGD.
Output: the run, the measured embedding (s_pos_mean, ..., gram_distance) and the theory's
prediction (theory_c_star, theory_s_pos, ..., theory_phase; empty for d < N).
With --batch B: batch, batching, w = (B-1)/(N-1), s_neg_mean_in_batch and s_neg_std_in_batch
(the negatives sharing a batch; shuffled: the last epoch's partition), and the theory_* keys are
the optimum of the expected mini-batch loss (none for InfoNCE with B < N or with the penalty).
InfoNCE is the sum of the row and column cross-entropies (the paper's convention), twice
open_clip's ClipLoss (their mean); loss_clip / infonce_loss_clip give the CLIP value.")]
pub struct TrainArgs {
    /// Batch size N
    #[arg(long)]
    pub n: usize,
    /// Embedding dimension (default: N)
    #[arg(long)]
    pub d: Option<usize>,
    /// Encoder layers, 2 or 3
    #[arg(long, default_value_t = encoder::DEFAULT_LAYERS)]
    pub layers: usize,
    /// Loss
    #[arg(long, value_parser = super::theory::loss_parser(), default_value_t = LossKind::Sigmoid)]
    pub loss: LossKind,
    /// Sigmoid scale t; for a loss with a temperature (infonce, simclr, dcl, dhel), the
    /// temperature tau (as in the paper's script)
    #[arg(long, allow_hyphen_values = true)]
    pub t: Option<f64>,
    /// Sigmoid bias b (logit t*S - b): a number or `tied` (b = t, the default)
    #[arg(long, value_name = "B|tied", allow_hyphen_values = true)]
    pub b: Option<String>,
    /// Temperature tau of the losses that have one (infonce, simclr, dcl, dhel; alternative to
    /// --t)
    #[arg(long, allow_hyphen_values = true)]
    pub tau: Option<f64>,
    /// Weight W >= 0 of within-view negatives (u_i.u_j, v_i.v_j), for the losses that take it
    /// (sigmoid, infonce; default 0; Lee et al.'s remedy is W = 1)
    #[arg(long, value_name = "W", allow_hyphen_values = true)]
    pub within_view: Option<f64>,
    /// Full-batch SGD steps
    #[arg(long, default_value_t = encoder::DEFAULT_STEPS)]
    pub steps: usize,
    /// Learning rate
    #[arg(long, default_value_t = encoder::DEFAULT_LR, allow_hyphen_values = true)]
    pub lr: f64,
    /// Seed of the data and the initial weights
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub save: SaveArgs,
    /// Quantile level p of margin_quantile = (q_p(S_ii) - q_{1-p}(S_ij)) / 2
    #[arg(long, value_name = "P", default_value_t = ccem::geometry::DEFAULT_MARGIN_QUANTILE, allow_hyphen_values = true)]
    pub margin_quantile: f64,
    #[command(flatten)]
    pub mini_batch: super::optimize::MiniBatchArgs,
    /// Worker threads of the large matrix products (default: all cores); the result does not
    /// depend on it
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl TrainArgs {
    /// The raw options, resolved by the library ([`TrainOptions::resolve`]).
    pub fn options(&self) -> TrainOptions {
        let mut loss = LossOptions::new(self.loss);
        loss.t = self.t;
        loss.b = self.b.as_deref().map(BiasArg::from);
        loss.tau = self.tau;
        loss.within_view = self.within_view;
        let mut o = TrainOptions::new(self.n, loss);
        o.d = self.d;
        o.layers = self.layers;
        o.steps = self.steps;
        o.lr = self.lr;
        o.seed = self.seed;
        o.mini_batch = self.mini_batch.options();
        o.margin_quantile = self.margin_quantile;
        o.outputs = self.save.paths();
        o
    }
}

pub fn run(a: &TrainArgs, max_memory: Option<MemoryArg>) -> Result<()> {
    // Every option and output path is checked before the work.
    let mut opts = a.options();
    opts.max_memory = max_memory;
    let r = opts.resolve(Spelling::Flag)?;
    if a.threads == Some(0) {
        bail!("--threads must be >= 1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    let run = pool.install(|| encoder::train_checked(&r.config, &r.loss));
    let diverged = run.termination.is_diverged();
    if diverged {
        eprintln!("warning: training diverged after {} steps (a non-finite value appeared); try a smaller --lr", run.steps_run);
    }
    // Measured, and compared with the theory (of the expected loss for a mini-batch run).
    let rec = ccem::record::TrainRecord::new(&r.config, &r.loss, &run, r.level)?;
    r.outputs.write(&run.u, &run.v)?;
    print_records(a.format, &[rec])?;
    if diverged {
        return Err(super::ExitStatus {
            code: super::ExitStatus::DIVERGED,
            message: String::new(),
        }
        .into());
    }
    Ok(())
}
