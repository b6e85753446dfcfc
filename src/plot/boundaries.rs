//! The phase boundaries of the sigmoid loss's optimum drawn on the maps over (N, t) (SPEC §3),
//! and the maps' `t` axis title.

use crate::chart::heatmap::Overlay;
use crate::theory::BiasMode;

/// Colours of the ETF and the antipodal boundary.
pub(crate) type BoundaryColors = ((u8, u8, u8), (u8, u8, u8));
/// Red and blue (as in the paper's figure), for the viridis maps.
pub(crate) const ON_VIRIDIS: BoundaryColors = ((0xe4, 0x1a, 0x1c), (0x1f, 0x4f, 0xff));
/// Black and dark green, for the blue-white-red difference maps.
pub(crate) const ON_DIVERGING: BoundaryColors = ((0x00, 0x00, 0x00), (0x00, 0x7a, 0x3d));

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
