//! The even-sized spectral clustering of Cho et al. (*Mini-Batch Optimization of Contrastive
//! Loss*, TMLR 2024) that replaces the exact search of `hardest` batches for large `C(N,B)`
//! ([`super::hardest`], SPEC.md §8): a partition of the `N` pairs into `N/B` batches of exactly
//! `B` pairs whose negatives are hard together ([`spectral_partition`]). It follows the
//! authors' code (`custom_affinity`, `sc_naive_synthetic`, `spectral_clustering` with `sc_even`):
//!
//! 1. A pair affinity `A_ij` that is large when `i` and `j` in one batch add much loss
//!    ([`pair_affinity`]). InfoNCE (logits `Z = S/tau`), the authors' form:
//!    `a_ij = log(1 + (B-1) e^{Z_ij - Z_ii}) + log(1 + (B-1) e^{Z_ji - Z_ii})`,
//!    `A = a + a^T`. Sigmoid, the exact loss the pair adds to a batch holding both:
//!    `A_ij = softplus(t S_ij - b) + softplus(t S_ji - b)`.
//! 2. The graph `W_ij = exp(A_ij)` for `i != j` (the authors' `psd_affinity`; computed as
//!    `exp(A_ij - max A)`, which the normalised Laplacian does not see), degrees
//!    `d_i = sum_{j != i} W_ij`.
//! 3. The spectral embedding (scikit-learn's `spectral_embedding` with `norm_laplacian=True`,
//!    `drop_first=False`): the `k = N/B` eigenvectors `x` of the smallest eigenvalues of
//!    `L = I - D^{-1/2} W D^{-1/2}`, each divided entrywise by `sqrt(d)` and signed so that its
//!    entry of largest magnitude is positive; pair `i` is the point `(x_1(i), .., x_k(i))`.
//! 4. k-means with `k` centres (k-means++ seeding, Lloyd iterations until no assignment
//!    changes or 300 iterations, the best inertia of 10 seedings).
//! 5. The balanced assignment: each centre repeated `B` times, and the pairs assigned to these
//!    `N` slots minimising the total Euclidean distance (the Hungarian algorithm; the authors use
//!    `scipy.optimize.linear_sum_assignment`). Cluster `c` is the pairs on the slots of centre
//!    `c`.
//!
//! Everything runs on one thread (the eigen-decomposition with `faer`, `Par::Seq`), and the
//! k-means draws come from `ChaCha8Rng::seed_from_u64(seed)` on stream [`SPECTRAL_STREAM`] plus
//! the restart, so a run is reproducible and bitwise independent of the thread count.

use super::cluster::{balanced_assignment, kmeans};
use crate::error::{Error, Result};
use crate::loss::ContrastiveLoss;
use crate::loss::Loss;
use ndarray::{Array2, ArrayView2};
use rand_chacha::ChaCha8Rng;

/// The largest `N` for which `hardest` runs the spectral approximation (time `O(N^3)` and
/// memory `4 N^2` floats per epoch).
pub const MAX_SPECTRAL_N: usize = 1024;
/// The random stream of the spectral clustering's k-means (plus the restart index).
pub const SPECTRAL_STREAM: u64 = 3 << 32;
pub use super::cluster::{KMEANS_MAX_ITER, KMEANS_SEEDINGS};

/// The symmetric pair affinity `A` (`N x N`, zero diagonal) of the spectral clustering for
/// batches of `b` (module documentation, step 1): large where pairs `i` and `j` add much loss
/// when they share a batch: [`ContrastiveLoss::pair_affinity`] of every pair.
///
/// ```
/// use ccem::batch::hardest::pair_affinity;
/// use ccem::loss::Loss;
/// let s = ndarray::array![[1.0, 0.5, -1.0], [0.5, 1.0, -1.0], [-1.0, -1.0, 1.0]];
/// let a = pair_affinity(&Loss::sigmoid(2.0, 1.0)?, s.view(), 2);
/// assert!(a[[0, 1]] > a[[0, 2]]); // 0 and 1 are the close (hard) negatives
/// assert_eq!(a[[0, 1]], a[[1, 0]]);
/// # Ok::<(), ccem::Error>(())
/// ```
pub fn pair_affinity(loss: &Loss, s: ArrayView2<f64>, b: usize) -> Array2<f64> {
    let n = s.nrows();
    let mut a = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..i {
            let v = loss.pair_affinity(s, i, j, b);
            a[[i, j]] = v;
            a[[j, i]] = v;
        }
    }
    a
}

/// The authors' even-sized spectral clustering (module documentation): a partition of the `N`
/// pairs of `S` into `N/b` batches of exactly `b` pairs (each sorted, the batches in the order
/// of their smallest index).
///
/// ```
/// use ccem::batch::hardest::spectral_partition;
/// use ccem::loss::Loss;
/// use rand::SeedableRng;
/// // Pairs 0,2 / 1,3 / 4,5 have close negatives.
/// let mut s = ndarray::Array2::from_elem((6, 6), -0.5);
/// for (i, j) in [(0, 2), (1, 3), (4, 5)] {
///     s[[i, j]] = 0.8;
///     s[[j, i]] = 0.8;
/// }
/// s.diag_mut().fill(1.0);
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let p = spectral_partition(&Loss::sigmoid(5.0, 0.0)?, s.view(), 2, &mut rng)?;
/// assert_eq!(p, vec![vec![0, 2], vec![1, 3], vec![4, 5]]);
/// assert!(spectral_partition(&Loss::sigmoid(5.0, 0.0)?, s.view(), 4, &mut rng).is_err());
/// # Ok::<(), ccem::Error>(())
/// ```
///
/// # Errors
/// `S` not square; `b < 2` or `b` not dividing `N`; `N` above [`MAX_SPECTRAL_N`]; a non-finite
/// `S`; an eigen-decomposition that does not converge.
pub fn spectral_partition(
    loss: &Loss,
    s: ArrayView2<f64>,
    b: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<usize>>> {
    let n = s.nrows();
    if s.ncols() != n || b < 2 || !n.is_multiple_of(b) || n > MAX_SPECTRAL_N {
        return Err(Error::Config(format!(
            "the spectral clustering needs a square S of N <= {MAX_SPECTRAL_N} pairs and a \
             batch size B >= 2 dividing N; got {n} x {} and B = {b}",
            s.ncols()
        )));
    }
    let k = n / b;
    if k == 1 {
        return Ok(vec![(0..n).collect()]);
    }
    if s.iter().any(|v| !v.is_finite()) {
        return Err(Error::Config(
            "the spectral clustering needs finite similarities".into(),
        ));
    }
    let x = spectral_embedding(pair_affinity(loss, s, b), k).ok_or_else(|| {
        Error::Config("the spectral embedding's eigen-decomposition did not converge".into())
    })?;
    let centres = kmeans(&x, k, rng);
    let labels = balanced_assignment(&x, &centres, b);
    let mut parts = vec![Vec::with_capacity(b); k];
    for (i, &c) in labels.iter().enumerate() {
        parts[c].push(i);
    }
    parts.sort_by_key(|p| p[0]);
    Ok(parts)
}

/// Steps 2 and 3: the `N x k` spectral embedding of the affinity `a` (module documentation).
fn spectral_embedding(mut a: Array2<f64>, k: usize) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut top = f64::NEG_INFINITY;
    for ((i, j), &v) in a.indexed_iter() {
        if i != j {
            top = top.max(v);
        }
    }
    for ((i, j), v) in a.indexed_iter_mut() {
        *v = if i == j { 0.0 } else { (*v - top).exp() };
    }
    // sqrt of the degrees; an isolated pair (every weight underflowed) keeps 1, as scipy does.
    let dd: Vec<f64> = a
        .rows()
        .into_iter()
        .map(|r| {
            let d = r.sum();
            if d > 0.0 {
                d.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    // M = D^{-1/2} W D^{-1/2}: its largest eigenvalues are the smallest of L = I - M.
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| a[[i, j]] / (dd[i] * dd[j]));
    drop(a);
    let mut u = faer::Mat::<f64>::zeros(n, n);
    let mut ev = faer::diag::Diag::<f64>::zeros(n);
    let par = faer::Par::Seq;
    let mut mem =
        faer::dyn_stack::MemBuffer::new(faer::linalg::evd::self_adjoint_evd_scratch::<f64>(
            n,
            faer::linalg::evd::ComputeEigenvectors::Yes,
            par,
            Default::default(),
        ));
    faer::linalg::evd::self_adjoint_evd(
        m.as_ref(),
        ev.as_mut(),
        Some(u.as_mut()),
        par,
        faer::dyn_stack::MemStack::new(&mut mem),
        Default::default(),
    )
    .ok()?;
    // Eigenvalues ascending: the last k columns, largest first.
    let mut x = Array2::<f64>::zeros((n, k));
    for c in 0..k {
        let col = n - 1 - c;
        let mut sign = 1.0;
        let mut big = -1.0;
        for i in 0..n {
            let v = u[(i, col)] / dd[i];
            if v.abs() > big {
                big = v.abs();
                sign = if v < 0.0 { -1.0 } else { 1.0 };
            }
        }
        for i in 0..n {
            x[[i, c]] = sign * u[(i, col)] / dd[i];
        }
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::batch::hardest::HardestSearch;
    use rand::seq::SliceRandom;
    use rand::RngExt;
    use rand::SeedableRng;

    /// `N/B` planted groups: unit vectors near one of `N/B` orthogonal directions (so the
    /// negatives inside a group are the hardest), pairs shuffled; `U = V`.
    pub(in crate::batch) fn planted(n: usize, b: usize, seed: u64) -> (Array2<f64>, Vec<Vec<usize>>) {
        let k = n / b;
        let d = k + 4;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let mut u = Array2::<f64>::zeros((n, d));
        let mut groups = vec![Vec::new(); k];
        for (pos, &i) in order.iter().enumerate() {
            let g = pos / b;
            groups[g].push(i);
            u[[i, g]] = 1.0;
            for j in 0..d {
                u[[i, j]] += 0.15 * (rng.random::<f64>() - 0.5);
            }
            let norm = u.row(i).dot(&u.row(i)).sqrt();
            u.row_mut(i).mapv_inplace(|v| v / norm);
        }
        for g in &mut groups {
            g.sort_unstable();
        }
        groups.sort_by_key(|g| g[0]);
        (u.dot(&u.t()), groups)
    }

    #[test]
    fn spectral_recovers_planted_batches() {
        for (n, b, seed) in [(48, 4, 1), (64, 8, 2), (60, 6, 3)] {
            assert_eq!(
                HardestSearch::for_batch(n, b).unwrap(),
                HardestSearch::Spectral
            );
            let (s, groups) = planted(n, b, seed);
            for loss in [
                Loss::sigmoid(5.0, 0.0).unwrap(),
                Loss::infonce(0.2).unwrap(),
            ] {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let p = spectral_partition(&loss, s.view(), b, &mut rng).unwrap();
                assert_eq!(p, groups, "N = {n}, B = {b}, {loss:?}");
            }
        }
    }
}
