//! Finite-difference checks of every analytic gradient of the losses (SPEC.md §1), the blocked
//! path against the dense one, and the numerics at extreme parameters.

use super::driver::{value as blocked_loss, value_grad as blocked_loss_grad};
use super::embedding::{backprop_normalization, similarity};
use super::*;
use ndarray::{Array2, ArrayView2};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn gaussian(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng))
}

fn unit_rows(n: usize, d: usize, seed: u64) -> Array2<f64> {
    normalize_rows(gaussian(n, d, seed).view(), "X").unwrap().u
}

/// Central finite differences of `f` at `x`, one entry at a time.
fn fd_grad(x: &Array2<f64>, h: f64, f: impl Fn(&Array2<f64>) -> f64) -> Array2<f64> {
    let mut g = Array2::zeros(x.raw_dim());
    let mut xp = x.clone();
    for idx in 0..x.len() {
        let (i, j) = (idx / x.ncols(), idx % x.ncols());
        let orig = xp[[i, j]];
        xp[[i, j]] = orig + h;
        let fp = f(&xp);
        xp[[i, j]] = orig - h;
        let fm = f(&xp);
        xp[[i, j]] = orig;
        g[[i, j]] = (fp - fm) / (2.0 * h);
    }
    g
}

/// Largest entry-wise error relative to the gradient's scale (at least `floor`, so that a
/// gradient that is nearly zero everywhere is not compared against finite-difference round-off).
fn rel_err_floor(a: ArrayView2<f64>, b: ArrayView2<f64>, floor: f64) -> f64 {
    let scale = b.iter().fold(floor, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b.iter())
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Largest entry-wise error relative to the gradient's scale.
fn rel_err(a: ArrayView2<f64>, b: ArrayView2<f64>) -> f64 {
    let scale = b.iter().fold(1e-8_f64, |m, x| m.max(x.abs()));
    a.iter()
        .zip(b.iter())
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn losses(t: f64, b: f64, tau: f64) -> [Loss; 2] {
    [Loss::sigmoid(t, b).unwrap(), Loss::infonce(tau).unwrap()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// dL/dS against finite differences in S, small and large t / small tau.
    #[test]
    fn grad_s_matches_finite_differences(n in 2usize..7, seed in 0u64..1000, t in prop_oneof![0.05f64..3.0, 10.0f64..60.0], b in -5.0f64..5.0, tau in prop_oneof![0.05f64..2.0, 0.02f64..0.05]) {
        let s = gaussian(n, n, seed).mapv(|x| x.tanh());
        for loss in losses(t, b, tau) {
            let mut g = Array2::zeros((n, n));
            let v = loss.value_grad_s(s.view(), g.view_mut());
            prop_assert!((v - loss.value_s(s.view())).abs() <= 1e-12 * (1.0 + v.abs()));
            let h = 1e-6 / t.max(1.0 / tau).max(1.0);
            let fd = fd_grad(&s, h, |x| loss.value_s(x.view()));
            // Entries of G are bounded by t/N (sigmoid) or 2/(N tau) (InfoNCE).
            let floor = 1e-2 * t.max(1.0 / tau) / n as f64;
            let err = rel_err_floor(g.view(), fd.view(), floor);
            prop_assert!(err < 1e-5, "{:?}: {}", loss, err);
        }
    }

    /// dL/dU and dL/dV (not normalised) against finite differences.
    #[test]
    fn grad_uv_matches_finite_differences(n in 2usize..6, d in 1usize..6, seed in 0u64..1000, t in prop_oneof![0.05f64..3.0, 10.0f64..40.0], b in -3.0f64..3.0, tau in 0.05f64..2.0) {
        let u = unit_rows(n, d, seed);
        let v = unit_rows(n, d, seed + 1);
        for loss in losses(t, b, tau) {
            let lg = loss_grad_uv(&loss, u.view(), v.view());
            let h = 1e-6 / t.max(1.0 / tau).max(1.0);
            let fu = fd_grad(&u, h, |x| loss.value_s(similarity(x.view(), v.view()).view()));
            let fv = fd_grad(&v, h, |y| loss.value_s(similarity(u.view(), y.view()).view()));
            let floor = 1e-2 * t.max(1.0 / tau);
            prop_assert!(rel_err_floor(lg.du.view(), fu.view(), floor) < 1e-5);
            prop_assert!(rel_err_floor(lg.dv.view(), fv.view(), floor) < 1e-5);
        }
    }

    /// The gradient through the row normalisation against finite differences in the raw rows.
    #[test]
    fn grad_through_normalization_matches_finite_differences(n in 2usize..6, d in 2usize..6, seed in 0u64..1000, t in 0.1f64..20.0, b in -3.0f64..3.0, tau in 0.05f64..2.0, scale in 0.3f64..3.0) {
        let x = gaussian(n, d, seed) * scale;
        let y = gaussian(n, d, seed + 7) * scale;
        let value = |loss: &Loss, x: &Array2<f64>, y: &Array2<f64>| {
            let u = normalize_rows(x.view(), "X").unwrap().u;
            let v = normalize_rows(y.view(), "Y").unwrap().u;
            loss.value_s(similarity(u.view(), v.view()).view())
        };
        for loss in losses(t, b, tau) {
            let lg = loss_grad_raw(&loss, x.view(), y.view()).unwrap();
            let h = 1e-6 * scale / t.max(1.0 / tau).max(1.0);
            let fx = fd_grad(&x, h, |xx| value(&loss, xx, &y));
            let fy = fd_grad(&y, h, |yy| value(&loss, &x, yy));
            let floor = 1e-2 * t.max(1.0 / tau) / scale;
            prop_assert!(rel_err_floor(lg.du.view(), fx.view(), floor) < 1e-4, "{}", rel_err(lg.du.view(), fx.view()));
            prop_assert!(rel_err_floor(lg.dv.view(), fy.view(), floor) < 1e-4);
        }
    }

    /// Blocked value and gradient equal the dense ones, for any block size, in parallel or not.
    #[test]
    fn blocked_equals_dense(n in 2usize..40, d in 1usize..12, block in 1usize..17, seed in 0u64..1000, t in 0.1f64..30.0, b in -5.0f64..5.0, tau in 0.01f64..2.0) {
        let u = unit_rows(n, d, seed);
        let v = unit_rows(n, d, seed + 3);
        for loss in losses(t, b, tau) {
            let dense = loss_grad_uv(&loss, u.view(), v.view());
            for parallel in [false, true] {
                let opts = BlockOptions { block, parallel };
                let bl = blocked_loss_grad(&loss, u.view(), v.view(), opts);
                let tol = 1e-12 * (1.0 + dense.value.abs());
                prop_assert!((bl.value - dense.value).abs() <= tol, "{:?} {} {}", loss, bl.value, dense.value);
                prop_assert!((blocked_loss(&loss, u.view(), v.view(), opts) - dense.value).abs() <= tol);
                prop_assert!(rel_err(bl.du.view(), dense.du.view()) < 1e-12);
                prop_assert!(rel_err(bl.dv.view(), dense.dv.view()) < 1e-12);
            }
        }
    }
}

#[test]
fn blocked_equals_dense_across_many_column_chunks() {
    // N larger than the column and row chunks of the blocked path, with a ragged last block.
    let u = unit_rows(700, 6, 21);
    let v = unit_rows(700, 6, 22);
    for loss in losses(4.0, 2.0, 0.05) {
        let dense = loss_grad_uv(&loss, u.view(), v.view());
        let bl = blocked_loss_grad(
            &loss,
            u.view(),
            v.view(),
            BlockOptions {
                block: 96,
                parallel: true,
            },
        );
        assert!(
            (bl.value - dense.value).abs() <= 1e-12 * dense.value.abs(),
            "{loss:?}"
        );
        assert!(rel_err(bl.du.view(), dense.du.view()) < 1e-12);
        assert!(rel_err(bl.dv.view(), dense.dv.view()) < 1e-12);
        let value = blocked_loss(
            &loss,
            u.view(),
            v.view(),
            BlockOptions {
                block: 96,
                parallel: true,
            },
        );
        assert!((value - dense.value).abs() <= 1e-12 * dense.value.abs());
    }
}

#[test]
fn blocked_is_bitwise_independent_of_thread_count() {
    let u = unit_rows(600, 16, 1);
    let v = unit_rows(600, 16, 2);
    for loss in losses(5.0, 5.0, 0.1) {
        let opts = BlockOptions {
            block: 32,
            parallel: true,
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let a = one.install(|| blocked_loss_grad(&loss, u.view(), v.view(), opts));
        let b = three.install(|| blocked_loss_grad(&loss, u.view(), v.view(), opts));
        let c = blocked_loss_grad(
            &loss,
            u.view(),
            v.view(),
            BlockOptions {
                block: 32,
                parallel: false,
            },
        );
        let bits = |x: &ndarray::Array2<f64>| x.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
        for other in [&b, &c] {
            assert_eq!(a.value.to_bits(), other.value.to_bits());
            assert_eq!(bits(&a.du), bits(&other.du), "dL/dU differs");
            assert_eq!(bits(&a.dv), bits(&other.dv), "dL/dV differs");
        }
    }
}

#[test]
fn extreme_parameters_give_finite_values_and_gradients() {
    let u = unit_rows(20, 5, 11);
    let v = unit_rows(20, 5, 12);
    for loss in [
        Loss::sigmoid(1e4, 1e4).unwrap(),
        Loss::sigmoid(1e4, -1e4).unwrap(),
        Loss::sigmoid(1e6, 0.0).unwrap(),
        Loss::infonce(1e-3).unwrap(),
        Loss::infonce(1e-6).unwrap(),
    ] {
        let lg = loss_grad_uv(&loss, u.view(), v.view());
        assert!(lg.value.is_finite(), "{loss:?}");
        assert!(
            lg.du.iter().chain(lg.dv.iter()).all(|x| x.is_finite()),
            "{loss:?}"
        );
        let bl = blocked_loss_grad(
            &loss,
            u.view(),
            v.view(),
            BlockOptions {
                block: 7,
                parallel: true,
            },
        );
        assert!(bl.value.is_finite());
    }
}

#[test]
fn sigmoid_loss_at_perfect_alignment_is_small_for_large_t() {
    // u_i = v_i = ETF: positives at 1, negatives at -1/(N-1); with t = b = 100 the loss is tiny.
    let n = 5;
    let mut s = Array2::from_elem((n, n), -1.0 / (n as f64 - 1.0));
    s.diag_mut().fill(1.0);
    assert!(sigmoid_loss(s.view(), 100.0, 0.0) < 1e-10);
}

#[test]
fn normalization_backprop_is_orthogonal_to_the_row() {
    let x = gaussian(6, 4, 3);
    let nz = normalize_rows(x.view(), "X").unwrap();
    let du = gaussian(6, 4, 4);
    let dx = backprop_normalization(nz.u.view(), nz.norms.view(), du.view());
    for (g, u) in dx.rows().into_iter().zip(nz.u.rows()) {
        assert!(g.dot(&u).abs() < 1e-12);
    }
}

#[test]
fn bad_rows_and_parameters_are_errors() {
    let mut x = gaussian(4, 3, 1);
    x.row_mut(2).fill(0.0);
    assert!(matches!(
        normalize_rows(x.view(), "U"),
        Err(crate::Error::ZeroRow { row: 2, .. })
    ));
    assert!(Loss::sigmoid(-1.0, 0.0).is_err());
    assert!(Loss::sigmoid(f64::NAN, 0.0).is_err());
    assert!(Loss::infonce(0.0).is_err());
    assert!(Loss::sigmoid_relative(2.0, f64::INFINITY).is_err());
    assert_eq!(
        Loss::sigmoid_relative(2.0, 0.5).unwrap(),
        Loss::sigmoid(2.0, 1.0).unwrap()
    );
}
