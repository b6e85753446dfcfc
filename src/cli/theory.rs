//! `ccem theory`: the exact optimum over a grid of (N, t).

use super::output::{print_records, Format};
use anyhow::{bail, Result};
use ccem::grid::{parse_int_grid, parse_real_grid};
use ccem::theory::{BiasMode, Optimum, Phase};
use rayon::prelude::*;
use serde::Serialize;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem theory --n 10 --t 1                       # one cell, b = t (the paper's setting)
  ccem theory --n 8 --t 3 --b 1 --format json
  ccem theory --n 4..50 --t 0.1..5:10 --format csv > theory.csv
  ccem theory --n 10 --t 1..10:4 --relative-bias 0.5
  ccem theory --loss infonce --n 10 --tau 0.07
  ccem theory --n 16 --t 2 --b 1 --batch 4          # the optimum of the expected loss over batches of 4

InfoNCE's loss is the sum of the row and column cross-entropies (the paper's convention), twice
open_clip's ClipLoss (their mean); loss_clip gives the CLIP value.")]
pub struct TheoryArgs {
    /// Batch size N: a value, `4..50` (inclusive) or `4,8,16`
    #[arg(long, value_name = "N|LO..HI", allow_hyphen_values = true)]
    pub n: String,
    /// Scale t (inverse temperature): a value, `0.1..5:10` (10 values, inclusive) or `1,2,5`
    #[arg(long, value_name = "T|LO..HI:COUNT", allow_hyphen_values = true)]
    pub t: Option<String>,
    /// Bias b (logit t*S - b); `tied` (the default) sets b = t
    #[arg(
        long,
        value_name = "B|tied",
        conflicts_with = "relative_bias",
        allow_hyphen_values = true
    )]
    pub b: Option<String>,
    /// Relative bias r_b = b/t (logit t*(S - r_b)), instead of --b
    #[arg(long, value_name = "R", allow_hyphen_values = true)]
    pub relative_bias: Option<f64>,
    /// Which loss
    #[arg(long, value_enum, default_value_t = LossKind::Sigmoid)]
    pub loss: LossKind,
    /// InfoNCE temperature tau: a value or a grid like --t
    #[arg(long, value_name = "TAU|LO..HI:COUNT", allow_hyphen_values = true)]
    pub tau: Option<String>,
    /// Mini-batch size B (2 <= B <= every N): the optimum of the expected loss over uniformly
    /// drawn batches of B pairs, negatives weighted by w = (B-1)/(N-1) (sigmoid only)
    #[arg(long, value_name = "B")]
    pub batch: Option<usize>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// sigmoid (SigLIP) or infonce (CLIP): the `--loss` argument ([`ccem::LossKind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LossKind {
    /// Sigmoid loss with scale t and bias b.
    Sigmoid,
    /// Symmetric InfoNCE with temperature tau (the sum of the row and column cross-entropies,
    /// twice open_clip's ClipLoss).
    Infonce,
}

impl From<LossKind> for ccem::LossKind {
    fn from(l: LossKind) -> Self {
        match l {
            LossKind::Sigmoid => ccem::LossKind::Sigmoid,
            LossKind::Infonce => ccem::LossKind::InfoNce,
        }
    }
}

/// Parses `--b`: `tied`, a number; or `--relative-bias`.
pub fn bias_mode(b: Option<&str>, relative: Option<f64>) -> Result<BiasMode> {
    Ok(match (b, relative) {
        (_, Some(r)) => {
            if !r.is_finite() {
                bail!("invalid --relative-bias {r}: must be a finite number");
            }
            BiasMode::Relative(r)
        }
        (None, None) => BiasMode::Tied,
        (Some(s), None) if s.trim().eq_ignore_ascii_case("tied") => BiasMode::Tied,
        (Some(s), None) => {
            let v: f64 = s
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid --b '{s}': give a number or 'tied'"))?;
            if !v.is_finite() {
                bail!("invalid --b {v}: must be a finite number");
            }
            BiasMode::Fixed(v)
        }
    })
}

/// One cell of the sigmoid theory.
#[derive(Serialize)]
struct SigmoidRecord {
    n: usize,
    t: f64,
    b: f64,
    c_star: f64,
    delta_star: f64,
    s_pos: f64,
    s_neg: f64,
    loss: f64,
    phase: Phase,
    /// The scale t at which this N enters the ETF phase under this bias setting.
    t_etf_boundary: Option<f64>,
    /// The scale t below which this N is antipodal under this bias setting.
    t_antipodal_boundary: Option<f64>,
    /// The mini-batch size B (with --batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
    /// The negative weight w = (B-1)/(N-1) (with --batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    w: Option<f64>,
}

pub fn run(a: &TheoryArgs) -> Result<()> {
    let ns = parse_int_grid(&a.n)?;
    if let Some(&n) = ns.iter().find(|&&n| n < 2) {
        bail!("batch size N = {n} is too small: need N >= 2");
    }
    if let Some(b) = a.batch {
        if a.loss == LossKind::Infonce {
            bail!(
                "--batch gives the optimum of the expected mini-batch loss, which only the \
                 sigmoid loss has in closed form; InfoNCE has no weighted equivalent (train it \
                 with `ccem optimize --loss infonce --batch B --batching shuffled`)"
            );
        }
        for &n in &ns {
            ccem::theory::batch::check_mini_batch(n, b)?;
        }
    }
    match a.loss {
        LossKind::Sigmoid => {
            if a.tau.is_some() {
                bail!("--tau is for --loss infonce; the sigmoid loss takes --t and --b");
            }
            let t_spec = a.t.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "--t is required for the sigmoid loss (e.g. --t 1 or --t 0.1..5:10)"
                )
            })?;
            let ts = parse_real_grid(t_spec)?;
            if let Some(&t) = ts.iter().find(|&&t| t < 0.0) {
                bail!("invalid t = {t}: the scale must be >= 0");
            }
            let mode = bias_mode(a.b.as_deref(), a.relative_bias)?;
            // The negative weight (SPEC §7): 1 for the full batch, bitwise.
            let weight = |n: usize| {
                a.batch.map_or(1.0, |b| {
                    ccem::theory::batch::negative_weight(n, b).expect("checked above")
                })
            };
            // Phase boundaries depend on N only: one search per N.
            let (t_lo, t_hi) = (1e-9, ts.iter().cloned().fold(10.0, f64::max) * 2.0);
            let bounds: Vec<(Option<f64>, Option<f64>)> = ns
                .par_iter()
                .map(|&n| {
                    let w = weight(n);
                    (
                        mode.etf_boundaries_weighted(n, w, t_lo, t_hi, 2000)
                            .first()
                            .copied(),
                        if a.batch.is_some() {
                            mode.antipodal_boundaries_weighted(n, w, t_lo, t_hi, 2000)
                        } else {
                            mode.antipodal_boundaries(n, t_lo, t_hi, 2000)
                        }
                        .first()
                        .copied(),
                    )
                })
                .collect();
            let records: Vec<SigmoidRecord> = ns
                .par_iter()
                .zip(bounds.par_iter())
                .flat_map_iter(|(&n, &(te, ta))| {
                    ts.iter().map(move |&t| {
                        let b = mode.bias(t);
                        let o = Optimum::sigmoid_weighted_unchecked(n, t, b, weight(n));
                        SigmoidRecord {
                            n,
                            t,
                            b,
                            c_star: o.c_star,
                            delta_star: o.delta_star,
                            s_pos: o.s_pos,
                            s_neg: o.s_neg,
                            loss: o.loss,
                            phase: o.phase,
                            t_etf_boundary: te,
                            t_antipodal_boundary: ta,
                            batch: a.batch,
                            w: a.batch.map(|_| weight(n)),
                        }
                    })
                })
                .collect();
            print_records(a.format, &records)
        }
        LossKind::Infonce => {
            if a.t.is_some() || a.b.is_some() || a.relative_bias.is_some() {
                bail!("--t/--b/--relative-bias are for the sigmoid loss; InfoNCE takes --tau");
            }
            let tau_spec = a.tau.as_deref().ok_or_else(|| {
                anyhow::anyhow!("--tau is required for --loss infonce (e.g. --tau 0.07)")
            })?;
            let taus = parse_real_grid(tau_spec)?;
            let records = ns
                .iter()
                .flat_map(|&n| taus.iter().map(move |&tau| Optimum::infonce(n, tau)))
                .collect::<ccem::Result<Vec<_>>>()?;
            print_records(a.format, &records)
        }
    }
}
