//! `ccem inspect`: measure an embedding from files against the CCEM and the theory.

use super::output::{print_records, Format};
use super::progress::BlockBar;
use anyhow::{Context, Result};
use ccem::inspect::inspect_with;
use ccem::options::{BiasArg, InspectOptions, MemoryArg, Spelling};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem inspect --u U.npy --v V.npy                 # t = b = 10 (SigLIP's init), tau = 0.07
  ccem inspect --u U.npy --v V.npy --t 2 --b 1 --tau 0.1 --format json
  ccem inspect --u U.csv --v V.csv --no-normalize
  ccem inspect --u U.npy --v V.npy --precision f64 --quantile exact
  ccem inspect --u U.npy --v V.npy --loss simclr --tau 0.2   # + loss_value of SimCLR

Files: N x d matrices, .npy (float32 or float64, as numpy.save writes them) or .csv without header.
float32 files are measured in float32 (float32 products, float64 sums; SPEC §1.1), float64 in
float64, unless --precision says otherwise.
One blocked pass over U V^T gives the statistics, both losses and the margins (SPEC §4.1); the
within-modality statistics come from sum_i u_i and U^T U. passes = the passes over U V^T.
The theory_* keys are the sigmoid optimum for (N, t, b); empty when d < N.
alignment_slack = 1 + s_neg_mean + 1/(N-1) - s_pos_mean, Thm 5.2 of Lee et al. (2025): >= 0 for
unit rows (0 at the simplex ETF); empty under --no-normalize.
margin = (min S_ii - max S_ij)/2 (> 0: a constellation), margin_bias = the relative bias r_b
that realises it, margin_bound = N/(2(N-1)), margin_quantile = (q_p(S_ii) - q_(1-p)(S_ij))/2
with numpy's linear quantile: exact (a second pass) up to N = 4096, above from a 2^16-bin
histogram with |error| <= margin_quantile_error (max|u| max|v| / 2^16).
InfoNCE is the sum of the row and column cross-entropies (the paper's convention), twice
open_clip's ClipLoss (their mean); loss_clip / infonce_loss_clip give the CLIP value.")]
pub struct InspectArgs {
    /// First modality, N x d (.npy or .csv)
    #[arg(long, value_name = "U.npy")]
    pub u: PathBuf,
    /// Second modality, N x d (.npy or .csv); row i pairs with row i of U
    #[arg(long, value_name = "V.npy")]
    pub v: PathBuf,
    /// Scale t of the sigmoid loss
    #[arg(long, default_value_t = ccem::options::DEFAULT_INSPECT_T, allow_hyphen_values = true)]
    pub t: f64,
    /// Bias b of the sigmoid loss (logit t*S - b): a number or `tied` (b = t, the default)
    #[arg(long, value_name = "B|tied", allow_hyphen_values = true)]
    pub b: Option<String>,
    /// Temperature of InfoNCE
    #[arg(long, default_value_t = ccem::options::DEFAULT_INSPECT_TAU, allow_hyphen_values = true)]
    pub tau: f64,
    /// Use the rows as they are (by default they are put on the unit sphere)
    #[arg(long)]
    pub no_normalize: bool,
    /// Quantile level p of margin_quantile = (q_p(S_ii) - q_{1-p}(S_ij)) / 2
    #[arg(long, value_name = "P", default_value_t = ccem::geometry::DEFAULT_MARGIN_QUANTILE, allow_hyphen_values = true)]
    pub margin_quantile: f64,
    /// How q_{1-p}(S_ij) is found: exact (a second pass) or histogram (none; error in
    /// margin_quantile_error). Default: exact up to N = 4096, histogram above
    #[arg(long, value_enum)]
    pub quantile: Option<QuantileArg>,
    /// Precision of the products: f32 or f64 (default: the files' own; .csv is f64)
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Rows per block (memory O(block x 512) per group of blocks)
    #[arg(long, default_value_t = ccem::inspect::DEFAULT_INSPECT_BLOCK)]
    pub block: usize,
    /// Also evaluate this loss on the pair (key loss_value), with --t, --b, --tau as it takes
    /// them
    #[arg(long, value_parser = super::theory::loss_parser())]
    pub loss: Option<ccem::LossKind>,
    /// The within-view weight W of --loss (sigmoid, infonce)
    #[arg(long, value_name = "W", allow_hyphen_values = true)]
    pub within_view: Option<f64>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--precision`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PrecisionArg {
    /// float32 products, float64 sums
    F32,
    /// float64 throughout
    F64,
}

/// `--quantile`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum QuantileArg {
    /// select the order statistics exactly (a second pass)
    Exact,
    /// interpolate in a 2^16-bin histogram (no second pass)
    Histogram,
}

impl InspectArgs {
    /// The raw options, resolved by the library ([`InspectOptions::resolve`]).
    pub fn options(&self) -> InspectOptions {
        InspectOptions {
            t: self.t,
            b: self.b.as_deref().map(BiasArg::from),
            tau: self.tau,
            normalize: !self.no_normalize,
            margin_quantile: self.margin_quantile,
            precision: self.precision.map(|p| {
                match p {
                    PrecisionArg::F32 => "f32",
                    PrecisionArg::F64 => "f64",
                }
                .to_string()
            }),
            quantile: self.quantile.map(|q| {
                match q {
                    QuantileArg::Exact => "exact",
                    QuantileArg::Histogram => "histogram",
                }
                .to_string()
            }),
            block: self.block,
            loss: self.loss.map(|k| k.as_str().to_string()),
            within_view: self.within_view,
            max_memory: None,
        }
    }
}

pub fn run(a: &InspectArgs, max_memory: Option<MemoryArg>) -> Result<()> {
    // The options are checked before the files are read.
    let mut opts = a.options();
    opts.max_memory = max_memory;
    let cfg = opts.resolve(Spelling::Flag)?;
    let u = ccem::io::read_matrix_any(&a.u, cfg.max_memory)?;
    let v = ccem::io::read_matrix_any(&a.v, cfg.max_memory)?;
    // A bar on a terminal for the long passes (N above 4096: blocks of 256 rows).
    let bar = BlockBar::new("inspect", u.dim().0 / a.block.max(1), 16);
    // Checks the shapes, values and parameters, measures, and compares with the theory.
    let rec = inspect_with(u, v, &cfg, &|done, total| bar.update(done, total));
    bar.finish();
    let rec = rec.context("cannot inspect the embedding")?;
    if a.format == Format::Table {
        outln!(
            "# {} pairs in R^{} ({}); rows {}",
            rec.n,
            rec.d,
            rec.precision,
            if a.no_normalize {
                "used as given (--no-normalize)"
            } else {
                "normalised to unit length"
            }
        );
    }
    print_records(a.format, &[rec])
}
