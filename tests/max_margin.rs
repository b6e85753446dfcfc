//! `max_margin` (SPEC.md §7.2) finds the known maximum-margin constellations within 2e-3 and
//! never reports more than the bound `N / (2(N-1))`.

use ccem::geometry::{margin_bound, margins, QuantileLevel};
use ccem::loss::BlockOptions;
use ccem::optim::max_margin::{max_margin, MaxMarginConfig};

const TOL: f64 = 2e-3;

fn solve(n: usize, d: usize) -> ccem::optim::max_margin::MaxMarginResult {
    let r = max_margin(&MaxMarginConfig::new(n, d, 1).unwrap()).unwrap();
    // The reported margin is the exact margin of the returned embedding.
    let m = margins(
        r.u.view(),
        r.v.view(),
        QuantileLevel::default(),
        BlockOptions::default(),
    )
    .unwrap();
    assert!((m.margin - r.margin).abs() < 1e-12);
    assert!((m.margin_bias - r.margin_bias).abs() < 1e-12);
    for row in r.u.outer_iter().chain(r.v.outer_iter()) {
        assert!((row.dot(&row) - 1.0).abs() < 1e-12);
    }
    assert!(r.margin <= margin_bound(n) + 1e-12, "{n} {d}: {}", r.margin);
    assert_eq!(r.margin_bound, margin_bound(n));
    r
}

#[test]
fn square_in_the_plane() {
    let r = solve(4, 2);
    assert!((r.margin - 0.5).abs() < TOL, "{}", r.margin);
}

#[test]
fn pentagon_in_the_plane() {
    let want = (1.0 - (72f64).to_radians().cos()) / 2.0;
    let r = solve(5, 2);
    assert!((r.margin - want).abs() < TOL, "{} vs {want}", r.margin);
}

#[test]
fn cross_polytope() {
    for d in [2usize, 3, 4] {
        let r = solve(2 * d, d);
        assert!((r.margin - 0.5).abs() < TOL, "d = {d}: {}", r.margin);
    }
}

#[test]
fn simplex_etf_when_d_is_at_least_n_minus_one() {
    for &(n, d) in &[(3usize, 2usize), (4, 3), (6, 5), (6, 8), (10, 9)] {
        let r = solve(n, d);
        assert!(
            (r.margin - margin_bound(n)).abs() < TOL,
            "N {n} d {d}: {} vs {}",
            r.margin,
            margin_bound(n)
        );
        let nm1 = (n - 1) as f64;
        assert!((r.margin_bias - (n as f64 - 2.0) / (2.0 * nm1)).abs() < 5e-3);
    }
}

#[test]
fn more_room_never_hurts_and_results_are_reproducible() {
    // The maximum margin grows with d (an embedding in R^d is one in R^{d+1}).
    let m2 = solve(7, 2).margin;
    let m3 = solve(7, 3).margin;
    let m6 = solve(7, 6).margin;
    assert!(m2 <= m3 + TOL && m3 <= m6 + TOL, "{m2} {m3} {m6}");
    let cfg = MaxMarginConfig::new(7, 3, 5).unwrap();
    assert_eq!(max_margin(&cfg).unwrap(), max_margin(&cfg).unwrap());
}

#[test]
fn invalid_configurations_are_errors() {
    assert!(MaxMarginConfig::new(1, 2, 0).is_err());
    assert!(MaxMarginConfig::new(3, 0, 0).is_err());
    let c = MaxMarginConfig::new(3, 2, 0).unwrap();
    assert!(c.with_restarts(0).is_err());
    assert!(c.with_schedule(0, 10, 1.0, 2.0).is_err());
    assert!(c.with_schedule(3, 10, 5.0, 2.0).is_err());
    assert!(c.with_lr(f64::NAN).is_err());
}

#[test]
fn margin_map_cells_and_figure() {
    use ccem::plot::{margin_cells, margin_map, MarginMapOptions};
    let opts = MarginMapOptions {
        ns: vec![3, 4, 5],
        ds: vec![2, 3, 4],
        restarts: 2,
        steps_per_stage: 60,
        ..Default::default()
    };
    let cells = margin_cells(&opts).unwrap();
    assert_eq!(cells.len(), 9);
    for c in &cells {
        assert!(c.margin <= c.margin_bound + 1e-12);
        if c.d + 1 >= c.n {
            assert!((c.margin - c.margin_bound).abs() < TOL, "{c:?}");
        }
    }
    let square = cells.iter().find(|c| (c.n, c.d) == (4, 2)).unwrap();
    assert!((square.margin - 0.5).abs() < TOL);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.svg");
    margin_map(&cells, &out, None).unwrap();
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains("d = N − 1"));
    assert!(margin_map(&cells[..1], &dir.path().join("x.png"), None).is_err());
    assert!(margin_map(&cells, &dir.path().join("x.txt"), None).is_err());
}
