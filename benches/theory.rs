//! The exact optimum over a 1,000 x 1,000 grid of (N, t) (issue 2: "a million cells under a
//! second"), sequential and on all cores.
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

criterion_group!(benches, bench_theory);
criterion_main!(benches);
