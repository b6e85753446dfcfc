//! The loss zoo on the CCEM (SPEC §9): each closed form against the loss computed densely from
//! its definition on an explicit CCEM embedding, derivatives against finite differences,
//! convexity, the known special cases and Lee et al.'s within-view remedy.

use ccem::theory::zoo::{optimum, ZooLoss, NAMES};
use ccem::theory::{Optimum, Phase};
use ccem::Ccem;
use ndarray::{Array2, ArrayView1};

fn dot(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| x * y).sum()
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `log sum e^{x}` of a list, shifted by its maximum.
fn lse(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// The loss computed densely from its definition (the table), with plain loops over
/// the `2N` views `z = [U; V]`.
fn dense(name: &str, u: &Array2<f64>, v: &Array2<f64>, p: Params) -> f64 {
    let (tau, t, b, w) = p;
    let n = u.nrows();
    let z = ndarray::concatenate(ndarray::Axis(0), &[u.view(), v.view()]).unwrap();
    let sim = |a: usize, k: usize| dot(z.row(a), z.row(k));
    let partner = |a: usize| (a + n) % (2 * n);
    match name {
        "simclr" | "dcl" | "dhel" => {
            let mut total = 0.0;
            for a in 0..2 * n {
                let pos = sim(a, partner(a)) / tau;
                let mut den = Vec::new();
                for k in 0..2 * n {
                    let same_side = (k < n) == (a < n);
                    let keep = match name {
                        "simclr" => k != a,
                        "dcl" => k != a && k != partner(a),
                        _ => k != a && same_side,
                    };
                    if keep {
                        den.push(sim(a, k) / tau);
                    }
                }
                total += lse(&den) - pos;
            }
            total / (2 * n) as f64
        }
        "spectral" => {
            let mut total = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let s = dot(u.row(i), v.row(j));
                    if i == j {
                        total -= 2.0 * s / n as f64;
                    } else {
                        total += s * s / (n * (n - 1)) as f64;
                    }
                }
            }
            total
        }
        "sigmoid" => {
            let mut total = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let s = dot(u.row(i), v.row(j));
                    total += if i == j {
                        softplus(-(t * s - b))
                    } else {
                        softplus(t * s - b)
                            + w * (softplus(t * dot(u.row(i), u.row(j)) - b)
                                + softplus(t * dot(v.row(i), v.row(j)) - b))
                    };
                }
            }
            total / n as f64
        }
        "infonce" => {
            let mut total = 0.0;
            for i in 0..n {
                // Row i: the v_j, then W times the u_k (k != i), in the denominator.
                let mut row: Vec<f64> = (0..n).map(|j| dot(u.row(i), v.row(j)) / tau).collect();
                let mut col: Vec<f64> = (0..n).map(|j| dot(u.row(j), v.row(i)) / tau).collect();
                if w > 0.0 {
                    for k in (0..n).filter(|&k| k != i) {
                        row.push(dot(u.row(i), u.row(k)) / tau + w.ln());
                        col.push(dot(v.row(i), v.row(k)) / tau + w.ln());
                    }
                }
                let pos = dot(u.row(i), v.row(i)) / tau;
                total += lse(&row) - pos + lse(&col) - pos;
            }
            total / n as f64
        }
        _ => unreachable!(),
    }
}

/// Every loss with a few parameter settings: `(loss, name, (tau, t, b, W))`.
/// The parameters of [`dense`]: `(tau, t, b, W)`.
type Params = (f64, f64, f64, f64);

fn zoo() -> Vec<(ZooLoss, &'static str, Params)> {
    let mut out = Vec::new();
    for tau in [0.1, 0.5, 2.0] {
        out.push((
            ZooLoss::simclr(tau).unwrap(),
            "simclr",
            (tau, 0.0, 0.0, 0.0),
        ));
        out.push((ZooLoss::dcl(tau).unwrap(), "dcl", (tau, 0.0, 0.0, 0.0)));
        out.push((ZooLoss::dhel(tau).unwrap(), "dhel", (tau, 0.0, 0.0, 0.0)));
        for w in [0.0, 0.3, 1.0] {
            out.push((
                ZooLoss::infonce(tau, w).unwrap(),
                "infonce",
                (tau, 0.0, 0.0, w),
            ));
        }
    }
    out.push((ZooLoss::spectral(), "spectral", (0.0, 0.0, 0.0, 0.0)));
    for (t, b) in [(1.0, 1.0), (3.0, 1.0), (0.5, -2.0), (10.0, 10.0)] {
        for w in [0.0, 0.2, 1.0] {
            out.push((
                ZooLoss::sigmoid(t, b, w).unwrap(),
                "sigmoid",
                (0.0, t, b, w),
            ));
        }
    }
    out
}

#[test]
fn closed_forms_equal_the_dense_loss_on_an_explicit_ccem() {
    for n in [2usize, 3, 5, 8] {
        for c in [0.0, 0.1, 0.37, 0.8, 1.0] {
            let (u, v) = Ccem::from_c(n, n + 1, c).unwrap().build_rotated(7);
            for (loss, name, p) in zoo() {
                if name == "dhel" && n == 2 {
                    // N - 1 = 1 within-view negative: still defined.
                }
                let want = dense(name, &u, &v, p);
                let got = loss.value(n, c);
                assert!(
                    (got - want).abs() <= 1e-11 * want.abs().max(1.0),
                    "{loss} N={n} c={c}: closed form {got} vs dense {want}"
                );
            }
        }
    }
}

#[test]
fn derivatives_match_finite_differences() {
    let h = 1e-6;
    for n in [3usize, 5, 16, 100] {
        for c in [0.05, 0.3, 0.5, 0.77, 0.95] {
            for (loss, _, _) in zoo() {
                let fd = (loss.value(n, c + h) - loss.value(n, c - h)) / (2.0 * h);
                let d = loss.derivative(n, c);
                assert!(
                    (fd - d).abs() <= 1e-6 * d.abs().max(1.0),
                    "{loss} N={n} c={c}: l' = {d}, finite difference {fd}"
                );
                let fd2 = (loss.derivative(n, c + h) - loss.derivative(n, c - h)) / (2.0 * h);
                let d2 = loss.second_derivative(n, c);
                assert!(
                    (fd2 - d2).abs() <= 1e-5 * d2.abs().max(1.0),
                    "{loss} N={n} c={c}: l'' = {d2}, finite difference {fd2}"
                );
            }
        }
    }
}

#[test]
fn every_loss_is_convex_in_c_on_a_grid() {
    let k = 400;
    for n in [2usize, 3, 10, 64] {
        for (loss, _, _) in zoo() {
            let l: Vec<f64> = (0..=k)
                .map(|i| loss.value(n, i as f64 / k as f64))
                .collect();
            for i in 1..k {
                let second = l[i - 1] - 2.0 * l[i] + l[i + 1];
                let scale = l[i].abs().max(1.0);
                assert!(
                    second >= -1e-12 * scale,
                    "{loss} N={n} at c = {}",
                    i as f64 / k as f64
                );
                assert!(loss.second_derivative(n, i as f64 / k as f64) >= 0.0);
            }
        }
    }
}

/// Golden-section search on the closed form: shares nothing with the solver but `l`.
fn golden(f: impl Fn(f64) -> f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..200 {
        let (x1, x2) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if f(x1) <= f(x2) {
            hi = x2;
        } else {
            lo = x1;
        }
    }
    0.5 * (lo + hi)
}

#[test]
fn the_optimum_minimises_the_closed_form() {
    for n in [2usize, 3, 4, 10, 33] {
        for (loss, _, _) in zoo() {
            let o = optimum(&loss, n, None).unwrap();
            let c = golden(|c| loss.value(n, c));
            assert!(
                o.loss <= loss.value(n, c) + 1e-14 * o.loss.abs().max(1.0),
                "{loss} N={n}"
            );
            assert!((o.c - c).abs() < 1e-6, "{loss} N={n}: c* = {} vs {c}", o.c);
            match o.phase {
                Phase::Etf => assert_eq!(o.c, 0.0),
                Phase::Antipodal => assert_eq!(o.c, 1.0),
                Phase::Intermediate => {
                    let d = loss.derivative(n, o.c);
                    assert!(d.abs() < 1e-12 * loss.second_derivative(n, o.c).max(1.0));
                }
                Phase::Degenerate => unreachable!(),
            }
            // The reported similarities and Thm 5.2's slack.
            assert_eq!(o.s_pos, 1.0 - 2.0 * o.c);
            let nm1 = (n - 1) as f64;
            assert!((o.s_neg - (-(1.0 - o.c) / nm1 - o.c)).abs() < 1e-15);
            assert!((o.s_within - (-(1.0 - o.c) / nm1 + o.c)).abs() < 1e-15);
            let slack = 1.0 + o.s_neg + 1.0 / nm1 - o.s_pos;
            assert!((o.alignment_slack - slack).abs() < 1e-14, "{loss} N={n}");
            assert!(o.alignment_slack >= 0.0);
        }
    }
}

#[test]
fn infonce_based_losses_are_the_etf_at_every_temperature() {
    for n in [2usize, 3, 10, 1000] {
        for tau in [1e-3, 0.07, 1.0, 100.0] {
            for loss in [
                ZooLoss::simclr(tau).unwrap(),
                ZooLoss::dcl(tau).unwrap(),
                ZooLoss::dhel(tau).unwrap(),
                ZooLoss::infonce(tau, 0.0).unwrap(),
                ZooLoss::infonce(tau, 2.5).unwrap(),
            ] {
                let o = optimum(&loss, n, None).unwrap();
                assert_eq!(
                    (o.phase, o.c, o.s_pos),
                    (Phase::Etf, 0.0, 1.0),
                    "{loss} N={n}"
                );
                assert!(o.loss.is_finite());
                assert_eq!(o.excess_separation, None);
                assert_eq!(o.thm53_condition, None);
                assert!(o.global_optimum.is_some());
            }
        }
    }
}

#[test]
fn sigmoid_without_within_view_is_todays_theory() {
    for n in [2usize, 3, 4, 10, 16, 100, 32768] {
        for (t, b) in [
            (1.0, 1.0),
            (2.0, 2.0),
            (0.5, 0.5),
            (3.0, 1.0),
            (117.8, 12.9),
            (0.0, 1.0),
        ] {
            let o = optimum(&ZooLoss::sigmoid(t, b, 0.0).unwrap(), n, None).unwrap();
            let today = Optimum::sigmoid(n, t, b).unwrap();
            assert_eq!(o.phase, today.phase, "N={n} t={t} b={b}");
            assert_eq!(o.loss.to_bits(), today.loss.to_bits());
            if today.phase != Phase::Degenerate {
                assert_eq!(o.c.to_bits(), today.c_star.to_bits());
                assert_eq!(o.s_pos, today.s_pos);
                assert_eq!(o.s_neg, today.s_neg);
                // Thm 5.3's condition is exactly c* > 0 here (SPEC §9.6).
                assert_eq!(o.thm53_condition, o.excess_separation);
            }
        }
    }
    // The mini-batch optimum too.
    for batch in [2usize, 4, 9, 16] {
        let o = optimum(&ZooLoss::sigmoid(2.0, 1.0, 0.0).unwrap(), 16, Some(batch)).unwrap();
        let today = Optimum::sigmoid_batch(16, batch, 2.0, 1.0).unwrap();
        assert_eq!(
            (o.c, o.loss, o.phase),
            (today.c_star, today.loss, today.phase)
        );
        assert_eq!(o.w, Some((batch - 1) as f64 / 15.0));
    }
}

#[test]
fn infonce_without_within_view_is_todays_theory_and_w1_is_twice_simclr() {
    for n in [2usize, 3, 10, 256] {
        for tau in [0.01, 0.07, 0.5, 3.0] {
            let o = optimum(&ZooLoss::infonce(tau, 0.0).unwrap(), n, None).unwrap();
            let today = Optimum::infonce(n, tau).unwrap();
            assert!((o.loss - today.loss).abs() <= 1e-14 * today.loss.max(1e-300));
            assert_eq!(o.loss_clip(), Some(o.loss / 2.0));
            let w1 = ZooLoss::infonce(tau, 1.0).unwrap();
            let simclr = ZooLoss::simclr(tau).unwrap();
            for c in [0.0, 0.2, 0.6, 1.0] {
                let (a, b) = (w1.value(n, c), 2.0 * simclr.value(n, c));
                assert!(
                    (a - b).abs() <= 1e-14 * b.abs().max(1e-300),
                    "N={n} tau={tau} c={c}"
                );
            }
        }
    }
}

#[test]
fn within_view_negatives_past_the_threshold_give_the_etf() {
    // l'(0) = 2t sigmoid(b-t) - t (N - 2 - 2WN) sigmoid(-b - t/(N-1)) >= 0 once W >= (N-2)/(2N).
    for n in [4usize, 10, 64, 1000] {
        let w_star = (n as f64 - 2.0) / (2.0 * n as f64);
        for (t, b) in [
            (0.1, 0.1),
            (1.0, 1.0),
            (5.0, -3.0),
            (1.0, -20.0),
            (20.0, 0.0),
        ] {
            let o = optimum(&ZooLoss::sigmoid(t, b, w_star).unwrap(), n, None).unwrap();
            assert_eq!(o.phase, Phase::Etf, "N={n} t={t} b={b}");
            assert_eq!(o.excess_separation, Some(false));
            assert_eq!(o.thm53_condition, None);
        }
        // Just below the threshold some (t, b) still separate the negatives too far.
        let o = optimum(
            &ZooLoss::sigmoid(1.0, -20.0, 0.99 * w_star).unwrap(),
            n,
            None,
        )
        .unwrap();
        assert_ne!(o.phase, Phase::Etf, "N={n}");
        assert_eq!(o.excess_separation, Some(true));
    }
    // W pulls c* down monotonically (N = 16, t = b = 1).
    let mut last = f64::INFINITY;
    for k in 0..=10 {
        let w = 0.05 * k as f64;
        let o = optimum(&ZooLoss::sigmoid(1.0, 1.0, w).unwrap(), 16, None).unwrap();
        assert!(o.c <= last, "W = {w}");
        last = o.c;
    }
    assert_eq!(last, 0.0);
}

/// Random unit-norm perturbations of the optimal CCEM never lower the dense loss: the CCEM
/// optimum is a local minimum over all embeddings too (SPEC §9.5), here for the sigmoid loss with
/// within-view terms in its intermediate phase; the spectral loss is lower off the CCEM.
#[test]
fn off_ccem_checks() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let n = 10;
    let d = 12;
    for w in [0.05, 0.15] {
        let loss = ZooLoss::sigmoid(1.0, 1.0, w).unwrap();
        let o = optimum(&loss, n, None).unwrap();
        assert_eq!(o.phase, Phase::Intermediate, "W = {w}");
        let (u, v) = Ccem::from_c(n, d, o.c).unwrap().build_rotated(3);
        let p = (0.0, 1.0, 1.0, w);
        let base = dense("sigmoid", &u, &v, p);
        assert!((base - o.loss).abs() < 1e-12);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for _ in 0..100 {
            let mut pu = u.clone();
            let mut pv = v.clone();
            for m in [&mut pu, &mut pv] {
                m.mapv_inplace(|x| {
                    let g: f64 = StandardNormal.sample(&mut rng);
                    x + 1e-3 * g
                });
                for mut r in m.rows_mut() {
                    let norm = r.dot(&r).sqrt();
                    r /= norm;
                }
            }
            assert!(dense("sigmoid", &pu, &pv, p) >= base - 1e-12, "W = {w}");
        }
    }
    // Spectral: u_i = v_i orthonormal reaches -2, below the CCEM optimum (the ETF).
    let o = optimum(&ZooLoss::spectral(), n, None).unwrap();
    assert_eq!(o.phase, Phase::Etf);
    assert!((o.loss - (-2.0 + 1.0 / 81.0)).abs() < 1e-15);
    let eye = Array2::<f64>::eye(n);
    let off = dense("spectral", &eye, &eye, (0.0, 0.0, 0.0, 0.0));
    assert!((off - o.off_ccem_loss.unwrap()).abs() < 1e-14);
    assert!(off < o.loss);
    assert_eq!(o.global_optimum, None);
    assert_eq!(o.thm53_condition, Some(false));
}

#[test]
fn mini_batches_and_errors() {
    // Spectral is a mean over pairs: every batch size has the full-batch optimum.
    let full = optimum(&ZooLoss::spectral(), 12, None).unwrap();
    let b3 = optimum(&ZooLoss::spectral(), 12, Some(3)).unwrap();
    assert_eq!((b3.c, b3.loss, b3.w), (full.c, full.loss, Some(1.0)));
    // Sigmoid with within-view terms: B = N is the full batch, smaller B pushes toward the ETF.
    let loss = ZooLoss::sigmoid(1.0, 1.0, 0.1).unwrap();
    let f = optimum(&loss, 16, None).unwrap();
    assert_eq!(optimum(&loss, 16, Some(16)).unwrap().c, f.c);
    assert!(optimum(&loss, 16, Some(4)).unwrap().c < f.c);
    // InfoNCE-based losses have no expected mini-batch form; the error names the loss.
    for name in ["simclr", "dcl", "dhel", "infonce"] {
        let l = ZooLoss::new(name, Some(0.5), None, None, None).unwrap();
        let e = optimum(&l, 16, Some(4)).unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
    }
    assert!(optimum(&loss, 16, Some(1)).is_err());
    assert!(optimum(&loss, 16, Some(17)).is_err());
    assert!(optimum(&loss, 1, None).is_err());
    // Bad parameters name the loss and the parameter.
    for (e, loss, param) in [
        (ZooLoss::simclr(0.0).unwrap_err(), "simclr", "tau"),
        (ZooLoss::dcl(f64::NAN).unwrap_err(), "dcl", "tau"),
        (ZooLoss::dhel(-1.0).unwrap_err(), "dhel", "tau"),
        (
            ZooLoss::infonce(0.1, -0.5).unwrap_err(),
            "infonce",
            "within_view",
        ),
        (
            ZooLoss::sigmoid(1.0, 1.0, -1.0).unwrap_err(),
            "sigmoid",
            "within_view",
        ),
        (
            ZooLoss::sigmoid(-1.0, 1.0, 0.0).unwrap_err(),
            "sigmoid",
            "t",
        ),
        (
            ZooLoss::new("spectral", Some(1.0), None, None, None).unwrap_err(),
            "spectral",
            "tau",
        ),
        (
            ZooLoss::new("dhel", Some(1.0), None, None, Some(1.0)).unwrap_err(),
            "dhel",
            "within_view",
        ),
        (
            ZooLoss::new("simclr", None, None, None, None).unwrap_err(),
            "simclr",
            "tau",
        ),
    ] {
        let s = e.to_string();
        assert!(s.contains(loss) && s.contains(param), "{s}");
    }
    assert!(ZooLoss::new("ntxent", None, None, None, None).is_err());
    for name in NAMES {
        assert!(ZooLoss::new(name, None, None, None, None).is_err() || name == "spectral");
    }
}

#[test]
fn serialised_keys() {
    let o = optimum(&ZooLoss::sigmoid(1.0, 1.0, 0.0).unwrap(), 16, Some(8)).unwrap();
    let j = serde_json::to_value(&o).unwrap();
    for key in [
        "objective",
        "t",
        "b",
        "within_view",
        "n",
        "batch",
        "w",
        "c",
        "delta",
        "s_pos",
        "s_neg",
        "s_within",
        "loss",
        "phase",
        "alignment_slack",
        "excess_separation",
        "thm53_condition",
        "global_optimum",
        "off_ccem_loss",
    ] {
        assert!(j.get(key).is_some(), "{key} in {j}");
    }
    assert_eq!(j["objective"], "sigmoid");
    assert_eq!(j["within_view"], 0.0);
    let d = optimum(&ZooLoss::sigmoid(0.0, 1.0, 0.5).unwrap(), 8, None).unwrap();
    assert_eq!(d.phase, Phase::Degenerate);
    let j = serde_json::to_value(&d).unwrap();
    assert!(j["c"].is_null() && j["excess_separation"].is_null());
    let s =
        serde_json::to_value(optimum(&ZooLoss::simclr(0.2).unwrap(), 8, None).unwrap()).unwrap();
    assert!(s["within_view"].is_null() && s["tau"] == 0.2);
}
