//! Axes: the data-to-pixel map, tick positions, the frame with ticks and titles, clipping,
//! the colour bar and the legend.

use super::canvas::{Dash, Painter};
use super::colormap::ColorMap;
use super::text::{self, HAlign, VAlign};
use crate::error::Result;
use plotters::prelude::DrawingBackend;

/// Font size of tick labels (figure pixels).
pub(crate) const TICK_FONT: f64 = 14.0;
/// Font size of axis titles.
pub(crate) const AXIS_FONT: f64 = 16.0;
/// Font size of panel titles.
pub(crate) const TITLE_FONT: f64 = 17.0;
/// Font size of legend entries.
pub(crate) const LEGEND_FONT: f64 = 13.5;
/// Length of the tick marks.
const TICK_LEN: f64 = 5.0;
/// Gap between tick marks and their labels.
const TICK_GAP: f64 = 4.0;
/// Black.
pub(crate) const BLACK: (u8, u8, u8) = (0, 0, 0);

/// A rectangle in figure pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    fn contains(&self, p: (f64, f64)) -> bool {
        p.0 >= self.x0 && p.0 <= self.x1 && p.1 >= self.y0 && p.1 <= self.y1
    }
}

/// A plot area with a linear map from data `(x, y)` to figure pixels (y up).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Axes {
    pub rect: Rect,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

impl Axes {
    /// Figure-pixel position of the data point `(x, y)`.
    pub(crate) fn px(&self, x: f64, y: f64) -> (f64, f64) {
        let r = self.rect;
        (
            r.x0 + (x - self.x.0) / (self.x.1 - self.x.0) * (r.x1 - r.x0),
            r.y1 - (y - self.y.0) / (self.y.1 - self.y.0) * (r.y1 - r.y0),
        )
    }

    /// The data polyline mapped to pixels and clipped to the plot area: zero or more pieces.
    /// Non-finite points break the line.
    pub(crate) fn clip(&self, data: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
        let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut cur: Vec<(f64, f64)> = Vec::new();
        for w in data.windows(2) {
            let (a, b) = (w[0], w[1]);
            let ok = a.0.is_finite() && a.1.is_finite() && b.0.is_finite() && b.1.is_finite();
            let seg = if ok {
                clip_segment(self.px(a.0, a.1), self.px(b.0, b.1), self.rect)
            } else {
                None
            };
            match seg {
                Some((p, q)) => {
                    let joined = cur
                        .last()
                        .is_some_and(|l| (l.0 - p.0).abs() < 1e-9 && (l.1 - p.1).abs() < 1e-9);
                    if !joined {
                        if cur.len() >= 2 {
                            pieces.push(std::mem::take(&mut cur));
                        }
                        cur = vec![p];
                    }
                    cur.push(q);
                }
                None => {
                    if cur.len() >= 2 {
                        pieces.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                }
            }
        }
        if cur.len() >= 2 {
            pieces.push(cur);
        }
        pieces
    }

    /// Draws a data polyline, clipped to the plot area.
    pub(crate) fn line<DB: DrawingBackend>(
        &self,
        p: &Painter<DB>,
        data: &[(f64, f64)],
        color: (u8, u8, u8),
        width: f64,
        dash: Dash,
    ) -> Result<()> {
        for piece in self.clip(data) {
            p.polyline(&piece, color, width, dash)?;
        }
        Ok(())
    }

    /// Whether the data point lies inside the plot area.
    pub(crate) fn inside(&self, x: f64, y: f64) -> bool {
        x.is_finite() && y.is_finite() && self.rect.contains(self.px(x, y))
    }
}

/// Liang-Barsky clipping of the segment `a-b` to `r`.
fn clip_segment(a: (f64, f64), b: (f64, f64), r: Rect) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - r.x0),
        (dx, r.x1 - a.0),
        (-dy, a.1 - r.y0),
        (dy, r.y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    Some((
        (a.0 + t0 * dx, a.1 + t0 * dy),
        (a.0 + t1 * dx, a.1 + t1 * dy),
    ))
}

/// "Nice" tick positions (multiples of 1, 2 or 5 times a power of ten) inside `[lo, hi]`, about
/// `target` of them; returns the ticks and the step.
pub(crate) fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    ticks_with(lo, hi, target, false)
}

/// Like [`nice_ticks`] for an integer quantity (a batch size): whole-number steps only.
pub(crate) fn integer_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    ticks_with(lo, hi, target, true).0
}

fn ticks_with(lo: f64, hi: f64, target: usize, integer: bool) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (vec![lo], 1.0);
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .filter(|s| !integer || (*s >= 1.0 && (s - s.round()).abs() < 1e-9))
        .find(|s| span / s <= target as f64 + 0.5)
        .unwrap_or(if integer {
            (10.0 * mag).max(1.0)
        } else {
            10.0 * mag
        });
    let first = (lo / step - 1e-9).ceil();
    let mut ticks = Vec::new();
    let mut k = first;
    while k * step <= hi + 1e-9 * step {
        let v = k * step;
        ticks.push(if v.abs() < 1e-12 * step { 0.0 } else { v });
        k += 1.0;
    }
    (ticks, step)
}

/// Ticks that include both ends when a round step (1, 2, 2.5, 4 or 5 times a power of ten) divides `[lo, hi]` into 3 to 8 intervals
/// (the count nearest `target`, fewer on ties); otherwise [`nice_ticks`].
pub(crate) fn end_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return nice_ticks(lo, hi, target);
    }
    let is_int = |x: f64| (x - x.round()).abs() < 1e-9;
    let mag = 10f64.powf((span / 8.0).log10().floor());
    let mut best: Option<(usize, f64)> = None;
    for m in [1.0, 2.0, 2.5, 4.0, 5.0, 10.0, 20.0, 25.0, 40.0, 50.0] {
        let step = m * mag;
        let count = span / step;
        if !(is_int(count) && is_int(lo / step)) {
            continue;
        }
        let count = count.round() as usize;
        if !(3..=8).contains(&count) {
            continue;
        }
        let better =
            best.is_none_or(|(c, _)| (count.abs_diff(target), count) < (c.abs_diff(target), c));
        if better {
            best = Some((count, step));
        }
    }
    match best {
        Some((count, step)) => (
            (0..=count)
                .map(|k| lo + step * k as f64)
                .map(|v| if v.abs() < 1e-9 * step { 0.0 } else { v })
                .collect(),
            step,
        ),
        None => nice_ticks(lo, hi, target),
    }
}

/// A tick label: as many decimals as the step needs, with a true minus sign.
/// Steps below this (or at and above [`SCI_ABOVE`]) label their ticks in scientific notation.
const SCI_BELOW: f64 = 1e-3;
/// See [`SCI_BELOW`].
const SCI_ABOVE: f64 = 1e6;

/// The decimals `x` needs (at most 6).
fn decimals_of(x: f64) -> usize {
    let mut decimals = 0usize;
    while decimals < 6
        && ((x * 10f64.powi(decimals as i32)).round() - x * 10f64.powi(decimals as i32)).abs()
            > 1e-6
    {
        decimals += 1;
    }
    decimals
}

/// A tick label: as many decimals as the step needs (scientific notation for steps below
/// `1e-3` or from `1e6`, e.g. `2.5e−7`), with a true minus sign.
pub(crate) fn format_tick(v: f64, step: f64) -> String {
    let step = step.abs();
    let s = if step > 0.0 && step.is_finite() && !(SCI_BELOW..SCI_ABOVE).contains(&step) {
        if v == 0.0 {
            "0".to_string()
        } else {
            let e_step = step.log10().floor();
            let mantissa_decimals = decimals_of(step / 10f64.powf(e_step));
            let e_v = v.abs().log10().floor();
            let p = (e_v - e_step).max(0.0) as usize + mantissa_decimals;
            format!("{v:.p$e}")
        }
    } else {
        let decimals = decimals_of(step);
        format!("{v:.decimals$}")
    };
    let s = if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    };
    s.replace('-', "\u{2212}")
}

/// What the frame of an [`Axes`] shows.
pub(crate) struct Frame<'a> {
    pub x_title: &'a str,
    pub y_title: &'a str,
    /// Tick positions along x; `None`: automatic.
    pub x_ticks: Option<Vec<f64>>,
    /// Tick positions along y; `None`: automatic.
    pub y_ticks: Option<Vec<f64>>,
    /// Light grid lines at the ticks (for line charts).
    pub grid: bool,
}

/// Draws the frame, outward ticks with labels, and the axis titles. Returns the x position of
/// the left edge of the y-axis title (for placing things further left).
pub(crate) fn draw_frame<DB: DrawingBackend>(
    p: &mut Painter<DB>,
    ax: &Axes,
    f: &Frame,
) -> Result<f64> {
    let r = ax.rect;
    let (xt, xstep) = match &f.x_ticks {
        Some(t) => (t.clone(), step_of(t)),
        None => nice_ticks(
            ax.x.0,
            ax.x.1,
            ((r.x1 - r.x0) / 90.0).round().max(2.0) as usize,
        ),
    };
    let (yt, ystep) = match &f.y_ticks {
        Some(t) => (t.clone(), step_of(t)),
        None => nice_ticks(
            ax.y.0,
            ax.y.1,
            ((r.y1 - r.y0) / 70.0).round().max(2.0) as usize,
        ),
    };
    let xt: Vec<f64> = xt
        .into_iter()
        .filter(|&v| v >= ax.x.0 - 1e-9 && v <= ax.x.1 + 1e-9)
        .collect();
    let yt: Vec<f64> = yt
        .into_iter()
        .filter(|&v| v >= ax.y.0 - 1e-9 && v <= ax.y.1 + 1e-9)
        .collect();
    if f.grid {
        let light = (0xe4, 0xe4, 0xe4);
        for &v in &xt {
            let x = ax.px(v, ax.y.0).0;
            p.polyline(&[(x, r.y0), (x, r.y1)], light, 1.0, Dash::Solid)?;
        }
        for &v in &yt {
            let y = ax.px(ax.x.0, v).1;
            p.polyline(&[(r.x0, y), (r.x1, y)], light, 1.0, Dash::Solid)?;
        }
    }
    for &v in &xt {
        let x = ax.px(v, ax.y.0).0;
        p.polyline(&[(x, r.y1), (x, r.y1 + TICK_LEN)], BLACK, 1.0, Dash::Solid)?;
        p.text(
            &format_tick(v, xstep),
            (x, r.y1 + TICK_LEN + TICK_GAP),
            TICK_FONT,
            HAlign::Center,
            VAlign::Top,
            false,
        );
    }
    let mut widest: f64 = 0.0;
    for &v in &yt {
        let y = ax.px(ax.x.0, v).1;
        p.polyline(&[(r.x0 - TICK_LEN, y), (r.x0, y)], BLACK, 1.0, Dash::Solid)?;
        let s = format_tick(v, ystep);
        widest = widest.max(text::width(&s, TICK_FONT));
        p.text(
            &s,
            (r.x0 - TICK_LEN - TICK_GAP, y),
            TICK_FONT,
            HAlign::Right,
            VAlign::Middle,
            false,
        );
    }
    frame_box(p, r)?;
    let cap = text::baseline_offset(VAlign::Top, TICK_FONT);
    p.text(
        f.x_title,
        ((r.x0 + r.x1) / 2.0, r.y1 + TICK_LEN + TICK_GAP + cap + 12.0),
        AXIS_FONT,
        HAlign::Center,
        VAlign::Top,
        false,
    );
    let yx = r.x0 - TICK_LEN - TICK_GAP - widest - 10.0;
    p.text(
        f.y_title,
        (yx, (r.y0 + r.y1) / 2.0),
        AXIS_FONT,
        HAlign::Center,
        VAlign::Bottom,
        true,
    );
    Ok(yx - AXIS_FONT)
}

/// The black outline of a rectangle.
pub(crate) fn frame_box<DB: DrawingBackend>(p: &Painter<DB>, r: Rect) -> Result<()> {
    p.polyline(
        &[
            (r.x0, r.y0),
            (r.x1, r.y0),
            (r.x1, r.y1),
            (r.x0, r.y1),
            (r.x0, r.y0),
        ],
        BLACK,
        1.0,
        Dash::Solid,
    )
}

/// The spacing of explicit ticks (for their label precision).
fn step_of(t: &[f64]) -> f64 {
    t.windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min)
        .min(if t.len() < 2 { 1.0 } else { f64::INFINITY })
}

/// Draws a vertical colour bar in `r` for `cmap` over `[lo, hi]`, with ticks and a rotated label
/// on its right.
/// The ticks of a colour bar of height `h` over `(lo, hi)`, and their step.
fn colorbar_ticks(h: f64, (lo, hi): (f64, f64)) -> (Vec<f64>, f64) {
    end_ticks(lo, hi, (h / 70.0).round().max(2.0) as usize)
}

/// The width of the widest tick label of a colour bar of height `h` over `(lo, hi)`.
fn colorbar_tick_width(h: f64, range: (f64, f64)) -> f64 {
    let (ticks, step) = colorbar_ticks(h, range);
    ticks
        .iter()
        .map(|&v| text::width(&format_tick(v, step), TICK_FONT))
        .fold(0.0, f64::max)
}

/// The room a colour bar of height `h` over `range` needs right of the bar: ticks, their labels
/// (measured) and the rotated label, with a margin. Figures size themselves with it so that the
/// label is never cut off, however wide the tick labels.
pub(crate) fn colorbar_room(h: f64, range: (f64, f64)) -> f64 {
    TICK_LEN + TICK_GAP + colorbar_tick_width(h, range) + 10.0 + 1.4 * AXIS_FONT + 8.0
}

pub(crate) fn colorbar<DB: DrawingBackend>(
    p: &mut Painter<DB>,
    r: Rect,
    cmap: &ColorMap,
    (lo, hi): (f64, f64),
    label: &str,
) -> Result<()> {
    let steps = 256;
    for i in 0..steps {
        let ya = r.y1 - (r.y1 - r.y0) * i as f64 / steps as f64;
        let yb = r.y1 - (r.y1 - r.y0) * (i + 1) as f64 / steps as f64;
        let h = (i as f64 + 0.5) / steps as f64;
        p.fill_rect(r.x0, yb, r.x1, ya, cmap.at(h))?;
    }
    frame_box(p, r)?;
    let (ticks, step) = colorbar_ticks(r.y1 - r.y0, (lo, hi));
    let widest = colorbar_tick_width(r.y1 - r.y0, (lo, hi));
    for v in ticks {
        let y = r.y1 - (v - lo) / (hi - lo) * (r.y1 - r.y0);
        p.polyline(&[(r.x1, y), (r.x1 + TICK_LEN, y)], BLACK, 1.0, Dash::Solid)?;
        let s = format_tick(v, step);
        p.text(
            &s,
            (r.x1 + TICK_LEN + TICK_GAP, y),
            TICK_FONT,
            HAlign::Left,
            VAlign::Middle,
            false,
        );
    }
    let x = r.x1 + TICK_LEN + TICK_GAP + widest + 10.0;
    // Reading bottom to top with the glyph tops facing left: anchor the cap line at x.
    p.text(
        label,
        (x, (r.y0 + r.y1) / 2.0),
        AXIS_FONT,
        HAlign::Center,
        VAlign::Top,
        true,
    );
    Ok(())
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Swatch {
    /// A line sample.
    Line {
        color: (u8, u8, u8),
        width: f64,
        dash: Dash,
    },
    /// A marker, filled or open, optionally with a line through it.
    Marker {
        color: (u8, u8, u8),
        filled: bool,
        line: Option<Dash>,
    },
}

/// One legend entry.
pub(crate) struct Entry {
    pub swatch: Swatch,
    pub label: String,
}

/// Draws one swatch centred on `(x, y)`, `len` pixels wide.
fn draw_swatch<DB: DrawingBackend>(
    p: &Painter<DB>,
    s: Swatch,
    (x, y): (f64, f64),
    len: f64,
) -> Result<()> {
    match s {
        Swatch::Line { color, width, dash } => p.polyline(
            &[(x - len / 2.0, y), (x + len / 2.0, y)],
            color,
            width,
            dash,
        ),
        Swatch::Marker {
            color,
            filled,
            line,
        } => {
            if let Some(d) = line {
                p.polyline(&[(x - len / 2.0, y), (x + len / 2.0, y)], color, 1.5, d)?;
            }
            p.circle((x, y), 4.0, color, filled)
        }
    }
}

const SWATCH_LEN: f64 = 34.0;
const ROW_H: f64 = 21.0;

/// Width and height of a vertical legend box.
pub(crate) fn legend_size(entries: &[Entry]) -> (f64, f64) {
    let w = entries
        .iter()
        .map(|e| text::width(&e.label, LEGEND_FONT))
        .fold(0.0, f64::max);
    (w + SWATCH_LEN + 26.0, ROW_H * entries.len() as f64 + 10.0)
}

/// Draws a boxed vertical legend with its top-left corner at `(x, y)`.
pub(crate) fn legend_box<DB: DrawingBackend>(
    p: &mut Painter<DB>,
    entries: &[Entry],
    (x, y): (f64, f64),
) -> Result<()> {
    let (w, h) = legend_size(entries);
    p.fill_rect(x, y, x + w, y + h, (255, 255, 255))?;
    p.polyline(
        &[(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)],
        (0xa0, 0xa0, 0xa0),
        1.0,
        Dash::Solid,
    )?;
    for (i, e) in entries.iter().enumerate() {
        let cy = y + 5.0 + ROW_H * (i as f64 + 0.5);
        draw_swatch(p, e.swatch, (x + 8.0 + SWATCH_LEN / 2.0, cy), SWATCH_LEN)?;
        p.text(
            &e.label,
            (x + 16.0 + SWATCH_LEN, cy),
            LEGEND_FONT,
            HAlign::Left,
            VAlign::Middle,
            false,
        );
    }
    Ok(())
}

/// Draws a one-row legend without a box, centred on `(cx, cy)`.
pub(crate) fn legend_row<DB: DrawingBackend>(
    p: &mut Painter<DB>,
    entries: &[Entry],
    (cx, cy): (f64, f64),
) -> Result<()> {
    let gap = 26.0;
    let widths: Vec<f64> = entries
        .iter()
        .map(|e| SWATCH_LEN + 8.0 + text::width(&e.label, LEGEND_FONT))
        .collect();
    let total: f64 = widths.iter().sum::<f64>() + gap * (entries.len().saturating_sub(1)) as f64;
    let mut x = cx - total / 2.0;
    for (e, w) in entries.iter().zip(&widths) {
        draw_swatch(p, e.swatch, (x + SWATCH_LEN / 2.0, cy), SWATCH_LEN)?;
        p.text(
            &e.label,
            (x + SWATCH_LEN + 8.0, cy),
            LEGEND_FONT,
            HAlign::Left,
            VAlign::Middle,
            false,
        );
        x += w + gap;
    }
    Ok(())
}

/// The corner of the plot area (inset by 10 px) where a legend of size `(w, h)` covers the fewest
/// of the given pixel points; returns its top-left corner. Ties prefer top-right, top-left,
/// bottom-right, bottom-left.
pub(crate) fn best_legend_corner(r: Rect, (w, h): (f64, f64), points: &[(f64, f64)]) -> (f64, f64) {
    let m = 10.0;
    let corners = [
        (r.x1 - m - w, r.y0 + m),
        (r.x0 + m, r.y0 + m),
        (r.x1 - m - w, r.y1 - m - h),
        (r.x0 + m, r.y1 - m - h),
    ];
    let mut best = (usize::MAX, corners[0]);
    for c in corners {
        let bx = Rect {
            x0: c.0 - 4.0,
            y0: c.1 - 4.0,
            x1: c.0 + w + 4.0,
            y1: c.1 + h + 4.0,
        };
        let n = points.iter().filter(|&&q| bx.contains(q)).count();
        if n < best.0 {
            best = (n, c);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        let (t, s) = nice_ticks(3.5, 50.5, 5);
        assert_eq!(s, 10.0);
        assert_eq!(t, vec![10.0, 20.0, 30.0, 40.0, 50.0]);
        let (t, s) = nice_ticks(0.0, 1.0, 5);
        assert_eq!(s, 0.2);
        assert_eq!(t.len(), 6);
        assert_eq!(integer_ticks(3.5, 21.5, 8), vec![5.0, 10.0, 15.0, 20.0]);
        assert_eq!(integer_ticks(3.5, 6.5, 8), vec![4.0, 5.0, 6.0]);
        let (t, _) = nice_ticks(-1.0, 1.0, 4);
        assert_eq!(t, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
    }

    #[test]
    fn colour_bar_ticks_include_the_ends() {
        assert_eq!(end_ticks(-0.5, 0.5, 6).0, vec![-0.5, -0.25, 0.0, 0.25, 0.5]);
        assert_eq!(end_ticks(0.0, 1.0, 6).0.len(), 6);
        assert_eq!(end_ticks(-1.0, 1.0, 6).0, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(end_ticks(0.0, 3.0, 6).1, 0.5);
        let t = end_ticks(-1.2, 1.2, 6).0;
        let want = [-1.2, -0.8, -0.4, 0.0, 0.4, 0.8, 1.2];
        assert_eq!(t.len(), want.len());
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
    }

    #[test]
    fn tick_labels() {
        assert_eq!(format_tick(10.0, 10.0), "10");
        assert_eq!(format_tick(0.4, 0.2), "0.4");
        assert_eq!(format_tick(-0.5, 0.5), "\u{2212}0.5");
        assert_eq!(format_tick(-0.0, 0.5), "0.0");
        assert_eq!(format_tick(1.25, 0.25), "1.25");
        // Tiny steps (a difference map of errors near 1e-7) are labelled, not all "0".
        assert_eq!(format_tick(-3e-6, 1e-6), "\u{2212}3e\u{2212}6");
        assert_eq!(format_tick(7.5e-7, 2.5e-7), "7.5e\u{2212}7");
        assert_eq!(format_tick(1.2e-5, 1e-6), "1.2e\u{2212}5");
        assert_eq!(format_tick(0.0, 1e-6), "0");
        assert_eq!(format_tick(2e7, 5e6), "2.0e7"); // beside 2.5e7
    }

    #[test]
    fn clipping_keeps_the_inside() {
        let ax = Axes {
            rect: Rect {
                x0: 0.0,
                y0: 0.0,
                x1: 100.0,
                y1: 100.0,
            },
            x: (0.0, 1.0),
            y: (0.0, 1.0),
        };
        let pieces = ax.clip(&[(-1.0, 0.5), (0.5, 0.5), (0.5, 2.0)]);
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0], vec![(0.0, 50.0), (50.0, 50.0), (50.0, 0.0)]);
        assert!(ax.clip(&[(2.0, 2.0), (3.0, 3.0)]).is_empty());
        let broken = ax.clip(&[
            (0.1, 0.1),
            (0.2, 0.2),
            (f64::NAN, 0.3),
            (0.4, 0.4),
            (0.5, 0.5),
        ]);
        assert_eq!(broken.len(), 2);
    }
}
