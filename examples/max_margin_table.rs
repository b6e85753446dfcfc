//! The whole table of best known maximum margins (SPEC.md §7.3) against `ccem`'s search with its
//! default settings: regular polygons (`d = 2`), cross-polytopes, simplices, the Tammes problem
//! (`d = 3`, `N <= 24`) and the 24-cell. Prints the achieved and known margins, the gap, whether
//! the result is certified, the contacts and the time of each case.
//!
//! ```text
//! cargo run --release --example max_margin_table            # every case
//! cargo run --release --example max_margin_table -- tammes  # only d = 3
//! ```

use ccem::optim::max_margin::{known_best, max_margin, MaxMarginConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let only = std::env::args().nth(1);
    let mut cases: Vec<(&str, usize, usize)> = Vec::new();
    for n in [3, 4, 5, 6, 7, 8, 12] {
        cases.push(("polygon", n, 2));
    }
    for d in [3, 4, 5, 8] {
        cases.push(("cross_polytope", 2 * d, d));
    }
    for n in [5, 10] {
        cases.push(("simplex", n, n - 1));
    }
    for n in 7..=24 {
        cases.push(("tammes", n, 3));
    }
    cases.push(("24_cell", 24, 4));
    println!(
        "| case | N | d | known | achieved | gap | termination | contacts | rattlers | seconds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for (name, n, d) in cases {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let known = known_best(n, d).ok_or("no known value")?.margin;
        let cfg = MaxMarginConfig::new(n, d, 0)?;
        let t = std::time::Instant::now();
        let r = max_margin(&cfg)?;
        let secs = t.elapsed().as_secs_f64();
        let gap = r.margin - known;
        worst = worst.max(-gap);
        println!(
            "| {name} | {n} | {d} | {known:.9} | {:.9} | {gap:+.1e} | {} | {} | {} | {secs:.2} |",
            r.margin,
            r.termination.as_str(),
            r.contacts.len(),
            r.rattlers
        );
    }
    println!("\nlargest shortfall: {worst:.1e}");
    Ok(())
}
