//! The optimum of SPEC.md §3 at large `N` and `t` (SPEC §3.1): SigLIP-like values (illustrative;
//! google/siglip-base-patch16-224 has t = 117.33, b = 12.93), and scales where both sigmoids of
//! `l'` underflow.

use ccem::theory::{ccem_loss, Optimum, Phase};

/// The root of `l'` by an independent route: `l'(c*) = 0` is `log 2 + log sigmoid(a) =
/// log(N-2) + log sigmoid(beta)`, and with `log sigmoid(x) = x - log1p(e^x)` it is the linear
/// equation `k c = r + log1p(e^a) - log1p(e^beta)` with `k = t (3N-4)/(N-1)` and
/// `r = log((N-2)/2) - 2b + t (N-2)/(N-1)`, whose right side moves with `c` only through the
/// `log1p` terms. When `a, beta < 0` at the root the map is a contraction (factor
/// `(2 sigmoid(a) + sigmoid(beta)) / 3 < 1/2`), so the iteration converges to machine precision.
fn fixed_point_root(n: usize, t: f64, b: f64) -> f64 {
    let nf = n as f64;
    let nm1 = nf - 1.0;
    let k = t * (3.0 * nf - 4.0) / nm1;
    let r = ((nf - 2.0) / 2.0).ln() - 2.0 * b + t * (nf - 2.0) / nm1;
    let mut c = r / k;
    for _ in 0..200 {
        let a = b - t + 2.0 * t * c;
        let beta = -b - t / nm1 - t * c * (nf - 2.0) / nm1;
        assert!(
            a < 0.0 && beta < 0.0,
            "the test's iteration needs a, beta < 0"
        );
        let next = (r + a.exp().ln_1p() - beta.exp().ln_1p()) / k;
        if next == c {
            break;
        }
        c = next;
    }
    c
}

#[test]
fn siglip_trained_values_are_solved_to_machine_precision() {
    // Illustrative SigLIP-like values t = 117.8, b = 12.9 (google/siglip-base-patch16-224 has
    // exp(logit_scale) = 117.33, logit_bias = -12.93), batch 32768.
    let (n, t, b) = (32768, 117.8, 12.9);
    let o = Optimum::sigmoid(n, t, b).unwrap();
    assert_eq!(o.phase, Phase::Intermediate);
    let want = fixed_point_root(n, t, b);
    assert!(
        (o.c_star - want).abs() <= 4e-16,
        "c* = {:.17} vs {want:.17}",
        o.c_star
    );
    // The loss (about 1e-16) keeps full relative precision: compare with e^a + (N-1) e^beta
    // corrected to second order.
    let nm1 = (n - 1) as f64;
    let a = b - t + 2.0 * t * o.c_star;
    let beta = -b - t / nm1 - t * o.c_star * (n as f64 - 2.0) / nm1;
    let sp = |x: f64| x.exp() - x.exp().powi(2) / 2.0;
    let direct = sp(a) + nm1 * sp(beta);
    assert!(o.loss > 1e-18 && o.loss < 1e-14, "{}", o.loss);
    assert!(((o.loss - direct) / direct).abs() < 1e-12);
    assert!((ccem_loss(n, t, b, o.c_star) - o.loss).abs() == 0.0);
}

#[test]
fn underflowing_sigmoids_still_give_the_right_phase_and_root() {
    // At t = 2000, b = 1000 every sigmoid of l'(c) underflows to 0 near the root; l' alone
    // would read 0 at c = 0 and call the optimum the ETF.
    for &(n, t, b) in &[
        (32768usize, 2000.0, 1000.0),
        (4096, 5000.0, 100.0),
        (100, 1e4, 0.0),
    ] {
        let o = Optimum::sigmoid(n, t, b).unwrap();
        let want = fixed_point_root(n, t, b);
        assert_eq!(o.phase, Phase::Intermediate, "{n} {t} {b}");
        assert!(
            (o.c_star - want).abs() <= 1e-15,
            "{n} {t} {b}: {} vs {want}",
            o.c_star
        );
    }
}

#[test]
fn moderate_values_agree_with_the_fixed_point_too() {
    for &(n, t, b) in &[(10usize, 1.0, 1.0), (8, 3.0, 1.0), (1000, 20.0, 5.0)] {
        let o = Optimum::sigmoid(n, t, b).unwrap();
        if o.phase == Phase::Intermediate {
            let a = b - t + 2.0 * t * o.c_star;
            if a < 0.0 {
                let want = fixed_point_root(n, t, b);
                assert!((o.c_star - want).abs() < 1e-13, "{n} {t} {b}");
            }
        }
    }
}
