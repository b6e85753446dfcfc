//! Line charts: one or more panels side by side, each with lines, points with error bars, and a
//! boxed legend placed in the emptiest corner.

use super::axes::{self, Axes, Entry, Frame, Rect, TITLE_FONT};
use super::canvas::{Dash, Figure, Painter};
use super::text::{HAlign, VAlign};
use crate::error::Result;
use plotters::prelude::DrawingBackend;

/// A qualitative palette (matplotlib's `tab10`).
pub(crate) const PALETTE: [(u8, u8, u8); 10] = [
    (0x1f, 0x77, 0xb4),
    (0xff, 0x7f, 0x0e),
    (0x2c, 0xa0, 0x2c),
    (0xd6, 0x27, 0x28),
    (0x94, 0x67, 0xbd),
    (0x8c, 0x56, 0x4b),
    (0xe3, 0x77, 0xc2),
    (0x7f, 0x7f, 0x7f),
    (0xbc, 0xbd, 0x22),
    (0x17, 0xbe, 0xcf),
];

/// A marker position `(x, y)` with an optional vertical error bar `(y_lo, y_hi)`.
pub(crate) type ErrPoint = (f64, f64, Option<(f64, f64)>);

/// Something drawn in a line chart.
#[derive(Clone, Debug)]
pub(crate) enum Series {
    /// A polyline in data coordinates (non-finite points break it).
    Line {
        data: Vec<(f64, f64)>,
        color: (u8, u8, u8),
        width: f64,
        dash: Dash,
    },
    /// Markers at `(x, y)` with an optional vertical error bar `(y_lo, y_hi)`.
    Points {
        data: Vec<ErrPoint>,
        color: (u8, u8, u8),
        filled: bool,
        radius: f64,
    },
}

/// One line-chart panel.
pub(crate) struct LinePanel {
    pub title: String,
    pub x_title: String,
    pub y_title: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub series: Vec<Series>,
    pub legend: Vec<Entry>,
}

/// Line-chart panels side by side, each `panel_size` pixels.
pub(crate) struct LineFigure {
    pub panels: Vec<LinePanel>,
    pub panel_size: (f64, f64),
}

impl Figure for LineFigure {
    fn size(&self) -> (u32, u32) {
        (
            (self.panel_size.0 * self.panels.len() as f64) as u32,
            self.panel_size.1 as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, p: &mut Painter<DB>) -> Result<()> {
        let (pw, ph) = self.panel_size;
        for (i, panel) in self.panels.iter().enumerate() {
            let x = pw * i as f64;
            let rect = Rect {
                x0: x + 92.0,
                y0: 56.0,
                x1: x + pw - 28.0,
                y1: ph - 70.0,
            };
            let ax = Axes {
                rect,
                x: panel.x_range,
                y: panel.y_range,
            };
            axes::draw_frame(
                p,
                &ax,
                &Frame {
                    x_title: &panel.x_title,
                    y_title: &panel.y_title,
                    x_ticks: None,
                    y_ticks: None,
                    grid: true,
                },
            )?;
            let mut occupied: Vec<(f64, f64)> = Vec::new();
            for s in &panel.series {
                match s {
                    Series::Line {
                        data,
                        color,
                        width,
                        dash,
                    } => {
                        for piece in ax.clip(data) {
                            occupied.extend(densify(&piece, 4.0));
                            p.polyline(&piece, *color, *width, *dash)?;
                        }
                    }
                    Series::Points {
                        data,
                        color,
                        filled,
                        radius,
                    } => {
                        for &(x, y, err) in data {
                            if let Some((lo, hi)) = err {
                                for piece in ax.clip(&[(x, lo), (x, hi)]) {
                                    occupied.extend(densify(&piece, 4.0));
                                    p.polyline(&piece, *color, 1.2, Dash::Solid)?;
                                }
                                for yy in [lo, hi] {
                                    if ax.inside(x, yy) {
                                        let c = ax.px(x, yy);
                                        p.polyline(
                                            &[(c.0 - 3.5, c.1), (c.0 + 3.5, c.1)],
                                            *color,
                                            1.2,
                                            Dash::Solid,
                                        )?;
                                    }
                                }
                            }
                            if ax.inside(x, y) {
                                let c = ax.px(x, y);
                                occupied.push(c);
                                if !*filled {
                                    p.circle(c, *radius, (255, 255, 255), true)?;
                                }
                                p.circle(c, *radius, *color, *filled)?;
                            }
                        }
                    }
                }
            }
            axes::frame_box(p, rect)?;
            p.text(
                &panel.title,
                ((rect.x0 + rect.x1) / 2.0, 28.0),
                TITLE_FONT,
                HAlign::Center,
                VAlign::Middle,
                false,
            );
            if !panel.legend.is_empty() {
                let size = axes::legend_size(&panel.legend);
                let corner = axes::best_legend_corner(rect, size, &occupied);
                axes::legend_box(p, &panel.legend, corner)?;
            }
        }
        Ok(())
    }
}

/// Points along a pixel polyline at most `step` apart (for the legend placement).
fn densify(pts: &[(f64, f64)], step: f64) -> Vec<(f64, f64)> {
    let mut out = vec![pts[0]];
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let k = (len / step).ceil().max(1.0) as usize;
        for j in 1..=k {
            let f = j as f64 / k as f64;
            out.push((a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f));
        }
    }
    out
}

/// A data range padded by `frac` of its span on both sides (a unit span around a constant).
pub(crate) fn padded(values: impl Iterator<Item = f64>, frac: f64) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = (hi - lo) * frac;
    (lo - pad, hi + pad)
}
