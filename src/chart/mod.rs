//! The chart kit: plain numbers, colours and labels in, PNG or SVG out. It knows no domain type
//! (no loss, no theory, no results table); the figures of [`crate::plot`] compute their series
//! from the library and hand them here.
//!
//! | module | what it draws |
//! |---|---|
//! | `canvas` | the drawing surface (`Painter`: rectangles, polylines, circles, labels in figure pixels), the `Figure` trait, the PNG (supersampled) and SVG writers, atomic output (`save`) |
//! | `text` | text with the bundled DejaVu Sans: glyph by glyph in PNG, `<text>` elements in SVG |
//! | `axes` | the data-to-pixel map, ticks, frames and titles, clipping, colour bars and legends |
//! | `colormap` | viridis and a blue-white-red diverging map |
//! | `lines` | line charts: panels of lines and points with error bars, a boxed legend |
//! | `heatmap` | heatmaps: panels of a grid of coloured cells with curves on top, one colour bar |

pub(crate) mod axes;
pub(crate) mod canvas;
pub(crate) mod colormap;
pub(crate) mod heatmap;
pub(crate) mod lines;
pub(crate) mod text;

#[cfg(test)]
mod tests {
    /// The chart kit knows no domain type: outside its tests, its files name no module of the
    /// crate but `chart` itself and `error`.
    #[test]
    fn the_chart_kit_imports_only_error() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/chart");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for line in code.lines() {
                let line = line.split("//").next().unwrap();
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    assert!(
                        rest.starts_with("error::"),
                        "{}: imports crate::{rest}",
                        path.display()
                    );
                }
            }
            seen += 1;
        }
        assert!(seen >= 6, "{seen} files in {}", dir.display());
    }
}
