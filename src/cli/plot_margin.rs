//! `ccem plot margin`: the maximum margin over (N, d) (SPEC §7.2).

use super::output::{write_records, Format};
use anyhow::{Context, Result};
use ccem::grid::parse_int_grid;
use ccem::plot::{margin_cells, margin_map, MarginMapOptions};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct MarginMapArgs {
    /// Batch sizes: `3..12` or `4,8,16` (at least two)
    #[arg(long, default_value = "3..12", value_name = "LO..HI")]
    pub n: String,
    /// Dimensions: `2..12` or `2,3,5` (at least two)
    #[arg(long, default_value = "2..12", value_name = "LO..HI")]
    pub d: String,
    /// Random starts per cell
    #[arg(long, default_value_t = 8)]
    pub restarts: usize,
    /// Basin-hopping rounds per cell (4 perturbations each)
    #[arg(long, default_value_t = 0)]
    pub hops: usize,
    /// Adam steps per sharpness stage (12 stages)
    #[arg(long, default_value_t = ccem::optim::max_margin::DEFAULT_MM_STEPS_PER_STAGE)]
    pub steps_per_stage: usize,
    /// Seed of the starts
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the cells (n, d, margin, margin_bound) as CSV
    #[arg(long, value_name = "CELLS.csv")]
    pub csv: Option<PathBuf>,
    /// Output figure: .png or .svg
    #[arg(long, value_name = "FIG.png|FIG.svg")]
    pub out: PathBuf,
    /// Title
    #[arg(long)]
    pub title: Option<String>,
}

#[derive(serde::Serialize)]
struct CellRecord {
    n: usize,
    d: usize,
    margin: f64,
    margin_bound: f64,
    margin_ratio: f64,
}

/// Computes the cells, writes the optional CSV, draws the figure; returns the figure's path.
pub fn run(a: &MarginMapArgs, max_memory: ccem::limits::MemoryLimit) -> Result<&Path> {
    let opts = MarginMapOptions {
        ns: parse_int_grid(&a.n).context("--n")?,
        ds: parse_int_grid(&a.d).context("--d")?,
        restarts: a.restarts,
        hops: a.hops,
        steps_per_stage: a.steps_per_stage,
        seed: a.seed,
        title: a.title.clone(),
        max_memory,
    };
    let cells = margin_cells(&opts)?;
    if let Some(p) = &a.csv {
        let recs: Vec<CellRecord> = cells
            .iter()
            .map(|c| CellRecord {
                n: c.n,
                d: c.d,
                margin: c.margin,
                margin_bound: c.margin_bound,
                margin_ratio: c.margin / c.margin_bound,
            })
            .collect();
        let mut buf = Vec::new();
        write_records(&mut buf, Format::Csv, &recs)?;
        ccem::io::write_bytes(p, &buf).with_context(|| format!("writing {}", p.display()))?;
    }
    margin_map(&cells, &a.out, a.title.as_deref())?;
    Ok(&a.out)
}
