//! Curves of the exact optimum against `t` (with measured points), and of the CCEM loss
//! against `c`.

use super::results::{cell_stats, ResultsTable};
use crate::chart::axes::{Entry, Swatch};
use crate::chart::canvas::{self, Dash, ImageFormat};
use crate::chart::lines::{padded, ErrPoint, LineFigure, LinePanel, Series, PALETTE};
use crate::error::{Error, Result};
use crate::theory::{ccem_loss, BiasMode, Optimum};
use std::path::Path;

/// The quantity of the left panel of [`curves`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CurveQuantity {
    /// `c*` (measured: `c = (1 - s_pos)/2`, from `s_+ = 1 - 2c`, SPEC §2).
    #[default]
    CStar,
    /// `delta* = sqrt(c*/(1-c*))` (SPEC §3), clamped to `delta_max`.
    Delta,
}

/// Options of [`curves`].
#[derive(Clone, Debug)]
pub struct CurvesOptions {
    /// The batch sizes, one colour each (default `5, 10, 20, 50`).
    pub ns: Vec<usize>,
    /// The fine grid of `t` for the theory lines; `None`: 300 points over the range of `t` in the
    /// results (or `0.05..5` without results).
    pub ts: Option<Vec<f64>>,
    /// The bias setting of the theory; `None`: the one shared by the results (tied without
    /// results).
    pub bias: Option<BiasMode>,
    /// The quantity of the left panel.
    pub left: CurveQuantity,
    /// Top of the `delta*` axis (default `3`); larger values are clamped.
    pub delta_max: f64,
}

impl Default for CurvesOptions {
    fn default() -> Self {
        CurvesOptions {
            ns: vec![5, 10, 20, 50],
            ts: None,
            bias: None,
            left: CurveQuantity::CStar,
            delta_max: 3.0,
        }
    }
}

/// `delta = sqrt(c/(1-c))` clamped to `max` (SPEC §3).
fn delta_clamped(c: f64, max: f64) -> f64 {
    if c >= 1.0 {
        max
    } else {
        (c / (1.0 - c)).sqrt().min(max)
    }
}

/// Two panels against `t` for each `N` in `opts.ns`: left, the optimal `c*` (or `delta*`); right,
/// the optimal similarities `s_+* = 1 - 2c*` (solid) and `s_-* = -(1-c*)/(N-1) - c*` (dashed)
/// (SPEC §2-3, from [`Optimum::sigmoid`], or the ETF for InfoNCE results). With results, the
/// measured values are drawn on top as markers at the mean over seeds with error bars of ±1
/// sample standard deviation: `s_pos` (filled) and `s_neg` (open) on the right, `c = (1 - s_pos)/2`
/// (or its `delta`) on the left.
///
/// # Errors
/// No `N` or an `N < 2`; a negative or non-finite `t`; results that mix objectives or modes, or
/// whose bias setting cannot be told when `opts.bias` is `None`; no result row with one of the
/// `N`; an unknown extension; a failed write.
pub fn curves(results: Option<&ResultsTable>, out: &Path, opts: &CurvesOptions) -> Result<()> {
    ImageFormat::from_path(out)?;
    if opts.ns.is_empty() {
        return Err(Error::Config(
            "curves need at least one batch size N".into(),
        ));
    }
    if opts.ns.len() > MAX_CURVES {
        return Err(Error::Config(format!(
            "{} values of N are more curves than a figure can tell apart (at most {MAX_CURVES})",
            opts.ns.len()
        )));
    }
    if opts.ts.as_ref().is_some_and(|t| t.len() > MAX_LINE_POINTS) {
        return Err(Error::Config(format!(
            "a t grid of more than {MAX_LINE_POINTS} values is finer than a figure can show"
        )));
    }
    for &n in &opts.ns {
        crate::error::check_batch(n)?;
    }
    if opts.left == CurveQuantity::Delta && !(opts.delta_max.is_finite() && opts.delta_max > 0.0) {
        return Err(Error::Config(format!(
            "invalid delta_max = {}: need a finite number > 0",
            opts.delta_max
        )));
    }
    let infonce = results.is_some_and(|r| r.is_infonce());
    if let Some(r) = results {
        r.check_uniform()?;
        if !r.rows.iter().any(|row| opts.ns.contains(&row.n)) {
            return Err(Error::BadInput {
                path: r.path.clone(),
                reason: format!("no rows with N in {:?}", opts.ns),
            });
        }
    }
    let bias = match (opts.bias, results) {
        (Some(b), _) => b,
        (None, None) => BiasMode::Tied,
        (None, Some(r)) if infonce => r.bias_mode().unwrap_or(BiasMode::Tied),
        (None, Some(r)) => r.bias_mode().ok_or_else(|| {
            Error::Config(format!(
                "cannot tell the bias setting of '{}' (b is missing or follows no single rule); choose one with {b} B, {b} tied or {} R",
                r.path.display(),
                crate::error::option("relative_bias"),
                b = crate::error::option("b")
            ))
        })?,
    };
    let ts: Vec<f64> = match &opts.ts {
        Some(ts) => {
            for &t in ts {
                crate::error::check_nonneg("t", t)?;
            }
            let mut v = ts.clone();
            v.sort_by(f64::total_cmp);
            v
        }
        None => {
            let (lo, hi) = match results {
                Some(r) => {
                    let (lo, hi) = r
                        .rows
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                            (a.min(x.t), b.max(x.t))
                        });
                    if hi > lo {
                        (lo, hi)
                    } else {
                        ((lo - 1.0).max(0.0), hi + 1.0)
                    }
                }
                None => (0.05, 5.0),
            };
            (0..300)
                .map(|k| lo + (hi - lo) * f64::from(k) / 299.0)
                .collect()
        }
    };
    let ts: Vec<f64> = ts.into_iter().filter(|&t| t > 0.0).collect();
    if ts.len() < 2 {
        return Err(Error::Config(
            "curves need at least two values of t > 0".into(),
        ));
    }
    let left_of_c = |c: f64| match opts.left {
        CurveQuantity::CStar => c,
        CurveQuantity::Delta => delta_clamped(c, opts.delta_max),
    };
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut left_legend = Vec::new();
    for (k, &n) in opts.ns.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mut lc = Vec::with_capacity(ts.len());
        let (mut sp, mut sn) = (Vec::with_capacity(ts.len()), Vec::with_capacity(ts.len()));
        for &t in &ts {
            let (c, s_pos, s_neg) = if infonce {
                let o = Optimum::infonce(n, t)?;
                (o.c_star, o.s_pos, o.s_neg)
            } else {
                let o = Optimum::sigmoid(n, t, bias.bias(t))?;
                (o.c_star, o.s_pos, o.s_neg)
            };
            lc.push((t, left_of_c(c)));
            sp.push((t, s_pos));
            sn.push((t, s_neg));
        }
        left.push(Series::Line {
            data: lc,
            color,
            width: 2.0,
            dash: Dash::Solid,
        });
        right.push(Series::Line {
            data: sp,
            color,
            width: 2.0,
            dash: Dash::Solid,
        });
        right.push(Series::Line {
            data: sn,
            color,
            width: 2.0,
            dash: Dash::Dashed(7.0, 4.0),
        });
        left_legend.push(Entry {
            swatch: match results {
                Some(_) => Swatch::Marker {
                    color,
                    filled: true,
                    line: Some(Dash::Solid),
                },
                None => Swatch::Line {
                    color,
                    width: 2.0,
                    dash: Dash::Solid,
                },
            },
            label: format!("N = {n}"),
        });
        if let Some(r) = results {
            let rows = || r.rows.iter().filter(|row| row.n == n);
            let points = |stats: std::collections::BTreeMap<
                (usize, usize),
                super::results::CellStats,
            >,
                          tvals: &[f64]|
             -> Vec<ErrPoint> {
                stats
                    .into_iter()
                    .map(|((_, it), s)| (tvals[it], s.mean, Some((s.mean - s.std, s.mean + s.std))))
                    .collect()
            };
            let tvals = super::results::distinct_ts(rows().map(|row| row.t));
            let measured_left = cell_stats(
                rows().map(|row| (n, row.t, row.s_pos.map(|s| left_of_c((1.0 - s) / 2.0)))),
            );
            let measured_pos = cell_stats(rows().map(|row| (n, row.t, row.s_pos)));
            let measured_neg = cell_stats(rows().map(|row| (n, row.t, row.s_neg)));
            left.push(Series::Points {
                data: points(measured_left, &tvals),
                color,
                filled: true,
                radius: 3.5,
            });
            right.push(Series::Points {
                data: points(measured_pos, &tvals),
                color,
                filled: true,
                radius: 3.5,
            });
            right.push(Series::Points {
                data: points(measured_neg, &tvals),
                color,
                filled: false,
                radius: 3.5,
            });
        }
    }
    let gray = (0x44, 0x44, 0x44);
    let mut right_legend = vec![
        Entry {
            swatch: Swatch::Line {
                color: gray,
                width: 2.0,
                dash: Dash::Solid,
            },
            label: "s₊* (theory)".into(),
        },
        Entry {
            swatch: Swatch::Line {
                color: gray,
                width: 2.0,
                dash: Dash::Dashed(7.0, 4.0),
            },
            label: "s₋* (theory)".into(),
        },
    ];
    if results.is_some() {
        right_legend.push(Entry {
            swatch: Swatch::Marker {
                color: gray,
                filled: true,
                line: None,
            },
            label: "measured s₊ (mean ± 1 std)".into(),
        });
        right_legend.push(Entry {
            swatch: Swatch::Marker {
                color: gray,
                filled: false,
                line: None,
            },
            label: "measured s₋ (mean ± 1 std)".into(),
        });
        left_legend.push(Entry {
            swatch: Swatch::Marker {
                color: gray,
                filled: true,
                line: None,
            },
            label: match opts.left {
                CurveQuantity::CStar => "measured c = (1 − s₊)/2".into(),
                CurveQuantity::Delta => "measured δ from c = (1 − s₊)/2".into(),
            },
        });
    }
    let setting = if infonce {
        "InfoNCE".to_string()
    } else {
        match bias {
            BiasMode::Tied => "sigmoid loss, b = t".to_string(),
            b => format!("sigmoid loss, {}", b.label()),
        }
    };
    let x_title = if infonce { "temperature τ" } else { "t" };
    let span = ts[ts.len() - 1] - ts[0];
    let x_range = (ts[0] - 0.02 * span, ts[ts.len() - 1] + 0.02 * span);
    let (left_title, left_y, left_range) = match opts.left {
        CurveQuantity::CStar => (format!("Optimal c* ({setting})"), "c*", (-0.03, 1.03)),
        CurveQuantity::Delta => (
            format!("Optimal δ* ({setting})"),
            "δ*",
            (-0.03 * opts.delta_max, 1.03 * opts.delta_max),
        ),
    };
    let fig = LineFigure {
        panels: vec![
            LinePanel {
                title: left_title,
                x_title: x_title.into(),
                y_title: left_y.into(),
                x_range,
                y_range: left_range,
                series: left,
                legend: left_legend,
            },
            LinePanel {
                title: format!("Optimal similarities ({setting})"),
                x_title: x_title.into(),
                y_title: "similarity".into(),
                x_range,
                y_range: (-1.06, 1.06),
                series: right,
                legend: right_legend,
            },
        ],
        panel_size: (800.0, 600.0),
    };
    canvas::save(&fig, out)
}

/// The most curves ([`curves`]' values of `N`, [`loss_curve`]'s values of `t`) a figure draws.
pub const MAX_CURVES: usize = 12;

/// The most values of `t` along a line of [`curves`].
pub const MAX_LINE_POINTS: usize = 100_000;

/// Options of [`loss_curve`].
#[derive(Clone, Debug)]
pub struct LossCurveOptions {
    /// Batch size (default `10`).
    pub n: usize,
    /// The scales `t`, one curve each (default `0.5, 1, 2, 4`).
    pub ts: Vec<f64>,
    /// How the bias follows `t` (default tied, `b = t`).
    pub bias: BiasMode,
    /// Plot `l(c) - l(c*)` instead of `l(c)` (every curve then has minimum `0`).
    pub relative: bool,
}

impl Default for LossCurveOptions {
    fn default() -> Self {
        LossCurveOptions {
            n: 10,
            ts: vec![0.5, 1.0, 2.0, 4.0],
            bias: BiasMode::Tied,
            relative: false,
        }
    }
}

/// The CCEM loss `l(c) = softplus(b - t + 2tc) + (N-1) softplus(-b - t/(N-1) - t c (N-2)/(N-1))`
/// (SPEC §3, [`ccem_loss`]) against `c in [0, 1]`, one curve per `t` with `b = bias.bias(t)`, the
/// minimum `(c*, l(c*))` from [`Optimum::sigmoid`] marked.
///
/// # Errors
/// `N < 2`; no `t`, or more than [`MAX_CURVES`]; a negative or non-finite `t` or bias; an
/// unknown extension; a failed write.
pub fn loss_curve(out: &Path, opts: &LossCurveOptions) -> Result<()> {
    ImageFormat::from_path(out)?;
    if opts.ts.is_empty() {
        return Err(Error::Config(
            "a loss curve needs at least one value of t".into(),
        ));
    }
    if opts.ts.len() > MAX_CURVES {
        return Err(Error::Config(format!(
            "{} values of t are more curves than a figure can tell apart (at most {MAX_CURVES})",
            opts.ts.len()
        )));
    }
    let n = opts.n;
    let cs: Vec<f64> = (0..=400).map(|k| f64::from(k) / 400.0).collect();
    let mut series = Vec::new();
    let mut legend = Vec::new();
    let mut all_y = Vec::new();
    for (k, &t) in opts.ts.iter().enumerate() {
        let b = opts.bias.bias(t);
        let o = Optimum::sigmoid(n, t, b)?;
        let shift = if opts.relative { o.loss } else { 0.0 };
        let color = PALETTE[k % PALETTE.len()];
        let data: Vec<(f64, f64)> = cs
            .iter()
            .map(|&c| (c, ccem_loss(n, t, b, c) - shift))
            .collect();
        all_y.extend(data.iter().map(|p| p.1));
        series.push(Series::Line {
            data,
            color,
            width: 2.0,
            dash: Dash::Solid,
        });
        if o.c_star.is_finite() {
            series.push(Series::Points {
                data: vec![(o.c_star, o.loss - shift, None)],
                color,
                filled: true,
                radius: 5.0,
            });
        }
        let c_text = if o.c_star.is_finite() {
            format!("{:.3}", o.c_star)
        } else {
            "any (t = 0)".into()
        };
        legend.push(Entry {
            swatch: Swatch::Marker {
                color,
                filled: true,
                line: Some(Dash::Solid),
            },
            label: format!("t = {t}, b = {b}: c* = {c_text} ({})", o.phase.as_str()),
        });
    }
    let setting = match opts.bias {
        BiasMode::Tied => "b = t".to_string(),
        b => b.label(),
    };
    let fig = LineFigure {
        panels: vec![LinePanel {
            title: format!("CCEM loss, N = {n} ({setting}); dots: the minimum c*"),
            x_title: "c = δ² / (1 + δ²)".into(),
            y_title: if opts.relative {
                "l(c) − l(c*)".into()
            } else {
                "l(c)".into()
            },
            x_range: (-0.02, 1.02),
            y_range: padded(all_y.into_iter(), 0.05),
            series,
            legend,
        }],
        panel_size: (900.0, 600.0),
    };
    canvas::save(&fig, out)
}
