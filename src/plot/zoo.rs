//! The figures of the loss zoo (SPEC §9): each loss's measured `s_pos` next to its CCEM
//! optimum, and the phase of the sigmoid loss's optimum over the within-view weight `W` and `t`.

use crate::chart::axes::{Entry, Swatch};
use crate::chart::canvas::{self, Dash};
use crate::chart::colormap::VIRIDIS;
use crate::chart::heatmap::{Grid, HeatmapFigure, Overlay, Panel};
use crate::chart::lines::{padded, LineFigure, LinePanel, Series, PALETTE};
use crate::error::{Error, Result};
use crate::theory::zoo::{optimum, ZooLoss};
use std::path::Path;

/// One curve of a [`ZooPanel`]: the theory as a line and the measurements as points.
#[derive(Clone, Debug, PartialEq)]
pub struct ZooSeries {
    /// Legend label (e.g. `N = 8`).
    pub label: String,
    /// The theory's `(x, s_+*)`, drawn as a line.
    pub theory: Vec<(f64, f64)>,
    /// Measured `(x, mean s_pos, std over seeds)`, drawn as points with error bars.
    pub measured: Vec<(f64, f64, f64)>,
}

/// One loss's panel of [`zoo_agreement`].
#[derive(Clone, Debug, PartialEq)]
pub struct ZooPanel {
    /// Panel title (the loss).
    pub title: String,
    /// Title of the swept axis (`tau`, `t = b`, or `N`).
    pub x_title: String,
    /// One series per batch size (or one for the whole panel).
    pub series: Vec<ZooSeries>,
}

/// A figure with a panel per loss: measured `s_pos` of free embeddings (points, with the
/// spread over seeds) next to the theory's `s_+*` of the CCEM optimum (lines), SPEC §9.8.
///
/// # Errors
/// No panel, a panel without a series or a point; an unknown extension; a failed write.
pub fn zoo_agreement(out: &Path, panels: &[ZooPanel]) -> Result<()> {
    canvas::ImageFormat::from_path(out)?;
    if panels.is_empty() {
        return Err(Error::Config("a zoo figure needs a panel".into()));
    }
    let mut drawn = Vec::with_capacity(panels.len());
    for p in panels {
        let xs = p.series.iter().flat_map(|s| {
            s.theory
                .iter()
                .map(|q| q.0)
                .chain(s.measured.iter().map(|q| q.0))
        });
        let (x_lo, x_hi) = padded(xs, 0.04);
        if p.series.is_empty() || !x_lo.is_finite() {
            return Err(Error::Config(format!(
                "the zoo panel '{}' has nothing to draw",
                p.title
            )));
        }
        let mut series = Vec::new();
        let mut legend = Vec::new();
        for (k, s) in p.series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            series.push(Series::Line {
                data: s.theory.clone(),
                color,
                width: 2.0,
                dash: Dash::Solid,
            });
            series.push(Series::Points {
                data: s
                    .measured
                    .iter()
                    .map(|&(x, m, sd)| (x, m, (sd > 0.0).then_some((m - sd, m + sd))))
                    .collect(),
                color,
                filled: false,
                radius: 5.0,
            });
            legend.push(Entry {
                swatch: Swatch::Marker {
                    color,
                    filled: false,
                    line: Some(Dash::Solid),
                },
                label: s.label.clone(),
            });
        }
        let ys = p
            .series
            .iter()
            .flat_map(|s| {
                s.theory
                    .iter()
                    .map(|q| q.1)
                    .chain(s.measured.iter().map(|q| q.1))
            })
            .chain([1.0]);
        let (y_lo, _) = padded(ys, 0.06);
        drawn.push(LinePanel {
            title: p.title.clone(),
            x_title: p.x_title.clone(),
            y_title: "s_pos: measured (o), theory s+* (line)".into(),
            x_range: (x_lo, x_hi),
            y_range: (y_lo.min(0.9), 1.04),
            series,
            legend,
        });
    }
    let fig = LineFigure {
        panels: drawn,
        panel_size: (560.0, 460.0),
    };
    canvas::save(&fig, out)
}

/// A measured point of [`within_view_phase_map`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WithinPoint {
    /// The within-view weight `W`.
    pub w: f64,
    /// The scale `t`.
    pub t: f64,
    /// Whether the free embeddings landed on the predicted CCEM.
    pub meets: bool,
}

/// The optimum of the sigmoid loss with within-view negatives of weight `W` (SPEC §9.1) at `N`
/// pairs and fixed bias `b`, over `(W, t)`: the theory's `s_+*` (colour; `1` is the simplex ETF), the line
/// `W = (N-2)/(2N)` past which the optimum is the ETF at every `t` (SPEC §9.6, Lee et al.'s
/// remedy), and the measured points of free embeddings (white: on the predicted CCEM, red: not).
///
/// # Errors
/// `N < 3`; fewer than two values of `W` or `t`, a negative `W` or `t`, unsorted axes; an
/// unknown extension; a failed write.
pub fn within_view_phase_map(
    out: &Path,
    n: usize,
    b: f64,
    ws: &[f64],
    ts: &[f64],
    measured: &[WithinPoint],
) -> Result<()> {
    canvas::ImageFormat::from_path(out)?;
    if n < 3 {
        return Err(Error::Config(format!(
            "the within-view phase map needs N >= 3, got {n}"
        )));
    }
    for (name, v) in [("W", ws), ("t", ts)] {
        if v.len() < 2 || v.windows(2).any(|p| p[0] >= p[1]) || v[0] < 0.0 {
            return Err(Error::Config(format!(
                "the within-view phase map needs two or more increasing values of {name} >= 0"
            )));
        }
    }
    let mut values = vec![vec![f64::NAN; ws.len()]; ts.len()];
    for (it, &t) in ts.iter().enumerate() {
        for (iw, &w) in ws.iter().enumerate() {
            values[it][iw] = optimum(&ZooLoss::sigmoid(t, b, w)?, n, None)?.s_pos;
        }
    }
    let w_line = (n as f64 - 2.0) / (2.0 * n as f64);
    let (t_lo, t_hi) = (ts[0], ts[ts.len() - 1]);
    let mut overlays = vec![Overlay {
        lines: vec![vec![(w_line, t_lo), (w_line, t_hi)]],
        color: (0xe4, 0x1a, 0x1c),
        label: format!("W = (N−2)/(2N) = {w_line:.3}"),
        markers: false,
    }];
    for (meets, color, label) in [
        (
            true,
            (0xff, 0xff, 0xff),
            "free embeddings: on the predicted CCEM",
        ),
        (false, (0xff, 0x00, 0x00), "free embeddings: off it"),
    ] {
        let pts: Vec<Vec<(f64, f64)>> = measured
            .iter()
            .filter(|p| p.meets == meets)
            .map(|p| vec![(p.w, p.t)])
            .collect();
        if !pts.is_empty() {
            overlays.push(Overlay {
                lines: pts,
                color,
                label: label.into(),
                markers: true,
            });
        }
    }
    let panel = Panel {
        title: format!("Sigmoid loss + W × within-view negatives, N = {n}, b = {b}: s₊*"),
        x_title: "within-view weight W".into(),
        y_title: format!("t (b = {b})"),
        grid: Grid {
            xs: Vec::new(),
            ys: ts.to_vec(),
            values,
        },
        x_values: Some(ws.to_vec()),
        overlays,
        x_clip: None,
    };
    let fig = HeatmapFigure {
        panels: vec![panel],
        cmap: VIRIDIS,
        range: (-1.0, 1.0),
        cbar_label: "s₊* = 1 − 2c* (1: the simplex ETF)".into(),
    };
    canvas::save(&fig, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written_and_bad_inputs_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("zoo.png");
        let panel = ZooPanel {
            title: "simclr".into(),
            x_title: "tau".into(),
            series: vec![ZooSeries {
                label: "N = 4".into(),
                theory: vec![(0.1, 1.0), (1.0, 1.0)],
                measured: vec![(0.1, 0.999, 0.001), (1.0, 1.0, 0.0)],
            }],
        };
        zoo_agreement(&out, &[panel.clone(), panel]).unwrap();
        assert!(out.exists());
        assert!(zoo_agreement(&out, &[]).is_err());
        let map = dir.path().join("w.png");
        let pts = [WithinPoint {
            w: 0.0,
            t: 1.0,
            meets: true,
        }];
        within_view_phase_map(&map, 8, 0.0, &[0.0, 0.25, 0.5], &[0.5, 1.0, 4.0], &pts).unwrap();
        assert!(map.exists());
        assert!(within_view_phase_map(&map, 2, 0.0, &[0.0, 0.5], &[1.0, 2.0], &[]).is_err());
        assert!(within_view_phase_map(&map, 8, 0.0, &[0.5, 0.0], &[1.0, 2.0], &[]).is_err());
    }
}
