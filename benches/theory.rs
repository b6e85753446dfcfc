//! The exact optimum over a 1,000 x 1,000 grid of (N, t) (issue 2: "a million cells under a
//! second"), sequential and on all cores.
//!
//! `boundaries_1e6_random_cells`: the phase boundaries (SPEC §3.2) of 10^6 random cells, each with
//! its own `N in 3..100000` and fixed `b in [-5, 20]` (or relative `r_b in [-0.25, 1]`), so that
//! nothing is shared between cells: the ETF and antipodal boundary of every cell, on all cores
//! (issue 18: `ccem.theory` on such cells in at most 2 s; this is the library's part of it).
//!
//! `cargo bench --bench theory`

use ccem::grid::linspace;
use ccem::theory::Optimum;
use criterion::{criterion_group, criterion_main, Criterion};
use rayon::prelude::*;
use std::hint::black_box;

fn grid() -> (Vec<usize>, Vec<f64>) {
    ((2..1002).collect(), linspace(0.01, 10.0, 1000))
}

fn bench_theory(c: &mut Criterion) {
    let (ns, ts) = grid();
    let mut g = c.benchmark_group("theory_grid_1000x1000");
    g.sample_size(10);
    g.bench_function("sequential", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            for &n in &ns {
                for &t in &ts {
                    acc += Optimum::sigmoid_unchecked(n, t, t).c_star;
                }
            }
            black_box(acc)
        })
    });
    g.bench_function("rayon", |b| {
        b.iter(|| {
            let acc: f64 = ns
                .par_iter()
                .map(|&n| {
                    ts.iter()
                        .map(|&t| Optimum::sigmoid_unchecked(n, t, t).c_star)
                        .sum::<f64>()
                })
                .sum();
            black_box(acc)
        })
    });
    g.finish();
}

fn bench_boundaries(c: &mut Criterion) {
    use ccem::theory::BiasMode;
    // A fixed-seed linear congruential generator: no dependency for the bench's cells.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let cells: Vec<(usize, f64)> = (0..1_000_000)
        .map(|_| (3 + (uniform() * 99_997.0) as usize, uniform()))
        .collect();
    let mut g = c.benchmark_group("boundaries_1e6_random_cells");
    g.sample_size(10);
    for (name, mode) in [
        (
            "fixed_b",
            (|u: f64| BiasMode::Fixed(-5.0 + 25.0 * u)) as fn(f64) -> BiasMode,
        ),
        ("relative_b", |u: f64| BiasMode::Relative(-0.25 + 1.25 * u)),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let found: usize = cells
                    .par_iter()
                    .map(|&(n, u)| {
                        let m = mode(u);
                        usize::from(m.etf_boundary(n).is_some())
                            + usize::from(m.antipodal_boundary(n).is_some())
                    })
                    .sum();
                black_box(found)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_theory, bench_boundaries);
criterion_main!(benches);
