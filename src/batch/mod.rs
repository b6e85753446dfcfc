//! Mini-batch training (SPEC.md §8): which batches a run steps on, and what it reports about
//! them.
//!
//! A run over `N` pairs with batches of size `B` (`2 <= B <= N`) chooses, at each step, a set of
//! `B` pair indices and steps on the loss of that batch alone (the batch loss divides by `B`,
//! SPEC §1). The strategies ([`Batching`]):
//!
//! - `expected`: no sampling. The step is on the exact expectation over uniformly drawn batches,
//!   which for the sigmoid loss is the full-batch loss with every negative pair weighted by
//!   `w = (B-1)/(N-1)` (SPEC §8). InfoNCE has no such closed form: an error.
//! - `shuffled`: each epoch (`N/B` steps) draws a new uniformly random partition of the `N`
//!   pairs into `N/B` batches and steps on them in turn (needs `B | N`).
//! - `fixed`: one random partition, drawn once, cycled for the whole run (needs `B | N`).
//! - `all`: every one of the `C(N,B)` batches in turn, in lexicographic order (refused when
//!   `C(N,B) > 1e6`).
//! - `hardest`: OSGD (Cho et al., TMLR 2024): each step takes the batch with the largest loss
//!   at the current embeddings, by exact search over all `C(N,B)` batches when there are at
//!   most `1e5`; above that (`B | N`, `N <= 1024`) by the authors' even-sized spectral
//!   clustering into `N/B` batches once per epoch, stepped from the hardest down ([`hardest`],
//!   the clustering in [`spectral`]).
//!
//! `B = N` is the full batch under every strategy. Every draw comes from
//! `ChaCha8Rng::seed_from_u64(seed)` on its own stream ([`SAMPLER_STREAM`]), so a run is
//! reproducible and independent of the thread count.

mod cluster;
pub mod hardest;
pub mod spectral;

use crate::error::{Error, Result};
use crate::loss::{ContrastiveLoss, Loss, Tuned};
use crate::theory::batch::{check_mini_batch, negative_weight};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The largest `C(N,B)` that `all` cycles through.
pub const MAX_ALL_BATCHES: f64 = 1e6;
/// The largest `C(N,B)` over which `hardest` searches exactly; above it, the spectral
/// approximation of Cho et al. ([`hardest::HardestSearch`]).
pub const MAX_EXACT_HARDEST: f64 = 1e5;
/// The random stream of the batch sampler (the starts of restart `r` use stream `r`).
pub const SAMPLER_STREAM: u64 = 1 << 32;

/// How the batches of a mini-batch run are chosen (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batching {
    /// The exact expected loss (sigmoid only).
    Expected,
    /// A new random partition every epoch.
    Shuffled,
    /// One random partition for the whole run.
    Fixed,
    /// All `C(N,B)` batches in turn.
    All,
    /// OSGD: the batch with the largest loss.
    Hardest,
}

impl Batching {
    /// `expected`, `shuffled`, `fixed`, `all` or `hardest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Batching::Expected => "expected",
            Batching::Shuffled => "shuffled",
            Batching::Fixed => "fixed",
            Batching::All => "all",
            Batching::Hardest => "hardest",
        }
    }
}

impl std::fmt::Display for Batching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Batching {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "expected" => Ok(Batching::Expected),
            "shuffled" => Ok(Batching::Shuffled),
            "fixed" => Ok(Batching::Fixed),
            "all" => Ok(Batching::All),
            "hardest" => Ok(Batching::Hardest),
            _ => Err(Error::Config(format!(
                "unknown batching '{s}': use expected, shuffled, fixed, all or hardest"
            ))),
        }
    }
}

/// A validated mini-batch setting: batch size `B` of `N` and the strategy.
///
/// ```
/// use ccem::batch::{Batching, MiniBatch};
/// use ccem::loss::Loss;
/// let loss = Loss::sigmoid(2.0, 1.0)?;
/// let mb = MiniBatch::new(16, 4, None, &loss)?; // defaults to shuffled
/// assert_eq!(mb.batching(), Batching::Shuffled);
/// assert!((mb.weight() - 0.2).abs() < 1e-15);
/// assert!(MiniBatch::new(16, 5, Some(Batching::Fixed), &loss).is_err()); // 5 does not divide 16
/// assert!(MiniBatch::new(16, 4, Some(Batching::Expected), &Loss::infonce(0.5)?).is_err());
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MiniBatch {
    n: usize,
    size: usize,
    batching: Batching,
}

/// `C(n, k)` as a float (exact up to 2^53, then rounded; only compared with limits).
pub fn binomial(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    let mut c = 1.0_f64;
    for i in 0..k {
        c = c * (n - i) as f64 / (i + 1) as f64;
    }
    c.round()
}

impl MiniBatch {
    /// Batches of `size` out of `n` pairs with `batching` (default: `shuffled`, or the full
    /// batch when `size = n`) for `loss`.
    ///
    /// # Errors
    /// `size` outside `2..=n`; `expected` for a loss other than the plain sigmoid (no closed
    /// form); `shuffled` or `fixed` when `size` does not divide `n`; `all` when
    /// `C(n, size) > 1e6`; `hardest` (below the full batch) for a loss of the joint views.
    pub fn new(n: usize, size: usize, batching: Option<Batching>, loss: &Loss) -> Result<Self> {
        check_mini_batch(n, size)?;
        let batching = batching.unwrap_or(Batching::Shuffled);
        match batching {
            Batching::Expected => {
                if !matches!(loss.tuned(), Some(Tuned::Sigmoid { .. })) {
                    return Err(Error::Config(format!(
                        "{} expected is the exact expected mini-batch loss, which only \
                         the sigmoid loss (without within-view negatives) has in closed form \
                         (negatives weighted by (B-1)/(N-1)); for the {} loss use shuffled, \
                         fixed, all or hardest",
                        crate::error::option("batching"),
                        loss.name()
                    )));
                }
            }
            Batching::Shuffled | Batching::Fixed => {
                if !n.is_multiple_of(size) {
                    return Err(Error::Config(format!(
                        "{} {batching} splits the N = {n} pairs into batches of B = \
                         {size}, so B must divide N; choose a divisor of N, or use expected, \
                         all or hardest",
                        crate::error::option("batching")
                    )));
                }
            }
            Batching::All => {
                let c = binomial(n, size);
                if c > MAX_ALL_BATCHES {
                    return Err(Error::Config(format!(
                        "{} all would cycle through C({n},{size}) = {c:.3e} batches \
                         (limit {MAX_ALL_BATCHES:.0e}); use shuffled, expected or hardest",
                        crate::error::option("batching")
                    )));
                }
            }
            Batching::Hardest => {
                if size < n && loss.views() == crate::loss::Views::Joint {
                    return Err(Error::Config(format!(
                        "{} hardest scores every batch by its loss on S = U V^T, but the \
                         {} loss also reads the within-view similarities U U^T and V V^T; use \
                         shuffled, fixed or all",
                        crate::error::option("batching"),
                        loss.name()
                    )));
                }
            }
        }
        Ok(MiniBatch { n, size, batching })
    }

    /// The setting of the options `batch` (`B`) and `batching` (a strategy's name) of
    /// `optimize`/`train` and the Python package: `None` (the full batch) without `batch`.
    ///
    /// ```
    /// use ccem::batch::{Batching, MiniBatch};
    /// let loss = ccem::Loss::sigmoid(2.0, 1.0)?;
    /// let mb = MiniBatch::from_options(16, Some(4), Some("fixed"), &loss)?.unwrap();
    /// assert_eq!(mb.batching(), Batching::Fixed);
    /// assert!(MiniBatch::from_options(16, None, None, &loss)?.is_none());
    /// assert!(MiniBatch::from_options(16, None, Some("fixed"), &loss).is_err());
    /// assert!(MiniBatch::from_options(16, Some(4), Some("best"), &loss).is_err());
    /// # Ok::<(), ccem::Error>(())
    /// ```
    ///
    /// # Errors
    /// `batching` without `batch`; an unknown strategy; as [`MiniBatch::new`].
    pub fn from_options(
        n: usize,
        batch: Option<usize>,
        batching: Option<&str>,
        loss: &Loss,
    ) -> Result<Option<Self>> {
        let batching = batching.map(str::parse::<Batching>).transpose()?;
        match batch {
            Some(b) => Ok(Some(MiniBatch::new(n, b, batching, loss)?)),
            None if batching.is_some() => Err(Error::Config(format!(
                "a batching strategy needs a mini-batch size: give {} B",
                crate::error::option("batch")
            ))),
            None => Ok(None),
        }
    }

    /// The full batch of `n >= 2` pairs (`B = N`), valid for both losses.
    pub(crate) fn full(n: usize) -> Self {
        MiniBatch {
            n,
            size: n,
            batching: Batching::Shuffled,
        }
    }

    /// The number of pairs `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The batch size `B`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The strategy.
    pub fn batching(&self) -> Batching {
        self.batching
    }

    /// The negative weight `w = (B-1)/(N-1)` of the expected loss (SPEC §8).
    pub fn weight(&self) -> f64 {
        negative_weight(self.n, self.size).expect("validated")
    }

    /// Whether the run is the full batch (`B = N`): every strategy is then the full batch.
    pub fn is_full(&self) -> bool {
        self.size == self.n
    }

    /// Whether the run samples batches (`B < N` and not `expected`).
    pub fn is_stochastic(&self) -> bool {
        !self.is_full() && self.batching != Batching::Expected
    }

    /// The number of steps in one epoch: `N/B` rounded up.
    pub fn steps_per_epoch(&self) -> usize {
        self.n.div_ceil(self.size)
    }
}

/// The batch sequence of a stochastic run (`shuffled`, `fixed`, `all`; `hardest` asks
/// [`hardest`] for each batch and records it here).
#[derive(Clone, Debug)]
pub struct BatchSampler {
    mb: MiniBatch,
    rng: ChaCha8Rng,
    /// `shuffled`/`fixed`: the current partition, as a permutation cut into consecutive
    /// batches; `all`: the current combination (first `B` entries).
    perm: Vec<usize>,
    /// Index of the next batch in the partition.
    next: usize,
    /// The batches of the last `steps_per_epoch` steps (newest last).
    recent: std::collections::VecDeque<Vec<usize>>,
}

impl BatchSampler {
    /// A sampler for `mb`, drawing from `seed` on [`SAMPLER_STREAM`] plus `restart`.
    pub fn new(mb: MiniBatch, seed: u64, restart: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SAMPLER_STREAM + restart);
        let mut perm: Vec<usize> = (0..mb.n).collect();
        match mb.batching {
            Batching::Shuffled | Batching::Fixed => perm.shuffle(&mut rng),
            _ => {}
        }
        BatchSampler {
            mb,
            rng,
            perm,
            next: 0,
            recent: Default::default(),
        }
    }

    /// The next batch of `shuffled`, `fixed` or `all`, written into `out` (sorted).
    ///
    /// # Panics
    /// For `expected` or `hardest` (callers choose those batches otherwise).
    pub fn next_batch(&mut self, out: &mut Vec<usize>) {
        let (n, b) = (self.mb.n, self.mb.size);
        out.clear();
        match self.mb.batching {
            Batching::Shuffled | Batching::Fixed => {
                if self.next * b >= n {
                    self.next = 0;
                    if self.mb.batching == Batching::Shuffled {
                        self.perm.shuffle(&mut self.rng);
                    }
                }
                out.extend_from_slice(&self.perm[self.next * b..(self.next + 1) * b]);
                self.next += 1;
            }
            Batching::All => {
                if self.next > 0 && !next_combination(&mut self.perm[..b], n) {
                    for (i, p) in self.perm[..b].iter_mut().enumerate() {
                        *p = i;
                    }
                }
                self.next = 1;
                out.extend_from_slice(&self.perm[..b]);
            }
            Batching::Expected | Batching::Hardest => {
                panic!("next_batch is for shuffled, fixed and all")
            }
        }
        out.sort_unstable();
        self.record(out);
    }

    /// Records a batch chosen elsewhere (`hardest`) among the recent ones.
    pub fn record(&mut self, batch: &[usize]) {
        if self.recent.len() == self.mb.steps_per_epoch() {
            self.recent.pop_front();
        }
        self.recent.push_back(batch.to_vec());
    }

    /// The batches whose pairs count as "in a batch" for [`in_batch_mask`]: for `shuffled`
    /// and `fixed` the current partition (for `shuffled`, that of the last epoch); for `all`
    /// and `hardest` the batches of the last `ceil(N/B)` steps.
    pub fn last_batches(&self) -> Vec<Vec<usize>> {
        match self.mb.batching {
            Batching::Shuffled | Batching::Fixed => self
                .perm
                .chunks(self.mb.size)
                .map(|c| {
                    let mut v = c.to_vec();
                    v.sort_unstable();
                    v
                })
                .collect(),
            _ => self.recent.iter().cloned().collect(),
        }
    }
}

/// Advances a sorted `k`-combination of `0..n` to the next one in lexicographic order; `false`
/// after the last.
pub(crate) fn next_combination(c: &mut [usize], n: usize) -> bool {
    let k = c.len();
    let mut i = k;
    while i > 0 {
        i -= 1;
        if c[i] < n - k + i {
            c[i] += 1;
            for j in i + 1..k {
                c[j] = c[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// The theory's prediction for a run of `n` pairs in `R^d` trained on `batch` (`None`: the full
/// batch) (SPEC §8): the optimum of the expected mini-batch loss ([`crate::theory::predict_batch`]),
/// whatever the strategy, since every strategy samples each batch equally often in the long
/// run. `None` for InfoNCE with `B < N` (no closed form), with the negative-variance penalty
/// (`penalised`), and where [`crate::theory::predict`] makes none. `B = N` is [`crate::theory::predict`].
pub fn predict_trained(
    n: usize,
    d: usize,
    loss: &Loss,
    batch: Option<&MiniBatch>,
    penalised: bool,
) -> Option<crate::theory::Optimum> {
    if penalised {
        return None;
    }
    match batch {
        None => crate::theory::predict(n, d, loss),
        Some(mb) => crate::theory::predict_batch(n, d, loss, mb.size())
            .ok()
            .flatten(),
    }
}

/// `N x N` mask of the negative pairs `(i, j)`, `i != j`, that share one of `batches`.
pub fn in_batch_mask(n: usize, batches: &[Vec<usize>]) -> Vec<bool> {
    let mut mask = vec![false; n * n];
    for batch in batches {
        for &i in batch {
            for &j in batch {
                if i != j {
                    mask[i * n + j] = true;
                }
            }
        }
    }
    mask
}

/// Mean and population standard deviation of the negative similarities `S_ij` (`i != j`)
/// selected by `mask` (`N x N`, row-major); `(NaN, NaN)` when none is.
pub fn masked_negative_stats(s: ndarray::ArrayView2<f64>, mask: &[bool]) -> (f64, f64) {
    let mut st = crate::geometry::Stats::default();
    let n = s.nrows();
    for ((i, j), &v) in s.indexed_iter() {
        if i != j && mask[i * n + j] {
            st.push(v);
        }
    }
    if st.count == 0 {
        (f64::NAN, f64::NAN)
    } else {
        (st.mean, (st.m2 / st.count as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig() -> Loss {
        Loss::sigmoid(1.0, 1.0).unwrap()
    }

    #[test]
    fn shuffled_is_a_partition_each_epoch_and_changes() {
        let mb = MiniBatch::new(12, 3, Some(Batching::Shuffled), &sig()).unwrap();
        let mut s = BatchSampler::new(mb, 7, 0);
        let mut out = Vec::new();
        let mut epochs = Vec::new();
        for _ in 0..3 {
            let mut seen = Vec::new();
            let mut parts = Vec::new();
            for _ in 0..4 {
                s.next_batch(&mut out);
                assert_eq!(out.len(), 3);
                seen.extend_from_slice(&out);
                parts.push(out.clone());
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..12).collect::<Vec<_>>());
            let mut last = s.last_batches();
            last.sort();
            parts.sort();
            assert_eq!(last, parts);
            epochs.push(parts);
        }
        assert_ne!(epochs[0], epochs[1]);
        // Reproducible.
        let mut s2 = BatchSampler::new(mb, 7, 0);
        s2.next_batch(&mut out);
        let mut first = epochs[0].clone();
        first.retain(|p| *p == out);
        assert_eq!(first.len(), 1);
    }

    #[test]
    fn fixed_repeats_its_partition() {
        let mb = MiniBatch::new(8, 4, Some(Batching::Fixed), &sig()).unwrap();
        let mut s = BatchSampler::new(mb, 1, 0);
        let mut out = Vec::new();
        let mut seq = Vec::new();
        for _ in 0..6 {
            s.next_batch(&mut out);
            seq.push(out.clone());
        }
        assert_eq!(seq[0], seq[2]);
        assert_eq!(seq[1], seq[5]);
        assert_ne!(seq[0], seq[1]);
    }

    #[test]
    fn all_visits_every_combination_once_per_cycle() {
        let mb = MiniBatch::new(6, 3, Some(Batching::All), &sig()).unwrap();
        let mut s = BatchSampler::new(mb, 0, 0);
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            s.next_batch(&mut out);
            assert!(seen.insert(out.clone()));
        }
        s.next_batch(&mut out);
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(binomial(6, 3), 20.0);
    }

    #[test]
    fn validation() {
        let l = sig();
        assert!(MiniBatch::new(10, 1, None, &l).is_err());
        assert!(MiniBatch::new(10, 11, None, &l).is_err());
        assert!(MiniBatch::new(10, 4, None, &l).is_err());
        assert!(MiniBatch::new(10, 4, Some(Batching::All), &l).is_ok());
        assert!(MiniBatch::new(60, 10, Some(Batching::All), &l).is_err());
        assert!(MiniBatch::new(10, 4, Some(Batching::Hardest), &l).is_ok());
        assert!(MiniBatch::new(10, 4, Some(Batching::Expected), &l).is_ok());
        assert!("Hardest".parse::<Batching>().is_ok());
        assert!("best".parse::<Batching>().is_err());
    }

    #[test]
    fn in_batch_statistics() {
        let s = ndarray::array![[1.0, 0.5, -1.0], [0.5, 1.0, 2.0], [-1.0, 2.0, 1.0]];
        let mask = in_batch_mask(3, &[vec![0, 1]]);
        let (m, sd) = masked_negative_stats(s.view(), &mask);
        assert_eq!((m, sd), (0.5, 0.0));
        let mask = in_batch_mask(3, &[vec![0, 1, 2]]);
        let (m, _) = masked_negative_stats(s.view(), &mask);
        assert!((m - 0.5).abs() < 1e-15);
    }
}
