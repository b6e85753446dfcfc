use super::*;

/// SPEC.md §3 table of worked values (N, t, b, c*, delta*, s_+*, s_-*, l(c*), phase).
/// (N, t, b, c*, delta*, s_+*, s_-*, l(c*), phase)
type Worked = (usize, f64, f64, f64, f64, f64, f64, f64, Phase);

const WORKED: [Worked; 4] = [
    (
        10,
        1.0,
        1.0,
        0.4630146707,
        0.9285732439,
        0.0739706585,
        -0.5226797073,
        3.0355556342,
        Phase::Intermediate,
    ),
    (
        10,
        2.0,
        2.0,
        0.0,
        0.0,
        1.0,
        -0.1111111111,
        1.6191453374,
        Phase::Etf,
    ),
    (
        10,
        0.5,
        0.5,
        1.0,
        f64::INFINITY,
        -1.0,
        -1.0,
        4.1326168752,
        Phase::Antipodal,
    ),
    (
        8,
        3.0,
        1.0,
        0.2307285302,
        0.5476597664,
        0.5385429396,
        -0.3406244545,
        1.3023972152,
        Phase::Intermediate,
    ),
];

#[test]
fn spec_worked_values_to_1e9() {
    for &(n, t, b, c, delta, sp, sn, loss, phase) in &WORKED {
        let o = Optimum::sigmoid(n, t, b).unwrap();
        // The table is printed with 10 decimals: agreement to 1e-9 is what it can show.
        assert!((o.c_star - c).abs() < 1e-9, "c* {n} {t} {b}: {}", o.c_star);
        if delta.is_infinite() {
            assert!(o.delta_star.is_infinite());
        } else {
            assert!(
                (o.delta_star - delta).abs() < 1e-9,
                "delta* {}",
                o.delta_star
            );
        }
        assert!((o.s_pos - sp).abs() < 1e-9);
        assert!((o.s_neg - sn).abs() < 1e-9);
        assert!((o.loss - loss).abs() < 1e-9, "loss {}", o.loss);
        assert_eq!(o.phase, phase);
    }
}

#[test]
fn c_star_equals_brute_force_minimum_on_a_fine_grid() {
    let cases = [
        (4, 0.3, 0.3),
        (10, 1.0, 1.0),
        (8, 3.0, 1.0),
        (50, 2.0, 2.0),
        (20, 1.5, -0.5),
        (6, 4.0, 0.0),
        (30, 0.7, 2.5),
    ];
    for &(n, t, b) in &cases {
        let o = Optimum::sigmoid(n, t, b).unwrap();
        let m = 200_000;
        let (mut best_c, mut best_l) = (0.0, f64::INFINITY);
        for k in 0..=m {
            let c = k as f64 / m as f64;
            let l = ccem_loss(n, t, b, c);
            if l < best_l {
                best_l = l;
                best_c = c;
            }
        }
        assert!(
            (o.c_star - best_c).abs() <= 2.0 / m as f64,
            "{n} {t} {b}: {} vs {best_c}",
            o.c_star
        );
        assert!(o.loss <= best_l + 1e-12);
    }
}

#[test]
fn tied_threshold_formulas_agree_with_general_conditions() {
    for n in 4..=200 {
        let te = etf_threshold_tied(n).unwrap();
        // The general ETF condition l'(0) >= 0 flips exactly at the closed form.
        if te > 1e-6 {
            assert!(ccem_loss_derivative(n, te * (1.0 + 1e-9), te * (1.0 + 1e-9), 0.0) >= 0.0);
            assert!(ccem_loss_derivative(n, te * (1.0 - 1e-7), te * (1.0 - 1e-7), 0.0) < 0.0);
            assert_eq!(
                Optimum::sigmoid(n, te * 1.0001, te * 1.0001).unwrap().phase,
                Phase::Etf
            );
            assert_ne!(
                Optimum::sigmoid(n, te * 0.9999, te * 0.9999).unwrap().phase,
                Phase::Etf
            );
        }
        if n >= 5 {
            let ta = antipodal_threshold_tied(n).unwrap();
            assert!(ccem_loss_derivative(n, ta * (1.0 - 1e-9), ta * (1.0 - 1e-9), 1.0) <= 0.0);
            assert!(ccem_loss_derivative(n, ta * (1.0 + 1e-7), ta * (1.0 + 1e-7), 1.0) > 0.0);
            assert_eq!(
                Optimum::sigmoid(n, ta * 0.9999, ta * 0.9999).unwrap().phase,
                Phase::Antipodal
            );
            assert_ne!(
                Optimum::sigmoid(n, ta * 1.0001, ta * 1.0001).unwrap().phase,
                Phase::Antipodal
            );
        }
        // The numeric boundary search of a general bias mode finds the same points.
        let r = BiasMode::Relative(1.0).etf_boundaries(n);
        if te > 0.0 {
            assert_eq!(r.len(), 1, "n = {n}");
            assert!((r[0] - te).abs() < 1e-12 * te.max(1.0), "{} {te}", r[0]);
        }
    }
}

#[test]
fn small_n_and_degenerate_cases() {
    for &t in &[0.01, 1.0, 100.0, 1e4] {
        assert_eq!(Optimum::sigmoid(2, t, t).unwrap().phase, Phase::Etf);
        assert_eq!(Optimum::sigmoid(3, t, t).unwrap().phase, Phase::Etf);
    }
    assert_eq!(
        Optimum::sigmoid(3, 1.0, -10.0).unwrap().phase,
        Phase::Antipodal
    );
    let d = Optimum::sigmoid(10, 0.0, 1.0).unwrap();
    assert_eq!(d.phase, Phase::Degenerate);
    assert!(d.loss.is_finite());
}

#[test]
fn extreme_parameters_stay_finite() {
    for &(n, t, b) in &[
        (10, 1e4, 1e4),
        (10, 1e4, -1e4),
        (100000, 1e4, 0.0),
        (4, 1e-8, 1e-8),
        (1000, 50.0, 50.0),
    ] {
        let o = Optimum::sigmoid(n, t, b).unwrap();
        assert!(
            o.loss.is_finite() && o.s_pos.is_finite() && o.s_neg.is_finite(),
            "{n} {t} {b}: {o:?}"
        );
        assert!((0.0..=1.0).contains(&o.c_star));
    }
}

#[test]
fn bad_arguments_are_errors() {
    assert!(Optimum::sigmoid(1, 1.0, 1.0).is_err());
    assert!(Optimum::sigmoid(10, -1.0, 1.0).is_err());
    assert!(Optimum::sigmoid(10, f64::NAN, 1.0).is_err());
    assert!(Optimum::sigmoid(10, 1.0, f64::INFINITY).is_err());
    assert!(Optimum::infonce(10, 0.0).is_err());
    assert!(Optimum::infonce(10, -1.0).is_err());
}

#[test]
fn infonce_etf_loss_matches_direct_formula() {
    let (n, tau) = (7, 0.3);
    let o = Optimum::infonce(n, tau).unwrap();
    let pos = 1.0 / tau;
    let neg = -1.0 / ((n - 1) as f64 * tau);
    let row = -(pos - (pos.exp() + (n - 1) as f64 * neg.exp()).ln());
    assert!((o.loss - 2.0 * row).abs() < 1e-12);
    assert!(Optimum::infonce(n, 1e-3).unwrap().loss.is_finite());
}

proptest::proptest! {
    #[test]
    fn derivative_matches_finite_difference(n in 2usize..200, t in 0.01f64..20.0, b in -20.0f64..20.0, c in 0.01f64..0.99) {
        let h = 1e-6;
        let fd = (ccem_loss(n, t, b, c + h) - ccem_loss(n, t, b, c - h)) / (2.0 * h);
        let an = ccem_loss_derivative(n, t, b, c);
        proptest::prop_assert!((fd - an).abs() <= 1e-5 * (1.0 + an.abs()), "fd {} an {}", fd, an);
        let fd2 = (ccem_loss_derivative(n, t, b, c + h) - ccem_loss_derivative(n, t, b, c - h)) / (2.0 * h);
        let an2 = ccem_loss_second_derivative(n, t, b, c);
        proptest::prop_assert!((fd2 - an2).abs() <= 1e-4 * (1.0 + an2.abs()), "fd2 {} an2 {}", fd2, an2);
    }

    #[test]
    fn optimum_is_stationary_or_at_a_boundary(n in 2usize..500, t in 0.001f64..100.0, b in -50.0f64..50.0) {
        let o = Optimum::sigmoid(n, t, b).unwrap();
        let g = ccem_loss_derivative(n, t, b, o.c_star);
        match o.phase {
            Phase::Etf => proptest::prop_assert!(g >= 0.0),
            Phase::Antipodal => proptest::prop_assert!(g <= 0.0),
            Phase::Intermediate => proptest::prop_assert!(g.abs() <= 1e-9 * t * n as f64),
            Phase::Degenerate => proptest::prop_assert!(false),
        }
    }
}
