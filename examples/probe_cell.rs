use ccem::geometry::measure;
use ccem::loss::{BlockOptions, Loss};
use ccem::optim::{optimize, theory_c_star, FreeConfig, Schedule, TheoryComparison};
fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}
fn main() {
    let a: Vec<f64> = std::env::args().skip(1).map(|s| s.parse().unwrap()).collect();
    let (n, t, b) = (a[0] as usize, a[1], a[2]);
    let loss = if b.is_nan() { Loss::infonce(t).unwrap() } else { Loss::sigmoid(t, b).unwrap() };
    for steps in [1000usize, 2000, 5000, 10000, 20000, 40000] {
        let mut cfg = FreeConfig::new(n, n, loss, 7);
        cfg.steps = steps;
        if let Some(v) = env("LR") { cfg.lr = v; }
        if let Some(v) = env("GRAD_TOL") { cfg.grad_tol = v; }
        if let Some(v) = env::<String>("OPTIMIZER") { cfg.optimizer = v.parse().unwrap(); }
        if let Some(v) = env("MOM") { cfg.momentum = v; }
        if let (Some(h), Some(f)) = (env("HALF_LIFE"), env("FLOOR")) {
            cfg.schedule = Schedule::Exponential { half_life: h, floor: f };
        }
        if env::<u8>("CONST").is_some() { cfg.schedule = Schedule::Constant; }
        let t0 = std::time::Instant::now();
        let r = optimize(&cfg).unwrap();
        let m = measure(r.u.view(), r.v.view(), BlockOptions { block: 256, parallel: false });
        let c = theory_c_star(n, n, &loss).unwrap();
        let cmp = TheoryComparison::new(&m, c);
        println!("steps {steps:6} run {:6} conv {} grad {:.2e} loss {:.12} s_err {:.2e} gram {:.2e} c_fit {:.5} c* {:.5} gd_fit {:.2e} {:.3}s",
            r.steps_run, r.converged, r.grad_norm, r.loss, cmp.s_pos_error, cmp.gram_distance_to_theory, m.c_fit, c, m.gram_distance, t0.elapsed().as_secs_f64());
        if r.converged { break; }
    }
}
