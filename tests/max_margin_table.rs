//! The max-margin search reaches the best known values of its table (SPEC.md §7.3): a cheap
//! subset here (the Tammes problem for a few `N` in `d = 3`, including `N = 14`, where a smooth
//! max-min alone stops at the local optimum 0.211325); `examples/max_margin_table.rs` runs the
//! whole table.

use ccem::optim::max_margin::{known_best, max_margin, tammes_d3, MaxMarginConfig};
use ccem::optim::Termination;

#[test]
fn the_tammes_table_is_read_whole() {
    let t = tammes_d3();
    assert_eq!(t.len(), 23);
    assert_eq!(t[0].n, 2);
    assert_eq!(t[22].n, 24);
    // Margins decrease with N (and N = 5, 6 and N = 11, 12 tie).
    for w in t.windows(2) {
        assert!(w[1].margin() <= w[0].margin() + 1e-15, "{w:?}");
    }
    assert!((known_best(14, 3).unwrap().margin - 0.218025).abs() < 5e-7);
}

#[test]
fn tammes_subset_to_1e7() {
    for n in [7usize, 8, 12, 14] {
        let cfg = MaxMarginConfig::new(n, 3, 0)
            .unwrap()
            .with_restarts(8)
            .unwrap()
            .with_hops(4);
        let r = max_margin(&cfg).unwrap();
        let known = known_best(n, 3).unwrap().margin;
        assert!(
            (r.margin - known).abs() < 1e-7,
            "N {n}: {} vs known {known}",
            r.margin
        );
        assert_eq!(r.termination, Termination::Converged, "N {n}");
    }
}
