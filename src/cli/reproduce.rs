//! `ccem reproduce`: the paper's figures and their agreement with the theory, in one command.

use super::progress::SweepProgress;
use anyhow::{bail, Result};
use ccem::options::MemoryArg;
use ccem::reproduce::{reproduce, ReproduceConfig};
use ccem::sweep::engine::SweepObserver;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem reproduce --quick                 # a coarse grid in seconds: out/reproduce-quick/REPORT.md
  ccem reproduce                         # the paper's grid, 5 encoder seeds: out/reproduce/REPORT.md
  ccem reproduce --seeds 10 --out runs/paper

Runs the theory grid, free embeddings (sigmoid and InfoNCE) and the paper's encoder (sigmoid and
InfoNCE), draws the figures and writes REPORT.md. Interrupted? Run it again: it resumes.")]
pub struct ReproduceArgs {
    /// Output directory (default: out/reproduce, or out/reproduce-quick with --quick)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A coarser grid (N = 4, 8, ..., 48; 6 values of t; 2 encoder seeds), for a first look
    #[arg(long)]
    pub quick: bool,
    /// Encoder seeds per cell (default 5, or 2 with --quick)
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Encoder SGD steps (the paper's figure: 100)
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Base seed
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores)
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress output
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: &ReproduceArgs, max_memory: Option<MemoryArg>) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(if a.quick {
            "out/reproduce-quick"
        } else {
            "out/reproduce"
        })
    });
    let mut cfg = if a.quick {
        ReproduceConfig::quick(out)
    } else {
        ReproduceConfig::paper(out)
    };
    if let Some(s) = a.seeds {
        if s == 0 {
            bail!("--seeds must be >= 1");
        }
        cfg.seeds = s;
    }
    if a.steps == 0 {
        bail!("--steps must be >= 1");
    }
    if a.threads == Some(0) {
        bail!("--threads must be >= 1");
    }
    cfg.steps = a.steps;
    cfg.seed = a.seed;
    cfg.threads = a.threads;
    cfg.max_memory = super::memory_limit(max_memory)?;
    let quiet = a.quiet;
    let mut make =
        |label: &str| -> Box<dyn SweepObserver> { Box::new(SweepProgress::new(label, quiet)) };
    let rep = reproduce(&cfg, &mut make)?;
    for st in &rep.stages {
        let extra = match (&st.summary.free, st.summary.regions.is_empty()) {
            (Some(f), _) => {
                let mut text = if f.cells > 0 {
                    format!(
                        "{} of {} cells on the predicted CCEM ({:.1}%)",
                        f.meets,
                        f.cells,
                        100.0 * f.fraction
                    )
                } else {
                    String::new()
                };
                if f.beats_ccem > 0 {
                    if !text.is_empty() {
                        text += "; ";
                    }
                    text += &format!(
                        "{} cells beat the CCEM prediction (findings, see REPORT.md)",
                        f.beats_ccem
                    );
                }
                text
            }
            (None, false) => st
                .summary
                .regions
                .iter()
                .map(|r| {
                    format!(
                        "{}: s_pos {:.3} (theory {:.3})",
                        r.region, r.s_pos_mean, r.s_pos_theory
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::new(),
        };
        outln!("{:<24} {:>6.2} s  {}", st.name, st.seconds, extra);
    }
    outln!(
        "figures: {}",
        rep.figures
            .iter()
            .map(|f| f.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    outln!(
        "report:  {} ({:.1} s in all)",
        rep.report.display(),
        rep.seconds
    );
    Ok(())
}
