//! Heatmaps: one or more panels side by side sharing one colour bar, each a grid of cells
//! coloured by value with curves and markers drawn dashed on top.

use super::axes::{self, Axes, Entry, Frame, Rect, Swatch, TITLE_FONT};
use super::canvas::{Dash, Figure, Painter};
use super::colormap::ColorMap;
use super::text::{HAlign, VAlign};
use crate::error::Result;
use plotters::prelude::DrawingBackend;

/// Width of one panel (figure pixels).
const PANEL_W: f64 = 800.0;
/// Height of the figure.
const FIG_H: f64 = 600.0;
/// Room right of the last panel for the colour bar, its ticks and its label.
const CBAR_BLOCK: f64 = 125.0;

/// Dash pattern of the overlays.
pub(crate) const OVERLAY_DASH: Dash = Dash::Dashed(9.0, 5.0);

/// A rectangular grid of cells: sorted distinct column positions `xs` (integers; a panel's
/// `x_values` may replace them by reals) and row positions `ys`, and a value per cell (`NaN`:
/// none, drawn in the colour map's missing colour).
#[derive(Clone, Debug)]
pub(crate) struct Grid {
    pub xs: Vec<usize>,
    pub ys: Vec<f64>,
    /// `values[i_y][i_x]`.
    pub values: Vec<Vec<f64>>,
}

/// Cell edges of sorted grid values: half-way between neighbours; the outer cells extend by half
/// the distance to their one neighbour, but not below `0` when every value is positive.
pub(crate) fn cell_edges(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    let mut e = Vec::with_capacity(n + 1);
    e.push(v[0] - (v[1] - v[0]) / 2.0);
    for w in v.windows(2) {
        e.push((w[0] + w[1]) / 2.0);
    }
    e.push(v[n - 1] + (v[n - 1] - v[n - 2]) / 2.0);
    if v[0] > 0.0 && e[0] < 0.0 {
        e[0] = 0.0;
    }
    e
}

/// A curve in data coordinates drawn over a heatmap.
#[derive(Clone, Debug)]
pub(crate) struct Overlay {
    /// Polylines (each a list of `(x, y)` points).
    pub lines: Vec<Vec<(f64, f64)>>,
    pub color: (u8, u8, u8),
    pub label: String,
    /// Mark each point (for boundaries located per integer `N`).
    pub markers: bool,
}

/// One heatmap panel.
pub(crate) struct Panel {
    pub title: String,
    pub x_title: String,
    pub y_title: String,
    pub grid: Grid,
    pub overlays: Vec<Overlay>,
    /// Cells are cut to this `x` range (e.g. columns `2, 4, 8, 16` to `[1.5, 16.5]`, so that
    /// the last cell does not run to 20).
    pub x_clip: Option<(f64, f64)>,
    /// Real `x` values of the columns instead of the grid's integer `xs`; the `x` ticks are
    /// then the usual decimal ones.
    pub x_values: Option<Vec<f64>>,
}

/// Panels side by side with one colour bar.
pub(crate) struct HeatmapFigure {
    pub panels: Vec<Panel>,
    pub cmap: ColorMap,
    pub range: (f64, f64),
    pub cbar_label: String,
}

impl HeatmapFigure {
    /// The colour bar, right of the last panel.
    fn colorbar_rect(&self) -> Rect {
        let last = self.plot_rect(self.panels.len() - 1);
        Rect {
            x0: last.x1 + 24.0,
            y0: last.y0,
            x1: last.x1 + 46.0,
            y1: last.y1,
        }
    }

    fn plot_rect(&self, i: usize) -> Rect {
        let x = PANEL_W * i as f64;
        Rect {
            x0: x + 92.0,
            y0: 82.0,
            x1: x + PANEL_W - 22.0,
            y1: FIG_H - 70.0,
        }
    }
}

impl Figure for HeatmapFigure {
    fn size(&self) -> (u32, u32) {
        (
            self.colorbar_rect().x1.max(0.0) as u32
                + (axes::colorbar_room(FIG_H - 152.0, self.range).max(CBAR_BLOCK - 46.0)) as u32,
            FIG_H as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, p: &mut Painter<DB>) -> Result<()> {
        let (lo, hi) = self.range;
        for (i, panel) in self.panels.iter().enumerate() {
            let rect = self.plot_rect(i);
            let g = &panel.grid;
            let xs: Vec<f64> = match &panel.x_values {
                Some(x) => x.clone(),
                None => g.xs.iter().map(|&n| n as f64).collect(),
            };
            let (mut xe, ye) = (cell_edges(&xs), cell_edges(&g.ys));
            if let Some((a, b)) = panel.x_clip {
                xe.iter_mut().for_each(|e| *e = e.clamp(a, b));
            }
            let ax = Axes {
                rect,
                x: (xe[0], xe[xe.len() - 1]),
                y: (ye[0], ye[ye.len() - 1]),
            };
            for (it, row) in g.values.iter().enumerate() {
                for (i_n, &v) in row.iter().enumerate() {
                    let (x0, y0) = ax.px(xe[i_n], ye[it]);
                    let (x1, y1) = ax.px(xe[i_n + 1], ye[it + 1]);
                    p.fill_rect(x0, y1, x1, y0, self.cmap.map(v, lo, hi))?;
                }
            }
            for o in &panel.overlays {
                for line in &o.lines {
                    ax.line(p, line, o.color, 2.2, OVERLAY_DASH)?;
                    if o.markers {
                        for &(x, y) in line {
                            if ax.inside(x, y) {
                                p.circle(ax.px(x, y), 2.6, o.color, true)?;
                            }
                        }
                    }
                }
            }
            axes::draw_frame(
                p,
                &ax,
                &Frame {
                    x_title: &panel.x_title,
                    y_title: &panel.y_title,
                    x_ticks: panel.x_values.is_none().then(|| {
                        axes::integer_ticks(
                            ax.x.0,
                            ax.x.1,
                            ((rect.x1 - rect.x0) / 90.0).round() as usize,
                        )
                    }),
                    y_ticks: None,
                    grid: false,
                },
            )?;
            let cx = (rect.x0 + rect.x1) / 2.0;
            p.text(
                &panel.title,
                (cx, 26.0),
                TITLE_FONT,
                HAlign::Center,
                VAlign::Middle,
                false,
            );
            let entries: Vec<Entry> = panel
                .overlays
                .iter()
                .filter(|o| !o.lines.is_empty())
                .map(|o| Entry {
                    swatch: Swatch::Line {
                        color: o.color,
                        width: 2.2,
                        dash: OVERLAY_DASH,
                    },
                    label: o.label.clone(),
                })
                .collect();
            if !entries.is_empty() {
                axes::legend_row(p, &entries, (cx, 56.0))?;
            }
        }
        axes::colorbar(
            p,
            self.colorbar_rect(),
            &self.cmap,
            self.range,
            &self.cbar_label,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_half_way() {
        assert_eq!(cell_edges(&[1.0, 2.0, 4.0]), vec![0.5, 1.5, 3.0, 5.0]);
        assert_eq!(cell_edges(&[0.1, 1.0]), vec![0.0, 0.55, 1.45]);
        assert_eq!(cell_edges(&[-1.0, 1.0]), vec![-2.0, 0.0, 2.0]);
    }
}
