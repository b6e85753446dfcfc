//! `ccem theory`: the exact optimum over a grid of (N, t) or (N, tau), for every loss of the
//! registry (SPEC §3 for the sigmoid loss and InfoNCE, §9 for the zoo).

use super::output::{write_record_stream, Format};
use anyhow::Result;
use ccem::grid::{IntGrid, RealGrid};
use ccem::loss::{Loss, LossParams};
use ccem::options::{parse_bias, BiasArg, Spelling, TheoryOptions, TheoryPath};
use ccem::theory::record::{SigmoidRecord, ZooRecord};
use ccem::theory::zoo::{self, ZooLoss};
use ccem::theory::{BiasMode, Optimum};
use ccem::LossKind;
use rayon::prelude::*;
use serde::Serialize;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem theory --n 10 --t 1                       # one cell, b = t (the paper's setting)
  ccem theory --n 8 --t 3 --b 1 --format json
  ccem theory --n 4..50 --t 0.1..5:10 --format csv > theory.csv
  ccem theory --n 10 --t 1..10:4 --relative-bias 0.5
  ccem theory --loss infonce --n 10 --tau 0.07
  ccem theory --n 32768 --t 117.33 --b 12.93 --d 768  # google/siglip-base-patch16-224: d < N
  ccem theory --n 16 --t 2 --b 1 --batch 4          # the optimum of the expected loss over batches of 4
  ccem theory --loss simclr --n 4..64 --tau 0.1,0.5 --format csv   # every loss of the zoo (SPEC §9)
  ccem theory --loss sigmoid --n 16 --t 1 --within-view 0.5        # Lee et al.'s remedy: the ETF
  ccem theory --loss spectral --n 16 --batch 4

SigLIP's logit_scale is t and its logit_bias is -b: the checkpoint google/siglip-base-patch16-224
has exp(logit_scale) = 117.33 and logit_bias = -12.93, i.e. t = 117.33, b = 12.93.
InfoNCE's loss is the sum of the row and column cross-entropies (the paper's convention), twice
open_clip's ClipLoss (their mean); loss_clip gives the CLIP value.
The sigmoid loss and InfoNCE without --within-view print the keys of SPEC §3 (sigmoid: n, t, b,
c_star, delta_star, s_pos, s_neg, loss, phase, t_etf_boundary, t_antipodal_boundary). Every other
loss, and those two with --within-view W > 0, print the CCEM optimum of SPEC §9: n, the loss's
parameters, within_view, c_star, delta_star, s_pos, s_neg, s_within (u_i.u_j = v_i.v_j),
loss, phase, alignment_slack (Thm 5.2's 1 + s_neg + 1/(N-1) - s_pos), excess_separation
(additive losses: c* > 0), thm53_condition, global_optimum (the theorem that makes the CCEM
optimum the optimum over all embeddings for d >= N, or null), off_ccem_loss (a lower loss off the
CCEM, where one is known: spectral).")]
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
    #[arg(long, value_parser = loss_parser(), default_value_t = LossKind::Sigmoid)]
    pub loss: LossKind,
    /// Temperature tau of the losses that have one (infonce, simclr, dcl, dhel): a value or a
    /// grid like --t
    #[arg(long, value_name = "TAU|LO..HI:COUNT", allow_hyphen_values = true)]
    pub tau: Option<String>,
    /// Weight W >= 0 of within-view negatives (sigmoid, infonce): W > 0 gives the CCEM optimum
    /// of SPEC §9 (past W = (N-2)/(2N), the sigmoid's optimum is the ETF)
    #[arg(long, value_name = "W", allow_hyphen_values = true)]
    pub within_view: Option<f64>,
    /// Embedding dimension d: the CCEM optimum needs d >= N (InfoNCE: d >= N-1); below, the
    /// output says so and gives the margin bound (SPEC §7)
    #[arg(long)]
    pub d: Option<usize>,
    /// Mini-batch size B (2 <= B <= every N): the optimum of the expected loss over uniformly
    /// drawn batches of B pairs, negatives weighted by w = (B-1)/(N-1) (sigmoid; spectral: w = 1,
    /// a mean over pairs); the InfoNCE-based losses have no such form
    #[arg(long, value_name = "B")]
    pub batch: Option<usize>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The `--loss` argument of every command: a registered loss's name ([`ccem::LossKind`], the
/// library's one list), each listed in `--help` with its one-line meaning; an unknown name is
/// refused with the list of names.
pub fn loss_parser() -> impl clap::builder::TypedValueParser<Value = ccem::LossKind> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        ccem::LossKind::ALL
            .iter()
            .map(|k| PossibleValue::new(k.as_str()).help(k.summary())),
    )
    .map(|s| s.parse::<ccem::LossKind>().expect("a registered name"))
}

/// `--b` (a number or `tied`) or `--relative-bias` as a bias setting ([`parse_bias`]).
pub fn bias_mode(b: Option<&str>, relative: Option<f64>) -> Result<BiasMode> {
    Ok(parse_bias(
        b.map(BiasArg::from).as_ref(),
        relative,
        Spelling::Flag,
    )?)
}

/// Cells computed at once (in parallel) before they are written: memory does not grow with the
/// grid.
const CHUNK: usize = 4096;

/// The grid's cells `(N, t)` in order, computed `CHUNK` at a time in parallel: `per_n(N)` once
/// for each `N` of a chunk, then `cell(N, t, per_n(N))`.
fn stream_cells<'g, P: Send + Sync + Copy + 'g, T: Send + 'g>(
    ns: &'g IntGrid,
    ts: &'g RealGrid,
    per_n: impl Fn(usize) -> P + Sync + Send + 'g,
    cell: impl Fn(usize, f64, P) -> T + Sync + Send + 'g,
) -> impl Iterator<Item = T> + 'g {
    let m = ts.len() as u128;
    let total = ns.len() as u128 * m;
    let chunks = total.div_ceil(CHUNK as u128);
    (0..chunks).flat_map(move |c| {
        let lo = c * CHUNK as u128;
        let hi = (lo + CHUNK as u128).min(total);
        let (first_n, last_n) = ((lo / m) as usize, ((hi - 1) / m) as usize);
        let prepared: Vec<(usize, P)> = (first_n..=last_n)
            .into_par_iter()
            .map(|i| {
                let n = ns.get(i).expect("in the grid");
                (n, per_n(n))
            })
            .collect();
        (lo..hi)
            .collect::<Vec<u128>>()
            .into_par_iter()
            .map(|k| {
                let (n, p) = prepared[(k / m) as usize - first_n];
                cell(n, ts.get((k % m) as usize).expect("in the grid"), p)
            })
            .collect::<Vec<T>>()
    })
}

pub fn run(a: &TheoryArgs) -> Result<()> {
    // The combination of options, checked by the library; it says which theory answers.
    let path = TheoryOptions {
        loss: a.loss,
        t: a.t.is_some(),
        b: a.b.is_some(),
        relative_bias: a.relative_bias.is_some(),
        tau: a.tau.is_some(),
        within_view: a.within_view.is_some(),
        batch: a.batch.is_some(),
        d: a.d,
    }
    .resolve(a.within_view, Spelling::Flag)?;
    let ns = IntGrid::parse(&a.n)?;
    ccem::error::check_batch(ns.min())?;
    if let Some(b) = a.batch {
        // 2 <= B <= N for every N of the grid iff it holds for the smallest.
        ccem::theory::batch::check_mini_batch(ns.min(), b)?;
    }
    // The swept parameter: the scale t of a loss with one, else the temperature tau, else none
    // (one cell per N).
    let swept = if a.loss.takes("t") {
        a.t.as_deref()
    } else if a.loss.takes("tau") {
        a.tau.as_deref()
    } else {
        None
    };
    let xs = RealGrid::parse(swept.unwrap_or("0"))?;
    let count = ns.len().saturating_mul(xs.len());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match path {
        TheoryPath::Sigmoid => {
            let ts = xs;
            let mode = bias_mode(a.b.as_deref(), a.relative_bias)?;
            // The library checks the ends of the grid (the bias is linear in t, so its extremes
            // are there too); every cell between is then valid.
            for t in [ts.min(), ts.max()] {
                Optimum::sigmoid(ns.min(), t, mode.bias(t))?;
            }
            let batch = a.batch;
            // The negative weight (SPEC §8): 1 for the full batch, bitwise.
            let weight = move |n: usize| {
                batch.map_or(1.0, |b| {
                    ccem::theory::batch::negative_weight(n, b).expect("B <= min N checked above")
                })
            };
            // The boundaries in (0, inf), in closed form or by a bracketed Newton iteration
            // (SPEC §3.2): they depend on N (and w) only, not on the grid of t.
            let bounds = move |n: usize| {
                let w = weight(n);
                (
                    mode.etf_boundary_weighted(n, w),
                    mode.antipodal_boundary_weighted(n, w),
                )
            };
            let records = stream_cells(&ns, &ts, bounds, move |n, t, bounds| {
                let w = weight(n);
                let o = Optimum::sigmoid_weighted_unchecked(n, t, mode.bias(t), w);
                SigmoidRecord::from_parts(&o, t, mode.bias(t), bounds, batch, Some(w))
            });
            emit(a, &mut out, count, ns.max(), records, |n| n)
        }
        TheoryPath::InfoNce => {
            let taus = xs;
            for tau in [taus.min(), taus.max()] {
                Optimum::infonce(ns.min(), tau)?;
            }
            let records = stream_cells(
                &ns,
                &taus,
                |_| (),
                |n, tau, ()| Optimum::infonce(n, tau).expect("the grid's ends were checked"),
            );
            emit(a, &mut out, count, ns.max(), records, |n| {
                n.saturating_sub(1)
            })
        }
        TheoryPath::Zoo => {
            let kind = a.loss;
            let mode = bias_mode(a.b.as_deref(), a.relative_bias)?;
            let within_view = a.within_view;
            // The loss at the swept value x, built by the registry (which checks every value)
            // and mapped to its CCEM function (SPEC §9).
            let loss_at = move |x: f64| -> ccem::Result<ZooLoss> {
                let scale = kind.takes("t").then_some(x);
                let params = LossParams {
                    t: scale,
                    b: scale.map(|t| mode.bias(t)),
                    relative_bias: None,
                    tau: kind.takes("tau").then_some(x),
                    within_view,
                };
                ZooLoss::from_loss(&Loss::build(kind, &params)?)
            };
            for x in [xs.min(), xs.max()] {
                zoo::optimum(&loss_at(x)?, ns.min(), a.batch)?;
            }
            let batch = a.batch;
            let records = stream_cells(
                &ns,
                &xs,
                |_| (),
                move |n, x, ()| {
                    let loss = loss_at(x).expect("the grid's ends were checked");
                    ZooRecord::new(zoo::optimum(&loss, n, batch).expect("checked above"))
                },
            );
            let family = zoo::family_of(kind);
            emit(a, &mut out, count, ns.max(), records, move |n| {
                zoo::needed_dimension(family, n)
            })
        }
    }
}

/// Writes the records; with `--d`, each is annotated with where the CCEM optimum applies
/// ([`super::dimension::annotate_one`]) and a note goes to stderr when some cell has `d` below
/// `needed(N)` (the largest `N` decides).
fn emit<T: Serialize>(
    a: &TheoryArgs,
    out: &mut impl std::io::Write,
    count: usize,
    n_max: usize,
    records: impl Iterator<Item = T>,
    needed: impl Fn(usize) -> usize + Copy,
) -> Result<()> {
    let Some(d) = a.d else {
        return write_record_stream(out, a.format, count, records);
    };
    if d < needed(n_max) {
        eprintln!("{}", super::dimension::BELOW_NOTE);
    }
    let mut failure = None;
    let values = records.map_while(|r| match super::dimension::annotate_one(&r, d, needed) {
        Ok(v) => Some(v),
        Err(e) => {
            failure = Some(e);
            None
        }
    });
    write_record_stream(out, a.format, count, values)?;
    failure.map_or(Ok(()), Err)
}
