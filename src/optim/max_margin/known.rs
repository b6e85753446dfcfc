//! The best known maximum margins (SPEC.md §7.3, "known values"): the margin of the best known
//! spherical code of `N` points in `R^d` (`U = V`), `(1 - cos theta_min) / 2`.
//!
//! - `N <= d + 1`: the regular simplex, `N / (2(N-1))` (the bound of SPEC §7.2, reached);
//! - `d + 2 <= N <= 2d`: `1/2`, points of the cross-polytope (Rankin 1955: more than `d + 1`
//!   points always have an angle of at most 90°);
//! - `d = 2`: the regular polygon, `(1 - cos(2 pi / N)) / 2`;
//! - `d = 3`, `N <= 24`: the Tammes problem, from `tests/data/tammes_d3.csv` (angles as published,
//!   with their sources there and in SPEC §7.3);
//! - `d = 4`, `N = 24`: the 24-cell, `1/4`.

use serde::Serialize;

/// The Tammes table (`n,angle_deg,status,source`), compiled in.
const TAMMES_D3: &str = include_str!("../../../tests/data/tammes_d3.csv");

/// A best known value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KnownBest {
    /// The margin `(1 - cos theta_min) / 2`.
    pub margin: f64,
    /// The code (`"simplex"`, `"cross_polytope"`, `"polygon"`, `"tammes"`, `"24_cell"`).
    pub code: &'static str,
    /// `true` when the value is proved optimal (for the spherical code, `U = V`).
    pub proved: bool,
}

/// The best known margin of `N` points in `R^d`, where this crate knows it.
pub fn known_best(n: usize, d: usize) -> Option<KnownBest> {
    if n < 2 || d < 1 {
        return None;
    }
    let nf = n as f64;
    if n <= d + 1 {
        return Some(KnownBest {
            margin: nf / (2.0 * (nf - 1.0)),
            code: "simplex",
            proved: true,
        });
    }
    if n <= 2 * d {
        return Some(KnownBest {
            margin: 0.5,
            code: "cross_polytope",
            proved: true,
        });
    }
    if d == 2 {
        return Some(KnownBest {
            margin: (1.0 - (2.0 * std::f64::consts::PI / nf).cos()) / 2.0,
            code: "polygon",
            proved: true,
        });
    }
    if d == 3 {
        return tammes_d3()
            .into_iter()
            .find(|t| t.n == n)
            .map(|t| KnownBest {
                margin: t.margin(),
                code: "tammes",
                proved: t.proved,
            });
    }
    if d == 4 && n == 24 {
        return Some(KnownBest {
            margin: 0.25,
            code: "24_cell",
            proved: false,
        });
    }
    None
}

/// One row of the Tammes table.
#[derive(Clone, Debug, PartialEq)]
pub struct TammesRow {
    /// Points on `S^2`.
    pub n: usize,
    /// The largest smallest angle, degrees.
    pub angle_deg: f64,
    /// Proved optimal (else: best known).
    pub proved: bool,
    /// Who found or proved it.
    pub source: String,
}

impl TammesRow {
    /// `(1 - cos theta) / 2`.
    pub fn margin(&self) -> f64 {
        (1.0 - self.angle_deg.to_radians().cos()) / 2.0
    }
}

/// The Tammes table of `tests/data/tammes_d3.csv` (`N = 2..=24`).
pub fn tammes_d3() -> Vec<TammesRow> {
    TAMMES_D3
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.splitn(4, ',');
            Some(TammesRow {
                n: f.next()?.trim().parse().ok()?,
                angle_deg: f.next()?.trim().parse().ok()?,
                proved: f.next()?.trim() == "proved",
                source: f.next()?.trim().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_complete_and_agrees_with_the_closed_forms() {
        let t = tammes_d3();
        assert_eq!(
            t.iter().map(|r| r.n).collect::<Vec<_>>(),
            (2..=24).collect::<Vec<_>>()
        );
        // Where a closed form exists, the table's angle agrees with it.
        for r in &t[..5] {
            let nf = r.n as f64;
            let closed = if r.n <= 4 {
                nf / (2.0 * (nf - 1.0))
            } else {
                0.5
            };
            assert!((r.margin() - closed).abs() < 1e-12, "{r:?}");
        }
        let icosa = (1.0 - 1.0 / 5f64.sqrt()) / 2.0;
        assert!((t[10].margin() - icosa).abs() < 1e-12);
        assert!((t[7].margin() - 1.0 / 3.0).abs() < 1e-12);
        assert!((known_best(14, 3).unwrap().margin - 0.218025).abs() < 1e-6);
        assert_eq!(known_best(24, 4).unwrap().margin, 0.25);
        assert_eq!(known_best(6, 3).unwrap().code, "cross_polytope");
        assert!(known_best(30, 3).is_none());
    }
}
