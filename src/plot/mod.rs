//! Figures: phase diagrams of measured similarities, maps of the exact optimum, measured-minus-
//! theory maps, and curves of the optimum and of the CCEM loss.
//!
//! Every function writes one figure to `out`; the format follows the extension (`.png` or
//! `.svg`, anything else is an [`Error::Config`]). The file is written atomically (a temporary
//! file in the same directory, renamed when complete), so a failure never leaves a partial figure.
//! Each figure computes its series from the library and hands plain numbers and labels to the
//! chart kit (the crate-private `chart` module), which draws them. PNG text is drawn glyph by
//! glyph with the bundled DejaVu Sans (exact bearings, advances and kerning); SVG text is real
//! `<text>` elements.
//!
//! | function | figure |
//! |---|---|
//! | [`phase_diagram`] | heatmap of the measured `s_pos` over (N, t), averaged over seeds, with the ETF and antipodal thresholds (SPEC §3, §5) |
//! | [`theory_map`] | `s_+*`, `c*` or `delta*` of the exact optimum over (N, t) for any bias setting (SPEC §3) |
//! | [`diff_map`] | measured `s_pos` minus the theory `s_+*`, diverging colours |
//! | [`curves`] | `c*` (or `delta*`) and `s_+*`, `s_-*` against `t` for a few `N`, measured points on top |
//! | [`loss_curve`] | the CCEM loss `l(c)` on `[0, 1]` for a few `t`, minimum `c*` marked |
//! | [`margin_map`] | the maximum margin over (N, d) as a fraction of the ETF bound, with `d = N - 1` (SPEC §7.2) |

mod batch;
mod boundaries;
mod curves;
mod margin_map;
mod results;
mod zoo;

pub use batch::{batch_phase_map, batch_spread, BatchCell, BatchPanel, SpreadPoint};
pub use curves::{
    curves, loss_curve, CurveQuantity, CurvesOptions, LossCurveOptions, MAX_CURVES, MAX_LINE_POINTS,
};
pub use margin_map::{margin_cells, margin_map, MarginCell, MarginMapOptions};
pub use results::{read_results, PlotRow, ResultsTable};
pub use zoo::{within_view_phase_map, zoo_agreement, WithinPoint, ZooPanel, ZooSeries};

use crate::chart::canvas::{self, ImageFormat};
use crate::chart::colormap::{BLUE_WHITE_RED, VIRIDIS};
use crate::chart::heatmap::{cell_edges, Grid, HeatmapFigure, Overlay, Panel};
use crate::error::{Error, Result};
use crate::theory::{BiasMode, Optimum};
use boundaries::{boundary_overlays, t_title, BoundaryColors, ON_DIVERGING, ON_VIRIDIS};
use results::grid_of;
use std::path::Path;

/// One panel of a phase diagram: a results table and an optional title.
#[derive(Clone, Debug)]
pub struct PanelInput {
    /// The measurements (all rows of one objective and mode; see [`ResultsTable::filtered`]).
    pub table: ResultsTable,
    /// The panel title; `None`: derived from the data ("Sigmoid loss (b = t), encoder",
    /// "InfoNCE loss, free").
    pub title: Option<String>,
}

impl PanelInput {
    /// Reads `path` with [`read_results`] (within `max_memory`), without a title.
    ///
    /// # Errors
    /// As [`read_results`].
    pub fn read(path: &Path, max_memory: crate::limits::MemoryLimit) -> Result<PanelInput> {
        Ok(PanelInput {
            table: read_results(path, max_memory)?,
            title: None,
        })
    }
}

/// Options of [`phase_diagram`].
#[derive(Clone, Debug)]
pub struct PhaseOptions {
    /// Bottom of the colour scale (default `0`, as in the paper's figure); lower values get its
    /// colour.
    pub vmin: f64,
    /// Top of the colour scale (default `1`); higher values get its colour.
    pub vmax: f64,
    /// Draw the phase boundaries of the data's bias setting on sigmoid panels (default `true`).
    pub curves: bool,
}

impl Default for PhaseOptions {
    fn default() -> Self {
        PhaseOptions {
            vmin: 0.0,
            vmax: 1.0,
            curves: true,
        }
    }
}

/// Checks that a colour range is finite and increasing.
fn check_range(name: &str, lo: f64, hi: f64) -> Result<()> {
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "invalid {name} colour range {lo}..{hi}: need finite values with min < max"
        )))
    }
}

/// A panel title derived from the data.
fn default_title(table: &ResultsTable, prefix: Option<&str>) -> String {
    let loss = if table.is_infonce() {
        "InfoNCE loss".to_string()
    } else {
        match table.bias_mode() {
            Some(BiasMode::Tied) => "sigmoid loss (b = t)".to_string(),
            Some(b) => format!("sigmoid loss ({})", b.label()),
            None => "sigmoid loss".to_string(),
        }
    };
    let mode = table.rows[0]
        .mode
        .clone()
        .filter(|_| table.rows.iter().all(|r| r.mode == table.rows[0].mode));
    let body = match mode {
        Some(m) => format!("{loss}, {m}"),
        None => loss,
    };
    match prefix {
        Some(p) => format!("{p}: {body}"),
        None => {
            let mut c = body.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
    }
}

/// The data range of a grid, for the boundary curves.
fn grid_extent(g: &Grid) -> ((f64, f64), (f64, f64)) {
    let xs: Vec<f64> = g.xs.iter().map(|&n| n as f64).collect();
    let (xe, te) = (cell_edges(&xs), cell_edges(&g.ys));
    ((xe[0], xe[xe.len() - 1]), (te[0], te[te.len() - 1]))
}

/// Boundary overlays for a table's panel, if it is a sigmoid run with a recognised bias setting.
fn table_overlays(
    table: &ResultsTable,
    g: &Grid,
    on: bool,
    colors: BoundaryColors,
) -> Vec<Overlay> {
    match (on, table.bias_mode()) {
        (true, Some(bias)) => {
            let (nr, tr) = grid_extent(g);
            boundary_overlays(bias, nr, tr, colors)
        }
        _ => Vec::new(),
    }
}

/// Phase diagram: the measured `s_pos` (mean positive similarity, SPEC §5) over (N on x, t on y),
/// averaged over seeds per cell, on the viridis scale `[vmin, vmax]`, one panel per input side by
/// side with a shared colour bar.
///
/// Sigmoid panels whose rows share a bias setting (`b = t`, a fixed `b`, or a fixed `b / t`) get
/// that setting's phase boundaries dashed on top; for the tied setting these are the ETF
/// threshold `t = ((N-1)/N) log(N-3)` and the antipodal threshold `t = (1/2) log((N-2)/2)`
/// (SPEC §3). InfoNCE panels (`t` is the temperature `tau`) get none: their optimum is the ETF at
/// every `tau`. Each cell spans half-way to its neighbours; cells without a finite measurement
/// are grey.
///
/// # Errors
/// No input; a table mixing objectives or modes; fewer than two values of `t` or `N`; a bad
/// colour range; an unknown extension; a failed write.
pub fn phase_diagram(inputs: &[PanelInput], out: &Path, opts: &PhaseOptions) -> Result<()> {
    ImageFormat::from_path(out)?;
    check_range("phase", opts.vmin, opts.vmax)?;
    if inputs.is_empty() {
        return Err(Error::Config(
            "a phase diagram needs at least one results table".into(),
        ));
    }
    let mut panels = Vec::new();
    for input in inputs {
        let table = &input.table;
        table.check_uniform()?;
        let grid = grid_of(table, |r| Ok(r.s_pos))?;
        let overlays = table_overlays(table, &grid, opts.curves, ON_VIRIDIS);
        panels.push(Panel {
            x_values: None,
            x_clip: None,
            title: input
                .title
                .clone()
                .unwrap_or_else(|| default_title(table, None)),
            x_title: "batch size N".into(),
            y_title: t_title(table.bias_mode(), table.is_infonce()),
            grid,
            overlays,
        });
    }
    let fig = HeatmapFigure {
        panels,
        cmap: VIRIDIS,
        range: (opts.vmin, opts.vmax),
        cbar_label: "s (mean positive similarity)".into(),
    };
    canvas::save(&fig, out)
}

/// Which quantity of the exact optimum a [`theory_map`] shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Quantity {
    /// `s_+* = 1 - 2c*`, on the scale `[-1, 1]`.
    #[default]
    SPos,
    /// `c* in [0, 1]`, on the scale `[0, 1]`.
    CStar,
    /// `delta* = sqrt(c*/(1-c*))`, clamped to `[0, delta_max]` (infinite when antipodal).
    Delta,
}

/// Options of [`theory_map`].
#[derive(Clone, Debug)]
pub struct TheoryMapOptions {
    /// Batch sizes (x axis), e.g. from `crate::grid::parse_int_grid("4..50")`; at least two.
    pub ns: Vec<usize>,
    /// Scales `t` (y axis), e.g. from `crate::grid::parse_real_grid("0.1..5:100")`; at least two.
    pub ts: Vec<f64>,
    /// How the bias follows `t`.
    pub bias: BiasMode,
    /// The quantity shown.
    pub quantity: Quantity,
    /// Top of the `delta*` scale (default `3`, i.e. `c* = 0.9`); larger values, including the
    /// antipodal `inf`, get its colour.
    pub delta_max: f64,
    /// Draw the phase boundaries (default `true`).
    pub curves: bool,
    /// Title; `None`: derived from the quantity and bias.
    pub title: Option<String>,
}

impl Default for TheoryMapOptions {
    fn default() -> Self {
        TheoryMapOptions {
            ns: (4..=50).collect(),
            ts: (0..100).map(|k| 0.1 + 4.9 * f64::from(k) / 99.0).collect(),
            bias: BiasMode::Tied,
            quantity: Quantity::SPos,
            delta_max: 3.0,
            curves: true,
            title: None,
        }
    }
}

/// The most values of `N` or of `t` a map (a heatmap) draws: more than its pixels could show.
pub const MAX_MAP_VALUES: usize = 2000;

/// Sorted distinct grid values, at least two and at most [`MAX_MAP_VALUES`].
fn check_axis_grid<T: PartialOrd + Copy>(name: &str, v: &[T]) -> Result<Vec<T>> {
    if v.len() > MAX_MAP_VALUES {
        return Err(Error::Config(format!(
            "{} values of {name} are more than a map can show (at most {MAX_MAP_VALUES})",
            v.len()
        )));
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    s.dedup_by(|a, b| a == b);
    if s.len() < 2 {
        return Err(Error::Config(format!(
            "need at least two values of {name} to draw a map"
        )));
    }
    Ok(s)
}

/// Map of the exact optimum of the sigmoid loss (SPEC §3) over (N, t) with `b = bias.bias(t)`:
/// `s_+* = 1 - 2c*` on `[-1, 1]`, `c*` on `[0, 1]`, or `delta* = sqrt(c*/(1-c*))` clamped to
/// `[0, delta_max]`; computed by [`Optimum::sigmoid`]. The phase boundaries of the bias
/// setting are drawn dashed on top.
///
/// # Errors
/// Fewer than two values of `N` or `t`, or more than [`MAX_MAP_VALUES`]; `N < 2`; a negative
/// or non-finite `t`; a bad
/// `delta_max`; an unknown extension; a failed write.
pub fn theory_map(out: &Path, opts: &TheoryMapOptions) -> Result<()> {
    ImageFormat::from_path(out)?;
    let ns = check_axis_grid("N", &opts.ns)?;
    let ts = check_axis_grid("t", &opts.ts)?;
    if opts.quantity == Quantity::Delta {
        check_range("delta", 0.0, opts.delta_max)?;
    }
    let mut values = vec![vec![f64::NAN; ns.len()]; ts.len()];
    for (it, &t) in ts.iter().enumerate() {
        for (i_n, &n) in ns.iter().enumerate() {
            let o = Optimum::sigmoid(n, t, opts.bias.bias(t))?;
            values[it][i_n] = match opts.quantity {
                Quantity::SPos => o.s_pos,
                Quantity::CStar => o.c_star,
                Quantity::Delta => o.delta_star.min(opts.delta_max),
            };
        }
    }
    let grid = Grid {
        xs: ns,
        ys: ts,
        values,
    };
    let (range, label, what) = match opts.quantity {
        Quantity::SPos => (
            (-1.0, 1.0),
            "s₊* = 1 − 2c* (optimal positive similarity)".to_string(),
            "s₊*",
        ),
        Quantity::CStar => ((0.0, 1.0), "c* = δ*² / (1 + δ*²)".to_string(), "c*"),
        Quantity::Delta => (
            (0.0, opts.delta_max),
            format!("δ* (values above {} clamped)", opts.delta_max),
            "δ*",
        ),
    };
    let overlays = if opts.curves {
        let (nr, tr) = grid_extent(&grid);
        boundary_overlays(opts.bias, nr, tr, ON_VIRIDIS)
    } else {
        Vec::new()
    };
    let bias_text = match opts.bias {
        BiasMode::Tied => "b = t".to_string(),
        b => b.label(),
    };
    let panel = Panel {
        x_values: None,
        x_clip: None,
        title: opts
            .title
            .clone()
            .unwrap_or_else(|| format!("Exact optimum {what} of the sigmoid loss ({bias_text})")),
        x_title: "batch size N".into(),
        y_title: t_title(Some(opts.bias), false),
        grid,
        overlays,
    };
    let fig = HeatmapFigure {
        panels: vec![panel],
        cmap: VIRIDIS,
        range,
        cbar_label: label,
    };
    canvas::save(&fig, out)
}

/// Map of `s_+*` of the optimum of the expected mini-batch sigmoid loss (SPEC §8) over the
/// batch size `B` and `t` at fixed `N`, with `b = t`: [`Optimum::sigmoid_batch`] in every cell,
/// colour scale `[-1, 1]`. The weighted thresholds are drawn dashed on top, as curves in a real
/// `B` with `w = (B-1)/(N-1)`: the ETF threshold `t = ((N-1)/N) log(w (N-2) - 1)` (where
/// `w (N-2) >= 2`) and the antipodal threshold `t = (1/2) log(w (N-2)/2)` (where `w (N-2) > 2`).
///
/// # Errors
/// Fewer than two batch sizes or values of `t`; a batch size outside `2..=n`; a negative or
/// non-finite `t`; an unknown extension; a failed write.
pub fn batch_theory_map(out: &Path, n: usize, batches: &[usize], ts: &[f64]) -> Result<()> {
    ImageFormat::from_path(out)?;
    let bs = check_axis_grid("B", batches)?;
    let ts = check_axis_grid("t", ts)?;
    let mut values = vec![vec![f64::NAN; bs.len()]; ts.len()];
    for (it, &t) in ts.iter().enumerate() {
        for (ib, &b) in bs.iter().enumerate() {
            values[it][ib] = Optimum::sigmoid_batch(n, b, t, t)?.s_pos;
        }
    }
    let grid = Grid {
        xs: bs,
        ys: ts,
        values,
    };
    let ((b_lo, b_hi), _) = grid_extent(&grid);
    let overlays = batch::threshold_overlays(n, b_lo, b_hi);
    let panel = Panel {
        x_values: None,
        x_clip: None,
        title: format!("Expected mini-batch loss, N = {n}, b = t: s₊*, w = (B−1)/(N−1)"),
        x_title: "mini-batch size B".into(),
        y_title: t_title(Some(BiasMode::Tied), false),
        grid,
        overlays,
    };
    let fig = HeatmapFigure {
        panels: vec![panel],
        cmap: VIRIDIS,
        range: (-1.0, 1.0),
        cbar_label: "s₊* = 1 − 2c* of the expected-loss optimum".into(),
    };
    canvas::save(&fig, out)
}

/// Options of [`diff_map`].
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// Half-width `L` of the symmetric colour scale `[-L, L]`; `None` (the default): the largest
    /// `|difference|` of the data rounded up to a round number (so a map of errors of `1e-7` has
    /// the scale `[-1e-7, 1e-7]`); `0.01` when every difference is `0`.
    pub limit: Option<f64>,
    /// Draw the phase boundaries of the data's bias setting (default `true`).
    pub curves: bool,
    /// Title, used when the input has none; `None`: derived from the data.
    pub title: Option<String>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            limit: None,
            curves: true,
            title: None,
        }
    }
}

/// The theory `s_+*` of a row: its `s_pos_theory` column when present, otherwise the exact optimum
/// for `(n, t, b)` (SPEC §3), or the ETF value `1` for InfoNCE. `None` for a row with `d < N`,
/// where the theory does not apply (SPEC §3).
fn theory_s_pos(table: &ResultsTable, r: &PlotRow) -> Result<Option<f64>> {
    if let Some(v) = r.s_pos_theory {
        return Ok(Some(v));
    }
    if r.d.is_some_and(|d| d < r.n) {
        return Ok(None);
    }
    theory_s_pos_of(table, r).map(Some)
}

/// [`theory_s_pos`] of a row to which the theory applies.
fn theory_s_pos_of(table: &ResultsTable, r: &PlotRow) -> Result<f64> {
    if r.objective.as_deref() == Some("infonce") {
        return Ok(Optimum::infonce(r.n, r.t)?.s_pos);
    }
    let b = r.b.ok_or_else(|| Error::BadInput {
        path: table.path.clone(),
        reason: format!(
            "row with n = {}, t = {} has no s_pos_theory and no 'b' to compute the theory from",
            r.n, r.t
        ),
    })?;
    Ok(Optimum::sigmoid(r.n, r.t, b)?.s_pos)
}

/// A round number at or above `x`: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten.
fn round_up(x: f64) -> f64 {
    let mag = 10f64.powf(x.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * mag)
}

/// Map of the measured `s_pos` minus the theory `s_+*` over (N, t), averaged over seeds, on a
/// blue-white-red scale symmetric about `0` (blue: measured below theory).
///
/// The theory comes from the `s_pos_theory` column when present, otherwise from
/// [`Optimum::sigmoid`]`(n, t, b)` (SPEC §3), or `1` (the ETF) for InfoNCE rows.
///
/// # Errors
/// As [`phase_diagram`]; also a sigmoid row with neither `s_pos_theory` nor `b`, or a bad limit.
pub fn diff_map(input: &PanelInput, out: &Path, opts: &DiffOptions) -> Result<()> {
    ImageFormat::from_path(out)?;
    let table = &input.table;
    table.check_uniform()?;
    // Cells without a theory (`d < N`) have no difference to draw.
    let grid = grid_of(table, |r| match r.s_pos {
        Some(s) => Ok(theory_s_pos(table, r)?.map(|th| s - th)),
        None => Ok(None),
    })?;
    let limit = match opts.limit {
        Some(l) => {
            check_range("difference", -l, l)?;
            l
        }
        None => {
            let m = grid
                .values
                .iter()
                .flatten()
                .filter(|v| v.is_finite())
                .fold(0.0f64, |a, v| a.max(v.abs()));
            if m > 0.0 {
                round_up(m)
            } else {
                0.01
            }
        }
    };
    let overlays = table_overlays(table, &grid, opts.curves, ON_DIVERGING);
    let panel = Panel {
        x_values: None,
        x_clip: None,
        title: input
            .title
            .clone()
            .or(opts.title.clone())
            .unwrap_or_else(|| default_title(table, Some("Measured − theory"))),
        x_title: "batch size N".into(),
        y_title: t_title(table.bias_mode(), table.is_infonce()),
        grid,
        overlays,
    };
    let fig = HeatmapFigure {
        panels: vec![panel],
        cmap: BLUE_WHITE_RED,
        range: (-limit, limit),
        cbar_label: "s − s₊* (measured − theory)".into(),
    };
    canvas::save(&fig, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_numbers() {
        for (x, want) in [
            (0.3, 0.3),
            (0.33, 0.4),
            (1.04, 1.2),
            (0.5, 0.5),
            (0.011, 0.012),
            (1.7, 2.0),
        ] {
            assert!((round_up(x) - want).abs() < 1e-12, "{x}");
        }
    }

    #[test]
    fn rows_with_d_below_n_have_no_theory() {
        let row = |d: Option<usize>| PlotRow {
            n: 5,
            d,
            t: 1.0,
            b: Some(1.0),
            seed: None,
            s_pos: Some(0.5),
            s_neg: None,
            s_pos_theory: None,
            c_star: None,
            objective: Some("sigmoid".into()),
            mode: Some("free".into()),
        };
        let table = ResultsTable {
            path: "r.csv".into(),
            rows: vec![row(Some(4))],
            has_s_pos_theory: true,
            has_b: true,
        };
        assert_eq!(theory_s_pos(&table, &row(Some(4))).unwrap(), None);
        assert!(theory_s_pos(&table, &row(Some(5))).unwrap().is_some());
        assert!(theory_s_pos(&table, &row(None)).unwrap().is_some());
        // Several d for one N are not averaged into one map.
        let mixed = ResultsTable {
            rows: vec![row(Some(4)), row(Some(5))],
            ..table
        };
        let e = mixed.check_uniform().unwrap_err().to_string();
        assert!(e.contains("several dimensions"), "{e}");
    }
}
