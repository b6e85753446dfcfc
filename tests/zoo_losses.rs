//! The losses of the unified framework (issue 16; SPEC §1.6–1.7): `simclr`, `dcl`, `dhel`,
//! `spectral`, and `sigmoid` / `infonce` with within-view negatives.
//!
//! Their values against independent references computed here by another route: ports of the
//! reference code's `simclr_loss_func`, `dcl_loss_func` and `dhel_loss_func`
//! (leechungpa/embedding-similarity-cl, `solo/losses/`: `z = [U; V]`, `indexes = [0..N, 0..N]`,
//! plain exponentials, one process) and the dense formulas; their gradients against finite
//! differences; f32 against f64; any blocking and thread count; the parameter checks.

use ccem::base::Precision;
use ccem::loss::evaluate::{evaluate, EvalOptions};
use ccem::loss::{driver, BlockOptions, ContrastiveLoss, Loss, LossKind, LossParams};
use ccem::matrix::Matrix;
use ndarray::{concatenate, Array2, Axis};

fn data(n: usize, d: usize, seed: u64) -> Array2<f64> {
    Array2::from_shape_fn((n, d), |(i, j)| {
        let x = ((i as u64 * 7919 + j as u64 * 104_729 + seed * 1_299_709) % 1000) as f64;
        x / 1000.0 - 0.5 + if i % d == j { 0.8 } else { 0.0 }
    })
}

fn unit(x: &Array2<f64>) -> Array2<f64> {
    let mut u = x.clone();
    for mut r in u.rows_mut() {
        let norm = r.dot(&r).sqrt();
        r /= norm;
    }
    u
}

/// A port of solo-learn's three functions: `which` is "simclr", "dcl" or "dhel".
fn solo(u: &Array2<f64>, v: &Array2<f64>, tau: f64, which: &str) -> f64 {
    let n = u.nrows();
    let z = concatenate(Axis(0), &[u.view(), v.view()]).unwrap();
    let sim = z.dot(&z.t()).mapv(|x| (x / tau).exp());
    let idx = |a: usize| a % n;
    let mut total = 0.0;
    for a in 0..2 * n {
        let (mut pos, mut neg) = (0.0, 0.0);
        for k in 0..2 * n {
            if idx(a) == idx(k) && a != k {
                pos += sim[[a, k]];
            }
            let cross = (a < n) != (k < n);
            if idx(a) != idx(k) && !(which == "dhel" && cross) {
                neg += sim[[a, k]];
            }
        }
        total += match which {
            "simclr" => (pos / (pos + neg)).ln(),
            _ => (pos / neg).ln(),
        };
    }
    -total / (2 * n) as f64
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The sigmoid loss with within-view negatives, densely.
fn sigmoid_within(u: &Array2<f64>, v: &Array2<f64>, t: f64, b: f64, w: f64) -> f64 {
    let n = u.nrows();
    let (s, uu, vv) = (u.dot(&v.t()), u.dot(&u.t()), v.dot(&v.t()));
    let mut total = 0.0;
    for i in 0..n {
        for j in 0..n {
            let z = if i == j { 1.0 } else { -1.0 };
            total += softplus(-z * (t * s[[i, j]] - b));
            if i != j {
                total += w * (softplus(t * uu[[i, j]] - b) + softplus(t * vv[[i, j]] - b));
            }
        }
    }
    total / n as f64
}

/// InfoNCE with within-view negatives, densely (ccem's sum convention).
fn infonce_within(u: &Array2<f64>, v: &Array2<f64>, tau: f64, w: f64) -> f64 {
    let n = u.nrows();
    let (s, uu, vv) = (u.dot(&v.t()), u.dot(&u.t()), v.dot(&v.t()));
    let mut total = 0.0;
    for i in 0..n {
        let mut row: f64 = (0..n).map(|j| (s[[i, j]] / tau).exp()).sum();
        let mut col: f64 = (0..n).map(|k| (s[[k, i]] / tau).exp()).sum();
        for k in (0..n).filter(|&k| k != i) {
            row += w * (uu[[i, k]] / tau).exp();
            col += w * (vv[[i, k]] / tau).exp();
        }
        total += row.ln() + col.ln() - 2.0 * s[[i, i]] / tau;
    }
    total / n as f64
}

fn spectral(u: &Array2<f64>, v: &Array2<f64>) -> f64 {
    let n = u.nrows() as f64;
    let s = u.dot(&v.t());
    let mut total = 0.0;
    for ((i, j), &x) in s.indexed_iter() {
        total += if i == j {
            -2.0 * x / n
        } else {
            x * x / (n * (n - 1.0))
        };
    }
    total
}

fn build(name: &str, p: LossParams) -> Loss {
    Loss::build(name.parse().unwrap(), &p).unwrap()
}

fn tau(t: f64) -> LossParams {
    LossParams {
        tau: Some(t),
        ..Default::default()
    }
}

fn value(loss: &Loss, x: &Array2<f64>, y: &Array2<f64>, block: Option<usize>) -> f64 {
    let o = EvalOptions {
        block: block.map(|b| BlockOptions {
            block: b,
            parallel: true,
        }),
        ..EvalOptions::default()
    };
    evaluate(loss, x.clone().into(), y.clone().into(), &o)
        .unwrap()
        .value
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn simclr_dcl_dhel_equal_the_reference_code() {
    for (n, d) in [(2, 3), (7, 4), (33, 8)] {
        let (x, y) = (data(n, d, 1), data(n, d, 2));
        let (u, v) = (unit(&x), unit(&y));
        for t in [0.01, 0.07, 0.5, 1.0, 10.0] {
            for name in ["simclr", "dcl", "dhel"] {
                let want = solo(&u, &v, t, name);
                for block in [None, Some(1), Some(5)] {
                    let got = value(&build(name, tau(t)), &x, &y, block);
                    assert!(
                        close(got, want, 1e-12),
                        "{name} N={n} tau={t} block={block:?}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn within_view_losses_and_spectral_equal_their_formulas() {
    for (n, d) in [(2, 2), (6, 3), (21, 5)] {
        let (x, y) = (data(n, d, 3), data(n, d, 4));
        let (u, v) = (unit(&x), unit(&y));
        for w in [0.0, 0.25, 1.0] {
            for t in [0.05, 1.0, 10.0] {
                let p = LossParams {
                    tau: Some(t),
                    within_view: Some(w),
                    ..Default::default()
                };
                let got = value(&build("infonce", p), &x, &y, Some(4));
                let want = infonce_within(&u, &v, t, w);
                assert!(
                    close(got, want, 1e-12),
                    "infonce W={w} tau={t}: {got} {want}"
                );
                let p = LossParams {
                    t: Some(t * 3.0),
                    b: Some(-0.7),
                    within_view: Some(w),
                    ..Default::default()
                };
                let got = value(&build("sigmoid", p), &x, &y, Some(4));
                let want = sigmoid_within(&u, &v, t * 3.0, -0.7, w);
                assert!(close(got, want, 1e-12), "sigmoid W={w}: {got} {want}");
            }
        }
        let got = value(&build("spectral", LossParams::default()), &x, &y, Some(4));
        assert!(close(got, spectral(&u, &v), 1e-13));
    }
}

#[test]
fn infonce_with_unit_within_view_weight_is_twice_simclr() {
    let (x, y) = (data(12, 5, 7), data(12, 5, 8));
    for t in [0.02, 0.3, 4.0] {
        let p = LossParams {
            tau: Some(t),
            within_view: Some(1.0),
            ..Default::default()
        };
        let a = value(&build("infonce", p), &x, &y, None);
        let b = value(&build("simclr", tau(t)), &x, &y, None);
        assert!(close(a, 2.0 * b, 1e-13), "{a} vs 2 x {b}");
    }
}

fn fd(x: &Array2<f64>, f: impl Fn(&Array2<f64>) -> f64) -> Array2<f64> {
    let h = 1e-6;
    let mut g = Array2::zeros(x.raw_dim());
    let mut xp = x.clone();
    for idx in 0..x.len() {
        let (i, j) = (idx / x.ncols(), idx % x.ncols());
        let o = xp[[i, j]];
        xp[[i, j]] = o + h;
        let fp = f(&xp);
        xp[[i, j]] = o - h;
        let fm = f(&xp);
        xp[[i, j]] = o;
        g[[i, j]] = (fp - fm) / (2.0 * h);
    }
    g
}

fn rel_err(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-3);
    (a - b).iter().fold(0.0f64, |m, x| m.max(x.abs())) / scale
}

fn all_losses() -> Vec<Loss> {
    let w = |name: &str, p: LossParams| build(name, p);
    vec![
        w("simclr", tau(0.3)),
        w("dcl", tau(0.5)),
        w("dhel", tau(0.2)),
        w("spectral", LossParams::default()),
        w(
            "infonce",
            LossParams {
                tau: Some(0.4),
                within_view: Some(0.6),
                ..Default::default()
            },
        ),
        w(
            "sigmoid",
            LossParams {
                t: Some(4.0),
                b: Some(1.5),
                within_view: Some(1.0),
                ..Default::default()
            },
        ),
    ]
}

#[test]
fn gradients_match_finite_differences() {
    let (n, d) = (7, 4);
    let (x, y) = (data(n, d, 5), data(n, d, 6));
    for loss in all_losses() {
        for block in [None, Some(3)] {
            let o = EvalOptions {
                grad: true,
                block: block.map(|b| BlockOptions {
                    block: b,
                    parallel: false,
                }),
                ..EvalOptions::default()
            };
            let f = |a: &Array2<f64>, b: &Array2<f64>| {
                evaluate(&loss, a.clone().into(), b.clone().into(), &o)
                    .unwrap()
                    .value
            };
            let e = evaluate(&loss, x.clone().into(), y.clone().into(), &o).unwrap();
            let (gx, gy) = e.grads.unwrap();
            let ex = rel_err(&gx.into_f64(), &fd(&x, |xp| f(xp, &y)));
            let ey = rel_err(&gy.into_f64(), &fd(&y, |yp| f(&x, yp)));
            assert!(ex < 1e-6 && ey < 1e-6, "{loss:?}: {ex} {ey}");
        }
    }
}

#[test]
fn float32_agrees_with_float64_and_the_dense_path() {
    let (n, d) = (40, 6);
    let (x, y) = (data(n, d, 9), data(n, d, 10));
    for loss in all_losses() {
        let v64 = value(&loss, &x, &y, Some(16));
        let o = EvalOptions {
            precision: Some(Precision::F32),
            block: Some(BlockOptions {
                block: 16,
                parallel: true,
            }),
            ..EvalOptions::default()
        };
        let v32 = evaluate(&loss, x.clone().into(), y.clone().into(), &o)
            .unwrap()
            .value;
        assert!(close(v32, v64, 1e-5), "{}: {v32} vs {v64}", loss.name());
        // The dense path on the matrix of the loss's views.
        let (u, v) = (unit(&x), unit(&y));
        let m = match loss.views() {
            ccem::loss::Views::Cross => u.dot(&v.t()),
            ccem::loss::Views::Joint => {
                let z = concatenate(Axis(0), &[u.view(), v.view()]).unwrap();
                z.dot(&z.t())
            }
        };
        assert!(close(loss.value_s(m.view()), v64, 1e-12), "{}", loss.name());
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (n, d) = (150, 8);
    let (u, v) = (unit(&data(n, d, 11)), unit(&data(n, d, 12)));
    for loss in all_losses() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let o = BlockOptions {
                block: 64,
                parallel: true,
            };
            pool.install(|| driver::value_grad(&loss, u.view(), v.view(), o))
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(a.value.to_bits(), b.value.to_bits(), "{}", loss.name());
        assert_eq!(a.du, b.du);
        assert_eq!(a.dv, b.dv);
    }
}

#[test]
fn bad_parameters_name_the_loss_and_the_parameter() {
    let err = |kind: &str, p: LossParams| {
        let k: LossKind = kind.parse().unwrap();
        Loss::build(k, &p).unwrap_err().to_string()
    };
    for name in ["simclr", "dcl", "dhel", "infonce"] {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = err(name, tau(bad));
            assert!(e.contains(name) && e.contains("tau"), "{e}");
        }
        let e = err(name, LossParams::default());
        assert!(e.contains(name) && e.contains("tau"), "{e}");
    }
    for name in ["simclr", "dcl", "dhel"] {
        let p = LossParams {
            within_view: Some(1.0),
            ..tau(0.5)
        };
        let e = err(name, p);
        assert!(e.contains(name) && e.contains("within_view"), "{e}");
    }
    let e = err(
        "sigmoid",
        LossParams {
            t: Some(1.0),
            within_view: Some(-0.5),
            ..Default::default()
        },
    );
    assert!(e.contains("sigmoid") && e.contains("within_view"), "{e}");
    let e = err("spectral", tau(1.0));
    assert!(e.contains("spectral") && e.contains("tau"), "{e}");
    let e = "nope".parse::<LossKind>().unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("simclr"), "{e}");
    // Bad embeddings stay an error for every loss.
    for loss in all_losses() {
        let r = evaluate(
            &loss,
            Matrix::F64(data(4, 3, 1)),
            Matrix::F64(data(5, 3, 1)),
            &EvalOptions::default(),
        );
        assert!(r.is_err());
    }
}
