//! `max_margin` (SPEC.md §7.2–7.3): the known maximum-margin constellations, certified to 1e-10,
//! never more than the bound `N / (2(N-1))`, reproducible, and bounded in memory and work.

use ccem::geometry::{margin_bound, margins, QuantileLevel};
use ccem::loss::BlockOptions;
use ccem::optim::max_margin::{known_best, max_margin, MaxMarginConfig, MaxMarginResult};
use ccem::optim::Termination;

/// A cheap search: 2 random starts, 1 hopping round (the structured starts do the rest).
fn cheap(n: usize, d: usize, seed: u64) -> MaxMarginConfig {
    MaxMarginConfig::new(n, d, seed)
        .unwrap()
        .with_restarts(2)
        .unwrap()
        .with_hops(1)
}

fn solve(cfg: &MaxMarginConfig) -> MaxMarginResult {
    let r = max_margin(cfg).unwrap();
    let (n, d) = (cfg.n(), cfg.d());
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

/// Reaches the known value to 1e-9 and certifies it.
fn reaches_known(n: usize, d: usize) -> MaxMarginResult {
    let r = solve(&cheap(n, d, 1));
    let known = known_best(n, d).unwrap().margin;
    assert!(
        (r.margin - known).abs() < 1e-9,
        "N {n} d {d}: {} vs {known}",
        r.margin
    );
    assert_eq!(r.termination, Termination::Converged, "N {n} d {d}");
    assert!(r.certified && r.kkt_residual.unwrap() <= 1e-10);
    r
}

#[test]
fn polygons_in_the_plane() {
    for n in [3usize, 4, 5, 7] {
        let r = reaches_known(n, 2);
        // The polygon's contact graph is its cycle.
        if n > 3 {
            assert_eq!(r.contacts.len(), n, "N {n}");
        }
        assert_eq!(r.rattlers, 0);
    }
}

#[test]
fn cross_polytopes_and_simplices() {
    for d in [3usize, 4] {
        reaches_known(2 * d, d);
    }
    for &(n, d) in &[(3usize, 2usize), (4, 3), (6, 5), (6, 8)] {
        let r = reaches_known(n, d);
        let nm1 = (n - 1) as f64;
        assert!((r.margin_bias - (n as f64 - 2.0) / (2.0 * nm1)).abs() < 1e-9);
        // Every pair of the simplex is a contact.
        assert_eq!(r.contacts.len(), n * (n - 1) / 2);
    }
}

#[test]
fn the_24_cell() {
    // The structured start is the 24-cell itself; one random start, no hopping.
    let cfg = MaxMarginConfig::new(24, 4, 0)
        .unwrap()
        .with_restarts(1)
        .unwrap()
        .with_hops(0);
    let r = solve(&cfg);
    assert!((r.margin - 0.25).abs() < 1e-12);
    assert_eq!(r.termination, Termination::Converged);
    assert_eq!(r.contacts.len(), 96);
    assert_eq!(r.origin, "24_cell");
}

#[test]
fn results_are_reproducible_and_independent_of_the_thread_count() {
    let cfg = cheap(9, 3, 5);
    let a = max_margin(&cfg).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = one.install(|| max_margin(&cfg).unwrap());
    assert_eq!(a, b);
    // More room never hurts.
    let m2 = solve(&cheap(7, 2, 0)).margin;
    let m3 = solve(&cheap(7, 3, 0)).margin;
    assert!(m2 <= m3 + 1e-12, "{m2} {m3}");
}

#[test]
fn a_saddle_in_one_dimension_is_never_converged() {
    // Three points on a line: two coincide, the margin is 0 at best.
    let r = max_margin(&cheap(3, 1, 0)).unwrap();
    assert!(r.margin.abs() < 1e-9, "{}", r.margin);
    assert_ne!(r.termination, Termination::Converged);
    assert!(r.saddle_restarts > 0);
}

#[test]
fn divergence_is_reported() {
    // A learning rate of 1e300 overflows at the first step of every start.
    let cfg = cheap(5, 2, 0).with_lr(1e300).unwrap();
    let r = max_margin(&cfg).unwrap();
    assert_eq!(r.termination, Termination::Diverged);
    assert!(!r.certified);
    // The best finite iterate is still reported (a start itself).
    assert!(r.margin.is_finite());
}

#[test]
fn memory_and_work_are_checked_before_anything_is_allocated() {
    // 80 GB for S alone: over any machine's memory (the --max-memory cases are in
    // tests/max_margin_cli.rs, in their own processes, since the limit is process-wide).
    let t = std::time::Instant::now();
    let huge = MaxMarginConfig::new(100_000, 2, 0).unwrap();
    let e = max_margin(&huge).unwrap_err().to_string();
    assert!(e.contains("max-margin with N = 100000"), "{e}");
    // Too much work: refused at once, naming the parameter.
    let slow = MaxMarginConfig::new(3000, 50, 0)
        .unwrap()
        .with_restarts(1000)
        .unwrap();
    let e = max_margin(&slow).unwrap_err().to_string();
    assert!(e.contains("restarts"), "{e}");
    assert!(t.elapsed().as_secs_f64() < 1.0);
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
    assert!(c.with_steps(5).is_err());
}

#[test]
fn margin_map_cells_and_figure() {
    use ccem::plot::{margin_cells, margin_map, MarginMapOptions};
    let opts = MarginMapOptions {
        ns: vec![3, 4, 5],
        ds: vec![2, 3, 4],
        restarts: 2,
        hops: 0,
        steps_per_stage: 60,
        ..Default::default()
    };
    let cells = margin_cells(&opts).unwrap();
    assert_eq!(cells.len(), 9);
    for c in &cells {
        assert!(c.margin <= c.margin_bound + 1e-12);
        let known = known_best(c.n, c.d).unwrap().margin;
        assert!((c.margin - known).abs() < 1e-9, "{c:?} vs {known}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.svg");
    margin_map(&cells, &out, None).unwrap();
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains("d = N − 1"));
    assert!(margin_map(&cells[..1], &dir.path().join("x.png"), None).is_err());
    assert!(margin_map(&cells, &dir.path().join("x.txt"), None).is_err());
}
