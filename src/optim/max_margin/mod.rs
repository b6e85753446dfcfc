//! Maximum-margin constellations: maximise the margin
//! `m(U, V) = (min_i S_ii - max_{i != j} S_ij) / 2` over unit embeddings, for any `N` and `d`
//! (SPEC.md §7.2, the search: §7.3).
//!
//! With a learnt scale `t` and relative bias `r_b`, the minimisers of the sigmoid loss approach
//! a maximum-margin constellation as `t` grows (SPEC §7.1), so this is where SigLIP training
//! heads for `d < N`, a spherical-code problem (the Tammes problem for `d = 3`) without a closed
//! form in general.
//!
//! # Algorithm (SPEC §7.3)
//! 1. **Starts.** The structured codes that exist for `(N, d)` (`starts`: the polygon, the
//!    simplex, the cross-polytope, the 24-cell, the `D_d` root shell, the Fibonacci spiral), then
//!    `restarts` seeded random starts: three in four *tied* (`U = V = X`, the spherical code),
//!    one in four untied (`V = U` plus Gaussian noise of scale 0.1).
//! 2. **Smooth stage** (`smooth`): each start climbs a smooth lower bound `F_beta` of the
//!    margin with a growing sharpness `beta`; its best iterate (exact margin) is its result. A
//!    start that ends at margin `<= 1e-9` sits on the degenerate saddle (every pair at the same
//!    similarity, the sigmoid loss at `N ln 2`); it is restarted from a perturbation of itself,
//!    at most three times, and counted in `saddle_restarts`.
//! 3. **Basin hopping.** `hops` rounds; each perturbs the best point so far four times (noise
//!    `0.05, 0.1, 0.2, 0.4` times its smallest angle), re-runs the last two thirds of the
//!    schedule from each, and keeps an improvement.
//! 4. **Polish** (`polish`): the best four distinct candidates are sharpened (8 more stages of 4 times
//!    the steps, `beta` up to `1e4 beta_max`), then Newton on the KKT system of their active constraints
//!    to `1e-10`; a candidate that certifies is a KKT point whose
//!    margin is exact to rounding. The largest margin wins.
//!
//! Every start and hop draws from `ChaCha8Rng::seed_from_u64(seed)` on its own stream and runs
//! on one thread; starts run in parallel and are reduced in a fixed order, so the result is
//! bitwise independent of the number of threads.
//!
//! `termination` is `converged` when the kept point is certified (and its margin is positive),
//! `diverged` when every start met a non-finite value, else `step_limit`. A saddle (margin 0)
//! is never `converged`.

pub mod known;
mod polish;
mod smooth;
mod starts;

use super::Termination;
use crate::error::{check_batch, check_positive, Error, Result};
use crate::geometry::margin_bound;
use crate::limits::MemoryLimit;
pub use known::{known_best, tammes_d3, KnownBest, TammesRow};
use ndarray::Array2;
use rayon::prelude::*;
use serde::Serialize;
use smooth::{extremes, Outcome, Work};

/// Default number of random starts (for small problems; see [`MaxMarginConfig::new`]).
pub const DEFAULT_MM_RESTARTS: usize = 32;
/// Default number of basin-hopping rounds (for small problems).
pub const DEFAULT_MM_HOPS: usize = 16;
/// Default number of sharpness stages.
pub const DEFAULT_MM_STAGES: usize = 12;
/// Default Adam steps per stage.
pub const DEFAULT_MM_STEPS_PER_STAGE: usize = 300;
/// Default first sharpness.
pub const DEFAULT_MM_BETA0: f64 = 8.0;
/// Default last sharpness.
pub const DEFAULT_MM_BETA_MAX: f64 = 3.0e4;
/// Default learning rate at the first stage.
pub const DEFAULT_MM_LR: f64 = 0.05;
/// Perturbations per basin-hopping round.
pub const HOP_BATCH: usize = 4;
/// A margin at or below this is the degenerate saddle.
pub const SADDLE_MARGIN: f64 = 1e-9;
/// The default effort: about this many multiply-adds (`starts x steps x N^2 (d + 4)`).
const DEFAULT_WORK: f64 = 2e10;
/// The most work a run may ask for (about an hour on one core): larger runs are refused.
pub const MAX_WORK: f64 = 2e13;
/// Candidates polished.
const POLISH_CANDIDATES: usize = 4;

/// The sharpness schedule of the smooth stage.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct SmoothingSchedule {
    stages: usize,
    steps_per_stage: usize,
    beta0: f64,
    beta_max: f64,
    lr: f64,
}

impl SmoothingSchedule {
    /// The sharpness of stage `k` (`0`-based): geometric from `beta0` to `beta_max`.
    fn beta(&self, k: usize) -> f64 {
        if self.stages == 1 {
            return self.beta_max;
        }
        self.beta0 * (self.beta_max / self.beta0).powf(k as f64 / (self.stages - 1) as f64)
    }
}

/// A maximum-margin problem and how to solve it (valid by construction: [`MaxMarginConfig::new`]
/// and the setters check every field).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MaxMarginConfig {
    n: usize,
    d: usize,
    restarts: usize,
    hops: usize,
    schedule: SmoothingSchedule,
    polish: bool,
    seed: u64,
    #[serde(skip)]
    max_memory: MemoryLimit,
}

impl MaxMarginConfig {
    /// `N` pairs in `R^d` with the default solver settings: the `DEFAULT_MM_*` schedule, and
    /// [`DEFAULT_MM_RESTARTS`] random starts and [`DEFAULT_MM_HOPS`] hopping rounds as long as
    /// the run stays within about `2e10` multiply-adds (fewer for large `N d`, at least 2 starts).
    ///
    /// # Errors
    /// `N < 2` or `d < 1`.
    pub fn new(n: usize, d: usize, seed: u64) -> Result<Self> {
        check_batch(n)?;
        if d < 1 {
            return Err(Error::InvalidParameter {
                name: "d",
                value: d as f64,
                requirement: "must be >= 1",
            });
        }
        let schedule = SmoothingSchedule {
            stages: DEFAULT_MM_STAGES,
            steps_per_stage: DEFAULT_MM_STEPS_PER_STAGE,
            beta0: DEFAULT_MM_BETA0,
            beta_max: DEFAULT_MM_BETA_MAX,
            lr: DEFAULT_MM_LR,
        };
        let per_start = start_work(n, d, &schedule);
        let fit = (DEFAULT_WORK / per_start).floor();
        let restarts = fit.clamp(2.0, DEFAULT_MM_RESTARTS as f64) as usize;
        let hops = ((fit - restarts as f64) / HOP_BATCH as f64).clamp(0.0, DEFAULT_MM_HOPS as f64)
            as usize;
        Ok(MaxMarginConfig {
            n,
            d,
            restarts,
            hops,
            schedule,
            polish: true,
            seed,
            max_memory: MemoryLimit::Available,
        })
    }

    /// Sets the most memory the run may use (default: the memory available when
    /// [`max_margin`] starts).
    pub fn with_max_memory(mut self, limit: MemoryLimit) -> Self {
        self.max_memory = limit;
        self
    }

    /// The most memory the run may use.
    pub fn max_memory(&self) -> MemoryLimit {
        self.max_memory
    }

    /// Sets the number of random starts (`>= 1`).
    ///
    /// # Errors
    /// `restarts = 0`.
    pub fn with_restarts(mut self, restarts: usize) -> Result<Self> {
        if restarts < 1 {
            return Err(Error::InvalidParameter {
                name: "restarts",
                value: 0.0,
                requirement: "must be >= 1",
            });
        }
        self.restarts = restarts;
        Ok(self)
    }

    /// Sets the number of basin-hopping rounds (`0`: none), each of [`HOP_BATCH`] perturbations.
    pub fn with_hops(mut self, hops: usize) -> Self {
        self.hops = hops;
        self
    }

    /// Turns the exact polish on or off (on by default).
    pub fn with_polish(mut self, polish: bool) -> Self {
        self.polish = polish;
        self
    }

    /// Sets the schedule: `stages >= 1` stages of `steps_per_stage >= 1` steps, sharpness from
    /// `beta0 > 0` to `beta_max >= beta0`.
    ///
    /// # Errors
    /// A count of 0, or sharpnesses that are not finite, positive and ordered.
    pub fn with_schedule(
        mut self,
        stages: usize,
        steps_per_stage: usize,
        beta0: f64,
        beta_max: f64,
    ) -> Result<Self> {
        if stages < 1 || steps_per_stage < 1 {
            return Err(Error::InvalidParameter {
                name: "steps",
                value: (stages * steps_per_stage) as f64,
                requirement:
                    "the max-margin schedule needs at least one stage of at least one step",
            });
        }
        check_positive("beta0", beta0)?;
        check_positive("beta_max", beta_max)?;
        if beta_max < beta0 {
            return Err(Error::InvalidParameter {
                name: "beta_max",
                value: beta_max,
                requirement: "must be >= beta0",
            });
        }
        self.schedule.stages = stages;
        self.schedule.steps_per_stage = steps_per_stage;
        self.schedule.beta0 = beta0;
        self.schedule.beta_max = beta_max;
        Ok(self)
    }

    /// Sets the total Adam steps per start, split over the [`DEFAULT_MM_STAGES`] stages.
    ///
    /// # Errors
    /// `steps` below the number of stages.
    pub fn with_steps(self, steps: usize) -> Result<Self> {
        let stages = self.schedule.stages;
        if steps < stages {
            return Err(Error::InvalidParameter {
                name: "steps",
                value: steps as f64,
                requirement: "max-margin needs at least one step per sharpness stage (12)",
            });
        }
        let s = self.schedule;
        self.with_schedule(stages, steps / stages, s.beta0, s.beta_max)
    }

    /// Sets the first stage's learning rate (finite, `> 0`).
    ///
    /// # Errors
    /// `lr` not finite and `> 0`.
    pub fn with_lr(mut self, lr: f64) -> Result<Self> {
        self.schedule.lr = check_positive("lr", lr)?;
        Ok(self)
    }

    /// Batch size.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Dimension.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Number of random starts.
    pub fn restarts(&self) -> usize {
        self.restarts
    }

    /// Number of basin-hopping rounds.
    pub fn hops(&self) -> usize {
        self.hops
    }

    /// Adam steps per start.
    pub fn steps_per_start(&self) -> usize {
        self.schedule.stages * self.schedule.steps_per_stage
    }

    /// The seed of the starts.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Every start of the smooth stage: the structured ones and the random ones.
    fn starts(&self) -> usize {
        starts::structured(self.n, self.d).len() + self.restarts
    }

    /// Estimated multiply-adds of the whole run.
    pub fn work(&self) -> f64 {
        let runs = self.starts() as f64 + (self.hops * HOP_BATCH) as f64;
        runs * start_work(self.n, self.d, &self.schedule)
    }

    /// Estimated peak memory in bytes: per worker thread `S` (`N^2`) and six copies of
    /// `(U, V)`, every start's result, and the polish's dense KKT matrices.
    pub fn memory_bytes(&self) -> f64 {
        let (n, d) = (self.n as f64, self.d as f64);
        let workers = rayon::current_num_threads().min(self.starts().max(HOP_BATCH)) as f64;
        let per_worker = 8.0 * (n * n + 12.0 * n * d);
        let results = 8.0 * 2.0 * n * d * (self.starts() + HOP_BATCH) as f64;
        let polish = if self.polish {
            16.0 * (polish::MAX_KKT_UNKNOWNS as f64).powi(2)
        } else {
            0.0
        };
        workers * per_worker + results + polish
    }
}

/// Multiply-adds of one start: three `N x N x d` products and `O(N^2)` per step.
fn start_work(n: usize, d: usize, s: &SmoothingSchedule) -> f64 {
    let (n, d) = (n as f64, d as f64);
    (s.stages * s.steps_per_stage) as f64 * n * n * (3.0 * d + 8.0)
}

/// The result of [`max_margin`].
#[derive(Clone, Debug, PartialEq)]
pub struct MaxMarginResult {
    /// `U`, `N x d`, unit rows.
    pub u: Array2<f64>,
    /// `V`, `N x d`, unit rows.
    pub v: Array2<f64>,
    /// The exact margin `(min S_ii - max_{i != j} S_ij) / 2` of `(U, V)`.
    pub margin: f64,
    /// The relative bias that realises it, `(min S_ii + max_{i != j} S_ij) / 2`.
    pub margin_bias: f64,
    /// `N / (2 (N - 1))`.
    pub margin_bound: f64,
    /// `converged` (certified by the polish), `step_limit` or `diverged`.
    pub termination: Termination,
    /// The polish certified the kept point (a KKT point to `1e-10`).
    pub certified: bool,
    /// `|F|_inf` of the KKT system at the kept point (`None`: not polished).
    pub kkt_residual: Option<f64>,
    /// Newton steps of the polish of the kept point.
    pub newton_steps: usize,
    /// The pairs `(i, j)`, `i != j`, with `S_ij` within `1e-9` (certified) or `1e-6` of
    /// `max S_ij` (for a tied result `i < j`): the contact graph.
    pub contacts: Vec<(usize, usize)>,
    /// Rows of `U` that are in no contact (rattlers).
    pub rattlers: usize,
    /// `U = V` (to `1e-6`): a spherical code.
    pub tied: bool,
    /// Where the kept point comes from: `"random"`, `"hop"` or a structured start's name.
    pub origin: &'static str,
    /// The margin each start of the smooth stage reached (structured starts first).
    pub start_margins: Vec<f64>,
    /// Basin-hopping rounds that improved the best point.
    pub hops_accepted: usize,
    /// Starts restarted from the degenerate saddle.
    pub saddle_restarts: usize,
    /// Steps per start.
    pub steps_per_start: usize,
    /// The best known margin for `(N, d)`, where known.
    pub known_best: Option<KnownBest>,
}

/// Finds a maximum-margin constellation of `N` pairs in `R^d` (module documentation).
///
/// # Errors
/// [`Error::TooLarge`] when the run would need more memory than it may use
/// ([`MaxMarginConfig::with_max_memory`]), or more than [`MAX_WORK`] multiply-adds; checked before anything is
/// allocated.
///
/// ```
/// use ccem::optim::max_margin::{max_margin, MaxMarginConfig};
/// // Four pairs in the plane: the square, margin 1/2, certified.
/// let cfg = MaxMarginConfig::new(4, 2, 0).unwrap().with_restarts(2).unwrap().with_hops(0);
/// let r = max_margin(&cfg).unwrap();
/// assert!((r.margin - 0.5).abs() < 1e-12);
/// assert_eq!(r.termination.as_str(), "converged");
/// ```
pub fn max_margin(cfg: &MaxMarginConfig) -> Result<MaxMarginResult> {
    let (n, d) = (cfg.n, cfg.d);
    let what = format!("max-margin with N = {n}, d = {d}");
    cfg.max_memory.check(&what, cfg.memory_bytes())?;
    let work = cfg.work();
    if work > MAX_WORK {
        return Err(Error::InvalidParameter {
            name: "restarts",
            value: cfg.restarts as f64,
            requirement: "too much work: starts x steps x N^2 (3d + 8) exceeds 2e13 multiply-adds \
                          (about an hour); lower restarts, hops or steps, or N",
        });
    }
    let schedule = cfg.schedule;
    let structured = starts::structured(n, d);
    let n_struct = structured.len();
    // The smooth stage: every start in parallel, reduced in order.
    let jobs: Vec<usize> = (0..n_struct + cfg.restarts).collect();
    let runs: Vec<(Outcome, usize)> = jobs
        .par_iter()
        .map(|&k| {
            let (start, tied) = if k < n_struct {
                (structured[k].x.clone(), true)
            } else {
                let r = (k - n_struct) as u64;
                let mut rng = starts::rng(cfg.seed, r);
                let x = starts::random(&mut rng, n, d);
                if r % 4 == 3 {
                    let mut y = starts::perturb(&mut rng, &x, d, 0.1);
                    y.splice(0..0, x);
                    (y, false)
                } else {
                    (x, true)
                }
            };
            run_start(n, d, &start, tied, &schedule, 0, cfg.seed, k as u64)
        })
        .collect();
    let start_margins: Vec<f64> = runs.iter().map(|(o, _)| o.margin()).collect();
    let mut saddle_restarts: usize = runs.iter().map(|(_, s)| s).sum();
    let mut pool: Vec<(Outcome, &'static str)> = runs
        .into_iter()
        .enumerate()
        .map(|(k, (o, _))| {
            (
                o,
                if k < n_struct {
                    structured[k].name
                } else {
                    "random"
                },
            )
        })
        .collect();
    if pool.iter().all(|(o, _)| o.diverged) {
        // Every start met a non-finite value: report the best finite iterate, as diverged.
        let (o, _) = best_of(&pool);
        let uv = o.uv.clone();
        return Ok(finish(
            cfg,
            uv,
            None,
            Termination::Diverged,
            "random",
            start_margins,
            0,
            saddle_restarts,
        ));
    }
    // Basin hopping from the best point so far.
    let mut hops_accepted = 0;
    for h in 0..cfg.hops {
        let (best, _) = best_of(&pool);
        let best_uv = best.uv.clone();
        let best_margin = best.margin();
        let tied = is_tied(&best_uv, n, d);
        // The smallest angle of the best point sets the noise scale.
        let angle = (1.0 - 2.0 * best_margin.clamp(0.0, 1.0)).acos().max(0.05);
        let tries: Vec<(Outcome, usize)> = (0..HOP_BATCH)
            .into_par_iter()
            .map(|k| {
                let stream = (1u64 << 40) + (h * HOP_BATCH + k) as u64;
                let mut rng = starts::rng(cfg.seed, stream);
                let scale = angle * [0.05, 0.1, 0.2, 0.4][k % 4];
                let start = if tied {
                    starts::perturb(&mut rng, &best_uv[..n * d], d, scale)
                } else {
                    starts::perturb(&mut rng, &best_uv, d, scale)
                };
                run_start(
                    n,
                    d,
                    &start,
                    tied,
                    &schedule,
                    schedule.stages / 3,
                    cfg.seed,
                    stream,
                )
            })
            .collect();
        saddle_restarts += tries.iter().map(|(_, s)| s).sum::<usize>();
        let (top, _) = best_of_runs(&tries);
        if top.margin() > best_margin + 1e-12 {
            hops_accepted += 1;
        }
        pool.extend(tries.into_iter().map(|(o, _)| (o, "hop")));
    }
    // Polish the best distinct candidates; keep the largest margin.
    let mut order: Vec<usize> = (0..pool.len())
        .filter(|&i| pool[i].0.ext.is_some())
        .collect();
    order.sort_by(|&a, &b| {
        pool[b]
            .0
            .margin()
            .total_cmp(&pool[a].0.margin())
            .then(a.cmp(&b))
    });
    let mut candidates: Vec<usize> = Vec::new();
    for i in order {
        if candidates.len() == POLISH_CANDIDATES {
            break;
        }
        if candidates
            .iter()
            .all(|&c| (pool[c].0.margin() - pool[i].0.margin()).abs() > 1e-9)
        {
            candidates.push(i);
        }
    }
    let top = candidates[0];
    let mut kept = (pool[top].0.uv.clone(), None::<(f64, usize)>, pool[top].1);
    if cfg.polish {
        // Sharpen each candidate first (beta up to 1e4 times beta_max, 8 more stages), so that
        // its active set stands out, then polish it.
        let sharp = SmoothingSchedule {
            stages: 8,
            steps_per_stage: 4 * schedule.steps_per_stage,
            beta0: schedule.beta_max,
            beta_max: 1e4 * schedule.beta_max,
            lr: schedule.lr * schedule.beta0 / schedule.beta_max,
        };
        let polished: Vec<(Vec<f64>, Option<polish::Polished>)> = candidates
            .par_iter()
            .map(|&i| {
                let uv = &pool[i].0.uv;
                let tied = is_tied(uv, n, d);
                let mut work = Work::new(n, d, tied);
                let sharpened = work.run(if tied { &uv[..n * d] } else { uv }, &sharp, 0);
                let from = if sharpened.ext.is_some() && !sharpened.diverged {
                    sharpened.uv
                } else {
                    uv.clone()
                };
                let p = polish::polish(&from, n, d);
                (from, p)
            })
            .collect();
        // The certified point of largest margin, kept unless an uncertified (sharpened)
        // candidate is larger beyond rounding.
        let mut best_cert: Option<(f64, usize, polish::Polished)> = None;
        let mut best_any = (pool[top].0.margin(), top, pool[top].0.uv.clone());
        for (&i, (sharpened, p)) in candidates.iter().zip(polished) {
            let ms = extremes(&sharpened, n, d).margin();
            if ms > best_any.0 {
                best_any = (ms, i, sharpened);
            }
            if let Some(p) = p {
                let m = extremes(&p.uv, n, d).margin();
                if best_cert.as_ref().is_none_or(|b| m > b.0) {
                    best_cert = Some((m, i, p));
                }
            }
        }
        kept = (best_any.2, None, pool[best_any.1].1);
        if let Some((m, i, p)) = best_cert {
            if m >= best_any.0 - 1e-12 {
                kept = (p.uv, Some((p.kkt_residual, p.newton_steps)), pool[i].1);
            }
        }
    }
    let (uv, cert, origin) = kept;
    let margin = extremes(&uv, n, d).margin();
    let termination = if cert.is_some() && margin > SADDLE_MARGIN {
        Termination::Converged
    } else {
        Termination::StepLimit
    };
    let mut r = finish(
        cfg,
        uv,
        cert,
        termination,
        origin,
        start_margins,
        hops_accepted,
        saddle_restarts,
    );
    r.certified = cert.is_some();
    Ok(r)
}

/// One start: the smooth stage, restarted (at most three times) from a perturbation of itself
/// while it ends on the degenerate saddle. Returns the outcome and the number of such restarts.
#[allow(clippy::too_many_arguments)]
fn run_start(
    n: usize,
    d: usize,
    start: &[f64],
    tied: bool,
    schedule: &SmoothingSchedule,
    first_stage: usize,
    seed: u64,
    stream: u64,
) -> (Outcome, usize) {
    let mut work = Work::new(n, d, tied);
    let mut out = work.run(start, schedule, first_stage);
    let mut saddles = 0;
    while !out.diverged && out.margin() <= SADDLE_MARGIN && saddles < 3 {
        saddles += 1;
        let mut rng = starts::rng(seed, (1u64 << 48) + stream * 4 + saddles as u64);
        let from = if tied { &out.uv[..n * d] } else { &out.uv[..] };
        let next = starts::perturb(&mut rng, from, d, 0.5);
        let again = work.run(&next, schedule, 0);
        if again.margin() > out.margin() || again.diverged {
            out = again;
        }
    }
    (out, saddles)
}

fn best_of<'a>(pool: &'a [(Outcome, &'static str)]) -> (&'a Outcome, usize) {
    let mut best = 0;
    for (i, (o, _)) in pool.iter().enumerate() {
        if o.margin() > pool[best].0.margin() {
            best = i;
        }
    }
    (&pool[best].0, best)
}

fn best_of_runs(runs: &[(Outcome, usize)]) -> (&Outcome, usize) {
    let mut best = 0;
    for (i, (o, _)) in runs.iter().enumerate() {
        if o.margin() > runs[best].0.margin() {
            best = i;
        }
    }
    (&runs[best].0, best)
}

/// `U` and `V` agree to `1e-6`.
fn is_tied(uv: &[f64], n: usize, d: usize) -> bool {
    let (u, v) = uv.split_at(n * d);
    u.iter().zip(v).all(|(a, b)| (a - b).abs() <= 1e-6)
}

/// The result record of the kept point `uv`.
#[allow(clippy::too_many_arguments)]
fn finish(
    cfg: &MaxMarginConfig,
    uv: Vec<f64>,
    cert: Option<(f64, usize)>,
    termination: Termination,
    origin: &'static str,
    start_margins: Vec<f64>,
    hops_accepted: usize,
    saddle_restarts: usize,
) -> MaxMarginResult {
    let (n, d) = (cfg.n, cfg.d);
    let ext = extremes(&uv, n, d);
    let tied = is_tied(&uv, n, d);
    let (contacts, rattlers) = if ext.neg_max.is_finite() {
        contact_graph(
            &uv,
            n,
            d,
            ext.neg_max,
            if cert.is_some() { 1e-9 } else { 1e-6 },
            tied,
        )
    } else {
        (Vec::new(), n)
    };
    let (u, v) = uv.split_at(n * d);
    MaxMarginResult {
        u: Array2::from_shape_vec((n, d), u.to_vec()).expect("N x d"),
        v: Array2::from_shape_vec((n, d), v.to_vec()).expect("N x d"),
        margin: ext.margin(),
        margin_bias: ext.bias(),
        margin_bound: margin_bound(n),
        termination,
        certified: cert.is_some(),
        kkt_residual: cert.map(|c| c.0),
        newton_steps: cert.map_or(0, |c| c.1),
        contacts,
        rattlers,
        tied,
        origin,
        start_margins,
        hops_accepted,
        saddle_restarts,
        steps_per_start: cfg.steps_per_start(),
        known_best: known_best(n, d),
    }
}

/// The pairs with `S_ij >= max_neg - tol` and the number of rows in none of them.
fn contact_graph(
    uv: &[f64],
    n: usize,
    d: usize,
    max_neg: f64,
    tol: f64,
    tied: bool,
) -> (Vec<(usize, usize)>, usize) {
    let (u, v) = uv.split_at(n * d);
    let mut pairs = Vec::new();
    let mut touched = vec![false; n];
    for (i, ui) in u.chunks_exact(d).enumerate() {
        for (j, vj) in v.chunks_exact(d).enumerate() {
            if i == j || (tied && j < i) {
                continue;
            }
            let s: f64 = ui.iter().zip(vj).map(|(a, b)| a * b).sum();
            if s >= max_neg - tol {
                pairs.push((i, j));
                touched[i] = true;
                touched[j] = true;
            }
        }
    }
    let rattlers = touched.iter().filter(|t| !**t).count();
    (pairs, rattlers)
}

/// What `ccem max-margin --format json` prints and `ccem.max_margin` returns (SPEC §7.3).
#[derive(Clone, Debug, Serialize)]
pub struct MaxMarginRecord {
    /// Batch size.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// `"max_margin"`.
    pub objective: &'static str,
    /// Seed of the starts.
    pub seed: u64,
    /// Random starts.
    pub restarts: usize,
    /// Basin-hopping rounds.
    pub hops: usize,
    /// Steps per start.
    pub steps_per_start: usize,
    /// `converged`, `step_limit` or `diverged`.
    pub termination: &'static str,
    /// The polish certified the result.
    pub certified: bool,
    /// The margin.
    pub margin: f64,
    /// `(min S_ii + max S_ij) / 2`.
    pub margin_bias: f64,
    /// `N / (2(N-1))`.
    pub margin_bound: f64,
    /// `margin / margin_bound`.
    pub margin_ratio: f64,
    /// The best known margin for `(N, d)` (`None`: not in the table).
    pub known_best: Option<f64>,
    /// Its code (`simplex`, `cross_polytope`, `polygon`, `tammes`, `24_cell`).
    pub known_code: Option<&'static str>,
    /// `margin - known_best`.
    pub gap_to_known: Option<f64>,
    /// `(q_p(S_ii) - q_{1-p}(S_ij)) / 2`.
    pub margin_quantile: f64,
    /// The level `p`.
    pub margin_quantile_p: f64,
    /// `d >= N - 1`: the simplex ETF reaches the bound.
    pub etf_possible: bool,
    /// Number of contacts (pairs at the margin).
    pub contacts: usize,
    /// Rows in no contact.
    pub rattlers: usize,
    /// The contact pairs `[i, j]`.
    pub contact_pairs: Vec<[usize; 2]>,
    /// `U = V`.
    pub tied: bool,
    /// Where the kept point comes from.
    pub origin: &'static str,
    /// `|F|_inf` of the KKT system (`None`: not certified).
    pub kkt_residual: Option<f64>,
    /// Improving basin-hopping rounds.
    pub hops_accepted: usize,
    /// Starts restarted from the degenerate saddle.
    pub saddle_restarts: usize,
    /// The margin each start reached.
    pub start_margins: Vec<f64>,
    /// Wall-clock seconds of the search.
    pub seconds: f64,
}

impl MaxMarginRecord {
    /// The record of `r` (found with `cfg` in `seconds`), with the quantile margin at `level`.
    ///
    /// # Errors
    /// From [`crate::geometry::margins`] (none for a finite result).
    pub fn new(
        cfg: &MaxMarginConfig,
        r: &MaxMarginResult,
        level: crate::geometry::QuantileLevel,
        seconds: f64,
    ) -> Result<Self> {
        let (mq, mq_p) = if r.termination == Termination::Diverged {
            (f64::NAN, level.get())
        } else {
            let m = crate::geometry::margins(
                r.u.view(),
                r.v.view(),
                level,
                crate::loss::BlockOptions::default(),
            )?;
            (m.margin_quantile, m.margin_quantile_p)
        };
        Ok(MaxMarginRecord {
            n: cfg.n,
            d: cfg.d,
            objective: "max_margin",
            seed: cfg.seed,
            restarts: cfg.restarts,
            hops: cfg.hops,
            steps_per_start: r.steps_per_start,
            termination: r.termination.as_str(),
            certified: r.certified,
            margin: r.margin,
            margin_bias: r.margin_bias,
            margin_bound: r.margin_bound,
            margin_ratio: r.margin / r.margin_bound,
            known_best: r.known_best.as_ref().map(|k| k.margin),
            known_code: r.known_best.as_ref().map(|k| k.code),
            gap_to_known: r.known_best.as_ref().map(|k| r.margin - k.margin),
            margin_quantile: mq,
            margin_quantile_p: mq_p,
            etf_possible: cfg.d + 1 >= cfg.n,
            contacts: r.contacts.len(),
            rattlers: r.rattlers,
            contact_pairs: r.contacts.iter().map(|&(i, j)| [i, j]).collect(),
            tied: r.tied,
            origin: r.origin,
            kkt_residual: r.kkt_residual,
            hops_accepted: r.hops_accepted,
            saddle_restarts: r.saddle_restarts,
            start_margins: r.start_margins.clone(),
            seconds,
        })
    }
}
