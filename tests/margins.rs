//! Margins (SPEC.md §7) on constructed embeddings, against independent computations.

use ccem::geometry::{ccem_embedding, simplex_etf};
use ccem::geometry::{margin_bound, margins, QuantileLevel};
use ccem::loss::{normalize_rows, BlockOptions};
use ndarray::Array2;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn opts(block: usize, parallel: bool) -> BlockOptions {
    BlockOptions { block, parallel }
}

fn random_unit(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::<f64>::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng));
    normalize_rows(x.view(), "X").unwrap().u
}

/// Positives and negatives of `U V^T` by explicit loops (no blocking, no GEMM).
fn split(u: &Array2<f64>, v: &Array2<f64>) -> (Vec<f64>, Vec<f64>) {
    let n = u.nrows();
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in 0..n {
            let s: f64 = (0..u.ncols()).map(|k| u[[i, k]] * v[[j, k]]).sum();
            if i == j {
                pos.push(s);
            } else {
                neg.push(s);
            }
        }
    }
    (pos, neg)
}

/// The textbook linear-interpolation quantile: sort, `h = (M - 1) q`, interpolate.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut x = xs.to_vec();
    x.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let h = (x.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    x[lo] + (h - lo as f64) * (x[hi] - x[lo])
}

#[test]
fn simplex_etf_reaches_the_bound() {
    for n in [2usize, 3, 4, 7, 16] {
        let x = simplex_etf(n);
        let m = margins(x.view(), x.view(), QuantileLevel::default(), opts(3, true)).unwrap();
        let nm1 = (n - 1) as f64;
        assert!((m.margin - n as f64 / (2.0 * nm1)).abs() < 1e-12, "{n}");
        assert!((m.margin - m.margin_bound).abs() < 1e-12);
        assert!((m.margin_bias - (n as f64 - 2.0) / (2.0 * nm1)).abs() < 1e-12);
        // Every positive is 1 and every negative -1/(N-1): each quantile is exact.
        assert!((m.margin_quantile - m.margin).abs() < 1e-12);
        assert_eq!(m.margin_quantile_p, 0.05);
    }
}

#[test]
fn rotated_padded_ccem_has_margin_one_minus_c_times_bound() {
    // On the CCEM, s+ - s- = (1 - c) N / (N - 1), so m = (1 - c) N / (2 (N - 1)).
    for &(n, d, delta) in &[(5usize, 9usize, 0.0), (6, 6, 0.7), (10, 13, 2.0)] {
        let (u, v) = ccem_embedding(n, d, delta, Some(3)).unwrap();
        let c = ccem::theory::c_of_delta(delta);
        let m = margins(u.view(), v.view(), QuantileLevel::default(), opts(4, false)).unwrap();
        assert!(
            (m.margin - (1.0 - c) * margin_bound(n)).abs() < 1e-12,
            "{n} {d} {delta}: {}",
            m.margin
        );
        let (s_pos, s_neg) = (ccem::theory::s_pos_of_c(c), ccem::theory::s_neg_of_c(n, c));
        assert!((m.margin_bias - (s_pos + s_neg) / 2.0).abs() < 1e-12);
    }
}

#[test]
fn cross_polytope_has_margin_one_half() {
    // N = 2d: u_i = v_i = +-e_k. Positives 1, negatives 0 or -1.
    for d in [2usize, 3, 5] {
        let n = 2 * d;
        let x = Array2::from_shape_fn((n, d), |(i, k)| {
            if i % d == k {
                if i < d {
                    1.0
                } else {
                    -1.0
                }
            } else {
                0.0
            }
        });
        let m = margins(x.view(), x.view(), QuantileLevel::default(), opts(5, true)).unwrap();
        assert!((m.margin - 0.5).abs() < 1e-15, "{d}: {}", m.margin);
        assert!((m.margin_bias - 0.5).abs() < 1e-15);
        assert!(m.margin < m.margin_bound);
    }
}

#[test]
fn random_pairs_match_an_independent_computation() {
    for (k, &(n, d)) in [
        (2usize, 1usize),
        (3, 2),
        (9, 4),
        (37, 3),
        (64, 16),
        (101, 7),
    ]
    .iter()
    .enumerate()
    {
        let u = random_unit(n, d, 10 + k as u64);
        let v = random_unit(n, d, 100 + k as u64);
        let (pos, neg) = split(&u, &v);
        let pmin = pos.iter().cloned().fold(f64::INFINITY, f64::min);
        let nmax = neg.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        for &p in &[0.0, 0.01, 0.05, 0.25, 0.5] {
            let level = QuantileLevel::new(p).unwrap();
            for o in [opts(1, false), opts(8, true), opts(1000, true)] {
                let m = margins(u.view(), v.view(), level, o).unwrap();
                assert!((m.margin - (pmin - nmax) / 2.0).abs() < 1e-12);
                assert!((m.margin_bias - (pmin + nmax) / 2.0).abs() < 1e-12);
                let want = (quantile(&pos, p) - quantile(&neg, 1.0 - p)) / 2.0;
                assert!(
                    (m.margin_quantile - want).abs() < 1e-6,
                    "N {n} d {d} p {p}: {} vs {want}",
                    m.margin_quantile
                );
                assert_eq!(m.quantile_error, 0.0);
            }
        }
    }
}

#[test]
fn quantile_margin_with_p_zero_is_the_margin_and_the_result_ignores_threads() {
    let u = random_unit(50, 6, 1);
    let v = random_unit(50, 6, 2);
    let m0 = margins(
        u.view(),
        v.view(),
        QuantileLevel::new(0.0).unwrap(),
        opts(7, true),
    )
    .unwrap();
    assert_eq!(m0.margin_quantile, m0.margin);
    let a = margins(u.view(), v.view(), QuantileLevel::default(), opts(7, true)).unwrap();
    let b = margins(u.view(), v.view(), QuantileLevel::default(), opts(7, false)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn bad_input_is_an_error() {
    let u = random_unit(5, 3, 1);
    let v = random_unit(4, 3, 2);
    assert!(margins(u.view(), v.view(), QuantileLevel::default(), opts(4, true)).is_err());
    let mut w = random_unit(5, 3, 3);
    w[[2, 1]] = f64::NAN;
    assert!(margins(u.view(), w.view(), QuantileLevel::default(), opts(4, true)).is_err());
    let one = random_unit(1, 3, 3);
    assert!(margins(
        one.view(),
        one.view(),
        QuantileLevel::default(),
        opts(4, true)
    )
    .is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// No embedding of unit vectors beats `N / (2 (N - 1))`, and the quantile margin relaxes the
    /// margin (`>=`).
    #[test]
    fn margin_never_exceeds_the_bound(n in 2usize..14, d in 1usize..9, seed in 0u64..1_000_000,
                                      same in any::<bool>(), p in 0.0f64..0.5) {
        let u = random_unit(n, d, seed);
        let v = if same { u.clone() } else { random_unit(n, d, seed ^ 0xdead_beef) };
        let m = margins(u.view(), v.view(), QuantileLevel::new(p).unwrap(), opts(3, true)).unwrap();
        prop_assert!(m.margin <= margin_bound(n) + 1e-12);
        prop_assert!(m.margin_quantile >= m.margin - 1e-15);
        prop_assert!(m.margin + m.margin_bias <= 1.0 + 1e-12);
    }
}
