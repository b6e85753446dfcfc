//! `ccem inspect`: measure an embedding from files against the CCEM and the theory.

use super::output::{print_records, Format};
use anyhow::{Context, Result};
use ccem::geometry::margin::{margins, Margins, QuantileLevel};
use ccem::geometry::{measure, Stats};
use ccem::loss::embedding::{check_all_finite, check_pair};
use ccem::loss::{blocked_loss, normalize_rows, BlockOptions, Loss};
use ccem::theory::{Phase, SigmoidOptimum};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem inspect --u U.npy --v V.npy                 # t = b = 10 (SigLIP's init), tau = 0.07
  ccem inspect --u U.npy --v V.npy --t 2 --b 1 --tau 0.1 --format json
  ccem inspect --u U.csv --v V.csv --no-normalize

margin = (min S_ii - max S_ij)/2 (> 0: a constellation), margin_bias = the relative bias r_b
that realises it, margin_bound = N/(2(N-1)), margin_quantile = (q_p(S_ii) - q_(1-p)(S_ij))/2
with numpy's linear quantile (exact for N <= 4096, absolute error < 1e-9 above).

Files: N x d matrices, .npy (float32 or float64, as numpy.save writes them) or .csv without header.")]
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
    /// Quantile level p of margin_quantile = (q_p(S_ii) - q_{1-p}(S_ij)) / 2
    #[arg(long, value_name = "P", default_value_t = ccem::geometry::margin::DEFAULT_MARGIN_QUANTILE, allow_hyphen_values = true)]
    pub margin_quantile: f64,
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
    s_pos_mean: f64,
    s_pos_std: f64,
    s_pos_min: f64,
    s_pos_max: f64,
    s_neg_mean: f64,
    s_neg_std: f64,
    s_neg_min: f64,
    s_neg_max: f64,
    within_u_mean: f64,
    within_u_std: f64,
    within_v_mean: f64,
    within_v_std: f64,
    c_fit: f64,
    c_from_s_pos: f64,
    gram_distance: f64,
    t: f64,
    b: f64,
    sigmoid_loss: f64,
    tau: f64,
    infonce_loss: f64,
    theory_c_star: f64,
    theory_s_pos: f64,
    theory_phase: Phase,
    theory_loss: f64,
    gram_distance_to_theory: f64,
    /// The theory (optimum over all embeddings) holds for d >= N.
    theory_applies: bool,
    #[serde(flatten)]
    margins: Margins,
}

pub fn run(a: &InspectArgs) -> Result<()> {
    let sig = Loss::sigmoid(a.t, a.b.unwrap_or(a.t)).context("invalid sigmoid-loss parameters")?;
    let info = Loss::infonce(a.tau).context("invalid InfoNCE temperature")?;
    let level = QuantileLevel::new(a.margin_quantile).context("invalid --margin-quantile")?;
    if a.block == 0 {
        anyhow::bail!("--block must be >= 1");
    }
    let u = ccem::io::read_matrix(&a.u)?;
    let v = ccem::io::read_matrix(&a.v)?;
    check_pair(u.view(), v.view())?;
    check_all_finite(u.view(), "U")?;
    check_all_finite(v.view(), "V")?;
    let (u, v) = if a.no_normalize {
        (u, v)
    } else {
        (
            normalize_rows(u.view(), "U")?.u,
            normalize_rows(v.view(), "V")?.u,
        )
    };
    let opts = BlockOptions {
        block: a.block,
        parallel: true,
    };
    let m = measure(u.view(), v.view(), opts);
    let margins = margins(u.view(), v.view(), level, opts)?;
    let (n, d) = u.dim();
    let (t, b) = match sig {
        Loss::Sigmoid { t, b } => (t, b),
        Loss::InfoNce { .. } => unreachable!("constructed as sigmoid"),
    };
    let theory = SigmoidOptimum::solve(n, t, b)?;
    let pick = |s: &Stats| (s.mean, s.std, s.min, s.max);
    let (pm, ps, pmin, pmax) = pick(&m.pos);
    let (nm, ns, nmin, nmax) = pick(&m.neg);
    let rec = InspectRecord {
        n,
        d,
        normalized: !a.no_normalize,
        s_pos_mean: pm,
        s_pos_std: ps,
        s_pos_min: pmin,
        s_pos_max: pmax,
        s_neg_mean: nm,
        s_neg_std: ns,
        s_neg_min: nmin,
        s_neg_max: nmax,
        within_u_mean: m.within_u.mean,
        within_u_std: m.within_u.std,
        within_v_mean: m.within_v.mean,
        within_v_std: m.within_v.std,
        c_fit: m.c_fit,
        c_from_s_pos: m.c_from_s_pos,
        gram_distance: m.gram_distance,
        t,
        b,
        sigmoid_loss: blocked_loss(&sig, u.view(), v.view(), opts),
        tau: a.tau,
        infonce_loss: blocked_loss(&info, u.view(), v.view(), opts),
        theory_c_star: theory.c_star,
        theory_s_pos: theory.s_pos,
        theory_phase: theory.phase,
        theory_loss: theory.loss,
        gram_distance_to_theory: if theory.c_star.is_nan() {
            f64::NAN
        } else {
            m.gram_distance_to(theory.c_star)
        },
        theory_applies: d >= n,
        margins,
    };
    if a.format == Format::Table {
        println!(
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
