//! The two terms mini-batch training adds to the losses of SPEC §1 (SPEC.md §8).
//!
//! - **The expected sigmoid loss** over uniformly drawn batches of `B` of the `N` pairs: the
//!   full-batch loss with every negative term weighted by `w = (B-1)/(N-1)`,
//!
//!   `L_w(S) = (1/N) [ sum_i softplus(-(t S_ii - b)) + w sum_{i != j} softplus(t S_ij - b) ]`,
//!
//!   with gradient `G^w_ii = G_ii`, `G^w_ij = w G_ij` ([`sigmoid_loss_weighted`],
//!   [`weight_negatives`]).
//! - **The negative-variance penalty** of Lee, Lim, Lee, Sohn (ICML 2025, their "VRN" term)
//!   on one batch of `B` pairs:
//!
//!   `R(S) = lambda (1/(B(B-1))) sum_{i != j} (S_ij - delta)^2`, `delta = -1/(N-1)`,
//!
//!   the mean squared deviation of the batch's negative similarities from the full-batch ETF
//!   value, with gradient `dR/dS_ij = 2 lambda (S_ij - delta) / (B(B-1))` for `i != j`, `0` on
//!   the diagonal ([`NegVariance`]).

use crate::error::{check_nonneg, Result};
use crate::numerics::softplus;
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// `L_w(S)`: the sigmoid loss with every negative term weighted by `w` (module documentation;
/// `w = 1` is [`super::sigmoid_loss`] up to the order of the sum).
pub fn sigmoid_loss_weighted(s: ArrayView2<f64>, t: f64, b: f64, w: f64) -> f64 {
    let n = s.nrows();
    let (mut pos, mut neg) = (0.0, 0.0);
    for ((i, j), &sij) in s.indexed_iter() {
        let x = t * sij - b;
        if i == j {
            pos += softplus(-x);
        } else {
            neg += softplus(x);
        }
    }
    (pos + w * neg) / n as f64
}

/// Multiplies every off-diagonal entry of the square `g` by `w`: turns the sigmoid gradient
/// `G` into that of [`sigmoid_loss_weighted`].
pub fn weight_negatives(mut g: ArrayViewMut2<f64>, w: f64) {
    for ((i, j), e) in g.indexed_iter_mut() {
        if i != j {
            *e *= w;
        }
    }
}

/// The negative-variance penalty of Lee et al. 2025 (module documentation): weight `lambda`
/// and target `delta = -1/(N-1)` for `N` pairs.
///
/// ```
/// use ccem::loss::minibatch::NegVariance;
/// let p = NegVariance::new(2.0, 10)?;
/// let s = ndarray::array![[1.0, -1.0 / 9.0], [0.5, 1.0]];
/// let mut g = ndarray::Array2::zeros((2, 2));
/// let r = p.add_value_grad(s.view(), g.view_mut());
/// // One of the two negatives sits at delta: R = 2 * (1/2) * (0.5 + 1/9)^2.
/// assert!((r - (0.5f64 + 1.0 / 9.0).powi(2)).abs() < 1e-15);
/// assert_eq!(g[[0, 1]], 0.0);
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NegVariance {
    /// `lambda >= 0`.
    pub lambda: f64,
    /// `delta = -1/(N-1)`.
    pub delta: f64,
}

impl NegVariance {
    /// The penalty with weight `lambda` for `n` pairs in all.
    ///
    /// # Errors
    /// `lambda` negative or non-finite; `n < 2`.
    pub fn new(lambda: f64, n: usize) -> Result<Self> {
        check_nonneg("neg_variance_weight", lambda)?;
        crate::error::check_batch(n)?;
        Ok(NegVariance {
            lambda,
            delta: -1.0 / (n - 1) as f64,
        })
    }

    /// `R(S)` of one batch's `B x B` similarity matrix (`B >= 2`); adds `dR/dS` into `g`.
    pub fn add_value_grad(&self, s: ArrayView2<f64>, mut g: ArrayViewMut2<f64>) -> f64 {
        let bsz = s.nrows() as f64;
        let scale = self.lambda / (bsz * (bsz - 1.0));
        let mut total = 0.0;
        for (((i, j), &sij), ge) in s.indexed_iter().zip(g.iter_mut()) {
            if i != j {
                let e = sij - self.delta;
                total += e * e;
                *ge += 2.0 * scale * e;
            }
        }
        scale * total
    }

    /// `R(S)` alone.
    pub fn value(&self, s: ArrayView2<f64>) -> f64 {
        let bsz = s.nrows() as f64;
        let total: f64 = s
            .indexed_iter()
            .filter(|((i, j), _)| i != j)
            .map(|(_, &sij)| (sij - self.delta).powi(2))
            .sum();
        self.lambda / (bsz * (bsz - 1.0)) * total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::sigmoid::{sigmoid_loss, sigmoid_loss_grad};
    use ndarray::Array2;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Uniform};

    fn random_s(n: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u = Uniform::new(-1.0, 1.0).unwrap();
        Array2::from_shape_fn((n, n), |_| u.sample(&mut rng))
    }

    /// The derivation of SPEC §8: the mean of the batch losses over all `C(N,B)` batches is
    /// the weighted loss, checked by enumerating the batches.
    #[test]
    fn expected_batch_loss_is_the_weighted_loss() {
        for &(n, bsz) in &[(6usize, 2usize), (7, 3), (8, 5), (6, 6)] {
            let s = random_s(n, n as u64);
            let (t, b) = (2.3, 0.7);
            let mut comb: Vec<usize> = (0..bsz).collect();
            let (mut total, mut count) = (0.0, 0usize);
            loop {
                let sub = Array2::from_shape_fn((bsz, bsz), |(r, c)| s[[comb[r], comb[c]]]);
                total += sigmoid_loss(sub.view(), t, b);
                count += 1;
                if !crate::batch::next_combination(&mut comb, n) {
                    break;
                }
            }
            let w = (bsz - 1) as f64 / (n - 1) as f64;
            let expected = total / count as f64;
            let weighted = sigmoid_loss_weighted(s.view(), t, b, w);
            assert!((expected - weighted).abs() < 1e-12, "{n} {bsz}");
            if bsz == n {
                assert!((weighted - sigmoid_loss(s.view(), t, b)).abs() < 1e-13);
            }
        }
    }

    proptest! {
        #[test]
        fn weighted_gradient_matches_finite_differences(seed in 0u64..1000, w in 0.05f64..1.0) {
            let n = 5;
            let s = random_s(n, seed);
            let (t, b) = (1.7, -0.4);
            let mut g = Array2::zeros((n, n));
            sigmoid_loss_grad(s.view(), t, b, g.view_mut());
            weight_negatives(g.view_mut(), w);
            let h = 1e-6;
            for i in 0..n {
                for j in 0..n {
                    let (mut p, mut m) = (s.clone(), s.clone());
                    p[[i, j]] += h;
                    m[[i, j]] -= h;
                    let fd = (sigmoid_loss_weighted(p.view(), t, b, w)
                        - sigmoid_loss_weighted(m.view(), t, b, w)) / (2.0 * h);
                    prop_assert!((fd - g[[i, j]]).abs() < 1e-8, "{} {} {} {}", i, j, fd, g[[i, j]]);
                }
            }
        }

        #[test]
        fn neg_variance_gradient_matches_finite_differences(seed in 0u64..1000, lambda in 0.0f64..10.0) {
            let bsz = 4;
            let s = random_s(bsz, seed);
            let p = NegVariance::new(lambda, 16).unwrap();
            let mut g = Array2::zeros((bsz, bsz));
            let r = p.add_value_grad(s.view(), g.view_mut());
            prop_assert!((r - p.value(s.view())).abs() < 1e-12);
            let h = 1e-6;
            for i in 0..bsz {
                for j in 0..bsz {
                    let (mut a, mut m) = (s.clone(), s.clone());
                    a[[i, j]] += h;
                    m[[i, j]] -= h;
                    let fd = (p.value(a.view()) - p.value(m.view())) / (2.0 * h);
                    prop_assert!((fd - g[[i, j]]).abs() < 1e-7 * (1.0 + lambda));
                }
            }
        }
    }
}
