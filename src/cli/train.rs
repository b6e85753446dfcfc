//! `ccem train`: one run of the paper's encoder experiment (SPEC §5).

use super::output::{print_records, Format};
use super::theory::LossKind;
use anyhow::{bail, Context, Result};
use ccem::encoder::{self, EncoderConfig};
use ccem::loss::Loss;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem train --n 20 --loss sigmoid --t 3            # t = b = 3, 100 steps of SGD, lr 0.5, d = N
  ccem train --n 20 --loss infonce --t 0.5 --steps 3000 --format json
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
    #[arg(long, value_enum, default_value_t = LossKind::Sigmoid)]
    pub loss: LossKind,
    /// Sigmoid scale t; for --loss infonce, the temperature tau (as in the paper's script)
    #[arg(long, allow_hyphen_values = true)]
    pub t: Option<f64>,
    /// Sigmoid bias (default: b = t)
    #[arg(long, allow_hyphen_values = true)]
    pub b: Option<f64>,
    /// InfoNCE temperature (alternative to --t)
    #[arg(long, allow_hyphen_values = true)]
    pub tau: Option<f64>,
    /// Full-batch SGD steps
    #[arg(long, default_value_t = encoder::DEFAULT_STEPS)]
    pub steps: usize,
    /// Learning rate
    #[arg(long, default_value_t = encoder::DEFAULT_LR, allow_hyphen_values = true)]
    pub lr: f64,
    /// Seed of the data and the initial weights
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save the final U (N x d): .npy (float64) or .csv (no header, full precision), by extension
    #[arg(long, value_name = "U.npy|U.csv")]
    pub save_u: Option<PathBuf>,
    /// Save the final V (N x d): .npy or .csv, by extension
    #[arg(long, value_name = "V.npy|V.csv")]
    pub save_v: Option<PathBuf>,
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

/// The loss from the arguments (checked by the library).
fn loss(a: &TrainArgs) -> Result<Loss> {
    Ok(match a.loss {
        LossKind::Sigmoid => {
            if a.tau.is_some() {
                bail!("--tau is for --loss infonce; the sigmoid loss takes --t and --b");
            }
            let t =
                a.t.ok_or_else(|| anyhow::anyhow!("--t is required (e.g. --t 1)"))?;
            Loss::sigmoid(t, a.b.unwrap_or(t))?
        }
        LossKind::Infonce => {
            if a.b.is_some() {
                bail!("--b is for the sigmoid loss");
            }
            let tau = match (a.tau, a.t) {
                (Some(_), Some(_)) => {
                    bail!("--t and --tau both give the InfoNCE temperature: use --tau alone")
                }
                (Some(tau), None) | (None, Some(tau)) => tau,
                (None, None) => bail!("--tau (or --t) is required for InfoNCE (e.g. --tau 0.5)"),
            };
            Loss::infonce(tau)?
        }
    })
}

pub fn run(a: &TrainArgs) -> Result<()> {
    let loss = loss(a)?;
    let cfg = EncoderConfig {
        n: a.n,
        d: a.d.unwrap_or(a.n),
        layers: a.layers,
        steps: a.steps,
        lr: a.lr,
        seed: a.seed,
        batch: a.mini_batch.mini_batch(a.n, &loss)?,
        neg_variance_weight: a.mini_batch.neg_variance_weight,
    };
    for p in a.save_u.iter().chain(&a.save_v) {
        ccem::io::MatrixFormat::from_path(p)?;
    }
    let level = ccem::geometry::QuantileLevel::new(a.margin_quantile)
        .context("invalid --margin-quantile")?;
    if a.threads == Some(0) {
        bail!("--threads must be >= 1");
    }
    let cfg = cfg.check()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    let r = pool.install(|| encoder::train_checked(&cfg, &loss));
    let diverged = r.termination.is_diverged();
    if diverged {
        eprintln!("warning: training diverged after {} steps (a non-finite value appeared); try a smaller --lr", r.steps_run);
    }
    // Measured, and compared with the theory (of the expected loss for a mini-batch run).
    let rec = ccem::record::TrainRecord::new(&cfg, &loss, &r, level)?;
    if let Some(p) = &a.save_u {
        ccem::io::write_matrix(p, &r.u)?;
    }
    if let Some(p) = &a.save_v {
        ccem::io::write_matrix(p, &r.v)?;
    }
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
