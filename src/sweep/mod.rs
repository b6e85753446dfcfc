//! Sweeps over grids of `(N, t)`: the specification, its cells and their seeds, the result
//! store, the parallel engine, the summary and the merge of shards.
//!
//! - [`SweepSpec`] is everything that defines a sweep; it is saved as `DIR/config.json` and a
//!   different specification in the same directory is refused ([`store`]).
//! - [`SweepSpec::cells`] enumerates the cells in a fixed order; a cell's seed depends only on
//!   the base seed, `N` and the seed index ([`cell_seed`]), never on the thread count or the order
//!   in which cells finish. Cells that differ only in `t` share their seed, so along `t` they
//!   start from the same data and initialisation (common random numbers: a smoother map).
//! - [`engine::run_sweep`] runs the missing cells in parallel and appends each row whole to
//!   `DIR/results.csv` as it finishes; once every cell is done the file is rewritten in cell order.
//! - [`summary`] turns the rows into the agreement figures; [`merge`] combines shard outputs.

pub mod engine;
pub mod merge;
pub mod runner;
pub mod store;
pub mod summary;

use crate::error::{Error, Result};
use crate::theory::BiasMode;
use serde::{Deserialize, Serialize};

/// What is trained in each cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

/// The loss minimised in each cell; the swept value `t` is the sigmoid scale (with the bias
/// given by the [`BiasMode`]) or the InfoNCE temperature `tau`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Sigmoid loss (SigLIP).
    Sigmoid,
    /// Symmetric InfoNCE (CLIP).
    Infonce,
}

impl Objective {
    /// `sigmoid` or `infonce`.
    pub fn as_str(self) -> &'static str {
        match self {
            Objective::Sigmoid => "sigmoid",
            Objective::Infonce => "infonce",
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
    /// Mini-batch size `B` (SPEC §7; `B <= N` for every `N` of the grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Mini-batch strategy (default `shuffled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<crate::batch::Batching>,
    /// Weight of the negative-variance penalty (SPEC §7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neg_variance_weight: Option<f64>,
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
        let bad = |why: &str| Error::Config(format!("invalid --shard '{s}': {why}"));
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
    pub objective: Objective,
    /// Batch sizes.
    pub ns: Vec<usize>,
    /// Swept values (sigmoid scale `t`, or InfoNCE temperature `tau`).
    pub ts: Vec<f64>,
    /// Sigmoid bias as a function of `t` (ignored for InfoNCE).
    pub bias: BiasMode,
    /// Seeds per cell.
    pub seeds: usize,
    /// Base seed.
    pub base_seed: u64,
    /// `d = max(1, round(d_ratio * N))`.
    pub d_ratio: f64,
    /// Options of the single runs.
    pub run: RunOptions,
    /// The shard this directory holds (`None`: all cells).
    pub shard: Option<Shard>,
}

/// One cell of a sweep: a grid point and a seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// Position in the full grid (n-major, then t, then seed index).
    pub index: usize,
    /// Batch size.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Swept value (`t` or `tau`).
    pub t: f64,
    /// Sigmoid bias (`None` for InfoNCE).
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
    /// Empty grids, `N < 2`, a negative `t` (or `tau <= 0`), `seeds = 0`, a non-positive
    /// `d_ratio`, or (free embeddings with the sigmoid loss) `d < N`, where the theory does not
    /// apply.
    pub fn validate(&self) -> Result<()> {
        if self.ns.is_empty() || self.ts.is_empty() {
            return Err(Error::Config("the grid is empty".into()));
        }
        for &n in &self.ns {
            crate::error::check_batch(n)?;
        }
        for &t in &self.ts {
            match self.objective {
                Objective::Sigmoid => crate::error::check_nonneg("t", t)?,
                Objective::Infonce => crate::error::check_positive("tau", t)?,
            };
            if self.objective == Objective::Sigmoid {
                crate::error::check_finite("b", self.bias.bias(t))?;
            }
        }
        if self.seeds == 0 {
            return Err(Error::Config("--seeds must be >= 1".into()));
        }
        crate::error::check_positive("d-ratio", self.d_ratio)?;
        if let Some(s) = self.run.steps {
            if s == 0 {
                return Err(Error::Config("--steps must be >= 1".into()));
            }
        }
        if let Some(lr) = self.run.lr {
            crate::error::check_positive("lr", lr)?;
        }
        if let Some(l) = self.run.layers {
            if l != 2 && l != 3 {
                return Err(Error::Config(format!(
                    "--layers {l}: the encoder has 2 or 3 layers"
                )));
            }
        }
        if let Some(r) = self.run.restarts {
            if r == 0 {
                return Err(Error::Config("--restarts must be >= 1".into()));
            }
        }
        if let Some(l) = self.run.neg_variance_weight {
            crate::error::check_nonneg("neg_variance_weight", l)?;
        }
        if let Some(b) = self.run.batch {
            let loss = match self.objective {
                Objective::Sigmoid => crate::loss::Loss::sigmoid(1.0, 1.0)?,
                Objective::Infonce => crate::loss::Loss::infonce(1.0)?,
            };
            for &n in &self.ns {
                crate::batch::MiniBatch::new(n, b, self.run.batching, &loss)?;
            }
        } else if self.run.batching.is_some() {
            return Err(Error::Config("--batching needs --batch B".into()));
        }
        Ok(())
    }

    /// The dimension used for batch size `n`.
    pub fn dim(&self, n: usize) -> usize {
        ((self.d_ratio * n as f64).round() as usize).max(1)
    }

    /// Number of cells in the full grid (all shards).
    pub fn total_cells(&self) -> usize {
        self.ns.len() * self.ts.len() * self.seeds
    }

    /// Every cell of the full grid, in grid order (all shards).
    pub fn all_cells(&self) -> Vec<Cell> {
        let mut cells = Vec::with_capacity(self.total_cells());
        for &n in &self.ns {
            for &t in &self.ts {
                for s in 0..self.seeds {
                    cells.push(Cell {
                        index: cells.len(),
                        n,
                        d: self.dim(n),
                        t,
                        b: match self.objective {
                            Objective::Sigmoid => Some(self.bias.bias(t)),
                            Objective::Infonce => None,
                        },
                        seed_index: s,
                        seed: cell_seed(self.base_seed, n, s),
                    });
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
