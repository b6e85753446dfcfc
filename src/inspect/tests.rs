//! The one-pass inspection against the separate references: [`measure`](crate::geometry::measure),
//! [`margins`](crate::geometry::margins) and the blocked losses.

use super::*;
use crate::geometry::{ccem_embedding, margins, measure};
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn gaussian(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng))
}

/// Correlated pairs (v_i = u_i + noise), so the positives are not like the negatives.
fn pairs(n: usize, d: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let u = gaussian(n, d, seed);
    let v = &u + &(gaussian(n, d, seed + 100) * 0.7);
    (u, v)
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * (1.0 + b.abs()),
        "{what}: {a} vs {b} (tol {tol})"
    );
}

fn cfg(block: usize) -> InspectConfig {
    InspectConfig {
        t: 3.0,
        b: Some(-1.5),
        tau: 0.2,
        block,
        ..InspectConfig::default()
    }
}

#[test]
fn matches_the_separate_passes_in_f64() {
    for &(n, d, block, normalize) in &[
        (50, 8, 7, true),
        (37, 40, 256, true),
        (600, 5, 16, false),
        (2, 3, 1, true),
    ] {
        let (x, y) = pairs(n, d, n as u64);
        let c = InspectConfig {
            normalize,
            ..cfg(block)
        };
        let r = inspect(Matrix::F64(x.clone()), Matrix::F64(y.clone()), &c).unwrap();
        let (u, v) = if normalize {
            (
                crate::loss::normalize_rows(x.view(), "U").unwrap().u,
                crate::loss::normalize_rows(y.view(), "V").unwrap().u,
            )
        } else {
            (x, y)
        };
        let opts = BlockOptions {
            block: 5,
            parallel: true,
        };
        let m = measure(u.view(), v.view(), opts);
        let got = r.report.measurement.unwrap();
        for (a, b, what) in [
            (got.pos, m.pos, "positives"),
            (got.neg, m.neg, "negatives"),
            (got.norms, m.norms, "norms"),
        ] {
            assert_eq!(a.count, b.count, "{what}");
            close(a.mean, b.mean, 1e-12, what);
            close(a.std, b.std, 1e-10, what);
            close(a.min, b.min, 1e-13, what);
            close(a.max, b.max, 1e-13, what);
        }
        for (a, b, what) in [
            (got.within_u, m.within_u, "within U"),
            (got.within_v, m.within_v, "within V"),
        ] {
            close(a.mean, b.mean, 1e-10, what);
            // The spread from sums of squares: absolute error about sqrt(eps) times the rms.
            close(a.std, b.std, 5e-8, what);
            assert!(a.min.is_nan() && a.max.is_nan(), "not computed by the pass");
        }
        close(got.c_fit, m.c_fit, 1e-9, "c_fit");
        close(got.gram_distance, m.gram_distance, 1e-9, "gram_distance");
        let sig = Loss::sigmoid(3.0, -1.5).unwrap();
        let info = Loss::infonce(0.2).unwrap();
        close(
            r.sigmoid_loss,
            crate::loss::driver::value(&sig, u.view(), v.view(), opts),
            1e-12,
            "sigmoid",
        );
        close(
            r.infonce_loss,
            crate::loss::driver::value(&info, u.view(), v.view(), opts),
            1e-12,
            "infonce",
        );
        let mg = margins(u.view(), v.view(), QuantileLevel::default(), opts).unwrap();
        let got = r.report.margins.unwrap();
        close(got.margin, mg.margin, 1e-14, "margin");
        close(
            got.margin_quantile,
            mg.margin_quantile,
            1e-14,
            "margin_quantile",
        );
        assert_eq!(r.margin_quantile_error, 0.0);
        assert_eq!(r.quantile_method, QuantileMode::Exact);
        assert_eq!(r.passes, 2);
    }
}

#[test]
fn the_ccem_is_measured_exactly() {
    for &delta in &[0.0, 0.7, f64::INFINITY] {
        let (u, v) = ccem_embedding(12, 15, delta, Some(3)).unwrap();
        let r = inspect(Matrix::F64(u), Matrix::F64(v), &cfg(5)).unwrap();
        let m = r.report.measurement.unwrap();
        let c = crate::theory::c_of_delta(delta);
        close(m.c_fit, c, 1e-10, "c_fit");
        assert!(m.gram_distance < 1e-7, "{}", m.gram_distance);
        close(
            m.within_u.mean,
            -1.0 / 11.0 * (1.0 - c) + c,
            1e-12,
            "within mean",
        );
        assert!(m.within_u.std < 1e-7, "{}", m.within_u.std);
        assert!(m.neg.std < 1e-7, "{}", m.neg.std);
    }
}

#[test]
fn f32_agrees_with_f64_to_the_stated_tolerance() {
    let (x, y) = pairs(700, 96, 5);
    let r64 = inspect(Matrix::F64(x.clone()), Matrix::F64(y.clone()), &cfg(64)).unwrap();
    let r32 = inspect(
        Matrix::F32(x.mapv(|a| a as f32)),
        Matrix::F32(y.mapv(|a| a as f32)),
        &cfg(64),
    )
    .unwrap();
    assert_eq!(r32.precision, Precision::F32);
    close(r32.sigmoid_loss, r64.sigmoid_loss, 1e-5, "sigmoid");
    close(r32.infonce_loss, r64.infonce_loss, 1e-5, "infonce");
    let (a, b) = (
        r32.report.measurement.unwrap(),
        r64.report.measurement.unwrap(),
    );
    close(a.pos.mean, b.pos.mean, 1e-5, "s_pos_mean");
    close(a.neg.std, b.neg.std, 1e-4, "s_neg_std");
    close(a.within_u.std, b.within_u.std, 1e-4, "within_u_std");
    close(a.gram_distance, b.gram_distance, 1e-4, "gram_distance");
    // A float64 input asked for float32 is the same as a float32 input.
    let forced = inspect(
        Matrix::F64(x),
        Matrix::F64(y),
        &InspectConfig {
            precision: Some(Precision::F32),
            ..cfg(64)
        },
    )
    .unwrap();
    assert_eq!(forced.sigmoid_loss, r32.sigmoid_loss);
}

#[test]
fn bitwise_independent_of_the_thread_count() {
    let (x, y) = pairs(300, 20, 8);
    let run = |threads: usize, parallel: bool, f32: bool| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (u, v) = if f32 {
            (
                Matrix::F32(x.mapv(|a| a as f32)),
                Matrix::F32(y.mapv(|a| a as f32)),
            )
        } else {
            (Matrix::F64(x.clone()), Matrix::F64(y.clone()))
        };
        let c = InspectConfig {
            parallel,
            quantile: Some(QuantileMode::Histogram),
            ..cfg(7)
        };
        pool.install(|| serde_json::to_string(&inspect(u, v, &c).unwrap()).unwrap())
    };
    for f32 in [false, true] {
        let one = run(1, true, f32);
        assert_eq!(one, run(2, true, f32));
        assert_eq!(one, run(3, true, f32));
        assert_eq!(one, run(2, false, f32));
    }
}

#[test]
fn histogram_quantile_is_within_its_stated_error() {
    let (x, y) = pairs(400, 6, 11);
    for &p in &[0.0, 0.01, 0.05, 0.3, 0.5] {
        let c = |mode| InspectConfig {
            margin_quantile: p,
            quantile: Some(mode),
            ..cfg(32)
        };
        let exact = inspect(
            Matrix::F64(x.clone()),
            Matrix::F64(y.clone()),
            &c(QuantileMode::Exact),
        )
        .unwrap();
        let approx = inspect(
            Matrix::F64(x.clone()),
            Matrix::F64(y.clone()),
            &c(QuantileMode::Histogram),
        )
        .unwrap();
        assert_eq!(approx.passes, 1);
        let e = approx.margin_quantile_error;
        assert!(e > 0.0 && e <= 1.0 / 65536.0 * 1.001, "{e}");
        let (a, b) = (
            approx.report.margins.unwrap(),
            exact.report.margins.unwrap(),
        );
        assert!(
            (a.margin_quantile - b.margin_quantile).abs() <= e,
            "p = {p}: {} vs {}",
            a.margin_quantile,
            b.margin_quantile
        );
        assert_eq!(a.margin, b.margin);
    }
}

#[test]
fn tiny_temperatures_take_the_running_maximum_pass() {
    let (x, y) = pairs(40, 6, 2);
    let c = InspectConfig {
        tau: 0.001,
        ..cfg(8)
    };
    let r = inspect(Matrix::F64(x.clone()), Matrix::F64(y.clone()), &c).unwrap();
    assert_eq!(r.passes, 3);
    let u = crate::loss::normalize_rows(x.view(), "U").unwrap().u;
    let v = crate::loss::normalize_rows(y.view(), "V").unwrap().u;
    let info = Loss::infonce(0.001).unwrap();
    close(
        r.infonce_loss,
        crate::loss::driver::value(&info, u.view(), v.view(), BlockOptions::default()),
        1e-12,
        "infonce",
    );
    assert!(r.infonce_loss.is_finite());
}

#[test]
fn bad_input_is_an_error() {
    let (x, y) = pairs(6, 3, 1);
    let ok = |u: Array2<f64>, v: Array2<f64>, c: InspectConfig| {
        inspect(Matrix::F64(u), Matrix::F64(v), &c)
    };
    assert!(ok(x.clone(), y.clone(), cfg(4)).is_ok());
    let mut nan = x.clone();
    nan[[2, 1]] = f64::NAN;
    assert!(matches!(
        ok(nan, y.clone(), cfg(4)),
        Err(Error::NonFinite {
            which: "U",
            row: 2,
            col: 1
        })
    ));
    assert!(matches!(
        ok(x.clone(), gaussian(5, 3, 0), cfg(4)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(ok(gaussian(1, 3, 0), gaussian(1, 3, 1), cfg(4)).is_err());
    assert!(ok(x.clone(), y.clone(), cfg(0)).is_err());
    let mut zero = x.clone();
    zero.row_mut(3).fill(0.0);
    assert!(matches!(
        ok(zero, y.clone(), cfg(4)),
        Err(Error::ZeroRow { .. })
    ));
    for bad in [
        InspectConfig { t: -1.0, ..cfg(4) },
        InspectConfig { tau: 0.0, ..cfg(4) },
        InspectConfig {
            margin_quantile: 0.7,
            ..cfg(4)
        },
        InspectConfig {
            b: Some(f64::NAN),
            ..cfg(4)
        },
    ] {
        assert!(ok(x.clone(), y.clone(), bad).is_err());
    }
    // Products that would overflow, and losses that overflow, are errors, never NaN or inf.
    let huge = Array2::from_elem((3, 2), 1e200);
    let e = ok(
        huge.clone(),
        huge,
        InspectConfig {
            normalize: false,
            ..cfg(4)
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("too long"), "{e}");
    let long32 = Matrix::F32(Array2::from_elem((3, 2), 1e20f32));
    let c = InspectConfig {
        normalize: false,
        ..cfg(4)
    };
    assert!(inspect(long32.clone(), long32, &c).is_err());
    let big = Array2::from_elem((3, 2), 1e100);
    let c = InspectConfig {
        normalize: false,
        t: 1e200,
        b: Some(0.0),
        ..cfg(4)
    };
    let e = ok(big.clone(), big, c).unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
    // A mixed pair runs in float64, never rejected.
    let r = inspect(Matrix::F32(x.mapv(|a| a as f32)), Matrix::F64(y), &cfg(4)).unwrap();
    assert_eq!(r.precision, Precision::F64);
}

#[test]
fn progress_counts_every_block_of_every_pass() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (x, y) = pairs(100, 4, 6);
    for (mode, passes) in [(QuantileMode::Exact, 2), (QuantileMode::Histogram, 1)] {
        let calls = AtomicUsize::new(0);
        let last = AtomicUsize::new(0);
        let c = InspectConfig {
            quantile: Some(mode),
            ..cfg(7)
        };
        let hook = |done: usize, total: usize| {
            assert_eq!(total, 15 * passes);
            calls.fetch_add(1, Ordering::Relaxed);
            last.fetch_max(done, Ordering::Relaxed);
        };
        let r = inspect_with(Matrix::F64(x.clone()), Matrix::F64(y.clone()), &c, &hook).unwrap();
        assert_eq!(r.passes, passes);
        assert_eq!(calls.load(Ordering::Relaxed), 15 * passes);
        assert_eq!(last.load(Ordering::Relaxed), 15 * passes);
    }
}

#[test]
fn alignment_slack_is_thm_5_2s_and_null_without_normalisation() {
    // The simplex ETF with U = V meets Thm 5.2's bound: slack 0.
    let x = crate::geometry::simplex_etf(9);
    let r = inspect(Matrix::F64(x.clone()), Matrix::F64(x), &cfg(4)).unwrap();
    assert!(r.alignment_slack.unwrap().abs() < 1e-12);
    // Random unit rows: the slack is its formula on the reported means, and positive.
    let (x, y) = pairs(50, 8, 21);
    let r = inspect(Matrix::F64(x.clone()), Matrix::F64(y.clone()), &cfg(16)).unwrap();
    let m = r.report.measurement.unwrap();
    let want = 1.0 + m.neg.mean + 1.0 / 49.0 - m.pos.mean;
    assert_eq!(r.alignment_slack, Some(want));
    assert!(want > 0.0);
    let raw = InspectConfig {
        normalize: false,
        ..cfg(16)
    };
    let r = inspect(Matrix::F64(x), Matrix::F64(y), &raw).unwrap();
    assert_eq!(r.alignment_slack, None);
    let json = serde_json::to_value(r).unwrap();
    assert!(json["alignment_slack"].is_null());
}

#[test]
fn a_registry_loss_is_evaluated_by_the_driver() {
    use crate::loss::evaluate::{evaluate, EvalOptions};
    use crate::loss::{LossKind, LossParams};
    let (x, y) = pairs(40, 12, 31);
    for (kind, tau) in [(LossKind::SimClr, 0.3), (LossKind::Spectral, 1.0)] {
        let params = LossParams {
            tau: kind.takes("tau").then_some(tau),
            ..LossParams::default()
        };
        let loss = Loss::build(kind, &params).unwrap();
        let c = InspectConfig {
            loss: Some(loss),
            tau,
            ..cfg(8)
        };
        let r = inspect(Matrix::F64(x.clone()), Matrix::F64(y.clone()), &c).unwrap();
        let want = evaluate(
            &loss,
            Matrix::F64(x.clone()),
            Matrix::F64(y.clone()),
            &EvalOptions::default(),
        )
        .unwrap()
        .value;
        assert_eq!(r.loss, Some(kind));
        close(r.loss_value.unwrap(), want, 1e-12, kind.as_str());
    }
    let r = inspect(Matrix::F64(x.clone()), Matrix::F64(y.clone()), &cfg(8)).unwrap();
    assert_eq!((r.loss, r.loss_value), (None, None));
}

#[test]
fn a_limit_too_small_for_the_kept_s_computes_it_again() {
    // N = d = 300 in f64 keeps S (720 KiB) for the exact quantile's second pass, if the memory
    // limit leaves room for it; a limit between the two estimates computes S again. Same report.
    let (u, v) = pairs(300, 300, 4);
    let run = |max_memory: MemoryLimit| {
        let c = InspectConfig {
            max_memory,
            ..cfg(64)
        };
        inspect(Matrix::F64(u.clone()), Matrix::F64(v.clone()), &c).unwrap()
    };
    let mode = QuantileMode::Exact;
    let without = memory_estimate((300, 300), Precision::F64, 64, (mode, false));
    let with = memory_estimate((300, 300), Precision::F64, 64, (mode, true));
    assert!(with >= without + 8.0 * 300.0 * 300.0);
    let tight = run(MemoryLimit::Bytes(without.ceil() as u64 + 1));
    let free = run(MemoryLimit::Bytes(with.ceil() as u64 + 1));
    assert_eq!(
        serde_json::to_string(&tight).unwrap(),
        serde_json::to_string(&free).unwrap()
    );
    assert_eq!(tight.passes, 2);
    let e = inspect(
        Matrix::F64(u.clone()),
        Matrix::F64(v.clone()),
        &InspectConfig {
            max_memory: MemoryLimit::Bytes(without as u64 - 1),
            ..cfg(64)
        },
    );
    assert!(matches!(e, Err(Error::TooLarge { .. })));
}
