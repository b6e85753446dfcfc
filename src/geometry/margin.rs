//! Margins of an embedding: how well the positives are separated from the negatives
//! (SPEC.md §7, after Bangachev, Bresler, Noman, Polyanskiy 2025, arXiv:2509.18552).
//!
//! # Formulas (SPEC §7)
//! - `margin m = (min_i S_ii - max_{i != j} S_ij) / 2`: positive exactly when `(U, V)` is a
//!   *constellation*, i.e. some threshold `r_b` separates every positive from every negative;
//! - `margin_bias r_b* = (min_i S_ii + max_{i != j} S_ij) / 2`: the relative bias that puts the
//!   threshold half-way, so that `S_ii - r_b* >= m` and `r_b* - S_ij >= m`;
//! - `margin_bound = N / (2 (N - 1))`: no embedding of `N` pairs of unit vectors has a larger
//!   margin (Thm 3.4 of the paper: `m + r_b <= 1` and `(3 - 4/N) m <= 1 + r_b`); the simplex
//!   ETF reaches it;
//! - `margin_quantile = (q_p(positives) - q_{1-p}(negatives)) / 2`, with `q` numpy's default
//!   ("linear") quantile: for `M` sorted values `x_0 <= ... <= x_{M-1}` and the virtual index
//!   `h = (M - 1) q`, `q(x) = x_lo + (h - lo) (x_{lo+1} - x_lo)` with `lo = floor(h)`. At
//!   `p = 0` it is the margin itself.
//!
//! # Algorithm and precision
//! The `N (N - 1)` negatives are never held at once unless they are few. Two blocked passes
//! over `S = U V^T` (memory `O(N * block)` each; the engine [`super::scan`], which
//! `ccem inspect` runs with the losses and the statistics in the same first pass):
//!
//! 1. the positives (`N` values, kept), the extreme negatives, and a histogram of the negatives
//!    with [`HISTOGRAM_BINS`](super::HISTOGRAM_BINS) equal bins on `[-R, R]`, `R = max_i ||u_i|| max_j ||v_j||` (so
//!    every `S_ij` lies inside by Cauchy–Schwarz);
//! 2. the bins holding the two order statistics that the quantile interpolates between are
//!    known from the counts; every negative in those bins is collected and the two order
//!    statistics are selected exactly (`select_nth_unstable`). The quantile is then **exact**
//!    (the same floating-point value numpy computes from the same `S_ij`).
//!
//! If those bins hold more than [`CANDIDATE_CAP`] values (`2^24`, 128 MiB), pass 2 instead
//! histograms each of them into [`HISTOGRAM_BINS`](super::HISTOGRAM_BINS) sub-bins and takes the centre of the sub-bin
//! of each order statistic: the absolute error of `q_{1-p}` is then at most
//! `R / HISTOGRAM_BINS^2 = R / 2^32` (about `2.3e-10` for unit rows), far below the `1e-4` the
//! specification allows. Since `N (N - 1) <= 2^24` for `N <= 4096`, **the quantile margin is
//! exact for every `N <= 4096`**; above it is exact whenever the bins are not that crowded,
//! and [`Margins::quantile_error`] says which case happened (`0` when exact).
//!
//! Counts, extremes and selections do not depend on the order in which blocks are visited, so
//! the result is identical for every thread count.

use super::scan::{scan, OrderStats, QuantileMode, RowSums, ScanWants, CANDIDATE_CAP};
use crate::error::{check_nonneg, Error, Result};
use crate::loss::embedding::{check_all_finite, check_pair};
use crate::loss::BlockOptions;
use ndarray::{Array2, ArrayView2};
use serde::Serialize;

/// The default quantile level `p` of [`Margins::margin_quantile`]: the 5% quantile margin.
pub const DEFAULT_MARGIN_QUANTILE: f64 = 0.05;

/// A validated quantile level `p in [0, 1/2]` for the quantile margin.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct QuantileLevel(f64);

impl QuantileLevel {
    /// Checks `0 <= p <= 1/2`.
    ///
    /// # Errors
    /// `p` outside `[0, 1/2]` or not finite.
    ///
    /// ```
    /// use ccem::geometry::QuantileLevel;
    /// assert!(QuantileLevel::new(0.05).is_ok());
    /// assert!(QuantileLevel::new(0.7).is_err());
    /// ```
    pub fn new(p: f64) -> Result<Self> {
        check_nonneg("margin quantile p", p)?;
        if p > 0.5 {
            return Err(Error::InvalidParameter {
                name: "margin quantile p",
                value: p,
                requirement: "must be in [0, 0.5] (the fraction of positives and of negatives \
                              allowed on the wrong side)",
            });
        }
        Ok(QuantileLevel(p))
    }

    /// The level `p`.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for QuantileLevel {
    fn default() -> Self {
        QuantileLevel(DEFAULT_MARGIN_QUANTILE)
    }
}

/// The margins of one embedding (module documentation, SPEC §7).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Margins {
    /// `(min_i S_ii - max_{i != j} S_ij) / 2`; `> 0` iff `(U, V)` is a constellation.
    pub margin: f64,
    /// `(min_i S_ii + max_{i != j} S_ij) / 2`: the relative bias `r_b*` that realises the margin.
    pub margin_bias: f64,
    /// `N / (2 (N - 1))`: the largest margin any `N` pairs of unit vectors can have.
    pub margin_bound: f64,
    /// `(q_p(S_ii) - q_{1-p}(S_ij)) / 2` with numpy's linear quantile.
    pub margin_quantile: f64,
    /// The level `p` of [`Margins::margin_quantile`].
    pub margin_quantile_p: f64,
    /// An upper bound on the absolute error of `margin_quantile`: `0` when exact (always for
    /// `N <= 4096`), else `R / 2^33` (module documentation).
    #[serde(skip)]
    pub quantile_error: f64,
}

impl Margins {
    /// The margins of `N` pairs from the scan's order statistics (SPEC §7).
    pub(crate) fn from_order(n: usize, o: OrderStats) -> Self {
        Margins {
            margin: (o.pos_min - o.neg_max) / 2.0,
            margin_bias: (o.pos_min + o.neg_max) / 2.0,
            margin_bound: margin_bound(n),
            margin_quantile: (o.q_pos - o.q_neg) / 2.0,
            margin_quantile_p: o.level,
            quantile_error: o.q_neg_error / 2.0,
        }
    }
}

/// `N / (2 (N - 1))`, the largest margin of `N >= 2` pairs of unit vectors (SPEC §7; reached by
/// the simplex ETF with `U = V`).
///
/// ```
/// assert_eq!(ccem::geometry::margin_bound(4), 2.0 / 3.0);
/// ```
pub fn margin_bound(n: usize) -> f64 {
    n as f64 / (2.0 * (n as f64 - 1.0))
}

/// Computes the margins of `(U, V)` taken as given (normalise first for cosines), at quantile
/// level `p` (module documentation for the algorithm and its precision).
///
/// # Errors
/// Shapes differ, `N < 2`, or a non-finite entry.
///
/// ```
/// use ccem::geometry::{margins, QuantileLevel};
/// use ccem::geometry::simplex_etf;
/// use ccem::loss::BlockOptions;
/// let x = simplex_etf(4);
/// let m = margins(x.view(), x.view(), QuantileLevel::default(), BlockOptions::default()).unwrap();
/// assert!((m.margin - 2.0 / 3.0).abs() < 1e-12);
/// assert!((m.margin_bias - 1.0 / 3.0).abs() < 1e-12);
/// ```
pub fn margins(
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    p: QuantileLevel,
    opts: BlockOptions,
) -> Result<Margins> {
    margins_with_cap(u, v, p, opts, CANDIDATE_CAP)
}

/// [`margins`], and the `S = U V^T` (`N x N`) its exact pass kept, if it kept it: for a caller
/// that needs `S` again ([`crate::report::Report`]'s measurement).
///
/// # Errors
/// As [`margins`].
pub(crate) fn margins_keeping(
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    p: QuantileLevel,
    opts: BlockOptions,
) -> Result<(Margins, Option<Array2<f64>>)> {
    scan_margins(u, v, p, opts, CANDIDATE_CAP)
}

/// [`margins`] with the exact-selection cap as a parameter (tests force the approximate path).
fn margins_with_cap(
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    p: QuantileLevel,
    opts: BlockOptions,
    cap: usize,
) -> Result<Margins> {
    scan_margins(u, v, p, opts, cap).map(|(m, _)| m)
}

/// The scan of [`margins`], with its kept `S`.
fn scan_margins(
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    p: QuantileLevel,
    opts: BlockOptions,
    cap: usize,
) -> Result<(Margins, Option<Array2<f64>>)> {
    check_pair(u, v)?;
    check_all_finite(u, "U")?;
    check_all_finite(v, "V")?;
    let wants = ScanWants {
        sigmoid: None,
        tau: None,
        measurement: false,
        mode: QuantileMode::Exact,
        cap,
        keep: true,
        progress: None,
    };
    let sums = (RowSums::of(u), RowSums::of(v));
    let sc = scan((u, v), (&sums.0, &sums.1), p.get(), opts, &wants);
    Ok((Margins::from_order(u.nrows(), sc.order), sc.kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_quantile_does_not_depend_on_the_bins_that_locate_it() {
        // Up to 2^16 negatives the exact quantile's histogram has about N(N-1) bins
        // (`scan::histogram_bins`), and from d = 256 the first pass keeps S for the second
        // (`scan::keeps_s`); a cap of half the negatives forces the full 2^16 bins and a second
        // pass that computes S again, whose target bins still hold few enough values to be
        // collected: the same order statistic.
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (n, d) in [(9, 4), (16, 3), (40, 40), (100, 7), (257, 16), (300, 300)] {
            let mut draw = || {
                let x = ndarray::Array2::<f64>::from_shape_fn((n, d), |_| {
                    StandardNormal.sample(&mut rng)
                });
                crate::loss::normalize_rows(x.view(), "U").unwrap().u
            };
            let (u, v) = (draw(), draw());
            for &p in &[0.0, 0.05, 0.5] {
                let p = QuantileLevel::new(p).unwrap();
                let opts = BlockOptions::default();
                let few = margins_with_cap(u.view(), v.view(), p, opts, CANDIDATE_CAP).unwrap();
                let full = margins_with_cap(u.view(), v.view(), p, opts, n * (n - 1) / 2).unwrap();
                assert_eq!(
                    full.quantile_error, 0.0,
                    "N = {n}: the full bins must stay exact"
                );
                assert_eq!(few.quantile_error, 0.0);
                assert_eq!(
                    few.margin_quantile.to_bits(),
                    full.margin_quantile.to_bits(),
                    "N = {n}, p = {p:?}"
                );
                assert_eq!(few.margin.to_bits(), full.margin.to_bits());
            }
        }
    }

    #[test]
    fn approximate_path_is_within_its_error_bound() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let x = ndarray::Array2::<f64>::from_shape_fn((40, 5), |_| StandardNormal.sample(&mut rng));
        let y = ndarray::Array2::<f64>::from_shape_fn((40, 5), |_| StandardNormal.sample(&mut rng));
        let u = crate::loss::normalize_rows(x.view(), "U").unwrap().u;
        let v = crate::loss::normalize_rows(y.view(), "V").unwrap().u;
        let opts = BlockOptions {
            block: 7,
            parallel: true,
        };
        for &p in &[0.0, 0.05, 0.3] {
            let p = QuantileLevel::new(p).unwrap();
            let exact = margins_with_cap(u.view(), v.view(), p, opts, CANDIDATE_CAP).unwrap();
            let approx = margins_with_cap(u.view(), v.view(), p, opts, 0).unwrap();
            assert_eq!(exact.quantile_error, 0.0);
            assert!(approx.quantile_error > 0.0 && approx.quantile_error < 1e-9);
            let err = (exact.margin_quantile - approx.margin_quantile).abs();
            assert!(
                err <= approx.quantile_error,
                "{err} > {}",
                approx.quantile_error
            );
            assert_eq!(exact.margin, approx.margin);
        }
    }

    #[test]
    fn quantile_level_is_validated() {
        assert!(QuantileLevel::new(0.0).is_ok());
        assert!(QuantileLevel::new(0.5).is_ok());
        assert!(QuantileLevel::new(-0.1).is_err());
        assert!(QuantileLevel::new(f64::NAN).is_err());
    }
}
