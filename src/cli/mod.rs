//! Command-line definitions (clap) and dispatch; one file per subcommand.

/// `println!` that returns a write error (e.g. a closed pipe) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

/// `print!` that returns a write error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)?
    }};
}

pub mod dimension;
#[cfg(feature = "explore")]
pub mod explore;
pub mod inspect;
pub mod max_margin;
pub mod optimize;
pub mod output;
pub mod plot;
pub mod plot_margin;
pub mod progress;
pub mod reproduce;
pub mod sweep;
pub mod theory;
pub mod train;

use ccem::options::{parse_max_memory, MemoryArg, Spelling};
use clap::{CommandFactory, Parser, Subcommand};

/// ccem: the geometry of contrastive losses (SigLIP's sigmoid loss and CLIP's InfoNCE).
///
/// Predicts the optimal embedding of the sigmoid loss (the double-Constant Embedding Model of
/// Lee, Chang & Sohn, AISTATS 2024), measures any embedding against it, trains free embeddings
/// and the paper's encoder, sweeps grids of (N, t), and draws the paper's figures.
#[derive(Parser, Debug)]
#[command(name = "ccem", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The most memory a run may use, e.g. 8G or 512M [default: the memory available]. Larger
    /// runs are refused before they start.
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_memory: Option<String>,
}

/// The exit codes, the same for every command (shown at the end of every `--help`).
pub const EXIT_CODES: &str = "Exit codes (every command):
  0  success, including an output pipe closed early (e.g. `ccem theory ... | head`)
  1  error: bad input or options, a file that cannot be read or written
  2  incomplete result: `merge` with missing cells (unless --allow-missing)
  3  every run diverged (a non-finite value appeared): `optimize`, `train`, `max-margin`";

/// A result that is not an error but must be told by a non-zero exit code (see [`EXIT_CODES`]);
/// `message` (if any) is printed on stderr.
#[derive(Debug)]
pub struct ExitStatus {
    /// The exit code.
    pub code: i32,
    /// What to tell the user.
    pub message: String,
}

impl ExitStatus {
    /// Exit code 2: an incomplete result.
    pub const INCOMPLETE: i32 = 2;
    /// Exit code 3: every run diverged.
    pub const DIVERGED: i32 = 3;
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitStatus {}

/// The command line with [`EXIT_CODES`] at the end of every command's help.
pub fn command() -> clap::Command {
    fn add(cmd: clap::Command) -> clap::Command {
        let text = match cmd.get_after_help() {
            Some(h) => format!("{h}\n\n{EXIT_CODES}"),
            None => EXIT_CODES.to_string(),
        };
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        let mut cmd = cmd.after_help(text);
        for name in names {
            cmd = cmd.mut_subcommand(name, add);
        }
        cmd
    }
    add(Cli::command())
}

/// Whether `err` is, somewhere in its chain, a write to a closed pipe (also when wrapped by
/// `ccem::Error::Io`, serde_json or csv).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(BrokenPipe))
            || cause.downcast_ref::<csv::Error>().is_some_and(
                |e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe),
            )
    })
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The exact optimum of the sigmoid loss (phase, c*, delta*, s+*, s-*, loss) on a grid of (N, t)
    Theory(theory::TheoryArgs),
    /// Measure an embedding (U, V) from .npy/.csv files against the CCEM, with both losses
    Inspect(inspect::InspectArgs),
    /// Minimise the sigmoid or InfoNCE loss over free unit embeddings; compare with the theory
    Optimize(optimize::OptimizeArgs),
    /// The largest margin (min S_ii - max S_ij)/2 of N pairs in R^d: spherical codes, certified
    MaxMargin(max_margin::MaxMarginArgs),
    /// Train the paper's ReLU encoder on Gaussian data (one run)
    Train(train::TrainArgs),
    /// Run a grid of (N, t) cells in parallel: resumable, reproducible, shardable
    Sweep(sweep::SweepArgs),
    /// Draw figures: phase diagram, theory map, difference map, curves, loss curve
    Plot(plot::PlotArgs),
    /// Combine the output directories of sweep shards
    Merge(sweep::MergeArgs),
    /// The paper's experiment end to end: sweeps, figures and REPORT.md (start with --quick)
    Reproduce(reproduce::ReproduceArgs),
    /// A local web page: the theory, your embeddings and a live training run (127.0.0.1)
    #[cfg(feature = "explore")]
    Explore(explore::ExploreArgs),
}

/// Runs the chosen subcommand.
///
/// The library's errors name the options in the command line's spelling
/// ([`Spelling::respell`]: `max_memory` is `--max-memory`).
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let max_memory = cli.max_memory.as_deref().map(MemoryArg::from);
    let result = match cli.command {
        Command::Theory(a) => theory::run(&a),
        Command::Inspect(a) => inspect::run(&a, max_memory),
        Command::Optimize(a) => optimize::run(&a, max_memory),
        Command::MaxMargin(a) => max_margin::run(&a, max_memory),
        Command::Train(a) => train::run(&a, max_memory),
        Command::Sweep(a) => sweep::run(&a, max_memory),
        Command::Merge(a) => sweep::run_merge(&a),
        Command::Plot(a) => plot::run(&a, max_memory),
        Command::Reproduce(a) => reproduce::run(&a, max_memory),
        #[cfg(feature = "explore")]
        Command::Explore(a) => explore::run(&a, max_memory),
    };
    result.map_err(|e| match e.downcast::<ccem::Error>() {
        Ok(e) => Spelling::Flag.respell(e).into(),
        Err(e) => e,
    })
}

/// The memory limit of `--max-memory` (checked by the library's resolver).
pub fn memory_limit(max_memory: Option<MemoryArg>) -> anyhow::Result<ccem::limits::MemoryLimit> {
    Ok(parse_max_memory(max_memory.as_ref(), Spelling::Flag)?)
}
