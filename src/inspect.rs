//! `inspect`: an embedding measured, both losses evaluated and the margins found in **one
//! blocked pass** over `S = U V^T`, in float32 or float64 (SPEC.md §4.1).
//!
//! The passes are the scan engine's (`geometry::scan`, shared with [`crate::geometry::margins()`]);
//! this module asks it for everything at once and assembles the report.
//!
//! # What comes from where
//! - **`O(N d^2)`, no pass over an `N x N` matrix:** the within-modality statistics. With
//!   `s_u = sum_i u_i` and `n_i = ||u_i||^2`, the off-diagonal entries of `U U^T` have
//!   `sum_{i != j} u_i.u_j = ||s_u||^2 - sum_i n_i` and
//!   `sum_{i != j} (u_i.u_j)^2 = ||U^T U||_F^2 - sum_i n_i^2` (the same for `V`). `U^T U` is
//!   accumulated in float64 from products of `block` rows in the input's precision. Their
//!   spread comes from a difference of sums of squares, so it carries an absolute error of
//!   about `sqrt(eps)` times the entries' root mean square (`1e-8` for unit rows in float64;
//!   a spread of exactly 0, as on the CCEM, reads as about `1e-8`). The mean of
//!   the negatives, `(s_u.s_v - sum_i u_i.v_i) / (N (N - 1))`, is found the same way and used
//!   as the shift `c` of their sums below.
//! - **One pass over `S`**, tile by tile (`block` rows by [`TILE_COLS`] columns, products in the
//!   input's precision, every sum in float64):
//!   - the positives `S_ii` (kept: `N` values), and of the negatives the minimum, maximum, the
//!     shifted sums `sum (S_ij - c)` and `sum (S_ij - c)^2` (mean and spread without
//!     cancellation) and a histogram of [`HISTOGRAM_BINS`](crate::geometry::HISTOGRAM_BINS) bins on `[-R, R]`,
//!     `R = max_i ||u_i|| max_j ||v_j||`;
//!   - the sigmoid loss `(1/N) sum_ij softplus(-z_ij (t S_ij - b))` (SPEC §1);
//!   - InfoNCE (SPEC §1): every `e_ij = exp(S_ij / tau - R / tau)` is added to its row sum and
//!     to its column sum, so `lse_i = R / tau + ln sum_j e_ij` needs one exponential per entry
//!     and no running maximum. That holds while `2 R / tau <= 600` (every term above
//!     `e^-600`, far from underflow); beyond (a tiny `tau` or long raw rows), InfoNCE takes one
//!     more blocked pass with running maxima ([`crate::loss::driver::value`]), counted in
//!     [`Inspection::passes`].
//! - **The quantile margin** (SPEC §7): the positives' quantile is exact (they are kept). The
//!   negatives' `q_{1-p}` is located in the histogram; then either
//!   - [`QuantileMode::Exact`]: a second pass collects the values of the one or two bins that
//!     hold the two order statistics and selects them exactly (or, if those bins hold more than
//!     [`CANDIDATE_CAP`] values, sub-histograms them: error at most `R / 2^33`); or
//!   - [`QuantileMode::Histogram`]: no second pass; each order statistic is placed by linear
//!     interpolation inside its bin, so it is off by at most one bin width `2R / 2^16`, and the
//!     quantile margin by at most `R / 2^16` (`1.5e-5` for unit rows), reported as
//!     `margin_quantile_error`.
//!
//!   [`inspect`] uses `Exact` up to `N = 4096` ([`EXACT_QUANTILE_MAX_N`]) and `Histogram`
//!   above, unless told otherwise.
//!
//! # Threads and reproducibility
//! The row blocks are dealt to [`GROUPS`] groups (block `k` to group `k mod 16`), a number that
//! does not depend on the thread count; each group visits its tiles in order and the groups'
//! sums are added in group order. Every result is therefore bitwise the same for any number of
//! threads (tested).
//!
//! # Example
//! ```
//! use ccem::inspect::{inspect, InspectConfig};
//! use ccem::matrix::Matrix;
//! use ccem::geometry::simplex_etf;
//!
//! let x = simplex_etf(8);
//! let cfg = InspectConfig { t: 10.0, b: Some(10.0), ..InspectConfig::default() };
//! let r = inspect(Matrix::F64(x.clone()), Matrix::F64(x), &cfg)?;
//! assert!((r.s_neg_max - (-1.0 / 7.0)).abs() < 1e-12);
//! assert!((r.within_u_mean - (-1.0 / 7.0)).abs() < 1e-12);
//! // One pass for everything, one more to select the quantile exactly (N <= 4096).
//! assert_eq!(r.passes, 2);
//! # Ok::<(), ccem::Error>(())
//! ```

use crate::base::Precision;
use crate::error::{Error, Result};
use crate::geometry::scan::{
    bound_of, memory_estimate, scan, RowSums, Scan, ScanWants, CANDIDATE_CAP, EXACT_QUANTILE_MAX_N,
};
pub use crate::geometry::scan::{QuantileMode, GROUPS, MAX_FIXED_SHIFT_SPAN, TILE_COLS};
use crate::geometry::{Margins, QuantileLevel};
use crate::limits::MemoryLimit;
use crate::loss::embedding::RowNormalize;
use crate::loss::{driver, infonce_clip, BlockOptions, Loss, LossKind};
use crate::matrix::Matrix;
use crate::report::Report;
use ndarray::Array2;
use serde::Serialize;

/// The default rows per block: the fastest of 256, 512 and 1024 at `N = 8192, d = 768` in
/// float32 on the development machine (2.0 s against 2.2-2.4 s for 256; fewer packings of the
/// products per flop), with `1024 x 512` float32 tiles (2 MiB) per group in flight.
pub const DEFAULT_INSPECT_BLOCK: usize = 1024;

/// How [`inspect`] reads and measures an embedding. The defaults are `ccem inspect`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InspectConfig {
    /// Scale `t` of the sigmoid loss.
    pub t: f64,
    /// Bias `b` of the sigmoid loss (`None`: `b = t`).
    pub b: Option<f64>,
    /// Temperature of InfoNCE.
    pub tau: f64,
    /// Level `p` of the quantile margin.
    pub margin_quantile: f64,
    /// Put the rows on the unit sphere first.
    pub normalize: bool,
    /// Rows per block (memory `O(block x 512)` per group).
    pub block: usize,
    /// The precision of the products; `None`: float32 when both inputs are float32, else
    /// float64.
    pub precision: Option<Precision>,
    /// The quantile's method; `None`: exact up to `N = 4096`, histogram above.
    pub quantile: Option<QuantileMode>,
    /// Run on the rayon thread pool.
    pub parallel: bool,
    /// A registry loss to evaluate on the pair too ([`Inspection::loss_value`]).
    pub loss: Option<Loss>,
    /// The most memory the passes may use (default: the memory available when [`inspect`]
    /// starts).
    pub max_memory: MemoryLimit,
}

impl Default for InspectConfig {
    fn default() -> Self {
        InspectConfig {
            t: 10.0,
            b: None,
            tau: 0.07,
            margin_quantile: crate::geometry::DEFAULT_MARGIN_QUANTILE,
            normalize: true,
            block: DEFAULT_INSPECT_BLOCK,
            precision: None,
            quantile: None,
            parallel: true,
            loss: None,
            max_memory: MemoryLimit::Available,
        }
    }
}

/// What `ccem inspect` reports (its JSON keys, in order; SPEC §4.1).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Inspection {
    /// Batch size `N`.
    pub n: usize,
    /// Dimension `d`.
    pub d: usize,
    /// Whether the rows were normalised.
    pub normalized: bool,
    /// The precision of the products.
    pub precision: Precision,
    /// Scale of the sigmoid loss.
    pub t: f64,
    /// Bias of the sigmoid loss.
    pub b: f64,
    /// Temperature of InfoNCE.
    pub tau: f64,
    /// The sigmoid loss.
    pub sigmoid_loss: f64,
    /// InfoNCE, ccem's convention: the sum of the row and column cross-entropies.
    pub infonce_loss: f64,
    /// open_clip's `ClipLoss` convention: their mean, `infonce_loss / 2`.
    pub infonce_loss_clip: f64,
    /// Measured, then the sigmoid theory for `(N, d, t, b)`; `theory_*` are empty for `d < N`.
    #[serde(flatten)]
    pub report: Report,
    /// Smallest positive.
    pub s_pos_min: f64,
    /// Largest positive.
    pub s_pos_max: f64,
    /// Smallest negative.
    pub s_neg_min: f64,
    /// Largest negative.
    pub s_neg_max: f64,
    /// Mean of `u_i . u_j`, `i != j`.
    pub within_u_mean: f64,
    /// Standard deviation of `u_i . u_j`, `i != j`.
    pub within_u_std: f64,
    /// Mean of `v_i . v_j`, `i != j`.
    pub within_v_mean: f64,
    /// Standard deviation of `v_i . v_j`, `i != j`.
    pub within_v_std: f64,
    /// `(1 - s_pos_mean) / 2`, clamped to `[0, 1]`.
    pub c_from_s_pos: f64,
    /// Thm 5.2's slack of Lee et al. (2025), `1 + s_neg_mean + 1/(N-1) - s_pos_mean`
    /// ([`alignment_slack`]; SPEC §4.1): `>= 0` for every embedding with unit rows; `None`
    /// (null) when the rows were used as given.
    pub alignment_slack: Option<f64>,
    /// The registry loss asked for (`--loss NAME`), if any.
    pub loss: Option<LossKind>,
    /// Its value on the (normalised) pair, by the loss driver ([`driver::value`]; SPEC §4.1).
    pub loss_value: Option<f64>,
    /// How the negatives' quantile was found.
    pub quantile_method: QuantileMode,
    /// An upper bound on the absolute error of `margin_quantile` (`0`: exact).
    pub margin_quantile_error: f64,
    /// Passes over `U V^T`: 1, plus 1 for an exact quantile, plus 1 for InfoNCE when
    /// `2 R / tau > 600`.
    pub passes: usize,
}

/// Measures `(U, V)` against the CCEM and the theory, with both losses and the margins, in one
/// pass over `U V^T` (module documentation; SPEC §4.1). float32 input runs in float32 unless
/// `cfg.precision` says otherwise; a float64 input asked for float32 is rounded first.
///
/// # Errors
/// Shapes differ, `N < 2`, a non-finite entry, a zero row (with `normalize`), or an invalid
/// `t`, `b`, `tau`, quantile level or `block = 0`; [`Error::TooLarge`] when the passes would need
/// more memory than `cfg.max_memory`.
pub fn inspect(u: Matrix, v: Matrix, cfg: &InspectConfig) -> Result<Inspection> {
    inspect_with(u, v, cfg, &|_, _| {})
}

/// [`inspect`], telling `progress` `(row blocks done, total)` as the passes over `U V^T` go
/// (called from the worker threads; e.g. for a progress bar).
///
/// # Errors
/// As [`inspect`].
pub fn inspect_with(
    u: Matrix,
    v: Matrix,
    cfg: &InspectConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Inspection> {
    let b = cfg.b.unwrap_or(cfg.t);
    let sig = Loss::sigmoid(cfg.t, b)?;
    let info = Loss::infonce(cfg.tau)?;
    let level = QuantileLevel::new(cfg.margin_quantile)?;
    if cfg.block == 0 {
        return Err(Error::Config("block must be at least 1 row".into()));
    }
    Matrix::check_pair(&u, &v)?;
    let precision = cfg
        .precision
        .unwrap_or_else(|| Matrix::common_precision(&u, &v));
    let (u, v) = (u.to_precision(precision), v.to_precision(precision));
    let n = u.dim().0;
    let mode = cfg.quantile.unwrap_or(if n <= EXACT_QUANTILE_MAX_N {
        QuantileMode::Exact
    } else {
        QuantileMode::Histogram
    });
    // One reading of the memory available serves both checks.
    let limit = cfg.max_memory.measured();
    limit.check(
        &format!("inspecting {n} pairs"),
        memory_estimate(u.dim(), precision, cfg.block, (mode, false)),
    )?;
    // The exact quantile keeps `S` for its second pass only within the limit too.
    let keep = limit
        .check(
            "",
            memory_estimate(u.dim(), precision, cfg.block, (mode, true)),
        )
        .is_ok();
    let wants = ScanWants {
        sigmoid: Some((cfg.t, b)),
        tau: Some(cfg.tau),
        measurement: true,
        mode,
        cap: CANDIDATE_CAP,
        keep,
        progress: Some(progress),
    };
    let opts = BlockOptions {
        block: cfg.block,
        parallel: cfg.parallel,
    };
    let how = (level, opts, &wants);
    let losses = (&info, cfg.loss.as_ref());
    let (sc, infonce_fallback, loss_value) = match (u, v) {
        (Matrix::F64(u), Matrix::F64(v)) => scan_pair(u, v, cfg.normalize, how, losses)?,
        (Matrix::F32(u), Matrix::F32(v)) => scan_pair(u, v, cfg.normalize, how, losses)?,
        _ => unreachable!("both converted to one precision above"),
    };
    let m = sc.measurement.expect("asked for the measurement");
    let infonce_loss = sc.infonce_loss.or(infonce_fallback).unwrap_or(f64::NAN);
    let sigmoid_loss = sc.sigmoid_loss.unwrap_or(f64::NAN);
    for (name, value) in [("sigmoid", sigmoid_loss), ("InfoNCE", infonce_loss)] {
        if !value.is_finite() {
            return Err(Error::Config(format!(
                "the {name} loss overflows float64 ({value}) at t = {}, b = {b}, tau = {}: the \
                 logits t S_ij - b or S_ij / tau are too large for these rows",
                cfg.t, cfg.tau
            )));
        }
    }
    if let (Some(l), Some(x)) = (&cfg.loss, loss_value) {
        if !x.is_finite() {
            return Err(Error::Config(format!(
                "the {} loss overflows float64 ({x}) on these rows",
                l.name()
            )));
        }
    }
    let mut report = Report::from_measurement(m, &sig);
    let margins = Margins::from_order(n, sc.order);
    report.margins = Some(margins);
    Ok(Inspection {
        n,
        d: m.d,
        normalized: cfg.normalize,
        precision,
        t: cfg.t,
        b,
        tau: cfg.tau,
        sigmoid_loss,
        infonce_loss,
        infonce_loss_clip: infonce_clip(infonce_loss),
        report,
        s_pos_min: m.pos.min,
        s_pos_max: m.pos.max,
        s_neg_min: m.neg.min,
        s_neg_max: m.neg.max,
        within_u_mean: m.within_u.mean,
        within_u_std: m.within_u.std,
        within_v_mean: m.within_v.mean,
        within_v_std: m.within_v.std,
        c_from_s_pos: m.c_from_s_pos,
        alignment_slack: cfg
            .normalize
            .then(|| alignment_slack(n, m.pos.mean, m.neg.mean)),
        loss: cfg.loss.map(|l| l.kind()),
        loss_value,
        quantile_method: mode,
        margin_quantile_error: margins.quantile_error,
        passes: sc.passes + usize::from(infonce_fallback.is_some()),
    })
}

/// Thm 5.2 of Lee, Lim, Lee and Sohn (ICML 2025, arXiv:2506.09781): for `N` pairs of unit
/// vectors, `E[s_pos] <= 1 + E[s_neg] + 1/(N-1)`; the slack `1 + s_neg_mean + 1/(N-1) -
/// s_pos_mean` is therefore `>= 0` (up to rounding). Proof (SPEC §4.1):
/// `sum_{i,j} (u_i - u_j).(v_i - v_j) = 2 N (N - 1) (s_pos_mean - s_neg_mean)`, each term is at
/// most `(||u_i - u_j||^2 + ||v_i - v_j||^2) / 2`, and `sum_{i,j} ||u_i - u_j||^2 =
/// 2 N^2 - 2 ||sum_i u_i||^2 <= 2 N^2`. It is `0` when `U = V` with `sum_i u_i = 0` (the simplex
/// ETF).
///
/// ```
/// assert_eq!(ccem::inspect::alignment_slack(5, 1.0, -0.25), 0.0);
/// ```
pub fn alignment_slack(n: usize, s_pos_mean: f64, s_neg_mean: f64) -> f64 {
    1.0 + s_neg_mean + 1.0 / (n as f64 - 1.0) - s_pos_mean
}

/// Normalises a checked pair when asked and scans it; InfoNCE by its own pass when the scan
/// could not take it (module documentation), and the extra registry loss, if any, by the loss
/// driver.
fn scan_pair<T: RowNormalize>(
    u: Array2<T>,
    v: Array2<T>,
    normalize: bool,
    (level, opts, wants): (QuantileLevel, BlockOptions, &ScanWants),
    (info, extra): (&Loss, Option<&Loss>),
) -> Result<(Scan, Option<f64>, Option<f64>)> {
    let (u, v) = if normalize {
        (
            T::normalize(u.view(), "U")?.0,
            T::normalize(v.view(), "V")?.0,
        )
    } else {
        (u, v)
    };
    let sums = (RowSums::of(u.view()), RowSums::of(v.view()));
    // Every product |u_i . v_j| <= R must be representable, or the pass would sum infinities.
    let r = bound_of::<T>(&sums.0, &sums.1, u.ncols());
    if r.is_nan() || r >= T::MAX / 4.0 {
        return Err(Error::Config(format!(
            "the rows are too long for the products in {}: max ||u_i|| max ||v_j|| = {r:e}; \
             normalise them (drop --no-normalize) or scale them down",
            if T::EPS > 1e-10 { "float32" } else { "float64" }
        )));
    }
    let sc = scan(
        (u.view(), v.view()),
        (&sums.0, &sums.1),
        level.get(),
        opts,
        wants,
    );
    let fallback = sc
        .infonce_loss
        .is_none()
        .then(|| driver::value(info, u.view(), v.view(), opts));
    let value = extra.map(|l| driver::value(l, u.view(), v.view(), opts));
    Ok((sc, fallback, value))
}

#[cfg(test)]
mod tests;
