//! Maximum-margin constellations: maximise the margin
//! `m(U, V) = (min_i S_ii - max_{i != j} S_ij) / 2` over unit embeddings, for any `N` and `d`
//! (SPEC.md §7.2).
//!
//! With a learnt scale `t` and relative bias `r_b`, the minimisers of the sigmoid loss approach
//! a maximum-margin constellation as `t` grows (SPEC §7.1), so this is where SigLIP training
//! heads for `d < N`, a spherical-code problem without a closed form in general.
//!
//! # Algorithm
//! - **Smooth max-min.** For a sharpness `beta`, the margin is approximated from below by
//!   `F_beta = (softmin_beta(S_ii) - softmax_beta(S_ij, i != j)) / 2` with
//!   `softmin_beta(x) = -(1/beta) log sum e^{-beta x}` and
//!   `softmax_beta(y) = (1/beta) log sum e^{beta y}`: `m - log(N^2 (N-1)) / (2 beta) <= F_beta <= m`.
//!   Its gradient is `dF/dS_ii = w_i / 2`, `dF/dS_ij = -p_ij / 2` with `w` and `p` the two
//!   softmax weight vectors, then `dF/dU = G V`, `dF/dV = G^T U` (as for the losses, SPEC §1).
//! - **Continuation.** `beta` grows geometrically over `stages` stages from
//!   `beta_0` to `beta_max`; each stage takes `steps_per_stage` Adam ascent
//!   steps on the product of spheres (Riemannian gradient, then renormalisation of the rows,
//!   as in [`super::optimize`]), with the learning rate `lr * beta_0 / beta` so that the
//!   angular resolution follows the sharpness. Adam restarts at each stage.
//! - **Keeping the best.** The exact margin of every iterate is computed from `S` (no extra
//!   product); the best iterate of a start is its result, so the reported margin is an exact
//!   value attained by the returned embedding (never an estimate, hence never above the bound
//!   `N / (2(N-1))` beyond rounding).
//! - **Restarts.** Random starts from `ChaCha8Rng::seed_from_u64(seed)` on stream `r`; the
//!   largest margin is kept. Even starts are *aligned* (rows of `U` iid Gaussian, `V = U` plus
//!   Gaussian noise of scale 0.1, then normalised), odd ones independent. Independent starts
//!   can pair the rows in an order that no smooth path repairs (in the plane, `v_i` matched to
//!   the wrong `u_i` keeps the margin at 0); aligned ones start with every positive at 1.
//!
//! Measured (tests/max_margin.rs): the square (`N = 4, d = 2`, `m = 1/2`), the pentagon
//! (`N = 5, d = 2`, `m = (1 - cos 72°)/2`), the cross-polytope (`N = 2d`, `m = 1/2`) and the
//! simplex ETF (`d >= N - 1`, `m = N/(2(N-1))`) are all found within `2e-3` with the defaults.

use super::{Adam, Optimizer};
use crate::error::{check_batch, check_positive, Error, Result};
use crate::geometry::margin_bound;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

/// Default number of random starts.
pub const DEFAULT_MM_RESTARTS: usize = 8;
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

/// A maximum-margin problem and how to solve it (valid by construction: [`MaxMarginConfig::new`]
/// and the setters check every field).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MaxMarginConfig {
    n: usize,
    d: usize,
    restarts: usize,
    stages: usize,
    steps_per_stage: usize,
    beta0: f64,
    beta_max: f64,
    lr: f64,
    seed: u64,
}

impl MaxMarginConfig {
    /// `N` pairs in `R^d` with the default solver settings (`DEFAULT_MM_*`).
    ///
    /// # Errors
    /// `N < 2` or `d < 1`.
    pub fn new(n: usize, d: usize, seed: u64) -> Result<Self> {
        check_batch(n)?;
        if d < 1 {
            return Err(Error::Config(format!(
                "invalid dimension d = {d}: need d >= 1"
            )));
        }
        Ok(MaxMarginConfig {
            n,
            d,
            restarts: DEFAULT_MM_RESTARTS,
            stages: DEFAULT_MM_STAGES,
            steps_per_stage: DEFAULT_MM_STEPS_PER_STAGE,
            beta0: DEFAULT_MM_BETA0,
            beta_max: DEFAULT_MM_BETA_MAX,
            lr: DEFAULT_MM_LR,
            seed,
        })
    }

    /// Sets the number of random starts (`>= 1`).
    ///
    /// # Errors
    /// `restarts = 0`.
    pub fn with_restarts(mut self, restarts: usize) -> Result<Self> {
        if restarts < 1 {
            return Err(Error::Config(
                "invalid restarts = 0: need at least one start".into(),
            ));
        }
        self.restarts = restarts;
        Ok(self)
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
            return Err(Error::Config(
                "the max-margin schedule needs at least one stage of at least one step".into(),
            ));
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
        self.stages = stages;
        self.steps_per_stage = steps_per_stage;
        self.beta0 = beta0;
        self.beta_max = beta_max;
        Ok(self)
    }

    /// Sets the first stage's learning rate (finite, `> 0`).
    ///
    /// # Errors
    /// `lr` not finite and `> 0`.
    pub fn with_lr(mut self, lr: f64) -> Result<Self> {
        self.lr = check_positive("lr", lr)?;
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

    /// The seed of the starts.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The sharpness of stage `k` (`0`-based): geometric from `beta0` to `beta_max`.
    fn beta(&self, k: usize) -> f64 {
        if self.stages == 1 {
            return self.beta_max;
        }
        self.beta0 * (self.beta_max / self.beta0).powf(k as f64 / (self.stages - 1) as f64)
    }
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
    /// Which start was kept (`0`-based).
    pub best_restart: usize,
    /// The margin each start reached, in order.
    pub restart_margins: Vec<f64>,
    /// Steps per start.
    pub steps_per_start: usize,
}

/// Finds a maximum-margin constellation of `N` pairs in `R^d` (module documentation).
///
/// # Errors
/// None for a validated configuration today; the `Result` leaves room for resource limits.
///
/// ```
/// use ccem::optim::max_margin::{max_margin, MaxMarginConfig};
/// // Four pairs in the plane: the square, margin 1/2.
/// let cfg = MaxMarginConfig::new(4, 2, 0).unwrap();
/// let r = max_margin(&cfg).unwrap();
/// assert!((r.margin - 0.5).abs() < 2e-3);
/// ```
pub fn max_margin(cfg: &MaxMarginConfig) -> Result<MaxMarginResult> {
    let (n, d) = (cfg.n, cfg.d);
    let mut ws = Work::new(n, d);
    let mut best: Option<(usize, Extremes, Vec<f64>)> = None;
    let mut restart_margins = Vec::with_capacity(cfg.restarts);
    for r in 0..cfg.restarts {
        let (ext, theta) = ws.run(cfg, r as u64);
        restart_margins.push(ext.margin());
        if best
            .as_ref()
            .is_none_or(|(_, b, _)| ext.margin() > b.margin())
        {
            best = Some((r, ext, theta));
        }
    }
    let (best_restart, ext, theta) = best.expect("restarts >= 1");
    let (xs, ys) = theta.split_at(n * d);
    Ok(MaxMarginResult {
        u: Array2::from_shape_vec((n, d), xs.to_vec()).expect("N x d"),
        v: Array2::from_shape_vec((n, d), ys.to_vec()).expect("N x d"),
        margin: ext.margin(),
        margin_bias: ext.bias(),
        margin_bound: margin_bound(n),
        best_restart,
        restart_margins,
        steps_per_start: cfg.stages * cfg.steps_per_stage,
    })
}

/// `min_i S_ii` and `max_{i != j} S_ij`.
#[derive(Clone, Copy, Debug)]
struct Extremes {
    pos_min: f64,
    neg_max: f64,
}

impl Extremes {
    fn margin(&self) -> f64 {
        (self.pos_min - self.neg_max) / 2.0
    }
    fn bias(&self) -> f64 {
        (self.pos_min + self.neg_max) / 2.0
    }
}

/// Buffers of one [`max_margin`] call.
struct Work {
    n: usize,
    d: usize,
    /// `[X | Y]`, row-major.
    theta: Vec<f64>,
    grad: Vec<f64>,
    /// `S`, then `G = -dF/dS` in place.
    s: Array2<f64>,
    opt: Adam,
}

impl Work {
    fn new(n: usize, d: usize) -> Self {
        Work {
            n,
            d,
            theta: vec![0.0; 2 * n * d],
            grad: vec![0.0; 2 * n * d],
            s: Array2::zeros((n, n)),
            opt: Adam::new(2 * n * d),
        }
    }

    /// One start: returns the best iterate's extremes and parameters.
    fn run(&mut self, cfg: &MaxMarginConfig, r: u64) -> (Extremes, Vec<f64>) {
        let (n, d) = (self.n, self.d);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(r);
        let nd = n * d;
        loop {
            for e in self.theta.iter_mut() {
                *e = StandardNormal.sample(&mut rng);
            }
            if r.is_multiple_of(2) {
                // Aligned start: V = U + small noise.
                let (x, y) = self.theta.split_at_mut(nd);
                y.iter_mut()
                    .zip(x.iter())
                    .for_each(|(b, a)| *b = a + 0.1 * *b);
            }
            if normalize_rows(&mut self.theta, d) {
                break;
            }
        }
        let mut best: Option<(Extremes, Vec<f64>)> = None;
        for k in 0..cfg.stages {
            let beta = cfg.beta(k);
            let lr = cfg.lr * cfg.beta0 / beta;
            self.opt.reset();
            for _ in 0..cfg.steps_per_stage {
                let ext = self.gradient(beta);
                if best.as_ref().is_none_or(|(b, _)| ext.margin() > b.margin()) {
                    best = Some((ext, self.theta.clone()));
                }
                self.opt.step(&mut self.theta, &self.grad, lr);
                normalize_rows(&mut self.theta, d);
            }
        }
        // The last iterate.
        let ext = self.gradient(cfg.beta_max);
        if best.as_ref().is_none_or(|(b, _)| ext.margin() > b.margin()) {
            best = Some((ext, self.theta.clone()));
        }
        best.expect("at least one evaluation")
    }

    /// `S`, its extremes, and `-grad F_beta` (Riemannian) into `self.grad` (descent direction
    /// for Adam, which minimises).
    fn gradient(&mut self, beta: f64) -> Extremes {
        let (n, d) = (self.n, self.d);
        let nd = n * d;
        let x = ArrayView2::from_shape((n, d), &self.theta[..nd]).expect("N x d");
        let y = ArrayView2::from_shape((n, d), &self.theta[nd..]).expect("N x d");
        general_mat_mul(1.0, &x, &y.t(), 0.0, &mut self.s);
        let mut ext = Extremes {
            pos_min: f64::INFINITY,
            neg_max: f64::NEG_INFINITY,
        };
        for ((i, j), &v) in self.s.indexed_iter() {
            if i == j {
                ext.pos_min = ext.pos_min.min(v);
            } else {
                ext.neg_max = ext.neg_max.max(v);
            }
        }
        // Softmax weights, shifted by the extremes: w_i ~ e^{-beta (S_ii - min)},
        // p_ij ~ e^{beta (S_ij - max)}. G = -dF/dS = (-w_i on the diagonal, p_ij off it) / 2.
        let (mut zw, mut zp) = (0.0, 0.0);
        for ((i, j), v) in self.s.indexed_iter_mut() {
            if i == j {
                *v = (-beta * (*v - ext.pos_min)).exp();
                zw += *v;
            } else {
                *v = (beta * (*v - ext.neg_max)).exp();
                zp += *v;
            }
        }
        for ((i, j), v) in self.s.indexed_iter_mut() {
            *v = if i == j {
                -0.5 * *v / zw
            } else {
                0.5 * *v / zp
            };
        }
        let (gx, gy) = self.grad.split_at_mut(nd);
        let mut gx = ArrayViewMut2::from_shape((n, d), gx).expect("N x d");
        let mut gy = ArrayViewMut2::from_shape((n, d), gy).expect("N x d");
        general_mat_mul(1.0, &self.s, &y, 0.0, &mut gx);
        general_mat_mul(1.0, &self.s.t(), &x, 0.0, &mut gy);
        project(&mut gx, &x);
        project(&mut gy, &y);
        ext
    }
}

/// `g_i <- g_i - (g_i . x_i) x_i` for every row (the tangent part at unit rows `x`).
fn project(g: &mut ArrayViewMut2<f64>, x: &ArrayView2<f64>) {
    for (mut gi, xi) in g.outer_iter_mut().zip(x.outer_iter()) {
        let c = gi.dot(&xi);
        gi.scaled_add(-c, &xi);
    }
}

/// Puts every length-`d` row on the unit sphere; `false` if a row has zero or non-finite norm.
fn normalize_rows(x: &mut [f64], d: usize) -> bool {
    let mut ok = true;
    for row in x.chunks_exact_mut(d) {
        let nr = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(nr.is_finite() && nr > 0.0) {
            ok = false;
            continue;
        }
        row.iter_mut().for_each(|v| *v /= nr);
    }
    ok
}
