//! Unit tests of the free-embedding optimiser: every gradient against finite differences (the
//! embedding rows through the normalisation, `t'`, `b`, `r_b`), the workspace kernels against
//! the library's losses, the update rules, validation and reproducibility.

use super::objective::{Objective, StepEval, Workspace};
use super::*;
use crate::loss::ContrastiveLoss;
use crate::loss::{normalize_rows, Loss};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn unit_rows(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng));
    normalize_rows(x.view(), "X").unwrap().u
}

/// The loss of the row-normalised `(X, Y)`.
fn loss_of(loss: &Loss, x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let u = normalize_rows(x, "X").unwrap().u;
    let v = normalize_rows(y, "Y").unwrap().u;
    loss.value_s(u.dot(&v.t()).view())
}

fn evaluate(
    obj: Objective,
    x: &Array2<f64>,
    y: &Array2<f64>,
) -> (StepEval, Array2<f64>, Array2<f64>) {
    let (n, d) = x.dim();
    let mut ws = Workspace::new(n, d);
    let mut gx = Array2::zeros((n, d));
    let mut gy = Array2::zeros((n, d));
    let ev = ws.evaluate(
        obj,
        x.as_slice().unwrap(),
        y.as_slice().unwrap(),
        gx.as_slice_mut().unwrap(),
        gy.as_slice_mut().unwrap(),
        true,
    );
    (ev, gx, gy)
}

fn sigmoid(t: f64, b: f64) -> Loss {
    Loss::sigmoid(t, b).unwrap()
}

fn objectives() -> Vec<(Loss, Objective)> {
    [
        sigmoid(1.0, 1.0),
        sigmoid(3.0, -0.5),
        sigmoid(0.2, 2.0),
        Loss::infonce(0.5).unwrap(),
        Loss::infonce(0.1).unwrap(),
    ]
    .into_iter()
    .map(|l| (l, Objective::from(l)))
    .collect()
}

#[test]
fn riemannian_gradient_matches_finite_differences_through_the_normalisation() {
    // At unit rows, d/dh L(normalize(X + h E)) is <E, dL/dX> with dL/dX the gradient through
    // the normalisation, (I - u u^T) dL/du (SPEC §1) -- what the workspace returns.
    let (n, d, h) = (5, 4, 1e-6);
    let x = unit_rows(n, d, 1);
    let y = unit_rows(n, d, 2);
    for (loss, obj) in objectives() {
        let (ev, gx, gy) = evaluate(obj, &x, &y);
        assert!((ev.loss - loss_of(&loss, x.view(), y.view())).abs() < 1e-12);
        for which in 0..2 {
            let g = if which == 0 { &gx } else { &gy };
            let mut worst: f64 = 0.0;
            for i in 0..n {
                for k in 0..d {
                    let (mut xp, mut xm) = (x.clone(), x.clone());
                    let (mut yp, mut ym) = (y.clone(), y.clone());
                    if which == 0 {
                        xp[[i, k]] += h;
                        xm[[i, k]] -= h;
                    } else {
                        yp[[i, k]] += h;
                        ym[[i, k]] -= h;
                    }
                    let fd = (loss_of(&loss, xp.view(), yp.view())
                        - loss_of(&loss, xm.view(), ym.view()))
                        / (2.0 * h);
                    worst = worst.max((fd - g[[i, k]]).abs());
                }
            }
            assert!(worst < 1e-7, "{loss:?} side {which}: {worst}");
        }
    }
}

#[test]
fn kernels_match_the_library_losses_and_gradients() {
    let (n, d) = (7, 9);
    let x = unit_rows(n, d, 3);
    let y = unit_rows(n, d, 4);
    let s = x.dot(&y.t());
    for (loss, obj) in objectives() {
        let mut g = Array2::zeros((n, n));
        let value = loss.value_grad_s(s.view(), g.view_mut());
        let (ev, gx, gy) = evaluate(obj, &x, &y);
        assert!((ev.loss - value).abs() < 1e-12 * value.max(1.0), "{loss:?}");
        let l1: f64 = g.iter().map(|v| v.abs()).sum();
        assert!((ev.g_l1 - l1).abs() < 1e-12 * l1.max(1.0), "{loss:?}");
        // The library's gradient through the normalisation at unit rows.
        let lg = crate::loss::loss_grad_raw(&loss, x.view(), y.view()).unwrap();
        assert!((&gx - &lg.du).iter().all(|e| e.abs() < 1e-12), "{loss:?}");
        assert!((&gy - &lg.dv).iter().all(|e| e.abs() < 1e-12), "{loss:?}");
    }
}

#[test]
fn kernels_are_finite_at_extreme_parameters() {
    let (n, d) = (6, 6);
    let x = unit_rows(n, d, 5);
    let y = unit_rows(n, d, 6);
    for obj in [
        Objective::Sigmoid {
            t: 1e4,
            b: 1e4,
            w: 1.0,
        },
        Objective::Sigmoid {
            t: 1e4,
            b: -3e3,
            w: 1.0,
        },
        Objective::Sigmoid {
            t: 0.0,
            b: 5.0,
            w: 1.0,
        },
        Objective::InfoNce { tau: 1e-3 },
    ] {
        let (ev, gx, gy) = evaluate(obj, &x, &y);
        assert!(ev.loss.is_finite() && ev.g_l1.is_finite(), "{obj:?}");
        assert!(gx.iter().chain(gy.iter()).all(|v| v.is_finite()), "{obj:?}");
    }
}

/// `(X, Y)`, `S` and the sums `sum H`, `sum H S` for finite differences in the scalars.
fn scalar_fd_case(seed: u64) -> (Array2<f64>, Array2<f64>) {
    (unit_rows(6, 5, seed), unit_rows(6, 5, seed + 100))
}

#[test]
fn scalar_gradients_match_finite_differences() {
    let h = 1e-6;
    for (seed, t, b) in [
        (1, 1.0, 1.0),
        (2, 3.0, -0.7),
        (3, 0.3, 2.5),
        (4, 12.0, 10.0),
    ] {
        let (x, y) = scalar_fd_case(seed);
        let s = x.dot(&y.t());
        let l = |t: f64, b: f64| sigmoid(t, b).value_s(s.view());
        let (ev, _, _) = evaluate(Objective::Sigmoid { t, b, w: 1.0 }, &x, &y);
        // Absolute bias: parameters (t', b) with t = exp(t').
        let (dlt, db) = scalar_gradients(t, b, false, ev.sum_h, ev.sum_hs);
        let tp = t.ln();
        let fd_t = (l((tp + h).exp(), b) - l((tp - h).exp(), b)) / (2.0 * h);
        let fd_b = (l(t, b + h) - l(t, b - h)) / (2.0 * h);
        assert!((dlt - fd_t).abs() < 1e-7, "dL/dt' {dlt} vs {fd_t}");
        assert!((db - fd_b).abs() < 1e-7, "dL/db {db} vs {fd_b}");
        // The brief's form: dL/dt = sum G S / t, dL/db = -sum G / t.
        let mut g = Array2::zeros((6, 6));
        sigmoid(t, b).value_grad_s(s.view(), g.view_mut());
        let gs: f64 = (&g * &s).sum();
        assert!((dlt / t - gs / t).abs() < 1e-10 && (db + g.sum() / t).abs() < 1e-10);
        // Relative bias: parameters (t', r_b) with b = r_b t.
        let rb = b / t;
        let (dlt_r, drb) = scalar_gradients(t, rb, true, ev.sum_h, ev.sum_hs);
        let lr = |tp: f64, rb: f64| l(tp.exp(), rb * tp.exp());
        let fd_tr = (lr(tp + h, rb) - lr(tp - h, rb)) / (2.0 * h);
        let fd_rb = (lr(tp, rb + h) - lr(tp, rb - h)) / (2.0 * h);
        assert!(
            (dlt_r - fd_tr).abs() < 1e-7,
            "relative dL/dt' {dlt_r} vs {fd_tr}"
        );
        assert!((drb - fd_rb).abs() < 1e-7, "dL/dr_b {drb} vs {fd_rb}");
    }
}

#[test]
fn scalars_round_trip_through_the_parameter_vector() {
    let flags = ScalarFlags {
        learn_t: true,
        learn_b: true,
        relative_bias: true,
    };
    let mut s = Scalars::new(2.0, 1.0, flags);
    assert_eq!(s.len(), 2);
    let mut p = [0.0; 2];
    s.write(&mut p);
    assert!((p[0] - 2f64.ln()).abs() < 1e-15 && (p[1] - 0.5).abs() < 1e-15);
    p[0] = 3f64.ln();
    s.read(&p);
    assert!((s.t() - 3.0).abs() < 1e-12 && (s.b() - 1.5).abs() < 1e-12);
    let fixed = Scalars::new(2.0, 1.0, ScalarFlags::default());
    assert!(fixed.is_empty() && fixed.t() == 2.0 && fixed.b() == 1.0);
}

#[test]
fn adam_and_sgd_follow_their_update_rules() {
    let mut adam = Adam::new(2);
    let mut x = [1.0, -1.0];
    adam.step(&mut x, &[0.5, -2.0], 0.1);
    // First step: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps).
    assert!((x[0] - (1.0 - 0.1 * 0.5 / (0.5 + 1e-8))).abs() < 1e-15);
    assert!((x[1] - (-1.0 + 0.1 * 2.0 / (2.0 + 1e-8))).abs() < 1e-15);
    adam.reset();
    let mut y = [1.0, -1.0];
    adam.step(&mut y, &[0.5, -2.0], 0.1);
    assert_eq!(x, y);

    let mut sgd = Sgd::new(1, 0.5);
    let mut z = [1.0];
    sgd.step(&mut z, &[1.0], 0.1); // buf = 1
    sgd.step(&mut z, &[1.0], 0.1); // buf = 1.5
    assert!((z[0] - (1.0 - 0.1 - 0.15)).abs() < 1e-15);
}

#[test]
fn schedule_halves_every_half_life_down_to_its_floor() {
    let s = Schedule::Exponential {
        half_life: 100.0,
        floor: 0.1,
    };
    assert_eq!(s.factor(0), 1.0);
    assert!((s.factor(100) - 0.5).abs() < 1e-12);
    assert!((s.factor(200) - 0.25).abs() < 1e-12);
    assert_eq!(s.factor(10_000), 0.1);
    assert_eq!(Schedule::Constant.factor(123), 1.0);
}

/// SimCLR at temperature `tau` (a loss of the joint views).
fn simclr(tau: f64) -> Loss {
    Loss::build(
        crate::loss::LossKind::SimClr,
        &crate::loss::LossParams {
            tau: Some(tau),
            ..Default::default()
        },
    )
    .unwrap()
}

fn cfg(n: usize, loss: Loss) -> FreeConfig {
    FreeConfig::new(n, n, loss, 7)
}

#[test]
fn validate_rejects_each_bad_field() {
    let good = cfg(4, sigmoid(1.0, 1.0));
    assert!(good.validate().is_ok());
    let bad: Vec<(&str, FreeConfig)> = vec![
        ("batch size", FreeConfig { n: 1, ..good }),
        ("dimension", FreeConfig { d: 0, ..good }),
        ("steps", FreeConfig { steps: 0, ..good }),
        ("lr", FreeConfig { lr: 0.0, ..good }),
        (
            "lr",
            FreeConfig {
                lr: f64::NAN,
                ..good
            },
        ),
        ("lr", FreeConfig { lr: -1.0, ..good }),
        (
            "restarts",
            FreeConfig {
                restarts: 0,
                ..good
            },
        ),
        (
            "grad_tol",
            FreeConfig {
                grad_tol: -1.0,
                ..good
            },
        ),
        (
            "momentum",
            FreeConfig {
                momentum: 1.0,
                ..good
            },
        ),
        (
            "sigmoid",
            FreeConfig {
                loss: Loss::infonce(0.5).unwrap(),
                learn_t: true,
                ..good
            },
        ),
        (
            "invalid t",
            FreeConfig {
                loss: sigmoid(0.0, 1.0),
                relative_bias: true,
                ..good
            },
        ),
    ];
    for (what, c) in bad {
        let err = c.validate().expect_err(what).to_string();
        assert!(err.contains(what), "{what}: {err}");
        assert!(optimize(&c).is_err());
    }
}

#[test]
fn results_depend_only_on_the_config() {
    let mut c = cfg(6, sigmoid(1.0, 1.0));
    c.restarts = 3;
    c.steps = 200;
    let a = optimize(&c).unwrap();
    let b = optimize(&c).unwrap();
    assert_eq!(a, b);
    // Restarts start from different points and the kept one has the lowest loss.
    assert_eq!(a.restart_losses.len(), 3);
    let min = a
        .restart_losses
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    assert_eq!(a.loss, min);
    assert_eq!(a.restart_losses[a.best_restart], a.loss);
    let other = optimize(&FreeConfig { seed: 8, ..c }).unwrap();
    assert_ne!(a.u, other.u);
    // Restart 0 of a multi-restart run is the single-restart run.
    let single = optimize(&FreeConfig { restarts: 1, ..c }).unwrap();
    assert_eq!(single.restart_losses[0], a.restart_losses[0]);
}

#[test]
fn rows_stay_on_the_sphere_and_the_loss_is_the_final_one() {
    let c = cfg(5, sigmoid(2.0, 1.0));
    let r = optimize(&c).unwrap();
    for row in r.u.rows().into_iter().chain(r.v.rows()) {
        assert!((row.dot(&row) - 1.0).abs() < 1e-12);
    }
    let direct = sigmoid(2.0, 1.0).value_s(r.u.dot(&r.v.t()).view());
    assert!((r.loss - direct).abs() < 1e-12);
    assert!(r.termination.is_converged() && r.steps_run > 0 && r.steps_run <= c.steps);
    assert_eq!((r.t, r.b), (2.0, 1.0));
}

#[test]
fn zero_grad_tol_runs_every_step_and_sgd_descends() {
    let mut c = cfg(4, sigmoid(1.0, 1.0));
    c.grad_tol = 0.0;
    c.steps = 50;
    c.optimizer = OptimizerKind::Sgd;
    c.lr = 0.5;
    let r = optimize(&c).unwrap();
    assert_eq!(r.steps_run, 50);
    let start = optimize(&FreeConfig { steps: 1, ..c }).unwrap();
    assert!(r.loss < start.loss);
}

#[test]
fn learnt_scale_and_bias_move_and_lower_the_loss() {
    for relative_bias in [false, true] {
        let mut c = cfg(6, sigmoid(SIGLIP_INIT_T, SIGLIP_INIT_B));
        c.learn_t = true;
        c.learn_b = true;
        c.relative_bias = relative_bias;
        c.steps = 300;
        let r = optimize(&c).unwrap();
        assert!(!r.termination.is_diverged());
        assert!(r.t != SIGLIP_INIT_T && r.b != SIGLIP_INIT_B, "{r:?}");
        // The reported loss is the loss at the final (t, b).
        let direct = sigmoid(r.t, r.b).value_s(r.u.dot(&r.v.t()).view());
        assert!((r.loss - direct).abs() < 1e-12);
        // Not learning them, from the same start, ends no lower than learning them.
        let fixed = optimize(&FreeConfig {
            learn_t: false,
            learn_b: false,
            ..c
        })
        .unwrap();
        assert!(r.loss < fixed.loss, "{} vs {}", r.loss, fixed.loss);
    }
}

#[test]
fn optimizer_kind_parses() {
    assert_eq!(
        "adam".parse::<OptimizerKind>().unwrap(),
        OptimizerKind::Adam
    );
    assert_eq!(
        " SGD ".parse::<OptimizerKind>().unwrap(),
        OptimizerKind::Sgd
    );
    assert!("lbfgs".parse::<OptimizerKind>().is_err());
    assert_eq!(OptimizerKind::Sgd.as_str(), "sgd");
}

#[test]
fn the_prediction_depends_on_the_dimension() {
    use crate::theory::{predict, Phase};
    assert!(predict(4, 3, &sigmoid(1.0, 1.0)).is_none());
    assert_eq!(
        predict(4, 4, &sigmoid(0.0, 1.0)).unwrap().phase,
        Phase::Degenerate
    );
    assert_eq!(
        predict(4, 3, &Loss::infonce(1.0).unwrap()).unwrap().c_star,
        0.0
    );
    assert!(predict(4, 2, &Loss::infonce(1.0).unwrap()).is_none());
    let c = predict(10, 10, &sigmoid(1.0, 1.0)).unwrap().c_star;
    assert!((c - 0.4630146707).abs() < 1e-9); // SPEC.md §3 table
}

#[test]
fn weighted_and_penalised_objective_matches_finite_differences() {
    // The expected mini-batch objective of SPEC §8: negatives weighted by w, plus the
    // negative-variance penalty; both losses, through the normalisation.
    use crate::loss::minibatch::{sigmoid_loss_weighted, NegVariance};
    let (n, d, h) = (5, 4, 1e-6);
    let x = unit_rows(n, d, 3);
    let y = unit_rows(n, d, 4);
    let pen = NegVariance::new(2.5, 12).unwrap();
    let norm_rows = |a: &Array2<f64>| crate::loss::normalize_rows(a.view(), "X").unwrap().u;
    for (obj, w) in [
        (
            Objective::Sigmoid {
                t: 2.0,
                b: 1.0,
                w: 0.3,
            },
            0.3,
        ),
        (Objective::InfoNce { tau: 0.5 }, 1.0),
        // A loss of the joint views: the penalty's gradient enters `dL/dK` on `K[..N, N..]`.
        (Objective::Generic(simclr(0.5)), 1.0),
    ] {
        let value = |xa: &Array2<f64>, ya: &Array2<f64>| {
            let (nu, nv) = (norm_rows(xa), norm_rows(ya));
            let s = nu.dot(&nv.t());
            let base = match obj {
                Objective::Sigmoid { t, b, w } => sigmoid_loss_weighted(s.view(), t, b, w),
                Objective::InfoNce { tau } => Loss::infonce(tau).unwrap().value_s(s.view()),
                Objective::Generic(l) => crate::loss::driver::value(
                    &l,
                    nu.view(),
                    nv.view(),
                    crate::loss::BlockOptions::default(),
                ),
            };
            base + pen.value(s.view())
        };
        let mut ws = Workspace::new(n, d);
        ws.set_penalty(Some(pen));
        let (mut gx, mut gy) = (Array2::zeros((n, d)), Array2::zeros((n, d)));
        let ev = ws.evaluate(
            obj,
            x.as_slice().unwrap(),
            y.as_slice().unwrap(),
            gx.as_slice_mut().unwrap(),
            gy.as_slice_mut().unwrap(),
            true,
        );
        assert!((ev.loss - value(&x, &y)).abs() < 1e-12, "w = {w}");
        let mut worst: f64 = 0.0;
        for i in 0..n {
            for k in 0..d {
                for which in 0..2 {
                    let (mut xp, mut xm, mut yp, mut ym) =
                        (x.clone(), x.clone(), y.clone(), y.clone());
                    if which == 0 {
                        xp[[i, k]] += h;
                        xm[[i, k]] -= h;
                    } else {
                        yp[[i, k]] += h;
                        ym[[i, k]] -= h;
                    }
                    let fd = (value(&xp, &yp) - value(&xm, &ym)) / (2.0 * h);
                    let g = if which == 0 { gx[[i, k]] } else { gy[[i, k]] };
                    worst = worst.max((fd - g).abs());
                }
            }
        }
        assert!(worst < 1e-7, "{obj:?}: {worst}");
    }
}

#[test]
fn every_loss_of_the_zoo_has_its_gradient_in_the_optimiser() {
    // The generic objective (cross views on S, joint views on K = Z Z^T) against central
    // differences of the loss through the row normalisation.
    use crate::loss::{LossKind, LossParams};
    let (n, d, h) = (5, 4, 1e-6);
    let x = unit_rows(n, d, 5);
    let y = unit_rows(n, d, 6);
    let norm_rows = |a: &Array2<f64>| crate::loss::normalize_rows(a.view(), "X").unwrap().u;
    for (kind, p) in [
        (LossKind::Spectral, LossParams::default()),
        (
            LossKind::SimClr,
            LossParams {
                tau: Some(0.3),
                ..Default::default()
            },
        ),
        (
            LossKind::Dhel,
            LossParams {
                tau: Some(0.5),
                ..Default::default()
            },
        ),
        (
            LossKind::Sigmoid,
            LossParams {
                t: Some(3.0),
                b: Some(1.0),
                within_view: Some(0.5),
                ..Default::default()
            },
        ),
    ] {
        let loss = Loss::build(kind, &p).unwrap();
        let value = |xa: &Array2<f64>, ya: &Array2<f64>| {
            let (u, v) = (norm_rows(xa), norm_rows(ya));
            crate::loss::driver::value(&loss, u.view(), v.view(), Default::default())
        };
        let mut ws = Workspace::new(n, d);
        let (mut gx, mut gy) = (Array2::zeros((n, d)), Array2::zeros((n, d)));
        let ev = ws.evaluate(
            Objective::from(loss),
            x.as_slice().unwrap(),
            y.as_slice().unwrap(),
            gx.as_slice_mut().unwrap(),
            gy.as_slice_mut().unwrap(),
            true,
        );
        assert!((ev.loss - value(&x, &y)).abs() < 1e-12, "{kind}");
        let mut worst: f64 = 0.0;
        for i in 0..n {
            for k in 0..d {
                let (mut xp, mut xm, mut yp, mut ym) = (x.clone(), x.clone(), y.clone(), y.clone());
                xp[[i, k]] += h;
                xm[[i, k]] -= h;
                yp[[i, k]] += h;
                ym[[i, k]] -= h;
                let fx = (value(&xp, &y) - value(&xm, &y)) / (2.0 * h);
                let fy = (value(&x, &yp) - value(&x, &ym)) / (2.0 * h);
                worst = worst
                    .max((fx - gx[[i, k]]).abs())
                    .max((fy - gy[[i, k]]).abs());
            }
        }
        assert!(worst < 1e-7, "{kind}: {worst}");
    }
}

#[test]
fn simclr_free_embeddings_reach_the_simplex_etf() {
    // Thm 5.1 of Lee, Lim, Lee, Sohn (2025): the ETF (s_pos = 1, s_neg = -1/(N-1)) is optimal.
    let loss = Loss::build(
        crate::loss::LossKind::SimClr,
        &crate::loss::LossParams {
            tau: Some(0.5),
            ..Default::default()
        },
    )
    .unwrap();
    let n = 4;
    let mut c = cfg(n, loss);
    c.steps = 3000;
    let r = optimize(&c).unwrap();
    let s = r.u.dot(&r.v.t());
    for i in 0..n {
        assert!((s[[i, i]] - 1.0).abs() < 1e-3, "{s}");
        for j in (0..n).filter(|&j| j != i) {
            assert!((s[[i, j]] + 1.0 / 3.0).abs() < 1e-3, "{s}");
        }
    }
}

#[test]
fn simclr_runs_in_mini_batches_and_refuses_only_what_cannot_work() {
    // A loss of the joint views through the batch workspace: shuffled batches (with the
    // penalty) run and lower the loss from the random start; `expected` (no closed form) and
    // `hardest` (it scores batches on S alone) are refused, naming the loss.
    use crate::batch::{Batching, MiniBatch};
    let loss = simclr(0.5);
    let n = 8;
    let start = FreeConfig {
        steps: 1,
        lr: 1e-12,
        ..cfg(n, loss)
    };
    let before = optimize(&start).unwrap().loss;
    let mut c = cfg(n, loss);
    c.steps = 400;
    c.batch = Some(MiniBatch::new(n, 4, Some(Batching::Shuffled), &loss).unwrap());
    c.neg_variance_weight = 0.5;
    let r = optimize(&c).unwrap();
    assert!(!r.termination.is_diverged());
    assert!(r.loss < before, "{} >= {before}", r.loss);
    assert!(r.t.is_nan() && r.b.is_nan());
    for b in [Batching::Expected, Batching::Hardest] {
        let err = MiniBatch::new(n, 4, Some(b), &loss)
            .unwrap_err()
            .to_string();
        assert!(err.contains("simclr"), "{err}");
    }
    assert!(MiniBatch::new(n, n, Some(Batching::Hardest), &loss).is_ok());
}
