//! `ccem optimize`: minimise a loss over free unit embeddings and compare the optimum with the
//! theory (SPEC §1, §3, §4).

use super::output::{print_records, Format};
use super::theory::{bias_mode, LossKind};
use anyhow::{bail, Context, Result};
use ccem::batch::MiniBatch;
use ccem::geometry::QuantileLevel;
use ccem::loss::Loss;
use ccem::optim::{self, FreeConfig, OptimizerKind, SIGLIP_INIT_B, SIGLIP_INIT_T};
use ccem::theory::BiasMode;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem optimize --n 10 --t 1                        # sigmoid, b = t = 1, d = N: lands on the CCEM with c*
  ccem optimize --n 8 --t 3 --b 1 --format json
  ccem optimize --n 30 --t 2 --relative-bias 0.5    # b = 0.5 t
  ccem optimize --n 10 --loss infonce --tau 0.5     # the simplex ETF
  ccem optimize --n 16 --learn-t --learn-b          # SigLIP: t = exp(t'), b learnt, from t = b = 10
  ccem optimize --n 20 --t 1 --restarts 4 --seed 3 --save-u U.npy --save-v V.npy
  ccem optimize --n 8 --learn-t --learn-b --relative-bias   # t, r_b learnt: stops when the margin converges
  ccem optimize --n 5 --d 2 --max-margin            # the pentagon: margin (1 - cos 72 deg)/2
  ccem optimize --n 16 --t 2 --b 1 --batch 4                      # shuffled batches of 4
  ccem optimize --n 16 --t 2 --b 1 --batch 4 --batching expected  # the exact expected loss
  ccem optimize --n 16 --t 2 --b 1 --batch 4 --batching fixed --neg-variance-weight 1

Rows of U and V live on the unit sphere: raw rows are renormalised after every step (a Riemannian
step with the projective retraction). Defaults: Adam, lr 0.05 halving every 1000 steps down to 2%,
at most 10000 steps, stop when |grad| <= grad-tol * sum|dL/dS|, one start.
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
    #[arg(long, value_enum, default_value_t = LossKind::Sigmoid)]
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
    /// InfoNCE temperature tau
    #[arg(long, allow_hyphen_values = true)]
    pub tau: Option<f64>,
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
    /// SGD momentum in [0, 1)
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub momentum: f64,
    /// Maximum number of steps per start [default: 10000; 3600 with --max-margin]
    #[arg(long)]
    pub steps: Option<usize>,
    /// Relative gradient tolerance: stop when |grad| <= G * sum|dL/dS| (0: run every step)
    #[arg(long, value_name = "G", default_value_t = optim::DEFAULT_GRAD_TOL, allow_hyphen_values = true)]
    pub grad_tol: f64,
    /// Random starts; the lowest final loss (the largest margin with --max-margin) is kept
    /// [default: 1; 8 with --max-margin]
    #[arg(long)]
    pub restarts: Option<usize>,
    /// Find a maximum-margin constellation of N pairs in R^d instead of minimising a loss
    /// (any N, d; takes --n, --d, --restarts, --steps, --lr, --seed, --save-u/--save-v, --format)
    #[arg(long)]
    pub max_margin: bool,
    /// Quantile level p of margin_quantile = (q_p(S_ii) - q_{1-p}(S_ij)) / 2
    #[arg(long, value_name = "P", default_value_t = ccem::geometry::DEFAULT_MARGIN_QUANTILE, allow_hyphen_values = true)]
    pub margin_quantile: f64,
    /// Seed of the random starts
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save the final U (N x d): .npy (float64) or .csv (no header, full precision), by extension
    #[arg(long, value_name = "U.npy|U.csv")]
    pub save_u: Option<PathBuf>,
    /// Save the final V (N x d): .npy or .csv, by extension
    #[arg(long, value_name = "V.npy|V.csv")]
    pub save_v: Option<PathBuf>,
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
    /// The validated mini-batch setting for `n` pairs and `loss` (`None`: the full batch).
    pub fn mini_batch(&self, n: usize, loss: &Loss) -> Result<Option<MiniBatch>> {
        Ok(MiniBatch::from_options(
            n,
            self.batch,
            self.batching.as_deref(),
            loss,
        )?)
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

/// Turns the arguments into a configuration (checked by the library in `optimize`); also the
/// configuration of a run started from `ccem explore`.
pub fn config(a: &OptimizeArgs) -> Result<FreeConfig> {
    let optimizer = OptimizerKind::from(a.optimizer);
    let relative_bias = a.relative_bias.is_some();
    let loss = match a.loss {
        LossKind::Sigmoid => {
            if a.tau.is_some() {
                bail!("--tau is for --loss infonce; the sigmoid loss takes --t and --b");
            }
            sigmoid_loss(a)?
        }
        LossKind::Infonce => {
            if a.t.is_some() || a.b.is_some() || relative_bias {
                bail!("--t/--b/--relative-bias are for the sigmoid loss; InfoNCE takes --tau");
            }
            if a.learn_t || a.learn_b || a.init_t.is_some() || a.init_b.is_some() {
                bail!("--learn-t/--learn-b/--init-t/--init-b are for the sigmoid loss");
            }
            let tau = a
                .tau
                .context("--tau is required for --loss infonce (e.g. --tau 0.5)")?;
            Loss::infonce(tau)?
        }
    };
    let mut cfg = FreeConfig::new(a.n, a.d.unwrap_or(a.n), loss, a.seed);
    cfg.optimizer = optimizer;
    cfg.lr = a.lr.unwrap_or(optimizer.default_lr());
    cfg.momentum = a.momentum;
    cfg.steps = a.steps.unwrap_or(optim::DEFAULT_STEPS);
    cfg.grad_tol = a.grad_tol;
    cfg.restarts = a.restarts.unwrap_or(optim::DEFAULT_RESTARTS);
    cfg.learn_t = a.learn_t;
    cfg.learn_b = a.learn_b;
    cfg.relative_bias = relative_bias;
    cfg.batch = a.mini_batch.mini_batch(a.n, &loss)?;
    cfg.neg_variance_weight = a.mini_batch.neg_variance_weight;
    Ok(cfg)
}

/// The sigmoid loss at the start: fixed `--t`/`--b`, or `--init-t`/`--init-b` for what is learnt.
fn sigmoid_loss(a: &OptimizeArgs) -> Result<Loss> {
    let t = if a.learn_t {
        if a.t.is_some() {
            bail!("--t fixes the scale; with --learn-t give its start with --init-t (default 10)");
        }
        a.init_t.unwrap_or(SIGLIP_INIT_T)
    } else {
        if a.init_t.is_some() {
            bail!("--init-t is the start of a learnt scale: add --learn-t, or fix it with --t");
        }
        a.t.context(
            "--t is required for the sigmoid loss (e.g. --t 1), or learn it with --learn-t",
        )?
    };
    let rel_value = a.relative_bias.flatten();
    let b = if a.learn_b {
        if a.b.is_some() || rel_value.is_some() {
            bail!(
                "--b/--relative-bias R fix the bias; with --learn-b give its start with --init-b \
                 (default 10)"
            );
        }
        a.init_b.unwrap_or(SIGLIP_INIT_B)
    } else {
        if a.init_b.is_some() {
            bail!("--init-b is the start of a learnt bias: add --learn-b, or fix it with --b");
        }
        let mode = match rel_value {
            Some(r) => BiasMode::Relative(r),
            None => bias_mode(a.b.as_deref(), None)?,
        };
        mode.bias(t)
    };
    // The library checks t and b (and, in `optimize`, that a relative bias has t > 0).
    Ok(Loss::sigmoid(t, b)?)
}

pub fn run(a: &OptimizeArgs) -> Result<()> {
    let level = QuantileLevel::new(a.margin_quantile).context("invalid --margin-quantile")?;
    if a.max_margin {
        return super::max_margin::run(a, level);
    }
    let cfg = config(a)?;
    for p in a.save_u.iter().chain(&a.save_v) {
        ccem::io::MatrixFormat::from_path(p)?;
    }
    let cfg = cfg.check()?;
    let r = optim::optimize_checked(&cfg);
    let diverged = r.termination.is_diverged();
    // Measured, and compared with the theory (of the expected loss for a mini-batch run).
    let record = ccem::record::OptimizeRecord::new(&cfg, &r, level)?;
    if let Some(p) = &a.save_u {
        ccem::io::write_matrix(p, &r.u).with_context(|| format!("saving U to {}", p.display()))?;
    }
    if let Some(p) = &a.save_v {
        ccem::io::write_matrix(p, &r.v).with_context(|| format!("saving V to {}", p.display()))?;
    }
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
