//! Building the CCEM (SPEC.md §2).
//!
//! Simplex ETF: `x_i = sqrt(N/(N-1)) (e_i - (1/N) 1)` in `R^N`, so `||x_i|| = 1`,
//! `x_i . x_j = -1/(N-1)`, `sum_i x_i = 0`; `e = 1/sqrt(N) 1` is orthogonal to every `x_i`.
//! CCEM: `u_i = (x_i + delta e)/sqrt(1 + delta^2)`, `v_i = (x_i - delta e)/sqrt(1 + delta^2)`,
//! `delta in [0, inf]`. With `c = delta^2/(1+delta^2)`: `s_+ = 1 - 2c`,
//! `s_- = -(1-c)/(N-1) - c`, `u_i . u_j = v_i . v_j = -(1-c)/(N-1) + c`.

use crate::error::{check_batch, Error, Result};
use crate::theory::{c_of_delta, delta_of_c};
use ndarray::{s, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A validated CCEM: `N >= 2`, `d >= N`, `delta in [0, inf]` (SPEC §2).
///
/// # Example
/// ```
/// use ccem::{measure, BlockOptions, Ccem};
///
/// let (u, v) = Ccem::from_c(5, 7, 0.25)?.build();
/// assert_eq!(u.dim(), (5, 7));
/// let m = measure(u.view(), v.view(), BlockOptions::default());
/// // s_+ = 1 - 2c and s_- = -(1-c)/(N-1) - c, and the fit recovers c.
/// assert!((m.pos.mean - 0.5).abs() < 1e-12);
/// assert!((m.neg.mean - (-0.75 / 4.0 - 0.25)).abs() < 1e-12);
/// assert!((m.c_fit - 0.25).abs() < 1e-12 && m.gram_distance < 1e-7);
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ccem {
    n: usize,
    d: usize,
    delta: f64,
}

impl Ccem {
    /// The CCEM with parameter `delta` (`0` = simplex ETF, `inf` = antipodal).
    ///
    /// # Errors
    /// `N < 2`, `d < N`, `delta` negative or NaN, or more memory than the machine has
    /// ([`crate::limits`]) for the matrices [`Ccem::build_rotated`] holds.
    pub fn new(n: usize, d: usize, delta: f64) -> Result<Self> {
        check_batch(n)?;
        if d < n {
            return Err(Error::DimensionTooSmall { n, d });
        }
        if delta.is_nan() || delta < 0.0 {
            return Err(Error::InvalidParameter {
                name: "delta",
                value: delta,
                requirement: "must be in [0, inf]",
            });
        }
        // build_rotated holds the ETF (N x N), the rotation (d x d) and two pairs (N x d).
        let (nf, df) = (n as f64, d as f64);
        crate::limits::check_memory(
            &format!("the CCEM of {n} pairs in R^{d}"),
            8.0 * (nf * nf + df * df + 4.0 * nf * df),
        )?;
        Ok(Ccem { n, d, delta })
    }

    /// The CCEM with `c = delta^2/(1+delta^2) in [0, 1]`.
    ///
    /// # Errors
    /// As [`Ccem::new`], and `c` outside `[0, 1]`.
    pub fn from_c(n: usize, d: usize, c: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&c) {
            return Err(Error::InvalidParameter {
                name: "c",
                value: c,
                requirement: "must be in [0, 1]",
            });
        }
        Self::new(n, d, delta_of_c(c))
    }

    /// `delta`.
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// `c = delta^2 / (1 + delta^2)`.
    pub fn c(&self) -> f64 {
        c_of_delta(self.delta)
    }

    /// `(U, V)`, each `N x d`, unrotated (zero-padded beyond column `N`).
    pub fn build(&self) -> (Array2<f64>, Array2<f64>) {
        let (n, d) = (self.n, self.d);
        let x = simplex_etf(n);
        let e = 1.0 / (n as f64).sqrt();
        // (x + delta e)/sqrt(1+delta^2) = sqrt(1-c) x + sqrt(c) e: finite at delta = inf.
        let c = self.c();
        let (a, z) = ((1.0 - c).sqrt(), c.sqrt());
        let mut u = Array2::zeros((n, d));
        let mut v = Array2::zeros((n, d));
        for i in 0..n {
            for j in 0..n {
                u[[i, j]] = a * x[[i, j]] + z * e;
                v[[i, j]] = a * x[[i, j]] - z * e;
            }
        }
        (u, v)
    }

    /// `(U Q, V Q)` for a random orthogonal `Q` (`d x d`) drawn from `seed`.
    pub fn build_rotated(&self, seed: u64) -> (Array2<f64>, Array2<f64>) {
        let (u, v) = self.build();
        let q = random_orthogonal(self.d, seed);
        (u.dot(&q), v.dot(&q))
    }
}

/// The simplex ETF in `R^N`: row `i` is `sqrt(N/(N-1)) (e_i - (1/N) 1)` (SPEC §2).
pub fn simplex_etf(n: usize) -> Array2<f64> {
    let k = (n as f64 / (n as f64 - 1.0)).sqrt();
    Array2::from_shape_fn((n, n), |(i, j)| {
        k * (if i == j { 1.0 } else { 0.0 } - 1.0 / n as f64)
    })
}

/// The CCEM `(U, V)` for `N`, `d`, `delta`, optionally rotated by a random orthogonal matrix.
///
/// # Errors
/// As [`Ccem::new`].
pub fn ccem_embedding(
    n: usize,
    d: usize,
    delta: f64,
    rotation_seed: Option<u64>,
) -> Result<(Array2<f64>, Array2<f64>)> {
    let c = Ccem::new(n, d, delta)?;
    Ok(match rotation_seed {
        Some(seed) => c.build_rotated(seed),
        None => c.build(),
    })
}

/// A random orthogonal `d x d` matrix: Gram-Schmidt (twice, for orthogonality to machine
/// precision) on a Gaussian matrix with the signs fixed, which is Haar distributed.
///
/// Written by hand: `d` is small here and this avoids a LAPACK dependency for one QR.
pub fn random_orthogonal(d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut q = Array2::<f64>::from_shape_fn((d, d), |_| StandardNormal.sample(&mut rng));
    for j in 0..d {
        for _ in 0..2 {
            for k in 0..j {
                let proj = q.column(j).dot(&q.column(k));
                let qk = q.column(k).to_owned();
                q.column_mut(j).scaled_add(-proj, &qk);
            }
        }
        let norm = q.column(j).dot(&q.column(j)).sqrt();
        q.slice_mut(s![.., j]).mapv_inplace(|x| x / norm);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{sigmoid_loss, Loss};
    use crate::theory::{ccem_loss, s_neg_of_c, s_pos_of_c, s_within_of_c};

    #[test]
    fn etf_has_the_stated_similarities() {
        for n in 2..9 {
            let x = simplex_etf(n);
            let g = x.dot(&x.t());
            for i in 0..n {
                assert!((g[[i, i]] - 1.0).abs() < 1e-14);
                for j in 0..n {
                    if i != j {
                        assert!((g[[i, j]] + 1.0 / (n as f64 - 1.0)).abs() < 1e-14);
                    }
                }
            }
            assert!(x.sum_axis(ndarray::Axis(0)).iter().all(|s| s.abs() < 1e-14));
        }
    }

    #[test]
    fn ccem_has_exactly_the_spec_similarities_and_loss() {
        for &(n, d) in &[(2, 2), (5, 5), (10, 13)] {
            for &delta in &[0.0, 0.3, 1.0, 4.0, f64::INFINITY] {
                for rot in [None, Some(9)] {
                    let (u, v) = ccem_embedding(n, d, delta, rot).unwrap();
                    let c = c_of_delta(delta);
                    let s = u.dot(&v.t());
                    let uu = u.dot(&u.t());
                    let vv = v.dot(&v.t());
                    for i in 0..n {
                        assert!((uu[[i, i]] - 1.0).abs() < 1e-13);
                        assert!((s[[i, i]] - s_pos_of_c(c)).abs() < 1e-13);
                        for j in (0..n).filter(|&j| j != i) {
                            assert!((s[[i, j]] - s_neg_of_c(n, c)).abs() < 1e-13);
                            assert!((uu[[i, j]] - s_within_of_c(n, c)).abs() < 1e-13);
                            assert!((vv[[i, j]] - s_within_of_c(n, c)).abs() < 1e-13);
                        }
                    }
                    for &(t, b) in &[(1.0, 1.0), (3.0, 1.0), (0.5, -2.0)] {
                        let l = sigmoid_loss(s.view(), t, b);
                        assert!((l - ccem_loss(n, t, b, c)).abs() < 1e-12);
                        let via_enum = crate::loss::ContrastiveLoss::value_s(
                            &Loss::sigmoid(t, b).unwrap(),
                            s.view(),
                        );
                        assert_eq!(l, via_enum);
                    }
                }
            }
        }
    }

    #[test]
    fn rotation_is_orthogonal() {
        let q = random_orthogonal(7, 3);
        let i = q.t().dot(&q);
        for a in 0..7 {
            for b in 0..7 {
                assert!((i[[a, b]] - if a == b { 1.0 } else { 0.0 }).abs() < 1e-13);
            }
        }
    }

    #[test]
    fn bad_ccem_arguments() {
        assert!(matches!(
            Ccem::new(5, 4, 0.0),
            Err(Error::DimensionTooSmall { .. })
        ));
        assert!(Ccem::new(1, 4, 0.0).is_err());
        assert!(Ccem::new(4, 4, -1.0).is_err());
        assert!(Ccem::new(4, 4, f64::NAN).is_err());
        assert!(Ccem::from_c(4, 4, 1.5).is_err());
    }
}
