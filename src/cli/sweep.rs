//! `ccem sweep` and `ccem merge`.

use super::output::{print_records, Format};
use super::progress::SweepProgress;
use anyhow::{Context, Result};
use ccem::options::{BiasArg, GridArg, MemoryArg, Spelling, SweepOptions};
use ccem::sweep::engine::run_sweep;
use ccem::sweep::store::TimingLog;
use ccem::sweep::summary::{summarize, Summary};

use ccem::sweep::{merge, runner, Mode, SweepSpec};
use ccem::LossKind;
use ccem::Valid;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:
  # the paper's figure: encoder, sigmoid loss, t = b, N = 4..50, 10 values of t, 100 steps
  ccem sweep --mode encoder --loss sigmoid --n 4..50 --t 0.1..5:10 --out runs/encoder-sigmoid
  # the same for InfoNCE (the swept value is the temperature tau), 5 seeds
  ccem sweep --mode encoder --loss infonce --n 4..50 --t 0.1..5:10 --seeds 5 --out runs/encoder-infonce
  # free embeddings to convergence, fixed bias b = 1
  ccem sweep --mode free --loss sigmoid --n 4..50 --t 0.1..5:10 --b 1 --out runs/free-b1
  # any loss of the zoo against its CCEM optimum (SPEC §9), e.g. SimCLR over N and tau
  ccem sweep --mode free --loss simclr --n 4..12 --tau 0.1..2:5 --seeds 2 --out runs/simclr
  # the sigmoid loss with within-view negatives of weight W = 0.5 (Lee et al.'s remedy)
  ccem sweep --mode free --loss sigmoid --within-view 0.5 --n 8 --t 0.5..4:6 --out runs/sig-w
  # one of 4 shards (e.g. a SLURM array task), then merge
  ccem sweep --mode encoder --loss sigmoid --n 4..50 --t 0.1..5:10 --shard 0/4 --out runs/s0
  ccem merge runs/s0 runs/s1 runs/s2 runs/s3 --out runs/all

Interrupted? Run the same command again: finished cells are kept and only the missing ones run.
Writes DIR/config.json, DIR/results.csv (one row per cell and seed), DIR/summary.json and DIR/summary.md.")]
pub struct SweepArgs {
    /// Train free embeddings on the sphere, or the paper's ReLU encoder
    #[arg(long, value_enum)]
    pub mode: ModeArg,
    /// Loss (SPEC §1, §9). The swept value is the sigmoid's scale --t, the temperature --tau of
    /// the others (--t is its alias there); spectral has no parameter (give neither)
    #[arg(long, value_parser = super::theory::loss_parser(), default_value_t = LossKind::Sigmoid)]
    pub loss: LossKind,
    /// Batch sizes: `4..50`, `4..50:2` or `4,8,16`
    #[arg(long, allow_hyphen_values = true)]
    pub n: String,
    /// Swept values of t (or tau): `0.1..5:10` (10 values, inclusive) or `0.5,1,2`
    #[arg(long, allow_hyphen_values = true)]
    pub t: Option<String>,
    /// Swept temperatures tau (infonce, simclr, dcl, dhel): a grid as --t
    #[arg(long, allow_hyphen_values = true, conflicts_with = "t")]
    pub tau: Option<String>,
    /// Weight W >= 0 of within-view negatives (sigmoid, infonce; SPEC §9.1)
    #[arg(long, value_name = "W", allow_hyphen_values = true)]
    pub within_view: Option<f64>,
    /// Sigmoid bias: a number, or `tied` for b = t (the default, the paper's setting)
    #[arg(long, allow_hyphen_values = true, conflicts_with = "relative_bias")]
    pub b: Option<String>,
    /// Relative bias r_b: b = r_b * t
    #[arg(long, allow_hyphen_values = true)]
    pub relative_bias: Option<f64>,
    /// Seeds per cell
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Base seed (each cell's seed is derived from it, N and the seed index)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dimension d = round(d_ratio * N) [default: 1]
    #[arg(long)]
    pub d_ratio: Option<f64>,
    /// A grid of dimensions (`2..12`, `2,3,5`): the cells are every (N, d) pair, d < N included
    /// (no CCEM theory there; compare the margin columns)
    #[arg(
        long,
        value_name = "D|LO..HI",
        allow_hyphen_values = true,
        conflicts_with = "d_ratio"
    )]
    pub d: Option<String>,
    /// Training steps (encoder default 100; free embeddings: the maximum)
    #[arg(long)]
    pub steps: Option<usize>,
    /// Learning rate (encoder default 0.5)
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// Encoder layers, 2 or 3
    #[arg(long)]
    pub layers: Option<usize>,
    /// Free embeddings: adam or sgd
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Free embeddings: random restarts, best kept
    #[arg(long)]
    pub restarts: Option<usize>,
    /// Free embeddings: stop when the gradient norm falls below this
    #[arg(long)]
    pub grad_tol: Option<f64>,
    #[command(flatten)]
    pub mini_batch: super::optimize::MiniBatchArgs,
    /// Run only cells k with k mod K = I (0 <= I < K), e.g. one task of a SLURM array
    #[arg(long, value_name = "I/K")]
    pub shard: Option<String>,
    /// Worker threads (default: all cores)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory
    #[arg(long)]
    pub out: PathBuf,
    /// No progress output
    #[arg(long)]
    pub quiet: bool,
    /// Format of the summary printed at the end
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `free` or `encoder` ([`Mode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// The embedding vectors themselves, on the sphere.
    Free,
    /// The paper's ReLU encoder on Gaussian data.
    Encoder,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Free => Mode::Free,
            ModeArg::Encoder => Mode::Encoder,
        }
    }
}

impl SweepArgs {
    /// The raw options, resolved by the library ([`SweepOptions::resolve`]).
    pub fn options(&self) -> SweepOptions {
        let mut o = SweepOptions::new(
            self.mode.into(),
            self.loss,
            GridArg::Text(self.n.clone()),
            GridArg::Text(String::new()),
        );
        o.t = self.t.clone().map(GridArg::Text);
        o.tau = self.tau.clone().map(GridArg::Text);
        o.within_view = self.within_view;
        o.b = self.b.as_deref().map(BiasArg::from);
        o.relative_bias = self.relative_bias;
        o.seeds = self.seeds;
        o.seed = self.seed;
        o.d_ratio = self.d_ratio;
        o.d = self.d.clone().map(GridArg::Text);
        o.steps = self.steps;
        o.lr = self.lr;
        o.layers = self.layers;
        o.optimizer = self.optimizer.clone();
        o.restarts = self.restarts;
        o.grad_tol = self.grad_tol;
        o.mini_batch = self.mini_batch.options();
        o.shard = self.shard.clone();
        o.threads = self.threads;
        o
    }

    /// The sweep's specification within `max_memory`, checked by the library.
    pub fn spec(&self, max_memory: Option<MemoryArg>) -> Result<Valid<SweepSpec>> {
        let mut opts = self.options();
        opts.max_memory = max_memory;
        Ok(opts.resolve(Spelling::Flag)?.spec)
    }
}

/// Runs a sweep with a progress display; returns the spec and the summary.
pub fn execute(
    spec: &Valid<SweepSpec>,
    out: &Path,
    threads: Option<usize>,
    label: &str,
    quiet: bool,
) -> Result<(Summary, ccem::sweep::engine::SweepOutcome)> {
    let mut progress = SweepProgress::new(label, quiet);
    let timings = TimingLog::new(out);
    let runner = |c: &ccem::sweep::Cell| {
        let t0 = std::time::Instant::now();
        let row = runner::run_cell(spec, c);
        timings.record(c.index, t0.elapsed().as_secs_f64());
        row
    };
    let outcome = run_sweep(spec, out, threads, &runner, &mut progress)
        .with_context(|| format!("sweep into '{}'", out.display()))?;
    progress.finish();
    let summary = summarize(spec, &outcome.rows);
    summary.write(out)?;
    Ok((summary, outcome))
}

pub fn run(a: &SweepArgs, max_memory: Option<MemoryArg>) -> Result<()> {
    let spec = a.spec(max_memory)?;
    let label = format!("{} {}", spec.mode.as_str(), spec.objective.as_str());
    let (summary, outcome) = execute(&spec, &a.out, a.threads, &label, a.quiet)?;
    if !a.quiet {
        eprintln!(
            "{}: computed {} cells in {:.2} s ({} resumed; {:.2} s of compute over all cells); results in {}",
            label,
            outcome.computed,
            outcome.elapsed.as_secs_f64(),
            outcome.resumed,
            TimingLog::total_seconds(&a.out, outcome.rows.iter().map(|r| r.cell)),
            a.out.join("results.csv").display()
        );
    }
    match a.format {
        Format::Table => out!("{}", summary.to_markdown()),
        f => print_records(f, &[summary])?,
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Example:
  ccem merge runs/s0 runs/s1 runs/s2 runs/s3 --out runs/all

Checks that the directories are shards of one sweep, writes the union in cell order, and reports
the cells that are missing or present twice (exit code 2 if any is missing, unless --allow-missing).")]
pub struct MergeArgs {
    /// Sweep directories (shards) to combine
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Output directory
    #[arg(long)]
    pub out: PathBuf,
    /// Exit 0 even if cells are missing
    #[arg(long)]
    pub allow_missing: bool,
}

pub fn run_merge(a: &MergeArgs) -> Result<()> {
    let rep = merge::merge(&a.dirs, &a.out)?;
    let summary = summarize(&rep.spec, &rep.rows);
    summary.write(&a.out)?;
    let cells = rep.spec.all_cells();
    let describe = |ks: &[usize]| -> String {
        ks.iter()
            .take(20)
            .map(|&k| {
                format!(
                    "#{k} (N = {}, t = {}, seed {})",
                    cells[k].n, cells[k].t, cells[k].seed_index
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
            + if ks.len() > 20 { ", ..." } else { "" }
    };
    outln!(
        "merged {} directories: {} of {} cells into {}",
        a.dirs.len(),
        rep.rows.len(),
        cells.len(),
        a.out.join("results.csv").display()
    );
    if rep.kept > 0 {
        eprintln!(
            "note: kept {} cells that {} already held and no input has",
            rep.kept,
            a.out.display()
        );
    }
    if !rep.duplicates.is_empty() {
        eprintln!(
            "warning: {} cells present more than once (first kept): {}",
            rep.duplicates.len(),
            describe(&rep.duplicates)
        );
    }
    if !rep.missing.is_empty() {
        let message = format!(
            "{}: {} cells missing: {}",
            if a.allow_missing {
                "warning"
            } else {
                "incomplete"
            },
            rep.missing.len(),
            describe(&rep.missing)
        );
        if !a.allow_missing {
            return Err(super::ExitStatus {
                code: super::ExitStatus::INCOMPLETE,
                message,
            }
            .into());
        }
        eprintln!("{message}");
    }
    Ok(())
}
