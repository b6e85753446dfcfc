//! One free-embedding cell optimised to convergence with the defaults of [`ccem::optim`]
//! (Adam, the relative gradient tolerance), at `N = d = 10, 30, 50`, with `t = b = 1`
//! (intermediate phase) and `t = b = 3` (near the ETF boundary for large `N`); plus the cost of
//! one step (`steps = 200`, `grad_tol = 0`). The whole 470-cell grid is timed by
//! `cargo run --release --example free_grid`.

use ccem::loss::Loss;
use ccem::optim::{optimize, FreeConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;

fn cell(c: &mut Criterion) {
    let mut group = c.benchmark_group("free_cell_to_convergence");
    group.sample_size(10);
    for t in [1.0, 3.0] {
        for n in [10usize, 30, 50] {
            let cfg = FreeConfig::new(n, n, Loss::sigmoid(t, t).unwrap(), 1);
            group.bench_with_input(BenchmarkId::new(format!("t=b={t}"), n), &cfg, |b, cfg| {
                b.iter(|| optimize(black_box(cfg)).unwrap())
            });
        }
    }
    group.finish();
}

fn steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("free_200_steps");
    group.sample_size(10);
    for loss in [
        Loss::sigmoid(1.0, 1.0).unwrap(),
        Loss::infonce(0.5).unwrap(),
    ] {
        for n in [10usize, 30, 50] {
            let mut cfg = FreeConfig::new(n, n, loss, 1);
            cfg.steps = 200;
            cfg.grad_tol = 0.0;
            group.bench_with_input(BenchmarkId::new(loss.name(), n), &cfg, |b, cfg| {
                b.iter(|| optimize(black_box(cfg)).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, cell, steps);
criterion_main!(benches);
