//! Figures over the mini-batch size `B` (SPEC.md §8): the measured `(B, t)` phase diagram with
//! the weighted thresholds ([`batch_phase_map`]) and the spread of the negatives against `B`
//! for each batching strategy ([`batch_spread`]). The theory's own map is
//! [`super::batch_theory_map`]; the thresholds drawn on both come from one place
//! (`threshold_overlays`).

use super::boundaries::{t_title, ON_VIRIDIS};
use crate::batch::Batching;
use crate::chart::axes::{Entry, Swatch};
use crate::chart::canvas::{self, Dash};
use crate::chart::colormap::VIRIDIS;
use crate::chart::heatmap::{cell_edges, Grid, HeatmapFigure, Overlay, Panel};
use crate::chart::lines::{padded, LineFigure, LinePanel, Series, PALETTE};
use crate::error::{Error, Result};
use crate::theory::BiasMode;
use std::path::Path;

/// The weighted thresholds at `b = t` over a real batch size in `[b_lo, b_hi]` (clipped to
/// `2 <= B <= N`), `w = (B-1)/(N-1)`: the ETF threshold `t = ((N-1)/N) log(w (N-2) - 1)` where
/// `w (N-2) >= 2`, the antipodal threshold `t = (1/2) log(w (N-2)/2)` where `w (N-2) > 2`
/// (SPEC §8).
pub(crate) fn threshold_overlays(n: usize, b_lo: f64, b_hi: f64) -> Vec<Overlay> {
    let steps = 400;
    let (etf_color, anti_color) = ON_VIRIDIS;
    let nn = n as f64;
    let wn = |b: f64| (b - 1.0) / (nn - 1.0) * (nn - 2.0);
    let lo = b_lo.max(2.0);
    let b_hi = b_hi.min(nn);
    let curve = |f: &dyn Fn(f64) -> Option<f64>| -> Vec<(f64, f64)> {
        (0..=steps)
            .map(|k| lo + (b_hi - lo) * k as f64 / steps as f64)
            .filter_map(|b| f(b).map(|t| (b, t)))
            .collect()
    };
    let etf = curve(&|b| (wn(b) >= 2.0).then(|| ((nn - 1.0) / nn) * (wn(b) - 1.0).ln()));
    let anti = curve(&|b| (wn(b) > 2.0).then(|| 0.5 * (wn(b) / 2.0).ln()));
    vec![
        Overlay {
            lines: vec![etf],
            color: etf_color,
            label: "ETF threshold t = ((N−1)/N) log(w(N−2) − 1)".into(),
            markers: false,
        },
        Overlay {
            lines: vec![anti],
            color: anti_color,
            label: "antipodal threshold t = ½ log(w(N−2)/2)".into(),
            markers: false,
        },
    ]
}

/// One measured cell of a `(B, t)` phase diagram: batch size, `t` (`b = t`) and the mean
/// positive similarity `s_pos` of the trained embedding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchCell {
    /// Batch size `B`.
    pub batch: usize,
    /// Scale `t` (the bias is `b = t`).
    pub t: f64,
    /// The measured (or predicted) `s_pos`.
    pub s_pos: f64,
}

/// One panel of [`batch_phase_map`]: a title and its cells (a full `B x t` grid of its own).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPanel {
    /// Panel title.
    pub title: String,
    /// The cells; every pair of its distinct `B` and `t` values must be present once.
    pub cells: Vec<BatchCell>,
}

/// The `(B, t)` phase diagram at fixed `N` and `b = t` (SPEC §8): one heatmap panel of `s_pos`
/// per entry of `panels` (e.g. the theory on the experiment's grid, free embeddings trained
/// with `expected`, with `shuffled`), colour scale `[-1, 1]`, with the weighted ETF and
/// antipodal thresholds dashed on every panel (as on [`super::batch_theory_map`]).
///
/// ```
/// use ccem::plot::{batch_phase_map, BatchCell, BatchPanel};
/// use ccem::Optimum;
/// let mut cells = Vec::new();
/// for batch in [2, 4, 8] {
///     for t in [0.5, 2.0] {
///         let s_pos = Optimum::sigmoid_batch(8, batch, t, t)?.s_pos;
///         cells.push(BatchCell { batch, t, s_pos });
///     }
/// }
/// let dir = tempfile::tempdir().unwrap();
/// let out = dir.path().join("phase_batch.png");
/// batch_phase_map(&out, 8, &[BatchPanel { title: "theory".into(), cells }])?;
/// assert!(out.exists());
/// # Ok::<(), ccem::Error>(())
/// ```
///
/// # Errors
/// No panel; a panel with fewer than two values of `B` or `t`, a missing or repeated cell, a
/// batch size outside `2..=n`; an unknown extension; a failed write.
pub fn batch_phase_map(out: &Path, n: usize, panels: &[BatchPanel]) -> Result<()> {
    canvas::ImageFormat::from_path(out)?;
    if panels.is_empty() {
        return Err(Error::Config("a (B, t) phase diagram needs a panel".into()));
    }
    let mut drawn = Vec::new();
    for p in panels {
        let mut bs: Vec<usize> = p.cells.iter().map(|c| c.batch).collect();
        bs.sort_unstable();
        bs.dedup();
        let mut ts: Vec<f64> = p.cells.iter().map(|c| c.t).collect();
        ts.sort_by(f64::total_cmp);
        ts.dedup();
        if bs.len() < 2 || ts.len() < 2 {
            return Err(Error::Config(format!(
                "panel '{}' needs at least two values of B and of t",
                p.title
            )));
        }
        if bs[0] < 2 || bs[bs.len() - 1] > n {
            return Err(Error::Config(format!(
                "panel '{}': batch sizes must lie in 2..={n}",
                p.title
            )));
        }
        let mut values = vec![vec![f64::NAN; bs.len()]; ts.len()];
        let mut filled = 0;
        for c in &p.cells {
            let ib = bs.binary_search(&c.batch).expect("listed");
            let it = ts.iter().position(|&t| t == c.t).expect("listed");
            if values[it][ib].is_nan() {
                filled += 1;
            }
            values[it][ib] = c.s_pos;
        }
        if filled != bs.len() * ts.len() || p.cells.len() != filled {
            return Err(Error::Config(format!(
                "panel '{}' must hold each (B, t) of its grid exactly once",
                p.title
            )));
        }
        let xs: Vec<f64> = bs.iter().map(|&b| b as f64).collect();
        let xe: Vec<f64> = cell_edges(&xs)
            .into_iter()
            .map(|e| e.clamp(1.5, n as f64 + 0.5))
            .collect();
        drawn.push(Panel {
            x_values: None,
            x_clip: Some((1.5, n as f64 + 0.5)),
            title: p.title.clone(),
            x_title: "mini-batch size B".into(),
            y_title: t_title(Some(BiasMode::Tied), false),
            overlays: threshold_overlays(n, xe[0], xe[xe.len() - 1]),
            grid: Grid {
                xs: bs,
                ys: ts,
                values,
            },
        });
    }
    let fig = HeatmapFigure {
        panels: drawn,
        cmap: VIRIDIS,
        range: (-1.0, 1.0),
        cbar_label: format!("s_pos (N = {n}, b = t)"),
    };
    canvas::save(&fig, out)
}

/// One run of [`batch_spread`]: the strategy, the batch size and the spread of the negatives
/// of the trained embedding over all pairs and over the pairs that shared a batch (`NaN`: none,
/// as for `expected`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpreadPoint {
    /// The strategy (any at `B = N`, the full batch).
    pub batching: Batching,
    /// Batch size `B`.
    pub batch: usize,
    /// `s_neg_std`: standard deviation of `S_ij`, `i != j`, over all pairs.
    pub s_neg_std: f64,
    /// `s_neg_std_in_batch` (`NaN` where there is none).
    pub s_neg_std_in_batch: f64,
}

/// The spread of the negative similarities against the batch size (SPEC §8), one colour per
/// strategy: `s_neg_std` over all pairs (solid, filled markers) and `s_neg_std_in_batch` over
/// the pairs that shared a batch (dashed, open markers), with the theory's reference: the
/// optimum of the expected loss is the CCEM, whose negatives are all equal (`s_neg_std = 0`,
/// black dotted). Points at `B = n` (the full batch) join every strategy's line.
///
/// ```
/// use ccem::batch::Batching;
/// use ccem::plot::{batch_spread, SpreadPoint};
/// let p = |batching, batch, s_neg_std, s_neg_std_in_batch| SpreadPoint {
///     batching, batch, s_neg_std, s_neg_std_in_batch,
/// };
/// let points = [
///     p(Batching::Fixed, 4, 0.25, 0.0),
///     p(Batching::Shuffled, 4, 0.05, 0.04),
///     p(Batching::Expected, 8, 0.0, f64::NAN), // B = N: the full batch
/// ];
/// let dir = tempfile::tempdir().unwrap();
/// let out = dir.path().join("batch_spread.png");
/// batch_spread(&out, 8, "spread", &points)?;
/// assert!(out.exists());
/// # Ok::<(), ccem::Error>(())
/// ```
///
/// # Errors
/// No point; a batch size outside `2..=n`; an unknown extension; a failed write.
pub fn batch_spread(out: &Path, n: usize, title: &str, points: &[SpreadPoint]) -> Result<()> {
    canvas::ImageFormat::from_path(out)?;
    if points.is_empty() {
        return Err(Error::Config("a spread figure needs a point".into()));
    }
    if let Some(p) = points.iter().find(|p| p.batch < 2 || p.batch > n) {
        return Err(Error::Config(format!(
            "batch size {} outside 2..={n}",
            p.batch
        )));
    }
    let mut strategies: Vec<Batching> = Vec::new();
    for p in points {
        if p.batch < n && !strategies.contains(&p.batching) {
            strategies.push(p.batching);
        }
    }
    let full: Vec<&SpreadPoint> = points.iter().filter(|p| p.batch == n).collect();
    let mut series = Vec::new();
    let mut legend = Vec::new();
    for (k, &s) in strategies.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mut pts: Vec<&SpreadPoint> = points
            .iter()
            .filter(|p| p.batching == s && p.batch < n)
            .chain(full.iter().copied().take(1))
            .collect();
        pts.sort_by_key(|p| p.batch);
        let all: Vec<(f64, f64)> = pts.iter().map(|p| (p.batch as f64, p.s_neg_std)).collect();
        let inb: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.s_neg_std_in_batch.is_finite())
            .map(|p| (p.batch as f64, p.s_neg_std_in_batch))
            .collect();
        series.push(Series::Line {
            data: all.clone(),
            color,
            width: 2.0,
            dash: Dash::Solid,
        });
        series.push(Series::Points {
            data: all.iter().map(|&(x, y)| (x, y, None)).collect(),
            color,
            filled: true,
            radius: 4.5,
        });
        legend.push(Entry {
            swatch: Swatch::Marker {
                color,
                filled: true,
                line: Some(Dash::Solid),
            },
            label: format!("{s}: over all pairs"),
        });
        if !inb.is_empty() {
            series.push(Series::Line {
                data: inb.clone(),
                color,
                width: 1.6,
                dash: Dash::Dashed(7.0, 4.0),
            });
            series.push(Series::Points {
                data: inb.iter().map(|&(x, y)| (x, y, None)).collect(),
                color,
                filled: false,
                radius: 4.5,
            });
            legend.push(Entry {
                swatch: Swatch::Marker {
                    color,
                    filled: false,
                    line: Some(Dash::Dashed(7.0, 4.0)),
                },
                label: format!("{s}: within batches"),
            });
        }
    }
    let b_min = points.iter().map(|p| p.batch).min().expect("non-empty") as f64;
    series.push(Series::Line {
        data: vec![(b_min, 0.0), (n as f64, 0.0)],
        color: (0, 0, 0),
        width: 1.6,
        dash: Dash::Dashed(2.0, 4.0),
    });
    legend.push(Entry {
        swatch: Swatch::Line {
            color: (0, 0, 0),
            width: 1.6,
            dash: Dash::Dashed(2.0, 4.0),
        },
        label: "theory: the expected-loss optimum (CCEM), 0".into(),
    });
    let ys = points
        .iter()
        .flat_map(|p| [p.s_neg_std, p.s_neg_std_in_batch])
        .chain([0.0]);
    let (_, y_hi) = padded(ys, 0.08);
    let pad = (n as f64 - b_min) * 0.04;
    let fig = LineFigure {
        panels: vec![LinePanel {
            title: title.to_string(),
            x_title: "mini-batch size B".into(),
            y_title: "std of the negative similarities S_ij".into(),
            x_range: (b_min - pad, n as f64 + pad),
            y_range: (-0.02 * y_hi.max(1e-3), y_hi.max(1e-3)),
            series,
            legend,
        }],
        panel_size: (900.0, 600.0),
    };
    canvas::save(&fig, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.png");
        assert!(batch_phase_map(&out, 8, &[]).is_err());
        let cells = vec![
            BatchCell {
                batch: 2,
                t: 1.0,
                s_pos: 0.1,
            },
            BatchCell {
                batch: 4,
                t: 1.0,
                s_pos: 0.2,
            },
            BatchCell {
                batch: 2,
                t: 2.0,
                s_pos: 0.3,
            },
        ];
        let p = BatchPanel {
            title: "a".into(),
            cells: cells.clone(),
        };
        assert!(batch_phase_map(&out, 8, std::slice::from_ref(&p)).is_err()); // a missing cell
        let mut full = cells;
        full.push(BatchCell {
            batch: 4,
            t: 2.0,
            s_pos: 0.4,
        });
        let ok = BatchPanel {
            title: "a".into(),
            cells: full.clone(),
        };
        batch_phase_map(&out, 8, &[ok]).unwrap();
        assert!(out.exists());
        let big = BatchPanel {
            title: "a".into(),
            cells: full
                .iter()
                .map(|c| BatchCell {
                    batch: c.batch * 4,
                    ..*c
                })
                .collect(),
        };
        assert!(batch_phase_map(&out, 8, &[big]).is_err());
        assert!(batch_spread(&out, 8, "s", &[]).is_err());
        let sp = SpreadPoint {
            batching: Batching::Fixed,
            batch: 9,
            s_neg_std: 0.1,
            s_neg_std_in_batch: f64::NAN,
        };
        assert!(batch_spread(&out, 8, "s", &[sp]).is_err());
        assert!(batch_spread(
            &dir.path().join("x.gif"),
            8,
            "s",
            &[SpreadPoint { batch: 4, ..sp }]
        )
        .is_err());
        batch_spread(
            &out,
            8,
            "s",
            &[
                SpreadPoint { batch: 4, ..sp },
                SpreadPoint { batch: 8, ..sp },
            ],
        )
        .unwrap();
    }
}
