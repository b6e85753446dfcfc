//! Heatmaps over (N, t): one or more panels side by side sharing one colour bar, with phase
//! boundary curves drawn dashed on top.

use super::axes::{self, Axes, Entry, Frame, Rect, Swatch, TITLE_FONT};
use super::canvas::{Dash, Figure, Painter};
use super::colormap::ColorMap;
use super::results::{cell_edges, Grid};
use super::text::{HAlign, VAlign};
use crate::error::Result;
use crate::theory::BiasMode;
use plotters::prelude::DrawingBackend;

/// Width of one panel (figure pixels).
const PANEL_W: f64 = 800.0;
/// Height of the figure.
const FIG_H: f64 = 600.0;
/// Room right of the last panel for the colour bar, its ticks and its label.
const CBAR_BLOCK: f64 = 125.0;

/// Colours of the ETF and the antipodal boundary.
pub(crate) type BoundaryColors = ((u8, u8, u8), (u8, u8, u8));
/// Red and blue (as in the paper's figure), for the viridis maps.
pub(crate) const ON_VIRIDIS: BoundaryColors = ((0xe4, 0x1a, 0x1c), (0x1f, 0x4f, 0xff));
/// Black and dark green, for the blue-white-red difference maps.
pub(crate) const ON_DIVERGING: BoundaryColors = ((0x00, 0x00, 0x00), (0x00, 0x7a, 0x3d));
/// Dash pattern of the boundaries.
pub(crate) const BOUNDARY_DASH: Dash = Dash::Dashed(9.0, 5.0);

/// A curve in data coordinates drawn over a heatmap.
#[derive(Clone, Debug)]
pub(crate) struct Overlay {
    /// Polylines (each a list of `(N, t)` points).
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
    /// Cells are cut to this `x` range (e.g. batch sizes `2, 4, 8, 16` to `[1.5, 16.5]`, so
    /// that the last cell does not run to 20).
    pub x_clip: Option<(f64, f64)>,
    /// Real `x` values of the columns instead of the grid's integer `ns` (e.g. a weight `W`);
    /// the `x` ticks are then the usual decimal ones.
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
                None => g.ns.iter().map(|&n| n as f64).collect(),
            };
            let (mut xe, ye) = (cell_edges(&xs), cell_edges(&g.ts));
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
                    ax.line(p, line, o.color, 2.2, BOUNDARY_DASH)?;
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
                        dash: BOUNDARY_DASH,
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

/// The ETF threshold of the tied setting `b = t` at a real `N > 3`: `t = ((N-1)/N) log(N-3)`
/// (SPEC §3; equal to [`crate::theory::etf_threshold_tied`] at integer `N`), for smooth curves.
pub(crate) fn etf_threshold_tied_real(n: f64) -> f64 {
    (n - 1.0) / n * (n - 3.0).ln()
}

/// The antipodal threshold of the tied setting at a real `N > 2`: `t = (1/2) log((N-2)/2)`
/// (SPEC §3; equal to [`crate::theory::antipodal_threshold_tied`] at integer `N >= 5`).
pub(crate) fn antipodal_threshold_tied_real(n: f64) -> f64 {
    0.5 * ((n - 2.0) / 2.0).ln()
}

/// The phase boundaries over `N` in `[n_lo, n_hi]` and `t` in `[t_lo, t_hi]` for a bias setting:
/// the ETF boundary (red) and the antipodal boundary (blue).
///
/// For [`BiasMode::Tied`] the closed forms of SPEC §3 are drawn as smooth curves in `N` (from
/// `N = 4`). Otherwise, for each integer `N`, the roots in `(t_lo, t_hi]` from
/// [`BiasMode::etf_boundaries`] and [`BiasMode::antipodal_boundary`] are joined across neighbouring `N` with the same number
/// of roots.
pub(crate) fn boundary_overlays(
    bias: BiasMode,
    (n_lo, n_hi): (f64, f64),
    (t_lo, t_hi): (f64, f64),
    (etf_color, anti_color): BoundaryColors,
) -> Vec<Overlay> {
    match bias {
        BiasMode::Tied => {
            let start = n_lo.max(4.0);
            let steps = (((n_hi - start) / 0.02).ceil().max(1.0)) as usize;
            let ns: Vec<f64> = (0..=steps)
                .map(|k| start + (n_hi - start) * k as f64 / steps as f64)
                .collect();
            // The closed forms go to -inf as N -> 3 (ETF); clipping to the plot area handles it.
            let etf: Vec<(f64, f64)> = ns
                .iter()
                .map(|&n| (n, etf_threshold_tied_real(n)))
                .collect();
            let anti: Vec<(f64, f64)> = ns
                .iter()
                .map(|&n| (n, antipodal_threshold_tied_real(n)))
                .collect();
            vec![
                Overlay {
                    lines: vec![etf],
                    color: etf_color,
                    label: "ETF threshold t = ((N−1)/N) log(N−3)".into(),
                    markers: false,
                },
                Overlay {
                    lines: vec![anti],
                    color: anti_color,
                    label: "antipodal threshold t = ½ log((N−2)/2)".into(),
                    markers: false,
                },
            ]
        }
        _ => {
            let n0 = n_lo.ceil().max(2.0) as usize;
            let n1 = n_hi.floor() as usize;
            let in_range = |r: Vec<f64>| -> Vec<f64> {
                r.into_iter().filter(|&t| t > t_lo && t <= t_hi).collect()
            };
            let chain = |roots: &dyn Fn(usize) -> Vec<f64>| -> Vec<Vec<(f64, f64)>> {
                let mut lines: Vec<Vec<(f64, f64)>> = Vec::new();
                let mut open: Vec<Vec<(f64, f64)>> = Vec::new();
                for n in n0..=n1 {
                    let r = roots(n);
                    if r.len() == open.len() {
                        for (line, &t) in open.iter_mut().zip(&r) {
                            line.push((n as f64, t));
                        }
                    } else {
                        lines.append(&mut open);
                        open = r.iter().map(|&t| vec![(n as f64, t)]).collect();
                    }
                }
                lines.append(&mut open);
                lines
            };
            let etf = chain(&|n| in_range(bias.etf_boundaries(n)));
            let anti = chain(&|n| in_range(bias.antipodal_boundary(n).into_iter().collect()));
            let label = bias.label();
            vec![
                Overlay {
                    lines: etf,
                    color: etf_color,
                    label: format!("ETF boundary ({label})"),
                    markers: true,
                },
                Overlay {
                    lines: anti,
                    color: anti_color,
                    label: format!("antipodal boundary ({label})"),
                    markers: true,
                },
            ]
        }
    }
}

/// The y-axis title of a map: `t (= b)` for the tied setting, `t (b = ...)` otherwise, or the
/// InfoNCE temperature.
pub(crate) fn t_title(bias: Option<BiasMode>, infonce: bool) -> String {
    if infonce {
        return "temperature τ".into();
    }
    match bias {
        Some(BiasMode::Tied) => "t (= b)".into(),
        Some(b) => format!("t ({})", b.label()),
        None => "t".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory::{antipodal_threshold_tied, etf_threshold_tied};

    #[test]
    fn real_thresholds_match_the_theory_at_integers() {
        for n in 4..60usize {
            let e = etf_threshold_tied(n).unwrap();
            assert!((etf_threshold_tied_real(n as f64) - e).abs() < 1e-12, "{n}");
            if let Some(a) = antipodal_threshold_tied(n) {
                assert!(
                    (antipodal_threshold_tied_real(n as f64) - a).abs() < 1e-12,
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn general_boundaries_join_across_n() {
        let o = boundary_overlays(
            BiasMode::Relative(1.0),
            (4.0, 20.0),
            (0.05, 5.0),
            ON_VIRIDIS,
        );
        assert_eq!(o.len(), 2);
        assert!(o[0].lines.iter().map(Vec::len).sum::<usize>() > 5);
    }
}
