//! Building the CCEM (SPEC.md §2).
//!
//! Simplex ETF: `x_i = sqrt(N/(N-1)) (e_i - (1/N) 1)` in `R^N`, so `||x_i|| = 1`,
//! `x_i . x_j = -1/(N-1)`, `sum_i x_i = 0`; `e = 1/sqrt(N) 1` is orthogonal to every `x_i`.
//! CCEM: `u_i = (x_i + delta e)/sqrt(1 + delta^2)`, `v_i = (x_i - delta e)/sqrt(1 + delta^2)`,
//! `delta in [0, inf]`. With `c = delta^2/(1+delta^2)`: `s_+ = 1 - 2c`,
//! `s_- = -(1-c)/(N-1) - c`, `u_i . u_j = v_i . v_j = -(1-c)/(N-1) + c`.

use crate::error::{check_batch, Error, Result};
use crate::limits::MemoryLimit;
use crate::monitor::{Monitor, Unwatched};
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
    /// The CCEM with parameter `delta` (`0` = simplex ETF, `inf` = antipodal), within the
    /// memory available ([`Ccem::new_within`] with [`MemoryLimit::Available`]).
    ///
    /// # Errors
    /// As [`Ccem::new_within`].
    pub fn new(n: usize, d: usize, delta: f64) -> Result<Self> {
        Self::new_within(n, d, delta, MemoryLimit::Available)
    }

    /// The CCEM with parameter `delta` (`0` = simplex ETF, `inf` = antipodal), whose
    /// [`Ccem::build_rotated`] fits `max_memory`.
    ///
    /// # Errors
    /// `N < 2`, `d < N`, `delta` negative or NaN, or more memory than `max_memory`
    /// ([`crate::limits`]) for the matrices [`Ccem::build_rotated`] holds.
    pub fn new_within(n: usize, d: usize, delta: f64, max_memory: MemoryLimit) -> Result<Self> {
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
        // build_rotated holds the ETF (N x N), the Gaussian being factored (d x d), the
        // rotation's first N rows (two N x d) and two pairs (N x d).
        let (nf, df) = (n as f64, d as f64);
        max_memory.check(
            &format!("the CCEM of {n} pairs in R^{d}"),
            8.0 * (nf * nf + df * df + 6.0 * nf * df),
        )?;
        Ok(Ccem { n, d, delta })
    }

    /// The CCEM with `c = delta^2/(1+delta^2) in [0, 1]`.
    ///
    /// # Errors
    /// As [`Ccem::new`], and `c` outside `[0, 1]`.
    pub fn from_c(n: usize, d: usize, c: f64) -> Result<Self> {
        Self::from_c_within(n, d, c, MemoryLimit::Available)
    }

    /// [`Ccem::from_c`] within `max_memory` ([`Ccem::new_within`]).
    ///
    /// # Errors
    /// As [`Ccem::new_within`], and `c` outside `[0, 1]`.
    pub fn from_c_within(n: usize, d: usize, c: f64, max_memory: MemoryLimit) -> Result<Self> {
        if !(0.0..=1.0).contains(&c) {
            return Err(Error::InvalidParameter {
                name: "c",
                value: c,
                requirement: "must be in [0, 1]",
            });
        }
        Self::new_within(n, d, delta_of_c(c), max_memory)
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

    /// `(U Q, V Q)` for a random orthogonal `Q` (`d x d`) drawn from `seed`
    /// ([`random_orthogonal`]; only its first `N` rows are formed: `U` is zero beyond column
    /// `N`).
    pub fn build_rotated(&self, seed: u64) -> (Array2<f64>, Array2<f64>) {
        self.build_rotated_with(seed, &Unwatched)
            .expect("an unwatched build is never interrupted")
    }

    /// [`Ccem::build_rotated`], polling `monitor` between the blocks of the QR factorisation.
    ///
    /// # Errors
    /// [`Error::Interrupted`] when the monitor is cancelled.
    pub fn build_rotated_with(
        &self,
        seed: u64,
        monitor: &dyn Monitor,
    ) -> Result<(Array2<f64>, Array2<f64>)> {
        let (u, v) = self.build();
        let n = self.n;
        let q = random_orthogonal_rows(self.d, n, seed, monitor)?;
        let (u, v) = (u.slice(s![.., ..n]), v.slice(s![.., ..n]));
        Ok((u.dot(&q), v.dot(&q)))
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
    ccem_embedding_with(
        n,
        d,
        delta,
        rotation_seed,
        MemoryLimit::Available,
        &Unwatched,
    )
}

/// [`ccem_embedding`] within `max_memory`, whose rotation polls `monitor`
/// ([`Ccem::build_rotated_with`]).
///
/// # Errors
/// As [`Ccem::new_within`]; [`Error::Interrupted`] when the monitor is cancelled.
pub fn ccem_embedding_with(
    n: usize,
    d: usize,
    delta: f64,
    rotation_seed: Option<u64>,
    max_memory: MemoryLimit,
    monitor: &dyn Monitor,
) -> Result<(Array2<f64>, Array2<f64>)> {
    let c = Ccem::new_within(n, d, delta, max_memory)?;
    match rotation_seed {
        Some(seed) => c.build_rotated_with(seed, monitor),
        None => Ok(c.build()),
    }
}

/// A random orthogonal `d x d` matrix, Haar distributed: the `Q` of the QR factorisation
/// `G = Q R` of a Gaussian matrix `G` (entries iid `N(0, 1)` from `ChaCha8Rng::seed_from_u64(seed)`,
/// row by row) with the signs fixed so that `diag(R) > 0` (the factorisation is then unique, and
/// this is the `Q` that Gram-Schmidt on the columns of `G` gives).
pub fn random_orthogonal(d: usize, seed: u64) -> Array2<f64> {
    random_orthogonal_rows(d, d, seed, &Unwatched).expect("an unwatched QR is never interrupted")
}

/// The first `rows` rows of [`random_orthogonal`]`(d, seed)`, `rows <= d`, in `O(d^3)` flops
/// and `d^2 + 2 rows d` numbers: a blocked Householder QR of `G` (faer, on one thread:
/// bitwise independent of the thread count), then `Q^T E` for the first `rows` columns `E` of
/// the identity, transposed. `monitor` is polled between the blocks.
///
/// # Errors
/// [`Error::Interrupted`] when the monitor is cancelled.
pub fn random_orthogonal_rows(
    d: usize,
    rows: usize,
    seed: u64,
    monitor: &dyn Monitor,
) -> Result<Array2<f64>> {
    use faer::linalg::householder;
    use faer::linalg::qr::no_pivoting::factor;
    use faer::prelude::{Reborrow, ReborrowMut};
    use faer::{Conj, Mat, Par};
    let rows = rows.min(d);
    let what = "the random rotation (a QR factorisation)";
    crate::monitor::check(monitor, what)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut a = Mat::<f64>::zeros(d, d);
    for i in 0..d {
        for j in 0..d {
            a[(i, j)] = StandardNormal.sample(&mut rng);
        }
    }
    let par = Par::Seq;
    let bs = factor::recommended_block_size::<f64>(d, d).max(1);
    let mut coeff = Mat::<f64>::zeros(bs, d);
    let mut mem = faer::dyn_stack::MemBuffer::new(
        factor::qr_in_place_scratch::<f64>(d, d, bs, par, Default::default()).or(
            householder::apply_block_householder_transpose_on_the_left_in_place_scratch::<f64>(
                d, bs, d,
            ),
        ),
    );
    // The blocked factorisation, one panel of `bs` columns at a time (what `qr_in_place` does,
    // with a poll between panels): factor the panel, apply its reflectors to the columns right
    // of it.
    let mut j = 0;
    while j < d {
        crate::monitor::check(monitor, what)?;
        let w = bs.min(d - j);
        let (mut left, right) = a.as_mut().subrows_mut(j, d - j).split_at_col_mut(j + w);
        let panel = left.rb_mut().subcols_mut(j, w);
        let mut c = coeff.as_mut().submatrix_mut(0, j, w, w);
        factor::qr_in_place(
            panel,
            c.rb_mut(),
            par,
            faer::dyn_stack::MemStack::new(&mut mem),
            Default::default(),
        );
        if right.ncols() > 0 {
            householder::apply_block_householder_transpose_on_the_left_in_place_with_conj(
                left.rb().subcols(j, w),
                c.rb(),
                Conj::Yes,
                right,
                par,
                faer::dyn_stack::MemStack::new(&mut mem),
            );
        }
        j += w;
    }
    crate::monitor::check(monitor, what)?;
    // `W = Q^T E` (d x rows), then row `k` of `Q D` is column `k` of `W` times `D_kk`.
    let mut w = Mat::<f64>::zeros(d, rows);
    for k in 0..rows {
        w[(k, k)] = 1.0;
    }
    let mut mem = faer::dyn_stack::MemBuffer::new(
        householder::apply_block_householder_sequence_transpose_on_the_left_in_place_scratch::<f64>(
            d, bs, rows,
        ),
    );
    householder::apply_block_householder_sequence_transpose_on_the_left_in_place_with_conj(
        a.as_ref(),
        coeff.as_ref(),
        Conj::Yes,
        w.as_mut(),
        par,
        faer::dyn_stack::MemStack::new(&mut mem),
    );
    crate::monitor::check(monitor, what)?;
    // Q D with D = sign(diag R): R's diagonal is that of the factored `a`.
    Ok(Array2::from_shape_fn((rows, d), |(k, col)| {
        let sign = if a[(col, col)] < 0.0 { -1.0 } else { 1.0 };
        w[(col, k)] * sign
    }))
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
