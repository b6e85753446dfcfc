//! `ccem train`: one run of the paper's encoder experiment (SPEC §5).

use super::output::{print_records, Format};
use anyhow::{bail, Result};
use ccem::encoder::{self, EncoderConfig};
use ccem::geometry::measure;
use ccem::loss::{BlockOptions, Loss};
use ccem::sweep::runner::cell_theory;
use ccem::sweep::Objective;
use ccem::theory::Phase;
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem train --n 20 --loss sigmoid --t 3            # t = b = 3, 100 steps of SGD, lr 0.5, d = N
  ccem train --n 20 --loss infonce --t 0.5 --steps 3000 --format json
  ccem train --n 30 --d 60 --layers 3 --loss sigmoid --t 1 --b 2 --seed 4 --save-u U.npy --save-v V.npy

The data are 2N Gaussian points in R^{2d}; the encoder is ReLU(W2 ReLU(W1 x + b1) + b2) (a third
layer with --layers 3), PyTorch's default init, rows normalised, full-batch SGD.")]
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
    #[arg(long, value_enum, default_value_t = Objective::Sigmoid)]
    pub loss: Objective,
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
    /// Save the final U (N x d, .npy)
    #[arg(long)]
    pub save_u: Option<PathBuf>,
    /// Save the final V (N x d, .npy)
    #[arg(long)]
    pub save_v: Option<PathBuf>,
    #[command(flatten)]
    pub mini_batch: super::optimize::MiniBatchArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Serialize)]
struct TrainRecord {
    n: usize,
    d: usize,
    layers: usize,
    objective: &'static str,
    t: f64,
    b: Option<f64>,
    steps: usize,
    lr: f64,
    seed: u64,
    diverged: bool,
    loss: f64,
    s_pos_mean: f64,
    s_neg_mean: f64,
    s_pos_std: f64,
    c_fit: f64,
    gram_distance: f64,
    c_star: f64,
    s_pos_theory: f64,
    phase: Phase,
    s_neg_std: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batching: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s_neg_mean_in_batch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s_neg_std_in_batch: Option<f64>,
}

pub fn run(a: &TrainArgs) -> Result<()> {
    let (loss, t, b) = match a.loss {
        Objective::Sigmoid => {
            if a.tau.is_some() {
                bail!("--tau is for --loss infonce");
            }
            let t =
                a.t.ok_or_else(|| anyhow::anyhow!("--t is required (e.g. --t 1)"))?;
            let b = a.b.unwrap_or(t);
            (Loss::sigmoid(t, b)?, t, Some(b))
        }
        Objective::Infonce => {
            if a.b.is_some() {
                bail!("--b is for the sigmoid loss");
            }
            let tau = a
                .tau
                .or(a.t)
                .ok_or_else(|| anyhow::anyhow!("--tau (or --t) is required for InfoNCE"))?;
            (Loss::infonce(tau)?, tau, None)
        }
    };
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
    cfg.validate()?;
    let r = encoder::train(&cfg, &loss)?;
    if r.diverged {
        eprintln!("warning: training diverged after {} steps (a non-finite value appeared); try a smaller --lr", r.steps_run);
    }
    let (mut c_star, mut s_pos_theory, _, mut phase) = cell_theory(a.loss, a.n, t, b);
    if let (Some(mb), Loss::Sigmoid { t, b }) = (cfg.batch, loss) {
        // The optimum of the expected mini-batch loss (SPEC §7).
        let o = ccem::theory::BatchOptimum::solve(cfg.n, mb.size(), t, b)?.optimum;
        (c_star, s_pos_theory, phase) = (o.c_star, o.s_pos, o.phase);
    }
    let in_batch = (!r.last_batches.is_empty()).then(|| {
        let s = r.u.dot(&r.v.t());
        ccem::batch::masked_negative_stats(
            s.view(),
            &ccem::batch::in_batch_mask(cfg.n, &r.last_batches),
        )
    });
    let m = (!r.diverged).then(|| measure(r.u.view(), r.v.view(), BlockOptions::default()));
    if let Some(p) = &a.save_u {
        ccem::io::write_npy(p, &r.u)?;
    }
    if let Some(p) = &a.save_v {
        ccem::io::write_npy(p, &r.v)?;
    }
    let rec = TrainRecord {
        n: cfg.n,
        d: cfg.d,
        layers: cfg.layers,
        objective: a.loss.as_str(),
        t,
        b,
        steps: r.steps_run,
        lr: cfg.lr,
        seed: cfg.seed,
        diverged: r.diverged,
        loss: r.loss,
        s_pos_mean: r.s_pos,
        s_neg_mean: r.s_neg,
        s_pos_std: m.map_or(f64::NAN, |m| m.pos.std),
        c_fit: m.map_or(f64::NAN, |m| m.c_fit),
        gram_distance: m.map_or(f64::NAN, |m| m.gram_distance),
        c_star,
        s_pos_theory,
        phase,
        s_neg_std: m.map_or(f64::NAN, |m| m.neg.std),
        batch: cfg.batch.map(|mb| mb.size()),
        batching: cfg.batch.map(|mb| mb.batching().as_str()),
        w: cfg.batch.map(|mb| mb.weight()),
        s_neg_mean_in_batch: in_batch.map(|x| x.0),
        s_neg_std_in_batch: in_batch.map(|x| x.1),
    };
    print_records(a.format, &[rec])?;
    if r.diverged {
        std::process::exit(3);
    }
    Ok(())
}
