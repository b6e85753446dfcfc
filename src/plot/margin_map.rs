//! The maximum margin over `(N, d)` (SPEC.md §7.2): a heatmap of the largest margin of `N` pairs
//! of unit vectors in `R^d` as a fraction of the ETF bound `N / (2(N-1))`, with the line
//! `d = N - 1` above which the simplex ETF reaches the bound.

use crate::chart::canvas;
use crate::chart::colormap::VIRIDIS;
use crate::chart::heatmap::{cell_edges, Grid, HeatmapFigure, Overlay, Panel};
use crate::error::{Error, Result};
use crate::geometry::margin_bound;
use crate::optim::max_margin::{max_margin, MaxMarginConfig};
use rayon::prelude::*;
use std::path::Path;

/// Options of [`margin_map`].
#[derive(Clone, Debug)]
pub struct MarginMapOptions {
    /// Batch sizes (at least two, each `>= 2`).
    pub ns: Vec<usize>,
    /// Dimensions (at least two, each `>= 1`).
    pub ds: Vec<usize>,
    /// Random starts per cell.
    pub restarts: usize,
    /// Basin-hopping rounds per cell (0: none).
    pub hops: usize,
    /// Adam steps per sharpness stage (12 stages).
    pub steps_per_stage: usize,
    /// Seed of the starts.
    pub seed: u64,
    /// Title; `None`: a default one.
    pub title: Option<String>,
    /// The most memory each cell's run may use (default: the memory available).
    pub max_memory: crate::limits::MemoryLimit,
}

impl Default for MarginMapOptions {
    /// `N = 3..12`, `d = 2..12`, 8 starts and no basin hopping per cell (plus the structured
    /// starts and the exact polish).
    fn default() -> Self {
        MarginMapOptions {
            ns: (3..=12).collect(),
            ds: (2..=12).collect(),
            restarts: 8,
            hops: 0,
            steps_per_stage: crate::optim::max_margin::DEFAULT_MM_STEPS_PER_STAGE,
            seed: 0,
            title: None,
            max_memory: crate::limits::MemoryLimit::Available,
        }
    }
}

/// One cell of the map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MarginCell {
    /// Batch size.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// The largest margin found ([`max_margin`]).
    pub margin: f64,
    /// `N / (2(N-1))`.
    pub margin_bound: f64,
}

/// The maximum margin of every `(N, d)` of the grid (cells in parallel; each is deterministic).
///
/// # Errors
/// A grid value out of range, or `restarts`/`steps_per_stage` zero.
pub fn margin_cells(opts: &MarginMapOptions) -> Result<Vec<MarginCell>> {
    let mut pairs = Vec::new();
    for &n in &opts.ns {
        for &d in &opts.ds {
            let cfg = MaxMarginConfig::new(n, d, opts.seed)?
                .with_max_memory(opts.max_memory)
                .with_restarts(opts.restarts)?
                .with_hops(opts.hops)
                .with_schedule(
                    crate::optim::max_margin::DEFAULT_MM_STAGES,
                    opts.steps_per_stage,
                    crate::optim::max_margin::DEFAULT_MM_BETA0,
                    crate::optim::max_margin::DEFAULT_MM_BETA_MAX,
                )?;
            pairs.push(cfg);
        }
    }
    pairs
        .par_iter()
        .map(|cfg| {
            let r = max_margin(cfg)?;
            Ok(MarginCell {
                n: cfg.n(),
                d: cfg.d(),
                margin: r.margin,
                margin_bound: margin_bound(cfg.n()),
            })
        })
        .collect()
}

/// Draws the map of `margin / margin_bound` over `(N, d)` from `cells` (e.g. from
/// [`margin_cells`]), with the line `d = N - 1`.
///
/// # Errors
/// Fewer than two values of `N` or `d` among the cells; an unknown extension; a failed write.
pub fn margin_map(cells: &[MarginCell], out: &Path, title: Option<&str>) -> Result<()> {
    canvas::ImageFormat::from_path(out)?;
    let mut ns: Vec<usize> = cells.iter().map(|c| c.n).collect();
    let mut ds: Vec<usize> = cells.iter().map(|c| c.d).collect();
    ns.sort_unstable();
    ns.dedup();
    ds.sort_unstable();
    ds.dedup();
    if ns.len() < 2 || ds.len() < 2 {
        return Err(Error::Config(
            "need at least two values of N and of d to draw the margin map".into(),
        ));
    }
    let mut values = vec![vec![f64::NAN; ns.len()]; ds.len()];
    for c in cells {
        let i_n = ns.binary_search(&c.n).expect("listed");
        let i_d = ds.binary_search(&c.d).expect("listed");
        values[i_d][i_n] = c.margin / c.margin_bound;
    }
    let ts: Vec<f64> = ds.iter().map(|&d| d as f64).collect();
    let xs: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let xe = cell_edges(&xs);
    let (x0, x1) = (xe[0], xe[xe.len() - 1]);
    let etf_line = Overlay {
        lines: vec![vec![(x0, x0 - 1.0), (x1, x1 - 1.0)]],
        color: (0xe4, 0x1a, 0x1c),
        label: "d = N − 1: the simplex ETF reaches the bound N/(2(N−1))".into(),
        markers: false,
    };
    let panel = Panel {
        x_values: None,
        x_clip: None,
        title: title
            .map(str::to_string)
            .unwrap_or_else(|| "Maximum margin of N pairs in R^d".into()),
        x_title: "batch size N".into(),
        y_title: "dimension d".into(),
        grid: Grid {
            xs: ns,
            ys: ts,
            values,
        },
        overlays: vec![etf_line],
    };
    let fig = HeatmapFigure {
        panels: vec![panel],
        cmap: VIRIDIS,
        range: (0.0, 1.0),
        cbar_label: "max margin / (N/(2(N−1)))  (1: the ETF bound)".into(),
    };
    canvas::save(&fig, out)
}
