//! The drawing surface shared by every figure, and the PNG/SVG writers.
//!
//! A figure draws through a [`Painter`] in *figure pixels* (the size of the final image):
//! rectangles, polylines and circles go to a plotters `DrawingArea` (bitmap or SVG backend, with
//! plotters' own text and labels never used); every string is collected as a [`Label`] and drawn
//! last, on top, by [`super::text`] (PNG) or as a `<text>` element (SVG).
//!
//! PNG figures are rendered at [`SUPERSAMPLE`] times the size and box-filtered down, which
//! anti-aliases lines, markers and cell edges. Output is written atomically: to a temporary file
//! in the destination directory, renamed over the destination only once complete.

use super::text::{self, HAlign, Label, VAlign};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Linear supersampling factor of the PNG path.
pub(crate) const SUPERSAMPLE: u32 = 2;

/// The output format, from the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// `.png` or `.svg` (case-insensitive); anything else is [`Error::Config`] naming it.
    pub(crate) fn from_path(path: &Path) -> Result<ImageFormat> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(ImageFormat::Png),
            Some("svg") => Ok(ImageFormat::Svg),
            Some(other) => Err(Error::Config(format!(
                "cannot write '{}': unknown figure extension '.{other}' (use .png or .svg)",
                path.display()
            ))),
            None => Err(Error::Config(format!(
                "cannot write '{}': the figure file needs an extension, .png or .svg",
                path.display()
            ))),
        }
    }
}

/// Line style of a polyline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Dash {
    Solid,
    /// On and off lengths in figure pixels.
    Dashed(f64, f64),
}

/// What a figure draws with. Coordinates are figure pixels (floating point); `k` converts them to
/// backend pixels.
pub(crate) struct Painter<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    k: f64,
    labels: Vec<Label>,
}

/// Maps a plotters drawing error to the library's error type.
fn drawing_error<E: std::fmt::Display>(e: E) -> Error {
    Error::Config(format!("drawing the figure failed: {e}"))
}

/// An opaque RGB colour.
pub(crate) fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

impl<DB: DrawingBackend> Painter<'_, DB> {
    fn px(&self, v: f64) -> i32 {
        (v * self.k).round() as i32
    }

    fn pt(&self, p: (f64, f64)) -> (i32, i32) {
        (self.px(p.0), self.px(p.1))
    }

    /// A filled rectangle between two corners.
    pub(crate) fn fill_rect(
        &self,
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        color: (u8, u8, u8),
    ) -> Result<()> {
        let (a, b) = (
            self.pt((x0.min(x1), y0.min(y1))),
            self.pt((x0.max(x1), y0.max(y1))),
        );
        if a.0 == b.0 || a.1 == b.1 {
            return Ok(());
        }
        self.area
            .draw(&Rectangle::new([a, b], rgb(color).filled()))
            .map_err(drawing_error)
    }

    /// A polyline of the given width (figure pixels), solid or dashed.
    pub(crate) fn polyline(
        &self,
        pts: &[(f64, f64)],
        color: (u8, u8, u8),
        width: f64,
        dash: Dash,
    ) -> Result<()> {
        if pts.len() < 2 {
            return Ok(());
        }
        let axis_aligned = pts.windows(2).all(|w| w[0].0 == w[1].0 || w[0].1 == w[1].1);
        if axis_aligned && dash == Dash::Solid {
            // Rectangles snapped to whole figure pixels: crisp axes, ticks and grid lines.
            let h = width / 2.0;
            let snap = |lo: f64, hi: f64| {
                let a = lo.round();
                (a, hi.round().max(a + 1.0))
            };
            for w in pts.windows(2) {
                let (a, b) = (w[0], w[1]);
                let (x0, x1) = snap(a.0.min(b.0) - h, a.0.max(b.0) + h);
                let (y0, y1) = snap(a.1.min(b.1) - h, a.1.max(b.1) + h);
                self.fill_rect(x0, y0, x1, y1, color)?;
            }
            return Ok(());
        }
        let sw = ((width * self.k).round() as u32).max(1);
        let style = ShapeStyle::from(rgb(color)).stroke_width(sw);
        let pieces = match dash {
            Dash::Solid => vec![pts.to_vec()],
            Dash::Dashed(on, off) => dash_pieces(pts, on, off),
        };
        for piece in pieces {
            let path: Vec<(i32, i32)> = piece.iter().map(|&p| self.pt(p)).collect();
            self.area
                .draw(&PathElement::new(path, style))
                .map_err(drawing_error)?;
        }
        Ok(())
    }

    /// A circle of radius `r` (figure pixels), filled or outlined.
    pub(crate) fn circle(
        &self,
        c: (f64, f64),
        r: f64,
        color: (u8, u8, u8),
        filled: bool,
    ) -> Result<()> {
        let rr = ((r * self.k).round() as i32).max(1);
        let style = if filled {
            rgb(color).filled()
        } else {
            ShapeStyle::from(rgb(color)).stroke_width((self.k.round() as u32).max(1))
        };
        self.area
            .draw(&Circle::new(self.pt(c), rr, style))
            .map_err(drawing_error)
    }

    /// Queues a label; labels are drawn after all shapes.
    pub(crate) fn text(
        &mut self,
        s: &str,
        (x, y): (f64, f64),
        size: f64,
        halign: HAlign,
        valign: VAlign,
        vertical: bool,
    ) {
        self.labels.push(Label {
            text: s.to_string(),
            x,
            y,
            size,
            halign,
            valign,
            vertical,
            color: (0, 0, 0),
        });
    }
}

/// Splits a polyline into dashes of length `on` separated by gaps `off` (measured along the line).
pub(crate) fn dash_pieces(pts: &[(f64, f64)], on: f64, off: f64) -> Vec<Vec<(f64, f64)>> {
    let mut pieces = Vec::new();
    let mut cur: Vec<(f64, f64)> = vec![pts[0]];
    let mut drawing = true;
    let mut left = on;
    for w in pts.windows(2) {
        let (mut a, b) = (w[0], w[1]);
        let mut seg = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        while seg > left {
            let f = left / seg;
            let m = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
            if drawing {
                cur.push(m);
                pieces.push(std::mem::take(&mut cur));
            } else {
                cur = vec![m];
            }
            drawing = !drawing;
            seg -= left;
            left = if drawing { on } else { off };
            a = m;
        }
        left -= seg;
        if drawing {
            cur.push(b);
        }
    }
    if drawing && cur.len() >= 2 {
        pieces.push(cur);
    }
    pieces
}

/// A figure: its size in pixels and how to draw it.
pub(crate) trait Figure {
    /// Width and height of the output image, in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws everything through the painter.
    fn draw<DB: DrawingBackend>(&self, p: &mut Painter<DB>) -> Result<()>;
}

/// A temporary path in the directory of `out`, ending with `out`'s extension.
fn temp_path(out: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "figure".into());
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = format!(
        ".{name}.tmp-{}-{}-{nanos}.{ext}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    out.with_file_name(tmp)
}

/// Renders `fig` and writes it to `out` atomically; the format follows the extension.
pub(crate) fn save(fig: &impl Figure, out: &Path) -> Result<()> {
    let format = ImageFormat::from_path(out)?;
    if out.file_name().is_none() {
        return Err(Error::Config(format!(
            "'{}' is not a file name",
            out.display()
        )));
    }
    let tmp = temp_path(out);
    let written = match format {
        ImageFormat::Png => write_png(fig, &tmp, out),
        ImageFormat::Svg => render_svg(fig).and_then(|s| {
            std::fs::write(&tmp, s).map_err(|source| Error::Io {
                path: out.to_path_buf(),
                source,
            })
        }),
    };
    let renamed = written.and_then(|()| {
        std::fs::rename(&tmp, out).map_err(|source| Error::Io {
            path: out.to_path_buf(),
            source,
        })
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Renders the figure as an SVG document.
pub(crate) fn render_svg(fig: &impl Figure) -> Result<String> {
    let (w, h) = fig.size();
    let mut svg = String::new();
    let labels = {
        let backend = SVGBackend::with_string(&mut svg, (w, h));
        let root = backend.into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let mut p = Painter {
            area: &root,
            k: 1.0,
            labels: Vec::new(),
        };
        fig.draw(&mut p)?;
        root.present().map_err(drawing_error)?;
        p.labels
    };
    let mut texts = String::from("<g font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\">\n");
    for l in &labels {
        texts.push_str(&text::svg_element(l));
        texts.push('\n');
    }
    texts.push_str("</g>\n");
    match svg.rfind("</svg>") {
        Some(i) => svg.insert_str(i, &texts),
        None => return Err(drawing_error("the SVG backend produced no closing tag")),
    }
    Ok(svg)
}

/// Renders the figure into an RGB buffer of its size (supersampled, then box-filtered down).
pub(crate) fn render_rgb(fig: &impl Figure) -> Result<Vec<u8>> {
    let (w, h) = fig.size();
    let s = SUPERSAMPLE;
    let (bw, bh) = (w * s, h * s);
    let mut big = vec![255u8; (3 * bw * bh) as usize];
    let labels = {
        let root = BitMapBackend::with_buffer(&mut big, (bw, bh)).into_drawing_area();
        let mut p = Painter {
            area: &root,
            k: f64::from(s),
            labels: Vec::new(),
        };
        fig.draw(&mut p)?;
        root.present().map_err(drawing_error)?;
        p.labels
    };
    for l in &labels {
        text::draw_rgb(&mut big, bw, bh, l, f64::from(s));
    }
    let mut small = vec![0u8; (3 * w * h) as usize];
    let n = f64::from(s * s);
    for y in 0..h as usize {
        for x in 0..w as usize {
            for c in 0..3 {
                let mut acc = 0u32;
                for dy in 0..s as usize {
                    let row = (y * s as usize + dy) * bw as usize;
                    for dx in 0..s as usize {
                        acc += u32::from(big[3 * (row + x * s as usize + dx) + c]);
                    }
                }
                small[3 * (y * w as usize + x) + c] = (f64::from(acc) / n).round() as u8;
            }
        }
    }
    Ok(small)
}

/// Renders the figure and encodes it as PNG at `tmp` (errors are reported against `out`).
fn write_png(fig: &impl Figure, tmp: &Path, out: &Path) -> Result<()> {
    let (w, h) = fig.size();
    let small = render_rgb(fig)?;
    let io_err = |e: String| Error::Io {
        path: out.to_path_buf(),
        source: std::io::Error::other(e),
    };
    // Open the file first, so that a directory that does not exist or cannot be written is told
    // as a plain I/O error (plotters would wrap it as `ImageError(IoError(..))`).
    std::fs::File::create(tmp).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut backend = BitMapBackend::new(tmp, (w, h));
    backend
        .blit_bitmap((0, 0), (w, h), &small)
        .map_err(|e| io_err(e.to_string()))?;
    backend.present().map_err(|e| io_err(e.to_string()))?;
    // The backend may only report a failed write on drop; make sure the file is there.
    drop(backend);
    match std::fs::metadata(tmp) {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => Err(io_err("the PNG encoder wrote nothing".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        assert_eq!(
            ImageFormat::from_path(Path::new("a/b.png")).unwrap(),
            ImageFormat::Png
        );
        assert_eq!(
            ImageFormat::from_path(Path::new("b.SVG")).unwrap(),
            ImageFormat::Svg
        );
        let e = ImageFormat::from_path(Path::new("b.jpg"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(".jpg"), "{e}");
        assert!(ImageFormat::from_path(Path::new("b")).is_err());
    }

    #[test]
    fn dashes_cover_half_the_length() {
        let pieces = dash_pieces(&[(0.0, 0.0), (50.0, 0.0), (100.0, 0.0)], 5.0, 5.0);
        assert_eq!(pieces.len(), 10);
        let total: f64 = pieces
            .iter()
            .map(|p| p.windows(2).map(|w| (w[1].0 - w[0].0).abs()).sum::<f64>())
            .sum();
        assert!((total - 50.0).abs() < 1e-9);
    }

    #[test]
    fn temp_path_is_a_hidden_sibling_with_the_same_extension() {
        let t = temp_path(Path::new("/x/y/fig.png"));
        assert_eq!(t.parent(), Some(Path::new("/x/y")));
        assert!(t
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".fig.png.tmp-"));
        assert_eq!(t.extension().unwrap(), "png");
    }
}
