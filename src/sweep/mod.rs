//! Sweeps over grids of `(N, t)` (or `(N, tau)`) for every registered loss, each cell compared
//! with the loss's optimum on the CCEM ([`prediction`], SPEC §9.8): the specification, its cells and their seeds, the result
//! store, the parallel engine, the summary and the merge of shards.
//!
//! - [`SweepSpec`] is everything that defines a sweep; it is saved as `DIR/config.json` and a
//!   different specification in the same directory is refused ([`store`]). [`SweepSpec::check`]
//!   validates it once into a [`Valid`] specification, which the engine and the runner take.
//! - [`SweepSpec::cells`] enumerates the cells in a fixed order; a cell's seed depends only on
//!   the base seed, `N` and the seed index ([`cell_seed`]), never on the thread count or the order
//!   in which cells finish. Cells that differ only in `t` share their seed, so along `t` they
//!   start from the same data and initialisation (common random numbers: a smoother map).
//! - [`engine::run_sweep`] runs the missing cells in parallel and appends each row whole to
//!   `DIR/results.csv` as it finishes; once every cell is done the file is rewritten in cell order.
//! - [`summary`] turns the rows into the agreement figures; [`merge`] combines shard outputs.

pub mod engine;
pub mod merge;
pub mod prediction;
pub mod runner;
pub mod store;
pub mod summary;

pub use engine::{run_sweep, run_sweep_with, Silent, SweepObserver, SweepOutcome};
pub use runner::{run_cell, run_cell_with};
pub use store::{ResultRow, RowStatus};
pub use summary::{summarize, Summary};

use crate::error::{Error, Result};
use crate::limits::MemoryLimit;
use crate::loss::LossKind;
use crate::optim::OptimizerKind;
use crate::theory::BiasMode;
use crate::valid::Valid;
use serde::{Deserialize, Serialize};

/// What is trained in each cell. Written and parsed as `free` and `encoder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The embedding vectors themselves, on the sphere.
    Free,
    /// The paper's ReLU encoder on Gaussian data (SPEC §5).
    Encoder,
}

impl Mode {
    /// `free` or `encoder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Free => "free",
            Mode::Encoder => "encoder",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = Error;

    /// `free` or `encoder` (any case).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "free" => Ok(Mode::Free),
            "encoder" => Ok(Mode::Encoder),
            _ => Err(Error::Config(format!(
                "unknown mode '{s}': use free or encoder"
            ))),
        }
    }
}

/// Options of the single runs that a sweep passes to every cell. `None` means the runner's
/// default for the mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct RunOptions {
    /// Steps (encoder: exactly; free: at most).
    pub steps: Option<usize>,
    /// Learning rate.
    pub lr: Option<f64>,
    /// Encoder depth, 2 or 3.
    pub layers: Option<usize>,
    /// Free embeddings: `adam` or `sgd`.
    pub optimizer: Option<String>,
    /// Free embeddings: random restarts (best kept).
    pub restarts: Option<usize>,
    /// Free embeddings: stop when the gradient norm is below this.
    pub grad_tol: Option<f64>,
    /// Mini-batch size `B` (SPEC §8; `B <= N` for every `N` of the grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Mini-batch strategy (default `shuffled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<crate::batch::Batching>,
    /// Weight of the negative-variance penalty (SPEC §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neg_variance_weight: Option<f64>,
    /// The most memory the sweep may use (default: the memory available when it is checked):
    /// the machine's, not the sweep's, so not saved in `config.json` (a sweep resumes under
    /// another limit).
    #[serde(skip)]
    pub max_memory: MemoryLimit,
}

/// A shard `index/count`: the cells whose grid index is `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// `0 <= index < count`.
    pub index: usize,
    /// Number of shards, `>= 1`.
    pub count: usize,
}

impl Shard {
    /// Parses `I/K` (0-based `I`, as a SLURM array `--array=0-(K-1)` numbers its tasks).
    ///
    /// # Errors
    /// Not of the form `I/K`, `K = 0`, or `I >= K`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Config(format!(
                "invalid {} '{s}': {why}",
                crate::error::option("shard")
            ))
        };
        let (i, k) = s
            .split_once('/')
            .ok_or_else(|| bad("expected I/K, e.g. 0/4"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("I is not an integer"))?;
        let count: usize = k.trim().parse().map_err(|_| bad("K is not an integer"))?;
        if count == 0 {
            return Err(bad("K must be >= 1"));
        }
        if index >= count {
            return Err(bad(&format!(
                "I must be in 0..{count} (shards are numbered from 0)"
            )));
        }
        Ok(Shard { index, count })
    }

    /// Whether cell `k` belongs to this shard.
    pub fn contains(&self, k: usize) -> bool {
        k % self.count == self.index
    }
}

/// Everything that defines a sweep (saved as `config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// Free embeddings or the encoder.
    pub mode: Mode,
    /// Loss.
    pub objective: LossKind,
    /// Batch sizes.
    pub ns: Vec<usize>,
    /// Swept values: the sigmoid's scale `t`, or the temperature `tau` of a loss that has one;
    /// one value, `0` by convention, for a loss with neither (`spectral`).
    pub ts: Vec<f64>,
    /// Sigmoid bias as a function of `t` (ignored by a loss without a bias).
    pub bias: BiasMode,
    /// The weight `W >= 0` of within-view negatives, for a loss that takes one (`sigmoid`,
    /// `infonce`; SPEC §9.1). Absent from the `config.json` of older sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_view: Option<f64>,
    /// Seeds per cell.
    pub seeds: usize,
    /// Base seed.
    pub base_seed: u64,
    /// `d = max(1, round(d_ratio * N))` (unless `ds` is given).
    pub d_ratio: f64,
    /// A grid of dimensions: the cells are then every `(N, d)` pair, `d < N` included (where
    /// the CCEM theory does not apply and the margins are what is measured, SPEC §7).
    /// `None`: `d` from `d_ratio`. Absent from the `config.json` of older sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ds: Option<Vec<usize>>,
    /// Options of the single runs.
    pub run: RunOptions,
    /// The shard this directory holds (`None`: all cells).
    pub shard: Option<Shard>,
}

/// One cell of a sweep: a grid point and a seed. Made by [`SweepSpec::cells`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Cell {
    /// Position in the full grid (n-major, then d when `ds` is given, then t, then seed index).
    pub index: usize,
    /// Batch size.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Swept value (`t` or `tau`; `0` for a loss without parameters).
    pub t: f64,
    /// Sigmoid bias (`None` for a loss without one).
    pub b: Option<f64>,
    /// Which of the sweep's seeds.
    pub seed_index: usize,
    /// The cell's own seed ([`cell_seed`]).
    pub seed: u64,
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of a cell: a mix of the base seed, `N` and the seed index (not `t`, so cells along
/// `t` share their random data and initialisation).
pub fn cell_seed(base_seed: u64, n: usize, seed_index: usize) -> u64 {
    splitmix64(
        splitmix64(splitmix64(base_seed) ^ n as u64)
            ^ (seed_index as u64).wrapping_mul(0xA24B_AED4_963E_E407),
    )
}

impl SweepSpec {
    /// Checks the specification.
    ///
    /// # Errors
    /// Empty grids, `N < 2`, a value of the grid that the loss refuses (a negative `t` for the
    /// sigmoid loss, `tau <= 0`, each message naming the loss and the parameter), several values
    /// for a loss without parameters (`spectral`), a within-view weight for a loss that takes
    /// none or a negative one, `t` or a bias above [`crate::error::MAX_MAGNITUDE`] or not finite,
    /// `seeds = 0`, a non-positive `d_ratio`, run options out of range (`steps = 0`, `lr <= 0`,
    /// `layers` not 2 or 3, `restarts = 0`, a negative `grad_tol`, an unknown optimiser), or, for
    /// free embeddings, a `d` from `d_ratio` below what the CCEM needs (`d >= N`, or `N - 1` at
    /// the simplex ETF), where the theory that the sweep is compared with does not apply;
    /// [`Error::TooLarge`] when the sweep would need more memory than it may use.
    pub fn validate(&self) -> Result<()> {
        if self.ns.is_empty() || self.ts.is_empty() {
            return Err(Error::Config("the grid is empty".into()));
        }
        for &n in &self.ns {
            crate::error::check_batch(n)?;
        }
        let kind = self.objective;
        if !kind.takes("t") && !kind.takes("tau") && self.ts.len() > 1 {
            return Err(Error::Config(format!(
                "the {kind} loss has no temperature: give one value of {}",
                crate::error::option("t")
            )));
        }
        if self.within_view.is_some() && !kind.takes("within_view") {
            return Err(Error::Config(format!(
                "the {kind} loss takes no within-view weight ({} is for {})",
                crate::error::option("within_view"),
                crate::loss::LossKind::ALL
                    .iter()
                    .filter(|k| k.takes("within_view"))
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // Every value of the grid makes a valid loss (the loss's own checks and messages).
        for &t in &self.ts {
            if kind.takes("t") {
                crate::error::check_scale("t", t)?;
                crate::error::check_bias("b", self.bias.bias(t))?;
            }
            self.loss_at(t)?;
        }
        if self.seeds == 0 {
            return Err(Error::Config(format!(
                "{} must be >= 1",
                crate::error::option("seeds")
            )));
        }
        crate::error::check_positive("d-ratio", self.d_ratio)?;
        if let Some(ds) = &self.ds {
            if ds.is_empty() || ds.contains(&0) {
                return Err(Error::Config(format!(
                    "the grid of dimensions {} must be non-empty, every d >= 1",
                    crate::error::option("d")
                )));
            }
        } else if self.mode == Mode::Free {
            // Free embeddings are compared with the CCEM, which needs d >= N (d >= N - 1 at the
            // simplex ETF): refuse a d_ratio that leaves a cell without its theory.
            for &n in &self.ns {
                let d = self.dim(n);
                for &t in &self.ts {
                    let loss = self.loss_at(t)?;
                    if d < n && prediction::zoo_prediction(n, d, &loss, None, false).is_none() {
                        return Err(Error::DimensionTooSmall { n, d });
                    }
                }
            }
        }
        let r = &self.run;
        if r.steps == Some(0) {
            return Err(Error::Config(format!(
                "{} must be >= 1",
                crate::error::option("steps")
            )));
        }
        if let Some(lr) = r.lr {
            crate::error::check_positive("lr", lr)?;
        }
        if let Some(l) = r.layers {
            if l != 2 && l != 3 {
                return Err(Error::Config(format!(
                    "{} {l}: the encoder has 2 or 3 layers",
                    crate::error::option("layers")
                )));
            }
        }
        if r.restarts == Some(0) {
            return Err(Error::Config(format!(
                "{} must be >= 1",
                crate::error::option("restarts")
            )));
        }
        if let Some(g) = r.grad_tol {
            crate::error::check_nonneg("grad-tol", g)?;
        }
        if let Some(o) = &r.optimizer {
            o.parse::<OptimizerKind>()?;
        }
        if let Some(l) = self.run.neg_variance_weight {
            crate::error::check_nonneg("neg_variance_weight", l)?;
        }
        if let Some(b) = self.run.batch {
            let loss = self.loss_at(self.ts[0])?;
            for &n in &self.ns {
                crate::batch::MiniBatch::new(n, b, self.run.batching, &loss)?;
            }
        } else if self.run.batching.is_some() {
            return Err(Error::Config(format!(
                "{} needs {} B",
                crate::error::option("batching"),
                crate::error::option("batch")
            )));
        }
        self.check_memory()
    }

    /// Refuses a sweep whose cell list and results (about 1 KiB per cell), plus one run per
    /// worker thread of the largest `N`, would not fit in the memory it may use (`run.max_memory`, [`crate::limits`]).
    fn check_memory(&self) -> Result<()> {
        let cells = self.ns.len() as f64 * self.ts.len() as f64 * self.seeds as f64;
        let n = self.ns.iter().copied().max().unwrap_or(0);
        let d = self.dim(n);
        let run = match self.mode {
            // Each free run keeps every restart's final loss (8 bytes each).
            Mode::Free => {
                crate::limits::free_run_bytes(n, d) + 8.0 * self.run.restarts.unwrap_or(1) as f64
            }
            Mode::Encoder => crate::limits::encoder_run_bytes(n, d, self.run.layers.unwrap_or(3)),
        };
        self.run.max_memory.check(
            &format!(
                "a sweep of {cells} cells (N up to {n}, d = {d}, {} threads, {} restarts)",
                rayon::current_num_threads(),
                self.run.restarts.unwrap_or(1)
            ),
            1024.0 * cells + rayon::current_num_threads() as f64 * run,
        )
    }

    /// The specification, checked ([`SweepSpec::validate`]): what [`engine::run_sweep`] and
    /// [`runner::run_cell`] take.
    ///
    /// # Errors
    /// As [`SweepSpec::validate`].
    ///
    /// # Example
    /// A small free-embedding sweep, run into a directory and summarised:
    /// ```
    /// use ccem::sweep::{run_cell, run_sweep, summarize, Mode, RunOptions, Silent, SweepSpec};
    /// use ccem::{BiasMode, LossKind};
    ///
    /// let spec = SweepSpec {
    ///     mode: Mode::Free,
    ///     objective: LossKind::Sigmoid,
    ///     ns: vec![4, 6],
    ///     ts: vec![0.5, 2.0],
    ///     bias: BiasMode::Tied,
    ///     seeds: 1,
    ///     base_seed: 0,
    ///     d_ratio: 1.0,
    ///     ds: None,
    ///     within_view: None,
    ///     run: RunOptions::default(),
    ///     shard: None,
    /// }
    /// .check()?;
    /// let dir = std::env::temp_dir().join(format!("ccem-doctest-sweep-{}", std::process::id()));
    /// let out = run_sweep(&spec, &dir, Some(1), &|c| run_cell(&spec, c), &mut Silent)?;
    /// assert!(out.complete && out.rows.len() == 4);
    /// let summary = summarize(&spec, &out.rows);
    /// assert_eq!(summary.free.unwrap().meets, 4); // every cell lands on the predicted CCEM
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), ccem::Error>(())
    /// ```
    pub fn check(mut self) -> Result<Valid<Self>> {
        self.validate()?;
        // The sweep was checked whole (its largest cell on every thread): its cells check
        // against this one reading of the memory available, not a fresh one each (reading
        // `/proc` per cell cost 2.7% of the paper's sweep, docs/PERFORMANCE.md).
        self.run.max_memory = self.run.max_memory.measured();
        Ok(Valid::new_unchecked(self))
    }

    /// The loss at the swept value `t`: the sigmoid's scale (with the bias of `bias`), or the
    /// temperature of a loss that has one; with the sweep's within-view weight. The loss is built
    /// from the registry by its parameters' names ([`crate::loss::Loss::build`]), never by
    /// matching on its kind.
    ///
    /// # Errors
    /// A value the loss refuses (its message names the loss and the parameter).
    pub fn loss_at(&self, t: f64) -> Result<crate::loss::Loss> {
        let kind = self.objective;
        let params = crate::loss::LossParams {
            t: kind.takes("t").then_some(t),
            b: kind.takes("b").then(|| self.bias.bias(t)),
            tau: kind.takes("tau").then_some(t),
            within_view: self.within_view,
            relative_bias: None,
        };
        crate::loss::Loss::build(kind, &params)
    }

    /// The dimension used for batch size `n`.
    pub fn dim(&self, n: usize) -> usize {
        ((self.d_ratio * n as f64).round() as usize).max(1)
    }

    /// The dimensions of the cells with batch size `n`: the grid `ds`, or `[dim(n)]`.
    pub fn dims(&self, n: usize) -> Vec<usize> {
        match &self.ds {
            Some(ds) => ds.clone(),
            None => vec![self.dim(n)],
        }
    }

    /// Number of cells in the full grid (all shards).
    pub fn total_cells(&self) -> usize {
        self.ns.len() * self.ds.as_ref().map_or(1, |d| d.len()) * self.ts.len() * self.seeds
    }

    /// Every cell of the full grid, in grid order (all shards).
    pub fn all_cells(&self) -> Vec<Cell> {
        let mut cells = Vec::with_capacity(self.total_cells());
        for &n in &self.ns {
            for d in self.dims(n) {
                for &t in &self.ts {
                    for s in 0..self.seeds {
                        cells.push(Cell {
                            index: cells.len(),
                            n,
                            d,
                            t,
                            b: self.objective.takes("b").then(|| self.bias.bias(t)),
                            seed_index: s,
                            seed: cell_seed(self.base_seed, n, s),
                        });
                    }
                }
            }
        }
        cells
    }

    /// The cells of this directory's shard (all cells without a shard).
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = self.all_cells();
        if let Some(sh) = self.shard {
            cells.retain(|c| sh.contains(c.index));
        }
        cells
    }
}

#[cfg(test)]
mod tests;
