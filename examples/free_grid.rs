//! The free-embedding sweep of the paper's grid, timed: `N = 4..50`, `t in linspace(0.1, 5, 10)`
//! (470 cells), `d = N`, every cell optimised to convergence with [`ccem::optim`]'s defaults,
//! cells in parallel on a rayon pool of 2 threads. Prints the wall time and the fraction of
//! cells meeting the theory ([`ccem::Report::meets_theory`]), then the cells that do not.
//!
//! ```text
//! cargo run --release --example free_grid               # b = t (the paper's setting)
//! cargo run --release --example free_grid -- fixed 1    # b = 1 at every t
//! cargo run --release --example free_grid -- relative 0.5
//! cargo run --release --example free_grid -- infonce    # tau = the grid value
//! ```
//!
//! Environment overrides for tuning: `LR`, `HALF_LIFE`, `FLOOR`, `STEPS`, `GRAD_TOL`,
//! `RESTARTS`, `OPTIMIZER`, `THREADS`, `SEED`.

use ccem::grid::linspace;
use ccem::loss::Loss;
use ccem::optim::{optimize, FreeConfig, Schedule};
use ccem::report::{Report, GRAM_TOL, S_POS_TOL};
use rayon::prelude::*;
use std::time::Instant;

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .first()
        .map(String::as_str)
        .unwrap_or("tied")
        .to_string();
    let value: f64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(1.0);
    let threads = env::<usize>("THREADS").unwrap_or(2);
    let seed = env::<u64>("SEED").unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let cells: Vec<(usize, f64)> = (4..=50)
        .flat_map(|n| linspace(0.1, 5.0, 10).into_iter().map(move |t| (n, t)))
        .collect();
    let start = Instant::now();
    let rows: Vec<_> = pool.install(|| {
        cells
            .par_iter()
            .map(|&(n, t)| {
                let loss = match mode.as_str() {
                    "tied" => Loss::sigmoid(t, t),
                    "fixed" => Loss::sigmoid(t, value),
                    "relative" => Loss::sigmoid_relative(t, value),
                    "infonce" => Loss::infonce(t),
                    other => panic!("unknown mode {other}: tied, fixed B, relative R, infonce"),
                }
                .unwrap();
                let mut cfg = FreeConfig::new(n, n, loss, seed.wrapping_add(n as u64 * 1000));
                cfg.relative_bias = mode == "relative";
                if let Some(v) = env("LR") {
                    cfg.lr = v;
                }
                if let Some(v) = env("STEPS") {
                    cfg.steps = v;
                }
                if let Some(v) = env("GRAD_TOL") {
                    cfg.grad_tol = v;
                }
                if let Some(v) = env("RESTARTS") {
                    cfg.restarts = v;
                }
                if let Some(v) = env::<String>("OPTIMIZER") {
                    cfg.optimizer = v.parse().unwrap();
                }
                if let (Some(h), Some(f)) = (env("HALF_LIFE"), env("FLOOR")) {
                    cfg.schedule = Schedule::Exponential {
                        half_life: h,
                        floor: f,
                    };
                }
                if env::<String>("SCHEDULE").as_deref() == Some("const") {
                    cfg.schedule = Schedule::Constant;
                }
                if let Some(v) = env("MOM") {
                    cfg.momentum = v;
                }
                let t0 = Instant::now();
                let r = optimize(&cfg).unwrap();
                let secs = t0.elapsed().as_secs_f64();
                let report = Report::new(r.u.view(), r.v.view(), &loss).unwrap();
                (n, t, loss, r, report, secs)
            })
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    let meets = |r: &Report| r.meets_theory() == Some(true);
    let ok = rows.iter().filter(|r| meets(&r.4)).count();
    let conv = rows
        .iter()
        .filter(|r| r.3.termination.is_converged())
        .count();
    let cpu: f64 = rows.iter().map(|r| r.5).sum();
    let steps: usize = rows.iter().map(|r| r.3.steps_run).sum();
    println!(
        "mode {mode} {value}: {} cells, wall {wall:.2} s on {threads} threads (cpu {cpu:.2} s), \
         meets theory {ok}/{} = {:.2}%, converged {conv}, mean steps {:.0}",
        rows.len(),
        rows.len(),
        100.0 * ok as f64 / rows.len() as f64,
        steps as f64 / rows.len() as f64
    );
    let worst = |f: &dyn Fn(&Report) -> Option<f64>| {
        rows.iter().filter_map(|r| f(&r.4)).fold(0.0_f64, f64::max)
    };
    println!(
        "worst |s_pos - s_+*| = {:.2e}, worst Gram distance to the CCEM(c*) = {:.2e} \
         (tolerances {:.0e}, {:.0e})",
        worst(&|c| c.s_pos_error()),
        worst(&|c| c.gram_distance_to_theory()),
        S_POS_TOL,
        GRAM_TOL
    );
    let mut by_n = vec![0.0; 51];
    for r in &rows {
        by_n[r.0] += r.5;
    }
    println!(
        "cpu seconds per N (all t): N=10 {:.3}, N=30 {:.3}, N=50 {:.3}",
        by_n[10], by_n[30], by_n[50]
    );
    for (n, t, loss, r, cmp, secs) in rows.iter().filter(|r| !meets(&r.4)) {
        let b = match loss {
            Loss::Sigmoid(ccem::loss::Sigmoid { b, .. }) => *b,
            _ => f64::NAN,
        };
        println!(
            "  FAIL N={n} t={t:.3} b={b:.3} c*={:.5} s_pos_err={:.2e} gram={:.2e} steps={} conv={} grad={:.2e} loss={:.8} restarts={:?} {:.3}s",
            cmp.theory_c_star().unwrap_or(f64::NAN),
            cmp.s_pos_error().unwrap_or(f64::NAN),
            cmp.gram_distance_to_theory().unwrap_or(f64::NAN),
            r.steps_run,
            r.termination,
            r.grad_norm,
            r.loss,
            r.restart_losses,
            secs
        );
    }
}
