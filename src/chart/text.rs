//! Text drawn glyph by glyph with the bundled DejaVu Sans font.
//!
//! plotters' `ab_glyph` text path leaves out each glyph's left bearing, which makes letter
//! spacing uneven. This module lays text out itself with the `ab_glyph` crate:
//! every glyph is placed at the running pen position (advance widths plus kerning), outlined with
//! its own bearing, rasterised to coverage and blended into an RGB buffer. The same metrics give
//! string widths for the layout and the baseline offsets used by the SVG `<text>` elements, so
//! both outputs place text identically.
//!
//! A font size is the em size in pixels, the meaning of SVG's `font-size`.

use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};
use std::sync::OnceLock;

/// DejaVu Sans (licence in `assets/fonts/LICENSE-DejaVu.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The bundled font, parsed once.
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(FONT_BYTES).expect("the bundled DejaVu Sans parses")
    })
}

/// Horizontal alignment of a label relative to its anchor, along the reading direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HAlign {
    /// The text starts at the anchor.
    Left,
    /// The text is centred on the anchor.
    Center,
    /// The text ends at the anchor.
    Right,
}

/// Vertical alignment of a label relative to its anchor, across the reading direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VAlign {
    /// The anchor is on the cap height (top of capitals and digits).
    Top,
    /// The anchor is half-way up the capitals.
    Middle,
    /// The anchor is on the descender line.
    Bottom,
}

/// One string to draw: position (in figure pixels), size, alignment, direction and colour.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Label {
    /// The text (any Unicode the font covers; missing glyphs show as the font's box).
    pub text: String,
    /// Anchor x in figure pixels.
    pub x: f64,
    /// Anchor y in figure pixels (downwards).
    pub y: f64,
    /// Font size (em) in figure pixels.
    pub size: f64,
    /// Alignment along the text.
    pub halign: HAlign,
    /// Alignment across the text.
    pub valign: VAlign,
    /// `true`: rotated 90 degrees counter-clockwise (reads bottom to top, as a y-axis title).
    pub vertical: bool,
    /// Colour, RGB.
    pub color: (u8, u8, u8),
}

/// Pixel scale for an em size: ab_glyph's `PxScale` is the ascent-to-descent height.
fn px_scale(size: f64) -> PxScale {
    let f = font();
    let upem = f.units_per_em().unwrap_or(2048.0);
    PxScale::from((size as f32) * f.height_unscaled() / upem)
}

/// Font metrics at em size 1: (cap height, descent as a positive number). (The outline bounds of
/// ab_glyph may come with y flipped; the cap height is the larger absolute extent of `H`.)
fn em_metrics() -> (f64, f64) {
    let f = font();
    let upem = f64::from(f.units_per_em().unwrap_or(2048.0));
    let cap = f
        .outline(f.glyph_id('H'))
        .map(|o| f64::from(o.bounds.min.y.abs().max(o.bounds.max.y.abs())))
        .unwrap_or(0.73 * upem);
    (cap / upem, -f64::from(f.descent_unscaled()) / upem)
}

/// Offset from the anchor to the baseline, across the text (positive = down in text frame).
pub(crate) fn baseline_offset(valign: VAlign, size: f64) -> f64 {
    let (cap, descent) = em_metrics();
    match valign {
        VAlign::Top => cap * size,
        VAlign::Middle => 0.5 * cap * size,
        VAlign::Bottom => -descent * size,
    }
}

/// Glyph ids and pen positions (along the baseline, from 0) of a string; returns them and the
/// total advance width.
fn layout(text: &str, size: f64) -> (Vec<(GlyphId, f32)>, f32) {
    let f = font();
    let scaled = f.as_scaled(px_scale(size));
    let mut pen = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        glyphs.push((id, pen));
        pen += scaled.h_advance(id);
        prev = Some(id);
    }
    (glyphs, pen)
}

/// The advance width of `text` at em size `size`, in pixels (advances plus kerning).
pub(crate) fn width(text: &str, size: f64) -> f64 {
    f64::from(layout(text, size).1)
}

/// Offset from the anchor to the start of the text, along the text.
fn start_offset(halign: HAlign, w: f64) -> f64 {
    match halign {
        HAlign::Left => 0.0,
        HAlign::Center => -0.5 * w,
        HAlign::Right => -w,
    }
}

/// Draws `label` into an RGB buffer of `w x h` pixels, all coordinates multiplied by `scale`
/// (the supersampling factor of the PNG path). Coverage is alpha-blended over what is there.
pub(crate) fn draw_rgb(buf: &mut [u8], w: u32, h: u32, label: &Label, scale: f64) {
    let size = label.size * scale;
    let (glyphs, total) = layout(&label.text, size);
    let u0 = start_offset(label.halign, f64::from(total));
    let v0 = baseline_offset(label.valign, size);
    let (ax, ay) = (label.x * scale, label.y * scale);
    let f = font();
    let px = px_scale(size);
    let (cr, cg, cb) = label.color;
    let mut blend = |x: i64, y: i64, cov: f32| {
        if x < 0 || y < 0 || x >= i64::from(w) || y >= i64::from(h) {
            return;
        }
        let a = cov.clamp(0.0, 1.0);
        if a <= 0.0 {
            return;
        }
        let i = 3 * (y as usize * w as usize + x as usize);
        for (k, c) in [cr, cg, cb].into_iter().enumerate() {
            let d = f32::from(buf[i + k]);
            buf[i + k] = (d + (f32::from(c) - d) * a).round() as u8;
        }
    };
    if label.vertical {
        // Rasterise in the text frame (u along, v across) around a whole-pixel anchor, then map
        // u -> up, v -> right: image = (ax + v, ay - u).
        let (bx, by) = (ax.round() as i64, ay.round() as i64);
        for &(id, pen) in &glyphs {
            let g = id.with_scale_and_position(px, point((u0 as f32) + pen, v0 as f32));
            if let Some(o) = f.outline_glyph(g) {
                let b = o.px_bounds();
                let (mx, my) = (b.min.x as i64, b.min.y as i64);
                o.draw(|gx, gy, cov| {
                    let (pu, pv) = (mx + i64::from(gx), my + i64::from(gy));
                    blend(bx + pv, by - pu - 1, cov);
                });
            }
        }
    } else {
        let (x0, y0) = ((ax + u0) as f32, (ay + v0) as f32);
        for &(id, pen) in &glyphs {
            let g = id.with_scale_and_position(px, point(x0 + pen, y0));
            if let Some(o) = f.outline_glyph(g) {
                let b = o.px_bounds();
                let (mx, my) = (b.min.x as i64, b.min.y as i64);
                o.draw(|gx, gy, cov| blend(mx + i64::from(gx), my + i64::from(gy), cov));
            }
        }
    }
}

/// Escapes the XML special characters of a text node or attribute.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// The SVG `<text>` element of `label`: the viewer lays the glyphs out (font-family
/// `DejaVu Sans, sans-serif`); the baseline offset comes from the bundled font's metrics.
pub(crate) fn svg_element(label: &Label) -> String {
    let anchor = match label.halign {
        HAlign::Left => "start",
        HAlign::Center => "middle",
        HAlign::Right => "end",
    };
    let v = baseline_offset(label.valign, label.size);
    let (r, g, b) = label.color;
    let common = format!(
        "font-size=\"{:.2}\" text-anchor=\"{anchor}\" fill=\"#{r:02x}{g:02x}{b:02x}\"",
        label.size
    );
    let text = xml_escape(&label.text);
    if label.vertical {
        format!(
            "<text x=\"0\" y=\"{v:.2}\" transform=\"translate({:.2} {:.2}) rotate(-90)\" {common}>{text}</text>",
            label.x, label.y
        )
    } else {
        format!(
            "<text x=\"{:.2}\" y=\"{:.2}\" {common}>{text}</text>",
            label.x,
            label.y + v
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(text: &str, vertical: bool) -> Label {
        Label {
            text: text.to_string(),
            x: 50.0,
            y: 50.0,
            size: 20.0,
            halign: HAlign::Center,
            valign: VAlign::Middle,
            vertical,
            color: (0, 0, 0),
        }
    }

    /// Bounding box of the non-white pixels: (xmin, ymin, xmax, ymax).
    fn ink(buf: &[u8], w: usize) -> (usize, usize, usize, usize) {
        let mut bb = (usize::MAX, usize::MAX, 0, 0);
        for (i, px) in buf.chunks(3).enumerate() {
            if px[0] < 200 {
                let (x, y) = (i % w, i / w);
                bb = (bb.0.min(x), bb.1.min(y), bb.2.max(x), bb.3.max(y));
            }
        }
        bb
    }

    #[test]
    fn width_adds_up_and_scales() {
        let a = width("a", 10.0);
        assert!(a > 3.0 && a < 10.0, "{a}");
        assert!((width("aa", 10.0) - 2.0 * a).abs() < 1e-3);
        assert!((width("abc", 20.0) - 2.0 * width("abc", 10.0)).abs() < 1e-3);
        assert_eq!(width("", 10.0), 0.0);
    }

    #[test]
    fn horizontal_text_is_centred_on_its_anchor() {
        let (w, h) = (100usize, 100usize);
        let mut buf = vec![255u8; 3 * w * h];
        draw_rgb(&mut buf, w as u32, h as u32, &label("HHH", false), 1.0);
        let (x0, y0, x1, y1) = ink(&buf, w);
        assert!(x1 > x0 && y1 > y0);
        let tw = width("HHH", 20.0);
        assert!(((x1 - x0) as f64 - tw).abs() < 6.0);
        assert!((((x0 + x1) as f64) / 2.0 - 50.0).abs() < 2.0);
        assert!((((y0 + y1) as f64) / 2.0 - 50.0).abs() < 2.0);
    }

    #[test]
    fn vertical_text_is_rotated() {
        let (w, h) = (100usize, 100usize);
        let mut buf = vec![255u8; 3 * w * h];
        draw_rgb(&mut buf, w as u32, h as u32, &label("HHHH", true), 1.0);
        let (x0, y0, x1, y1) = ink(&buf, w);
        assert!(y1 - y0 > 2 * (x1 - x0), "{x0} {y0} {x1} {y1}");
        assert!((((y0 + y1) as f64) / 2.0 - 50.0).abs() < 2.0);
    }

    #[test]
    fn svg_text_is_escaped() {
        let e = svg_element(&label("a<b & c", false));
        assert!(e.contains("a&lt;b &amp; c"), "{e}");
        assert!(e.starts_with("<text"));
    }
}
