//! Command-line definitions (clap) and dispatch; one file per subcommand.

pub mod dimension;
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

use clap::{Parser, Subcommand};

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
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The exact optimum of the sigmoid loss (phase, c*, delta*, s+*, s-*, loss) on a grid of (N, t)
    Theory(theory::TheoryArgs),
    /// Measure an embedding (U, V) from .npy/.csv files against the CCEM, with both losses
    Inspect(inspect::InspectArgs),
    /// Minimise the sigmoid or InfoNCE loss over free unit embeddings; compare with the theory
    Optimize(optimize::OptimizeArgs),
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
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Theory(a) => theory::run(&a),
        Command::Inspect(a) => inspect::run(&a),
        Command::Optimize(a) => optimize::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Sweep(a) => sweep::run(&a),
        Command::Merge(a) => sweep::run_merge(&a),
        Command::Plot(a) => plot::run(&a),
        Command::Reproduce(a) => reproduce::run(&a),
    }
}
