//! A loss that exists only in this test, defined through the public [`ContrastiveLoss`] trait
//! (as a downstream crate would), run through the library's blocked driver and `evaluate` in
//! both precisions: its value against a dense formula computed here by another route, its
//! gradient against finite differences, blocking and thread-count independence.

use ccem::base::Real;
use ccem::loss::contrastive::{BlockAt, ContrastiveLoss, Prepass};
use ccem::loss::driver;
use ccem::loss::evaluate::{evaluate_with, EvalOptions};
use ccem::loss::BlockOptions;
use ccem::loss::Lse;
use ccem::matrix::Matrix;
use ndarray::{Array2, ArrayViewMut2};

/// The spectral contrastive loss of HaoChen et al. (2021), an additive loss:
/// `L = -(2/N) sum_i S_ii + (1/(N(N-1))) sum_{i != j} S_ij^2`.
#[derive(Debug)]
struct Spectral;

impl ContrastiveLoss for Spectral {
    fn name(&self) -> &'static str {
        "spectral-test"
    }
    fn params(&self) -> Vec<(&'static str, f64)> {
        vec![]
    }
    fn block<R: Real, const GRAD: bool>(&self, mut s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
        let n = at.n as f64;
        let mut total = 0.0;
        for ((i, j), e) in s.indexed_iter_mut() {
            let x = e.to_f64();
            if at.row0 + i == at.col0 + j {
                total += -2.0 * x / n;
                if GRAD {
                    *e = R::from_f64(-2.0 / n);
                }
            } else {
                total += x * x / (n * (n - 1.0));
                if GRAD {
                    *e = R::from_f64(2.0 * x / (n * (n - 1.0)));
                }
            }
        }
        total
    }
    /// The block terms are already normalised.
    fn finish(&self, block_sum: f64, _n: usize, _lse: Option<&Lse>) -> f64 {
        block_sum
    }
}

/// A soft-max loss over rows only (one-sided InfoNCE at `tau`), using the driver's pre-pass:
/// `L = (1/N) sum_i [log sum_j e^{S_ij/tau} - S_ii/tau]`.
#[derive(Debug)]
struct RowSoftmax {
    tau: f64,
}

impl ContrastiveLoss for RowSoftmax {
    fn name(&self) -> &'static str {
        "row-softmax-test"
    }
    fn params(&self) -> Vec<(&'static str, f64)> {
        vec![("tau", self.tau)]
    }
    fn prepass(&self) -> Prepass {
        Prepass::LogSumExp {
            inv_tau: 1.0 / self.tau,
        }
    }
    fn block<R: Real, const GRAD: bool>(&self, mut s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
        let lse = at.lse.expect("pre-pass");
        let it = lse.inv_tau;
        if GRAD {
            for ((i, j), e) in s.indexed_iter_mut() {
                let r = at.row0 + i;
                let p = ((e.to_f64() - lse.row_max[r]) * it - lse.row_ln[r]).exp();
                let delta = if r == at.col0 + j { 1.0 } else { 0.0 };
                *e = R::from_f64((p - delta) * it / at.n as f64);
            }
        }
        0.0
    }
    fn finish(&self, _sum: f64, n: usize, lse: Option<&Lse>) -> f64 {
        let l = lse.expect("pre-pass");
        (0..n)
            .map(|i| (l.row_max[i] - l.diag[i]) * l.inv_tau + l.row_ln[i])
            .sum::<f64>()
            / n as f64
    }
}

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

/// The spectral loss by a different route: the dense `S` and the formula.
fn spectral_dense(u: &Array2<f64>, v: &Array2<f64>) -> f64 {
    let s = u.dot(&v.t());
    let n = s.nrows() as f64;
    let mut l = 0.0;
    for ((i, j), &x) in s.indexed_iter() {
        l += if i == j {
            -2.0 * x / n
        } else {
            x * x / (n * (n - 1.0))
        };
    }
    l
}

fn row_softmax_dense(u: &Array2<f64>, v: &Array2<f64>, tau: f64) -> f64 {
    let s = u.dot(&v.t()) / tau;
    let n = s.nrows();
    (0..n)
        .map(|i| {
            let row = s.row(i);
            let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            m + row.mapv(|x| (x - m).exp()).sum().ln() - s[[i, i]]
        })
        .sum::<f64>()
        / n as f64
}

fn opts(block: usize) -> BlockOptions {
    BlockOptions {
        block,
        parallel: true,
    }
}

#[test]
fn values_equal_the_dense_formulas_in_both_precisions_and_any_blocking() {
    let (n, d) = (37, 9);
    let (u, v) = (unit(&data(n, d, 1)), unit(&data(n, d, 2)));
    let (u32_, v32) = (u.mapv(|x| x as f32), v.mapv(|x| x as f32));
    let want = spectral_dense(&u, &v);
    let want_soft = row_softmax_dense(&u, &v, 0.3);
    for block in [1, 5, 16, n, 100] {
        let got = driver::value(&Spectral, u.view(), v.view(), opts(block));
        assert!(
            (got - want).abs() <= 1e-13 * want.abs().max(1.0),
            "{got} {want}"
        );
        let g32 = driver::value(&Spectral, u32_.view(), v32.view(), opts(block));
        assert!((g32 - want).abs() <= 1e-5 * want.abs().max(1.0));
        let soft = driver::value(&RowSoftmax { tau: 0.3 }, u.view(), v.view(), opts(block));
        assert!((soft - want_soft).abs() <= 1e-13 * want_soft.abs().max(1.0));
        // The value of the gradient call is the same value.
        let lg = driver::value_grad(&Spectral, u.view(), v.view(), opts(block));
        assert!((lg.value - want).abs() <= 1e-13 * want.abs().max(1.0));
    }
}

/// Central differences of `f` with respect to every entry of `x`.
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

/// The gradient of `loss` through `evaluate` (raw rows, normalised inside) against central
/// differences of its value.
fn check_gradient<L: ContrastiveLoss>(loss: &L) {
    let (n, d) = (9, 4);
    let (x, y) = (data(n, d, 3), data(n, d, 4));
    let o = EvalOptions {
        grad: true,
        block: Some(opts(4)),
        ..EvalOptions::default()
    };
    let value = |a: &Array2<f64>, b: &Array2<f64>| {
        evaluate_with(loss, a.clone().into(), b.clone().into(), &o)
            .unwrap()
            .value
    };
    let e = evaluate_with(loss, x.clone().into(), y.clone().into(), &o).unwrap();
    let (gx, gy) = e.grads.unwrap();
    let fdx = fd(&x, |xp| value(xp, &y));
    let fdy = fd(&y, |yp| value(&x, yp));
    assert!(rel_err(&gx.into_f64(), &fdx) < 1e-6, "{}", loss.name());
    assert!(rel_err(&gy.into_f64(), &fdy) < 1e-6, "{}", loss.name());
}

#[test]
fn gradients_through_evaluate_match_finite_differences() {
    check_gradient(&Spectral);
    check_gradient(&RowSoftmax { tau: 0.5 });
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (n, d) = (300, 16);
    let (u, v) = (unit(&data(n, d, 5)), unit(&data(n, d, 6)));
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| driver::value_grad(&RowSoftmax { tau: 0.1 }, u.view(), v.view(), opts(64)))
    };
    let (a, b) = (run(1), run(3));
    assert_eq!(a.value.to_bits(), b.value.to_bits());
    assert_eq!(a.du, b.du);
    assert_eq!(a.dv, b.dv);
}

#[test]
fn bad_input_is_an_error_for_a_custom_loss_too() {
    let o = EvalOptions::default();
    let a = Matrix::F64(data(4, 3, 1));
    let b = Matrix::F64(data(5, 3, 1));
    assert!(evaluate_with(&Spectral, a.clone(), b, &o).is_err());
    let mut z = data(4, 3, 2);
    z.row_mut(1).fill(0.0);
    let e = evaluate_with(&Spectral, a, Matrix::F64(z), &o).unwrap_err();
    assert!(e.to_string().contains("row"), "{e}");
}
