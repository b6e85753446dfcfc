//! `ccem inspect`: measure an embedding from files against the CCEM and the theory.

use super::output::{print_records, Format};
use anyhow::{Context, Result};
use ccem::loss::{blocked_loss, infonce_clip, normalize_rows, BlockOptions, Loss};
use ccem::Report;
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem inspect --u U.npy --v V.npy                 # t = b = 10 (SigLIP's init), tau = 0.07
  ccem inspect --u U.npy --v V.npy --t 2 --b 1 --tau 0.1 --format json
  ccem inspect --u U.csv --v V.csv --no-normalize

Files: N x d matrices, .npy (float32 or float64, as numpy.save writes them) or .csv without header.
The theory_* keys are the sigmoid optimum for (N, t, b); empty when d < N.
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
    #[arg(long, default_value_t = 10.0, allow_hyphen_values = true)]
    pub t: f64,
    /// Bias b of the sigmoid loss (default: b = t)
    #[arg(long, allow_hyphen_values = true)]
    pub b: Option<f64>,
    /// Temperature of InfoNCE
    #[arg(long, default_value_t = 0.07, allow_hyphen_values = true)]
    pub tau: f64,
    /// Use the rows as they are (by default they are put on the unit sphere)
    #[arg(long)]
    pub no_normalize: bool,
    /// Rows per block for large N (memory O(N * block))
    #[arg(long, default_value_t = 256)]
    pub block: usize,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Serialize)]
struct InspectRecord {
    n: usize,
    d: usize,
    normalized: bool,
    t: f64,
    b: f64,
    tau: f64,
    sigmoid_loss: f64,
    /// ccem's convention: the sum of the row and column cross-entropies.
    infonce_loss: f64,
    /// open_clip's `ClipLoss` convention: their mean, `infonce_loss / 2`.
    infonce_loss_clip: f64,
    /// Measured, then the sigmoid theory for (N, d, t, b); `theory_*` are empty for d < N.
    #[serde(flatten)]
    report: Report,
    s_pos_min: f64,
    s_pos_max: f64,
    s_neg_min: f64,
    s_neg_max: f64,
    within_u_mean: f64,
    within_u_std: f64,
    within_v_mean: f64,
    within_v_std: f64,
    c_from_s_pos: f64,
}

pub fn run(a: &InspectArgs) -> Result<()> {
    let sig = Loss::sigmoid(a.t, a.b.unwrap_or(a.t)).context("invalid sigmoid-loss parameters")?;
    let info = Loss::infonce(a.tau).context("invalid InfoNCE temperature")?;
    if a.block == 0 {
        anyhow::bail!("--block must be >= 1");
    }
    let u = ccem::io::read_matrix(&a.u)?;
    let v = ccem::io::read_matrix(&a.v)?;
    let (u, v) = if a.no_normalize {
        (u, v)
    } else {
        (
            normalize_rows(u.view(), "U")?.u,
            normalize_rows(v.view(), "V")?.u,
        )
    };
    // Checks the shapes and the values, measures, and compares with the theory.
    let report = Report::new(u.view(), v.view(), &sig)?;
    let m = report
        .measurement
        .context("the embedding could not be measured")?;
    let opts = BlockOptions {
        block: a.block,
        parallel: true,
    };
    let (n, d) = u.dim();
    let (t, b) = match sig {
        Loss::Sigmoid { t, b } => (t, b),
        Loss::InfoNce { .. } => unreachable!("constructed as sigmoid"),
    };
    let infonce_loss = blocked_loss(&info, u.view(), v.view(), opts);
    let rec = InspectRecord {
        n,
        d,
        normalized: !a.no_normalize,
        t,
        b,
        tau: a.tau,
        sigmoid_loss: blocked_loss(&sig, u.view(), v.view(), opts),
        infonce_loss,
        infonce_loss_clip: infonce_clip(infonce_loss),
        report,
        s_pos_min: m.pos.min,
        s_pos_max: m.pos.max,
        s_neg_min: m.neg.min,
        s_neg_max: m.neg.max,
        within_u_mean: m.within_u.mean,
        within_u_std: m.within_u.std,
        within_v_mean: m.within_v.mean,
        within_v_std: m.within_v.std,
        c_from_s_pos: m.c_from_s_pos,
    };
    if a.format == Format::Table {
        outln!(
            "# {n} pairs in R^{d}; rows {}",
            if a.no_normalize {
                "used as given (--no-normalize)"
            } else {
                "normalised to unit length"
            }
        );
    }
    print_records(a.format, &[rec])
}
