//! `ccem plot`: figures from a sweep's `results.csv` or from the theory alone.

use anyhow::{Context, Result};
use ccem::grid::{parse_int_grid, parse_real_grid};
use ccem::limits::MemoryLimit;
use ccem::options::MemoryArg;
use ccem::plot::{self, CurveQuantity, PanelInput, Quantity, ResultsTable};
use ccem::theory::BiasMode;
use std::path::{Path, PathBuf};

/// Draw a figure (PNG or SVG, chosen by the extension of --out).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem plot phase --input runs/encoder-sigmoid --input2 runs/encoder-infonce --out phase.png
  ccem plot theory --n 4..50 --t 0.1..5:200 --out theory.svg
  ccem plot diff --input runs/free-sigmoid/results.csv --out diff.png
  ccem plot curves --input runs/free-sigmoid --ns 5,10,20,50 --out curves.png
  ccem plot loss-curve --n 10 --ts 0.5,1,2,4 --out loss.png

--input takes a results.csv or a sweep directory holding one.")]
pub struct PlotArgs {
    #[command(subcommand)]
    pub kind: PlotKind,
}

/// The kinds of figure.
#[derive(clap::Subcommand, Debug)]
pub enum PlotKind {
    /// Heatmap of the measured s_pos over (N, t) with the theory's phase thresholds (the paper's figure)
    #[command(after_help = "Examples:
  # the paper's figure: sigmoid loss with b = t, thresholds dashed, colour scale 0..1
  ccem plot phase --input runs/encoder-sigmoid/results.csv --out phase.png
  # two panels sharing the colour bar (e.g. sigmoid and InfoNCE), as SVG
  ccem plot phase --input runs/encoder-sigmoid --input2 runs/encoder-infonce \\
      --title 'Sigmoid (b = t)' --title2 'InfoNCE' --out phase.svg
  # free embeddings reach s = -1: widen the colour scale
  ccem plot phase --input runs/free-sigmoid --vmin -1 --vmax 1 --out phase-free.png

Cells are averaged over seeds; empty or NaN measurements (diverged runs) are skipped and cells
without data are grey. The dashed curves are the ETF threshold t = ((N-1)/N) log(N-3) and the
antipodal threshold t = (1/2) log((N-2)/2) for b = t (SPEC §3), or the numerically located
boundaries for a fixed b or a fixed b/t; InfoNCE panels have none.")]
    Phase(PhaseArgs),
    /// Map of the exact optimum (s+*, c* or delta*) over (N, t) for any bias setting
    #[command(after_help = "Examples:
  ccem plot theory --out theory.png                         # s+*, b = t, N = 4..50, t = 0.1..5:100
  ccem plot theory --quantity c_star --relative-bias 0.5 --out c-star-rb.png
  ccem plot theory --quantity delta --b 1 --delta-max 2 --t 0.05..8:200 --out delta-b1.svg

Colour scales: s+* on [-1, 1], c* on [0, 1], delta* on [0, --delta-max] (larger values and the
antipodal delta* = inf get the top colour).")]
    Theory(TheoryMapArgs),
    /// Maximum margin of N pairs in R^d over (N, d), as a fraction of the ETF bound N/(2(N-1))
    #[command(after_help = "Examples:
  ccem plot margin --out margin.png                          # N = 3..12, d = 2..12
  ccem plot margin --n 3..8 --d 2..6 --restarts 2 --csv cells.csv --out margin.svg

Each cell is `ccem optimize --n N --d D --max-margin` (smooth max-min with restarts, SPEC §7.2).
The red line d = N - 1 marks where the simplex ETF reaches the bound.")]
    Margin(super::plot_margin::MarginMapArgs),
    /// Map of the measured s_pos minus the theory s+* over (N, t), blue-white-red
    #[command(after_help = "Examples:
  ccem plot diff --input runs/free-sigmoid/results.csv --out diff.png
  ccem plot diff --input runs/encoder-sigmoid --limit 1 --out diff-encoder.svg

The theory comes from the s_pos_theory column, or is computed from n, t, b. The colour scale is
symmetric: [-L, L] with L from --limit, or the largest |difference| rounded up.")]
    Diff(DiffArgs),
    /// c* (or delta*) and s+*, s-* of the optimum against t for a few N, measured points on top
    #[command(after_help = "Examples:
  ccem plot curves --out curves.png                          # theory only, b = t
  ccem plot curves --input runs/free-sigmoid --ns 5,10,20,50 --out curves.png
  ccem plot curves --b 1 --quantity delta --t 0.05..10:400 --out curves-b1.svg

Measured points are the mean over seeds with error bars of +-1 standard deviation; the measured c
is (1 - s_pos)/2.")]
    Curves(CurvesArgs),
    /// The CCEM loss l(c) against c in [0, 1] for a few t, minimum c* marked
    #[command(after_help = "Examples:
  ccem plot loss-curve --out loss.png                        # N = 10, t = 0.5,1,2,4, b = t
  ccem plot loss-curve --n 20 --ts 1,2,3 --b 1 --relative --out loss-b1.svg

l(c) = softplus(b - t + 2tc) + (N-1) softplus(-b - t/(N-1) - t c (N-2)/(N-1)) (SPEC §3).")]
    LossCurve(LossCurveArgs),
}

/// Bias options shared by the theory figures: `--b B|tied` or `--relative-bias R`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BiasArgs {
    /// Bias b (logit t*S - b), a number or `tied` (b = t)
    #[arg(
        long,
        value_name = "B|tied",
        conflicts_with = "relative_bias",
        allow_hyphen_values = true
    )]
    pub b: Option<String>,
    /// Relative bias r_b = b/t, instead of --b
    #[arg(long, value_name = "R", allow_hyphen_values = true)]
    pub relative_bias: Option<f64>,
}

impl BiasArgs {
    /// The bias setting; `None` when neither option is given.
    fn mode(&self) -> Result<Option<BiasMode>> {
        if self.b.is_none() && self.relative_bias.is_none() {
            return Ok(None);
        }
        Ok(Some(super::theory::bias_mode(
            self.b.as_deref(),
            self.relative_bias,
        )?))
    }
}

/// Row filters for a results file.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Keep only rows of this objective (`sigmoid` or `infonce`), for files that mix them
    #[arg(long, value_name = "NAME")]
    pub objective: Option<String>,
    /// Keep only rows of this mode (`free` or `encoder`), for files that mix them
    #[arg(long, value_name = "NAME")]
    pub mode: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct PhaseArgs {
    /// results.csv (or a sweep directory holding one)
    #[arg(long, value_name = "FILE|DIR")]
    pub input: PathBuf,
    /// A second results.csv, drawn as a second panel sharing the colour bar (e.g. InfoNCE)
    #[arg(long, value_name = "FILE|DIR")]
    pub input2: Option<PathBuf>,
    /// Output figure: .png or .svg
    #[arg(long, value_name = "FIG.png|FIG.svg")]
    pub out: PathBuf,
    /// Title of the (first) panel; default from the data
    #[arg(long)]
    pub title: Option<String>,
    /// Title of the second panel; default from the data
    #[arg(long)]
    pub title2: Option<String>,
    /// Bottom of the colour scale
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub vmin: f64,
    /// Top of the colour scale
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub vmax: f64,
    /// Do not draw the phase boundaries
    #[arg(long)]
    pub no_curves: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(clap::Args, Debug)]
pub struct TheoryMapArgs {
    /// Batch sizes: `4..50`, `4..50:2` or `4,8,16` (at least two)
    #[arg(long, default_value = "4..50", value_name = "LO..HI")]
    pub n: String,
    /// Scales t: `0.1..5:100` (100 values) or `0.5,1,2` (at least two)
    #[arg(long, default_value = "0.1..5:100", value_name = "LO..HI:COUNT")]
    pub t: String,
    #[command(flatten)]
    pub bias: BiasArgs,
    /// The quantity shown
    #[arg(long, value_enum, default_value_t = QuantityArg::SPos)]
    pub quantity: QuantityArg,
    /// Top of the delta* colour scale (larger values are clamped)
    #[arg(long, default_value_t = 3.0)]
    pub delta_max: f64,
    /// Output figure: .png or .svg
    #[arg(long, value_name = "FIG.png|FIG.svg")]
    pub out: PathBuf,
    /// Title; default from the quantity and bias
    #[arg(long)]
    pub title: Option<String>,
    /// Do not draw the phase boundaries
    #[arg(long)]
    pub no_curves: bool,
}

/// `--quantity` of `ccem plot theory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantityArg {
    /// s+* = 1 - 2c*, scale [-1, 1]
    #[value(name = "s_pos")]
    SPos,
    /// c*, scale [0, 1]
    #[value(name = "c_star")]
    CStar,
    /// delta* = sqrt(c*/(1-c*)), scale [0, --delta-max]
    #[value(name = "delta")]
    Delta,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// results.csv (or a sweep directory holding one)
    #[arg(long, value_name = "FILE|DIR")]
    pub input: PathBuf,
    /// Output figure: .png or .svg
    #[arg(long, value_name = "FIG.png|FIG.svg")]
    pub out: PathBuf,
    /// Half-width L of the colour scale [-L, L]; default: the largest |difference|, rounded up
    #[arg(long)]
    pub limit: Option<f64>,
    /// Title; default from the data
    #[arg(long)]
    pub title: Option<String>,
    /// Do not draw the phase boundaries
    #[arg(long)]
    pub no_curves: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(clap::Args, Debug)]
pub struct CurvesArgs {
    /// results.csv (or a sweep directory) whose measurements are drawn on top (optional)
    #[arg(long, value_name = "FILE|DIR")]
    pub input: Option<PathBuf>,
    /// Output figure: .png or .svg
    #[arg(long, value_name = "FIG.png|FIG.svg")]
    pub out: PathBuf,
    /// Batch sizes, one colour each
    #[arg(long, default_value = "5,10,20,50", value_name = "N,N,...")]
    pub ns: String,
    /// Fine t grid of the theory lines, e.g. `0.05..5:300`; default: the data's t range (or 0.05..5)
    #[arg(long, value_name = "LO..HI:COUNT")]
    pub t: Option<String>,
    #[command(flatten)]
    pub bias: BiasArgs,
    /// Left panel: c* or delta*
    #[arg(long, value_enum, default_value_t = CurveQuantityArg::CStar)]
    pub quantity: CurveQuantityArg,
    /// Top of the delta* axis (larger values are clamped)
    #[arg(long, default_value_t = 3.0)]
    pub delta_max: f64,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `--quantity` of `ccem plot curves`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CurveQuantityArg {
    /// c*
    #[value(name = "c_star")]
    CStar,
    /// delta*
    #[value(name = "delta")]
    Delta,
}

#[derive(clap::Args, Debug)]
pub struct LossCurveArgs {
    /// Batch size N
    #[arg(long, default_value_t = 10)]
    pub n: usize,
    /// Scales t, one curve each: `0.5,1,2,4` or `0.5..4:4`
    #[arg(long, default_value = "0.5,1,2,4", value_name = "T,T,...")]
    pub ts: String,
    #[command(flatten)]
    pub bias: BiasArgs,
    /// Plot l(c) - l(c*) (every curve has minimum 0)
    #[arg(long)]
    pub relative: bool,
    /// Output figure: .png or .svg
    #[arg(long, value_name = "FIG.png|FIG.svg")]
    pub out: PathBuf,
}

/// `DIR/results.csv` when `p` is a directory, else `p`.
fn results_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("results.csv")
    } else {
        p.to_path_buf()
    }
}

/// Reads and filters a results file.
fn read_table(p: &Path, f: &FilterArgs, max_memory: MemoryLimit) -> Result<ResultsTable> {
    let table = plot::read_results(&results_path(p), max_memory)?;
    if f.objective.is_none() && f.mode.is_none() {
        return Ok(table);
    }
    Ok(table.filtered(f.objective.as_deref(), f.mode.as_deref())?)
}

/// Runs `ccem plot`.
pub fn run(args: &PlotArgs, max_memory: Option<MemoryArg>) -> Result<()> {
    let limit = super::memory_limit(max_memory)?;
    let out = match &args.kind {
        PlotKind::Phase(a) => {
            let mut inputs = vec![PanelInput {
                table: read_table(&a.input, &a.filter, limit)?,
                title: a.title.clone(),
            }];
            if let Some(p) = &a.input2 {
                inputs.push(PanelInput {
                    table: read_table(p, &a.filter, limit)?,
                    title: a.title2.clone(),
                });
            }
            let opts = plot::PhaseOptions {
                vmin: a.vmin,
                vmax: a.vmax,
                curves: !a.no_curves,
            };
            plot::phase_diagram(&inputs, &a.out, &opts)?;
            &a.out
        }
        PlotKind::Theory(a) => {
            let opts = plot::TheoryMapOptions {
                ns: parse_int_grid(&a.n).context("--n")?,
                ts: parse_real_grid(&a.t).context("--t")?,
                bias: a.bias.mode()?.unwrap_or(BiasMode::Tied),
                quantity: match a.quantity {
                    QuantityArg::SPos => Quantity::SPos,
                    QuantityArg::CStar => Quantity::CStar,
                    QuantityArg::Delta => Quantity::Delta,
                },
                delta_max: a.delta_max,
                curves: !a.no_curves,
                title: a.title.clone(),
            };
            plot::theory_map(&a.out, &opts)?;
            &a.out
        }
        PlotKind::Margin(a) => super::plot_margin::run(a, limit)?,
        PlotKind::Diff(a) => {
            let input = PanelInput {
                table: read_table(&a.input, &a.filter, limit)?,
                title: a.title.clone(),
            };
            let opts = plot::DiffOptions {
                limit: a.limit,
                curves: !a.no_curves,
                title: None,
            };
            plot::diff_map(&input, &a.out, &opts)?;
            &a.out
        }
        PlotKind::Curves(a) => {
            let table = a
                .input
                .as_deref()
                .map(|p| read_table(p, &a.filter, limit))
                .transpose()?;
            let opts = plot::CurvesOptions {
                ns: parse_int_grid(&a.ns).context("--ns")?,
                ts: a
                    .t
                    .as_deref()
                    .map(parse_real_grid)
                    .transpose()
                    .context("--t")?,
                bias: a.bias.mode()?,
                left: match a.quantity {
                    CurveQuantityArg::CStar => CurveQuantity::CStar,
                    CurveQuantityArg::Delta => CurveQuantity::Delta,
                },
                delta_max: a.delta_max,
            };
            plot::curves(table.as_ref(), &a.out, &opts)?;
            &a.out
        }
        PlotKind::LossCurve(a) => {
            let opts = plot::LossCurveOptions {
                n: a.n,
                ts: parse_real_grid(&a.ts).context("--ts")?,
                bias: a.bias.mode()?.unwrap_or(BiasMode::Tied),
                relative: a.relative,
            };
            plot::loss_curve(&a.out, &opts)?;
            &a.out
        }
    };
    eprintln!("wrote {}", out.display());
    Ok(())
}
