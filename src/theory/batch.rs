//! The optimum of the sigmoid loss under mini-batch training (SPEC.md §8, "Mini-batches").
//!
//! Drawing a batch of `B` of the `N` pairs uniformly at random and averaging the batch loss
//! `(1/B) sum_{i,j in batch} softplus(-z_ij (t S_ij - b))` over the draw gives the full-batch
//! loss with every negative pair weighted by
//!
//! `w = (B-1)/(N-1)`
//!
//! (a positive pair lies in a fraction `B/N` of the batches, a negative pair in
//! `B(B-1)/(N(N-1))`, and the batch loss divides by `B`). The CCEM argument goes through with
//! the weight, so the optimum of the expected loss is the CCEM at the minimiser `c*` of
//! [`ccem_loss_weighted`](super::ccem_loss_weighted), found by the same safeguarded root finding
//! as the full batch ([`Optimum::sigmoid_weighted`]). `B = N` gives `w = 1` exactly, and
//! then every number here is bitwise the full-batch one.
//!
//! ```
//! use ccem::theory::{BatchOptimum, Phase, Optimum};
//! // N = 16, t = 2, b = 1: the full batch is intermediate with s+ near -0.05 ...
//! let full = Optimum::sigmoid(16, 2.0, 1.0)?;
//! assert!((full.s_pos + 0.05).abs() < 0.01);
//! // ... batches of 4 push it toward the ETF (s+ near 0.89).
//! let b4 = BatchOptimum::solve(16, 4, 2.0, 1.0)?;
//! assert!((b4.w - 0.2).abs() < 1e-15);
//! assert!((b4.optimum.s_pos - 0.89).abs() < 0.01);
//! assert_eq!(b4.optimum.phase, Phase::Intermediate);
//! // B = N is the full batch, bitwise.
//! assert_eq!(BatchOptimum::solve(16, 16, 2.0, 1.0)?.optimum, full);
//! # Ok::<(), ccem::Error>(())
//! ```

use super::{antipodal_threshold_tied_weighted, etf_threshold_tied_weighted, Optimum};
use crate::error::{check_batch, check_bias, check_scale, Error, Result};
use serde::Serialize;

/// The weight `w = (B-1)/(N-1)` of every negative pair in the expected mini-batch sigmoid loss
/// (SPEC §8), for batches of `B` out of `N` pairs.
///
/// # Errors
/// `N < 2`, or `B` outside `2..=N` (a batch needs a negative pair and cannot exceed the data).
pub fn negative_weight(n: usize, batch: usize) -> Result<f64> {
    check_mini_batch(n, batch)?;
    Ok((batch - 1) as f64 / (n - 1) as f64)
}

/// The error for a mini-batch optimum of InfoNCE, which has no weighted equivalent (SPEC §8):
/// what `theory` with a batch size and InfoNCE returns (the Python binding raises it too).
///
/// ```
/// let e = ccem::theory::batch::infonce_expected_error();
/// assert!(e.to_string().contains("only for the sigmoid loss"));
/// ```
pub fn infonce_expected_error() -> Error {
    Error::Config(
        "the expected mini-batch loss has a closed form (negatives weighted by (B-1)/(N-1)) only \
         for the sigmoid loss; InfoNCE has no weighted equivalent: train it with batching \
         shuffled, fixed, all or hardest"
            .into(),
    )
}

/// Checks `2 <= B <= N`.
///
/// # Errors
/// [`Error::BatchTooSmall`] for `N < 2`, [`Error::Config`] for `B < 2` or `B > N`.
pub fn check_mini_batch(n: usize, batch: usize) -> Result<()> {
    check_batch(n)?;
    if batch < 2 || batch > n {
        return Err(Error::Config(format!(
            "invalid mini-batch size B = {batch} for N = {n}: need 2 <= B <= N (B = N is the \
             full batch)"
        )));
    }
    Ok(())
}

/// The optimum of the expected mini-batch sigmoid loss (SPEC §8) and its tied thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BatchOptimum {
    /// The mini-batch size `B`.
    pub batch: usize,
    /// The negative weight `w = (B-1)/(N-1)`.
    pub w: f64,
    /// The CCEM optimum of the weighted loss (`loss` is the minimal expected batch loss).
    #[serde(flatten)]
    pub optimum: Optimum,
    /// For `b = t`: the `t` above which the optimum is the ETF,
    /// `((N-1)/N) log(w (N-2) - 1)`; `None` when `w (N-2) < 2` (always the ETF).
    pub t_etf_threshold_tied: Option<f64>,
    /// For `b = t`: the `t` below which the optimum is antipodal, `(1/2) log(w (N-2)/2)`;
    /// `None` when `w (N-2) <= 2` (no antipodal phase).
    pub t_antipodal_threshold_tied: Option<f64>,
}

impl BatchOptimum {
    /// The optimum for `N` pairs drawn in batches of `B`, scale `t`, bias `b`.
    ///
    /// # Errors
    /// As [`negative_weight`] and [`Optimum::sigmoid`].
    pub fn solve(n: usize, batch: usize, t: f64, b: f64) -> Result<Self> {
        let w = negative_weight(n, batch)?;
        check_scale("t", t)?;
        check_bias("b", b)?;
        Ok(BatchOptimum {
            batch,
            w,
            optimum: Optimum::sigmoid_weighted_unchecked(n, t, b, w),
            t_etf_threshold_tied: etf_threshold_tied_weighted(n, w),
            t_antipodal_threshold_tied: antipodal_threshold_tied_weighted(n, w),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::softplus;
    use crate::theory::{ccem_loss_weighted, s_pos_of_c, Phase};

    /// An evaluation of `c*(w)` that shares nothing with the solver but the formula of the
    /// expected loss, written out again here: golden-section search on the convex `l_w`.
    fn c_star_golden(n: usize, t: f64, b: f64, w: f64) -> f64 {
        let nm1 = (n - 1) as f64;
        let f = |c: f64| {
            let s_pos = 1.0 - 2.0 * c;
            let s_neg = -(1.0 - c) / nm1 - c;
            softplus(-(t * s_pos - b)) + w * nm1 * softplus(t * s_neg - b)
        };
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
    fn c_star_matches_an_independent_minimisation() {
        for &(n, t, b) in &[
            (16, 2.0, 1.0),
            (10, 1.0, 1.0),
            (32, 3.0, 0.5),
            (8, 0.7, -0.3),
            (50, 5.0, 5.0),
        ] {
            for batch in 2..=n {
                let o = BatchOptimum::solve(n, batch, t, b).unwrap();
                let w = (batch - 1) as f64 / (n - 1) as f64;
                let c = c_star_golden(n, t, b, w);
                // Golden section locates an interior minimum to ~1e-9 (flat quadratic
                // bottom: f varies by eps at |dc| ~ sqrt(eps)); judge by the derivative too.
                if o.optimum.phase == Phase::Intermediate {
                    let scale = (1e-9f64).max(1e-5 / t);
                    assert!(
                        (o.optimum.c_star - c).abs() < scale,
                        "{n} {batch} {t} {b}: {} vs {c}",
                        o.optimum.c_star
                    );
                    let d =
                        crate::theory::ccem_loss_derivative_weighted(n, t, b, w, o.optimum.c_star);
                    assert!(d.abs() < 1e-12 * t.max(1.0), "{n} {batch}: l'(c*) = {d}");
                } else {
                    assert!((o.optimum.c_star - c).abs() < 1e-9, "{n} {batch} {t} {b}");
                }
                assert!(
                    ccem_loss_weighted(n, t, b, w, o.optimum.c_star)
                        <= ccem_loss_weighted(n, t, b, w, c) + 1e-14
                );
            }
        }
    }

    #[test]
    fn full_batch_is_bitwise_the_full_batch() {
        for &(n, t, b) in &[
            (16, 2.0, 1.0),
            (10, 0.5, 0.5),
            (10, 2.0, 2.0),
            (8, 3.0, 1.0),
        ] {
            let o = BatchOptimum::solve(n, n, t, b).unwrap();
            assert_eq!(o.w, 1.0);
            assert_eq!(o.optimum, Optimum::sigmoid(n, t, b).unwrap());
            assert_eq!(o.t_etf_threshold_tied, crate::theory::etf_threshold_tied(n));
        }
    }

    #[test]
    fn issue_worked_example() {
        let full = Optimum::sigmoid(16, 2.0, 1.0).unwrap();
        let b4 = BatchOptimum::solve(16, 4, 2.0, 1.0).unwrap();
        assert!((full.s_pos - (-0.05)).abs() < 0.01, "{}", full.s_pos);
        assert!(
            (b4.optimum.s_pos - 0.89).abs() < 0.01,
            "{}",
            b4.optimum.s_pos
        );
        assert_eq!(s_pos_of_c(b4.optimum.c_star), b4.optimum.s_pos);
    }

    #[test]
    fn tied_thresholds_flip_the_weighted_phase() {
        for n in [8usize, 16, 40, 100] {
            for batch in 2..=n {
                let o = BatchOptimum::solve(n, batch, 1.0, 1.0).unwrap();
                let wn = o.w * (n as f64 - 2.0);
                let phase = |t: f64| Optimum::sigmoid_weighted(n, t, t, o.w).unwrap().phase;
                match o.t_etf_threshold_tied {
                    Some(te) if te > 1e-6 => {
                        assert_eq!(phase(te * 1.0001), Phase::Etf, "{n} {batch}");
                        assert_ne!(phase(te * 0.9999), Phase::Etf, "{n} {batch}");
                    }
                    Some(_) => {}
                    None => {
                        assert!(wn < 2.0);
                        for t in [1e-3, 0.1, 1.0, 10.0] {
                            assert_eq!(phase(t), Phase::Etf, "{n} {batch} {t}");
                        }
                    }
                }
                match o.t_antipodal_threshold_tied {
                    Some(ta) => {
                        assert_eq!(phase(ta * 0.9999), Phase::Antipodal, "{n} {batch}");
                        assert_ne!(phase(ta * 1.0001), Phase::Antipodal, "{n} {batch}");
                    }
                    None => {
                        assert!(wn <= 2.0);
                        for t in [1e-3, 0.1, 1.0, 10.0] {
                            assert_ne!(phase(t), Phase::Antipodal, "{n} {batch} {t}");
                        }
                    }
                }
                if batch <= 3 {
                    assert_eq!(o.t_antipodal_threshold_tied, None);
                }
            }
        }
    }

    #[test]
    fn bad_batch_sizes_are_errors() {
        assert!(negative_weight(10, 1).is_err());
        assert!(negative_weight(10, 11).is_err());
        assert!(negative_weight(1, 1).is_err());
        assert!(BatchOptimum::solve(10, 4, -1.0, 0.0).is_err());
        assert!(Optimum::sigmoid_weighted(10, 1.0, 1.0, 0.0).is_err());
    }
}
