//! OSGD's batch choice (Cho et al., *Mini-Batch Optimization of Contrastive Loss*, TMLR 2024):
//! the batch of `B` pairs with the largest batch loss at the current embeddings (SPEC.md §8).
//!
//! Which search runs ([`HardestSearch::for_batch`]):
//!
//! - **Exact** when `C(N,B) <= 1e5` ([`super::MAX_EXACT_HARDEST`]): every step evaluates every
//!   batch's loss from the full `S = U V^T` (the loss of the `B x B` sub-matrix `S[batch,
//!   batch]`, SPEC §1 with `N = B`) and takes the largest, as the authors' synthetic experiment
//!   does (`osgd_NcB_batches`). Cost per step `C(N,B) B^2`.
//! - **Spectral** when `C(N,B) > 1e5`, `B` divides `N` and `N <= 1024`
//!   ([`MAX_SPECTRAL_N`]): the authors' even-sized spectral clustering (`sc_even`), which
//!   partitions the `N` pairs into `N/B` clusters of exactly `B` pairs whose negatives are
//!   hard together ([`spectral_partition`]). At the start of every epoch (`N/B` steps) the
//!   partition is recomputed from the current `S`, and the epoch steps on its batches from the
//!   largest batch loss to the smallest (the authors step on every cluster of the partition).
//!   Cost per epoch `O(N^3)` (an eigen-decomposition and an assignment of `N x N`), memory four
//!   `N x N` matrices of `f64` (32 MiB at `N = 1024`). Measured on the development machine (one
//!   thread, `d = 32`, random unit vectors): one partition takes 0.07 s at `N = 256`, 0.38 s at
//!   `N = 512`, 3.2 s at `N = 1024, B = 8` (25 ms per step of its 128-step epoch).
//! - Otherwise `hardest` is refused with an error naming the limits.
//!
//! This module is the policy: which search runs, the exact search, and the chooser that steps
//! through a run's batches. The spectral clustering and its parameters are in
//! [`super::spectral`] (re-exported here).

use super::{binomial, next_combination, MiniBatch, MAX_EXACT_HARDEST};
use crate::error::{Error, Result};
use crate::loss::ContrastiveLoss;
use crate::loss::Loss;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

pub use super::spectral::{
    pair_affinity, spectral_partition, KMEANS_MAX_ITER, KMEANS_SEEDINGS, MAX_SPECTRAL_N,
    SPECTRAL_STREAM,
};

/// How `hardest` finds its batches (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardestSearch {
    /// Every one of the `C(N,B)` batches, every step.
    Exact,
    /// The even-sized spectral clustering of Cho et al., once per epoch.
    Spectral,
}

impl HardestSearch {
    /// The search for `n` pairs and batches of `b` (`2 <= b < n`).
    ///
    /// ```
    /// use ccem::batch::hardest::HardestSearch;
    /// assert_eq!(HardestSearch::for_batch(16, 4)?, HardestSearch::Exact); // C(16,4) = 1820
    /// assert_eq!(HardestSearch::for_batch(64, 8)?, HardestSearch::Spectral);
    /// assert!(HardestSearch::for_batch(60, 7).is_err()); // 7 does not divide 60
    /// assert!(HardestSearch::for_batch(2048, 8).is_err()); // N above 1024
    /// # Ok::<(), ccem::Error>(())
    /// ```
    ///
    /// # Errors
    /// `C(n, b) > 1e5` and either `b` does not divide `n` or `n > 1024`.
    pub fn for_batch(n: usize, b: usize) -> Result<Self> {
        let c = binomial(n, b);
        if c <= MAX_EXACT_HARDEST {
            return Ok(HardestSearch::Exact);
        }
        if !n.is_multiple_of(b) {
            return Err(Error::Config(format!(
                "{} hardest searches all C({n},{b}) = {c:.3e} batches exactly only up to \
                 {MAX_EXACT_HARDEST:.0e}; above that it partitions the pairs into N/B spectral \
                 clusters (Cho et al.), which needs B to divide N: choose a divisor of N",
                crate::error::option("batching")
            )));
        }
        if n > MAX_SPECTRAL_N {
            return Err(Error::Config(format!(
                "{} hardest with N = {n}: C({n},{b}) = {c:.3e} is above the exact \
                 search's {MAX_EXACT_HARDEST:.0e}, and the spectral clustering that replaces it \
                 (O(N^3) per epoch) is limited to N <= {MAX_SPECTRAL_N}; use shuffled",
                crate::error::option("batching")
            )));
        }
        Ok(HardestSearch::Spectral)
    }
}

/// Checks that `hardest` can run for `n` pairs and batches of `b` ([`HardestSearch::for_batch`]).
///
/// # Errors
/// As [`HardestSearch::for_batch`].
pub fn check_hardest(n: usize, b: usize) -> Result<()> {
    HardestSearch::for_batch(n, b).map(|_| ())
}

/// The batch of size `b` whose loss on `S[batch, batch]` is largest (ties: the first in
/// lexicographic order), written into `out` (sorted); returns its loss. Exact search over all
/// `C(N, b)` batches.
pub fn hardest_batch(loss: &Loss, s: ArrayView2<f64>, b: usize, out: &mut Vec<usize>) -> f64 {
    let n = s.nrows();
    let mut comb: Vec<usize> = (0..b).collect();
    let mut sub = Array2::<f64>::zeros((b, b));
    // A loss that is a sum over pairs (`pair_term`): each pair's term once, then sums per batch.
    let pair_terms = loss.pair_term(0.0, true).map(|_| {
        Array2::from_shape_fn((n, n), |(i, j)| {
            loss.pair_term(s[[i, j]], i == j).unwrap_or(f64::NAN)
        })
    });
    let value = |comb: &[usize], sub: &mut Array2<f64>| match &pair_terms {
        Some(p) => {
            let mut sum = 0.0;
            for &i in comb {
                for &j in comb {
                    sum += p[[i, j]];
                }
            }
            sum / b as f64
        }
        None => batch_loss(loss, s, comb, sub),
    };
    let mut best = f64::NEG_INFINITY;
    out.clear();
    out.extend_from_slice(&comb);
    loop {
        let v = value(&comb, &mut sub);
        if v > best {
            best = v;
            out.clear();
            out.extend_from_slice(&comb);
        }
        if !next_combination(&mut comb, n) {
            break;
        }
    }
    best
}

/// The loss of the batch `idx` (the loss of `S[idx, idx]`), using `sub` (`B x B`) as workspace.
fn batch_loss(loss: &Loss, s: ArrayView2<f64>, idx: &[usize], sub: &mut Array2<f64>) -> f64 {
    for (r, &i) in idx.iter().enumerate() {
        for (c, &j) in idx.iter().enumerate() {
            sub[[r, c]] = s[[i, j]];
        }
    }
    loss.value_s(sub.view())
}

/// The batch choice of a `hardest` run: [`hardest_batch`] every step, or the spectral partition
/// once per epoch, stepped through from the largest batch loss down (module documentation).
#[derive(Clone, Debug)]
pub struct HardestChooser {
    search: HardestSearch,
    size: usize,
    rng: ChaCha8Rng,
    queue: VecDeque<Vec<usize>>,
}

impl HardestChooser {
    /// The chooser for `mb` (a `hardest` batch that [`check_hardest`] accepted), drawing from
    /// `seed` on [`SPECTRAL_STREAM`] plus `restart`.
    ///
    /// # Errors
    /// As [`HardestSearch::for_batch`].
    pub fn new(mb: &MiniBatch, seed: u64, restart: u64) -> Result<Self> {
        let search = HardestSearch::for_batch(mb.n(), mb.size())?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SPECTRAL_STREAM + restart);
        Ok(HardestChooser {
            search,
            size: mb.size(),
            rng,
            queue: VecDeque::new(),
        })
    }

    /// Which search runs.
    pub fn search(&self) -> HardestSearch {
        self.search
    }

    /// Whether the next [`HardestChooser::next_batch`] reads `S` (the caller may skip computing
    /// it otherwise).
    pub fn needs_similarities(&self) -> bool {
        self.search == HardestSearch::Exact || self.queue.is_empty()
    }

    /// The next batch (sorted) into `out`, from the current `S` when
    /// [`HardestChooser::needs_similarities`]; returns its loss (at the time it was chosen).
    /// `None` when `S` is not finite or the clustering fails (the run has diverged).
    pub fn next_batch(
        &mut self,
        loss: &Loss,
        s: ArrayView2<f64>,
        out: &mut Vec<usize>,
    ) -> Option<f64> {
        let b = self.size;
        match self.search {
            HardestSearch::Exact => Some(hardest_batch(loss, s, b, out)),
            HardestSearch::Spectral => {
                if self.queue.is_empty() {
                    let parts = spectral_partition(loss, s, b, &mut self.rng).ok()?;
                    let mut sub = Array2::<f64>::zeros((b, b));
                    let mut scored: Vec<(f64, Vec<usize>)> = parts
                        .into_iter()
                        .map(|p| (batch_loss(loss, s, &p, &mut sub), p))
                        .collect();
                    // Largest loss first; ties keep the order of the smallest index.
                    scored.sort_by(|x, y| y.0.total_cmp(&x.0));
                    self.queue = scored.into_iter().map(|(_, p)| p).collect();
                }
                let batch = self.queue.pop_front()?;
                let mut sub = Array2::<f64>::zeros((b, b));
                let value = batch_loss(loss, s, &batch, &mut sub);
                out.clear();
                out.extend_from_slice(&batch);
                Some(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::spectral::tests::planted;
    use rand::RngExt;

    #[test]
    fn finds_the_worst_batch() {
        // Pairs 1 and 3 are misaligned, so the batch holding both has the largest loss.
        let n = 5;
        let mut s = Array2::<f64>::from_elem((n, n), -0.2);
        for i in 0..n {
            s[[i, i]] = 0.9;
        }
        s[[1, 1]] = -0.5;
        s[[3, 3]] = -0.4;
        s[[1, 3]] = 0.8;
        let loss = Loss::sigmoid(3.0, 1.0).unwrap();
        let mut out = Vec::new();
        let v = hardest_batch(&loss, s.view(), 2, &mut out);
        assert_eq!(out, vec![1, 3]);
        let sub = ndarray::array![[-0.5, 0.8], [-0.2, -0.4]];
        assert!((v - loss.value_s(sub.view())).abs() < 1e-14);
        let info = Loss::infonce(0.3).unwrap();
        let vi = hardest_batch(&info, s.view(), 2, &mut out);
        assert_eq!(vi, info.value_s(sub.view()));
        assert_eq!(out, vec![1, 3]);
        // The sigmoid path (pair terms summed) against the batch loss itself, on random S.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let r = Array2::from_shape_fn((8, 8), |_| rng.random::<f64>() * 2.0 - 1.0);
        let v = hardest_batch(&loss, r.view(), 3, &mut out);
        let mut comb: Vec<usize> = (0..3).collect();
        let mut sub3 = Array2::zeros((3, 3));
        let mut best = (f64::NEG_INFINITY, Vec::new());
        loop {
            let x = batch_loss(&loss, r.view(), &comb, &mut sub3);
            if x > best.0 {
                best = (x, comb.clone());
            }
            if !next_combination(&mut comb, 8) {
                break;
            }
        }
        assert!((v - best.0).abs() < 1e-13);
        assert_eq!(out, best.1);
        assert!(check_hardest(30, 4).is_ok());
        assert_eq!(
            HardestSearch::for_batch(60, 10).unwrap(),
            HardestSearch::Spectral
        );
        assert!(check_hardest(61, 10).is_err());
        assert!(check_hardest(2000, 10).is_err());
        assert_eq!(
            HardestSearch::for_batch(1024, 8).unwrap(),
            HardestSearch::Spectral
        );
    }

    /// On random embeddings where exact search is affordable: the spectral partition's hardest
    /// batch is at most the exact hardest, and above the mean batch loss over all `C(N,B)`
    /// batches (a uniformly random batch); the partition's mean batch loss is above the mean
    /// of random partitions.
    #[test]
    fn spectral_against_exact_and_random() {
        let mut above = 0;
        let mut ratio_sum = 0.0;
        let cases = 12;
        for seed in 0..cases {
            let (n, b, d) = (12, 4, 3);
            let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
            let unit = |rng: &mut ChaCha8Rng| {
                let mut x = Array2::<f64>::zeros((n, d));
                x.mapv_inplace(|_| rng.random::<f64>() - 0.5);
                for mut r in x.rows_mut() {
                    let nr = r.dot(&r).sqrt();
                    r.mapv_inplace(|v| v / nr);
                }
                x
            };
            let u = unit(&mut rng);
            let s = u.dot(&u.t());
            let loss = Loss::sigmoid(4.0, 0.0).unwrap();
            let mut out = Vec::new();
            let exact = hardest_batch(&loss, s.view(), b, &mut out);
            // Mean over all batches.
            let mut comb: Vec<usize> = (0..b).collect();
            let mut sub = Array2::zeros((b, b));
            let (mut sum, mut count) = (0.0, 0.0);
            loop {
                sum += batch_loss(&loss, s.view(), &comb, &mut sub);
                count += 1.0;
                if !next_combination(&mut comb, n) {
                    break;
                }
            }
            let mean = sum / count;
            let mut crng = ChaCha8Rng::seed_from_u64(seed);
            let parts = spectral_partition(&loss, s.view(), b, &mut crng).unwrap();
            let losses: Vec<f64> = parts
                .iter()
                .map(|p| batch_loss(&loss, s.view(), p, &mut sub))
                .collect();
            let top = losses.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let part_mean = losses.iter().sum::<f64>() / losses.len() as f64;
            assert!(top <= exact + 1e-12);
            assert!(top > mean, "seed {seed}: {top} <= mean {mean}");
            if part_mean > mean {
                above += 1;
            }
            ratio_sum += (top - mean) / (exact - mean);
        }
        // The partition as a whole beats a random partition (whose expected mean is `mean`).
        assert!(above >= cases - 1, "{above} of {cases}");
        // Its top batch recovers most of the gap between a random and the hardest batch.
        assert!(
            ratio_sum / cases as f64 > 0.6,
            "{}",
            ratio_sum / cases as f64
        );
    }

    #[test]
    fn chooser_is_reproducible_and_steps_hardest_first() {
        let (n, b) = (48, 4);
        let (s, groups) = planted(n, b, 7);
        let loss = Loss::sigmoid(5.0, 0.0).unwrap();
        let mb = MiniBatch::new(n, b, Some(super::super::Batching::Hardest), &loss).unwrap();
        let mut a = HardestChooser::new(&mb, 9, 0).unwrap();
        let mut c = HardestChooser::new(&mb, 9, 0).unwrap();
        assert_eq!(a.search(), HardestSearch::Spectral);
        let mut out = Vec::new();
        let mut out2 = Vec::new();
        let mut seen = Vec::new();
        let mut last = f64::INFINITY;
        for _ in 0..n / b {
            let v = a.next_batch(&loss, s.view(), &mut out).unwrap();
            c.next_batch(&loss, s.view(), &mut out2).unwrap();
            assert_eq!(out, out2);
            assert!(v <= last);
            last = v;
            seen.push(out.clone());
        }
        seen.sort_by_key(|g| g[0]);
        assert_eq!(seen, groups);
        assert!(a.needs_similarities());
        let bad = Array2::from_elem((n, n), f64::NAN);
        assert!(a.next_batch(&loss, bad.view(), &mut out).is_none());
    }
}
