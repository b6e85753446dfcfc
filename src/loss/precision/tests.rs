//! The float32 path against the float64 one (SPEC §1 tolerances), its own gradient code against
//! finite differences, and bitwise independence of the thread count.

use super::*;
use crate::loss::driver::{value as blocked_loss, value_grad as blocked_loss_grad};
use crate::loss::evaluate::{evaluate, EvalOptions};
use crate::loss::{driver, loss_grad_raw, BlockOptions, ContrastiveLoss, Loss, LossGrad};
use crate::matrix::Matrix;

// The float32 entry points before the generic driver, by their new names.
use crate::loss::driver::{value as blocked_loss_f32, value_grad as blocked_loss_grad_f32};
use crate::loss::sigmoid::ln1p_unit;

fn loss_grad_uv_f32(loss: &Loss, u: ArrayView2<f32>, v: ArrayView2<f32>) -> LossGrad<f32> {
    let whole = BlockOptions {
        block: u.nrows().max(1),
        parallel: true,
    };
    driver::value_grad(loss, u, v, whole)
}

fn loss_grad_raw_f32(
    loss: &Loss,
    x: ArrayView2<f32>,
    y: ArrayView2<f32>,
    opts: BlockOptions,
) -> crate::error::Result<LossGrad<f32>> {
    let o = EvalOptions {
        grad: true,
        normalize: true,
        precision: None,
        block: Some(opts),
    };
    let r = evaluate(
        loss,
        Matrix::F32(x.to_owned()),
        Matrix::F32(y.to_owned()),
        &o,
    )?;
    let (du, dv) = r.grads.expect("asked for");
    match (du, dv) {
        (Matrix::F32(du), Matrix::F32(dv)) => Ok(LossGrad {
            value: r.value,
            du,
            dv,
        }),
        _ => unreachable!("float32 in, float32 out"),
    }
}

use ndarray::{Array2, ArrayView2};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn gaussian(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng))
}

/// Unit rows rounded to float32, and the same float32 values widened to float64, so that the
/// comparison measures the computation, not the rounding of the input.
fn unit_pair(n: usize, d: usize, seed: u64) -> (Array2<f32>, Array2<f64>) {
    let x = gaussian(n, d, seed).mapv(|a| a as f32);
    let u = normalize_rows_f32(x.view(), "X").unwrap().u;
    let w = u.mapv(f64::from);
    (u, w)
}

/// `||a - b||_F / ||b||_F`.
fn rel_frobenius(a: &Array2<f32>, b: &Array2<f64>) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - y).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

fn losses() -> Vec<Loss> {
    vec![
        Loss::sigmoid(10.0, -10.0).unwrap(),
        Loss::sigmoid(10.0, 10.0).unwrap(),
        Loss::sigmoid(100.0, 50.0).unwrap(),
        Loss::infonce(0.07).unwrap(),
        Loss::infonce(0.01).unwrap(),
    ]
}

/// Relative loss error <= 1e-5 and gradient error <= 1e-4 of the gradient's norm (SPEC §1),
/// blocked and dense, up to N = 4096.
#[test]
fn f32_path_matches_f64_within_the_stated_tolerances() {
    let opts = BlockOptions::default();
    for &(n, d) in &[(7, 5), (300, 768), (1100, 96), (4096, 32)] {
        let (u, u64_) = unit_pair(n, d, 11);
        let (v, v64) = unit_pair(n, d, 12);
        for loss in losses() {
            let exact = blocked_loss_grad(&loss, u64_.view(), v64.view(), opts);
            let got = blocked_loss_grad_f32(&loss, u.view(), v.view(), opts);
            let rel = (got.value - exact.value).abs() / exact.value.abs();
            assert!(rel <= 1e-5, "{loss:?} N={n} d={d}: loss error {rel:e}");
            let (eu, ev) = (
                rel_frobenius(&got.du, &exact.du),
                rel_frobenius(&got.dv, &exact.dv),
            );
            assert!(
                eu <= 1e-4 && ev <= 1e-4,
                "{loss:?} N={n} d={d}: gradient errors {eu:e} {ev:e}"
            );
            let value = blocked_loss_f32(&loss, u.view(), v.view(), opts);
            let exact_value = blocked_loss(&loss, u64_.view(), v64.view(), opts);
            assert!(
                (value - exact_value).abs() <= 1e-5 * exact_value.abs(),
                "{loss:?} loss only"
            );
            if n <= 1100 {
                let dense = loss_grad_uv_f32(&loss, u.view(), v.view());
                let rel = (dense.value - exact.value).abs() / exact.value.abs();
                assert!(rel <= 1e-5, "{loss:?} dense N={n}: {rel:e}");
                assert!(rel_frobenius(&dense.du, &exact.du) <= 1e-4);
                assert!(rel_frobenius(&dense.dv, &exact.dv) <= 1e-4);
            }
        }
    }
}

/// The similarity-level functions against the float64 ones on the same (float32) `S`: both
/// evaluate every term in float64, so they agree to float32 rounding of `G`.
#[test]
fn s_level_f32_functions_match_f64_on_the_same_s() {
    for n in [2, 9, 40] {
        let s = gaussian(n, n, 3).mapv(|a| a.tanh() as f32);
        let s64 = s.mapv(f64::from);
        for loss in losses() {
            let mut g = Array2::<f32>::zeros((n, n));
            let mut g64 = Array2::<f64>::zeros((n, n));
            let v = {
                g.assign(&s);
                crate::loss::contrastive::dense::<f32, _, true>(&loss, g.view_mut())
            };
            let v64 = loss.value_grad_s(s64.view(), g64.view_mut());
            assert!(
                (v - v64).abs() <= 1e-12 * v64.abs(),
                "{loss:?}: {v} vs {v64}"
            );
            assert!(
                (crate::loss::contrastive::dense::<f32, _, false>(&loss, s.to_owned().view_mut())
                    - v)
                    .abs()
                    <= 1e-12 * v.abs()
            );
            let scale = g64.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (a, b) in g.iter().zip(&g64) {
                assert!(
                    (f64::from(*a) - b).abs() <= 1e-6 * scale,
                    "{loss:?}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn ln1p_unit_is_accurate() {
    let mut worst: f64 = 0.0;
    for k in 0..=10_000 {
        let e = k as f64 / 10_000.0;
        let exact = e.ln_1p();
        if exact > 0.0 {
            worst = worst.max((ln1p_unit(e) - exact).abs() / exact);
        }
    }
    assert!(worst < 1e-14, "worst relative error {worst:e}");
    assert_eq!(ln1p_unit(0.0), 0.0);
}

fn run_all(n: usize, d: usize) -> Vec<Vec<u32>> {
    let (u, _) = unit_pair(n, d, 21);
    let (v, _) = unit_pair(n, d, 22);
    let x = gaussian(n, d, 23).mapv(|a| a as f32);
    let opts = BlockOptions {
        block: 200,
        parallel: true,
    };
    let mut out = Vec::new();
    for loss in losses() {
        let lg = blocked_loss_grad_f32(&loss, u.view(), v.view(), opts);
        out.push(vec![
            lg.value.to_bits() as u32,
            (lg.value.to_bits() >> 32) as u32,
        ]);
        out.push(lg.du.iter().map(|a| a.to_bits()).collect());
        out.push(lg.dv.iter().map(|a| a.to_bits()).collect());
        let value = blocked_loss_f32(&loss, u.view(), v.view(), opts);
        out.push(vec![value.to_bits() as u32, (value.to_bits() >> 32) as u32]);
        let dense = loss_grad_uv_f32(&loss, u.view(), v.view());
        out.push(
            dense
                .du
                .iter()
                .chain(&dense.dv)
                .map(|a| a.to_bits())
                .collect(),
        );
        let raw = loss_grad_raw_f32(&loss, x.view(), v.view(), opts).unwrap();
        out.push(raw.du.iter().chain(&raw.dv).map(|a| a.to_bits()).collect());
    }
    out
}

#[test]
fn f32_results_are_bitwise_independent_of_the_thread_count() {
    let pool = |k| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(k)
            .build()
            .unwrap()
    };
    let one = pool(1).install(|| run_all(610, 40));
    let two = pool(2).install(|| run_all(610, 40));
    assert_eq!(one, two);
}

#[test]
fn raw_f32_inputs_are_validated() {
    let loss = Loss::sigmoid(1.0, 0.0).unwrap();
    let opts = BlockOptions::default();
    let a = Array2::<f32>::ones((3, 2));
    let b = Array2::<f32>::ones((3, 4));
    assert!(matches!(
        loss_grad_raw_f32(&loss, a.view(), b.view(), opts),
        Err(Error::ShapeMismatch { .. })
    ));
    let one = Array2::<f32>::ones((1, 2));
    assert!(matches!(
        loss_grad_raw_f32(&loss, one.view(), one.view(), opts),
        Err(Error::BatchTooSmall { .. })
    ));
    let mut z = Array2::<f32>::ones((3, 2));
    z.row_mut(1).fill(0.0);
    assert!(matches!(
        loss_grad_raw_f32(&loss, z.view(), a.view(), opts),
        Err(Error::ZeroRow { row: 1, .. })
    ));
    z.row_mut(1).fill(f32::NAN);
    assert!(matches!(
        loss_grad_raw_f32(&loss, a.view(), z.view(), opts),
        Err(Error::NonFinite {
            which: "V",
            row: 1,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The float32 gradient through the normalisation against central finite differences of the
    /// float64 loss, taken around the float32 inputs.
    #[test]
    fn raw_f32_gradient_matches_finite_differences(
        n in 2usize..6, d in 2usize..5, seed in 0u64..1000,
        t in 0.1f64..20.0, b in -10.0f64..10.0, tau in 0.05f64..2.0, block in 1usize..5,
    ) {
        let x = gaussian(n, d, seed).mapv(|a| a as f32);
        let y = gaussian(n, d, seed + 7).mapv(|a| a as f32);
        let (x64, y64) = (x.mapv(f64::from), y.mapv(f64::from));
        let opts = BlockOptions { block, parallel: false };
        for loss in [Loss::sigmoid(t, b).unwrap(), Loss::infonce(tau).unwrap()] {
            let got = loss_grad_raw_f32(&loss, x.view(), y.view(), opts).unwrap();
            let f = |a: &Array2<f64>, c: &Array2<f64>| loss_grad_raw(&loss, a.view(), c.view()).unwrap().value;
            let h = 1e-6;
            for (which, grad) in [(0, &got.du), (1, &got.dv)] {
                let mut fd = Array2::<f64>::zeros((n, d));
                for i in 0..n {
                    for j in 0..d {
                        let (mut p, mut m) = if which == 0 { (x64.clone(), x64.clone()) } else { (y64.clone(), y64.clone()) };
                        p[[i, j]] += h;
                        m[[i, j]] -= h;
                        fd[[i, j]] = if which == 0 { (f(&p, &y64) - f(&m, &y64)) / (2.0 * h) } else { (f(&x64, &p) - f(&x64, &m)) / (2.0 * h) };
                    }
                }
                let scale = fd.iter().fold(1e-3 * t.max(1.0 / tau) / n as f64, |m, v| m.max(v.abs()));
                let err = grad.iter().zip(&fd).fold(0.0f64, |m, (&a, &e)| m.max((f64::from(a) - e).abs())) / scale;
                prop_assert!(err < 1e-4, "{:?} {}: {:e}", loss, which, err);
            }
        }
    }
}
