//! The scan engine under [`super::inspect()`] and [`super::margins()`]: blocked passes over
//! `S = U V^T` that gather, tile by tile, the positives, the negatives' statistics and
//! histogram, the sigmoid loss and InfoNCE's row and column sums, then the negatives' quantile
//! (SPEC.md §4.1, §7). It imports neither of its two callers: each asks [`scan`] for what it
//! needs ([`ScanWants`]) and builds its own result from the returned [`Scan`].
//!
//! # The pass
//! Tile by tile (`block` rows by [`TILE_COLS`] columns, products in the input's precision,
//! every sum in float64):
//! - the positives `S_ii` (kept: `N` values), and of the negatives the minimum, maximum, the
//!   shifted sums `sum (S_ij - c)` and `sum (S_ij - c)^2` (mean and spread without
//!   cancellation; `c` their mean from `O(N d)` sums) and a histogram of [`HISTOGRAM_BINS`]
//!   bins on `[-R, R]`, `R = max_i ||u_i|| max_j ||v_j||`;
//! - the sigmoid loss `(1/N) sum_ij softplus(-z_ij (t S_ij - b))` (SPEC §1);
//! - InfoNCE (SPEC §1): every `e_ij = exp(S_ij / tau - R / tau)` is added to its row sum and
//!   to its column sum, so `lse_i = R / tau + ln sum_j e_ij` needs one exponential per entry
//!   and no running maximum. That holds while `2 R / tau <= 600` ([`MAX_FIXED_SHIFT_SPAN`]);
//!   beyond, the caller evaluates InfoNCE by the loss driver.
//!
//! # The quantile of the negatives
//! Located in the histogram; then either [`QuantileMode::Exact`] (a second pass collects the
//! values of the one or two bins that hold the two order statistics and selects them exactly,
//! or sub-histograms them if they hold more than [`CANDIDATE_CAP`] values: error at most
//! `R / 2^32`), or [`QuantileMode::Histogram`] (interpolation inside the bin: error at most one
//! bin width `2 R / 2^16`). An exact quantile of few negatives uses fewer bins (about `N(N-1)`,
//! `histogram_bins`); when `S` is small and costly to compute (`8 N^2` bytes at most
//! [`KEEP_MAX_BYTES`], `d` at least [`KEEP_MIN_D`]), the first pass keeps it and the second
//! reads it instead of computing it again (`keeps_s`). Either way the quantile is the same order
//! statistic, bitwise.
//!
//! # Threads and reproducibility
//! The row blocks are dealt to [`GROUPS`] groups (block `k` to group `k mod 16`), a number that
//! does not depend on the thread count; each group visits its tiles in order and the groups'
//! sums are added in group order. Every result is therefore bitwise the same for any number of
//! threads.

use super::measure::{Measurement, Stats};
use crate::base::Precision;
use crate::error::{Error, Result};
use crate::loss::embedding::RowNormalize;
use crate::loss::sigmoid::softplus_fast;
use crate::loss::sigmoid_grad::exp_nonpos;
use crate::loss::BlockOptions;
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;
use serde::Serialize;

/// Columns of one tile of `S`.
pub const TILE_COLS: usize = 512;
/// The number of groups the row blocks are dealt to (fixed: the results do not depend on the
/// thread count).
pub const GROUPS: usize = 16;
/// InfoNCE runs in the pass (one shift for every row and column) while `2 R / tau` is at most
/// this.
pub const MAX_FIXED_SHIFT_SPAN: f64 = 600.0;
/// The float32 lanes take InfoNCE's terms while `2 R / tau` is at most this (every term
/// `exp(S_ij / tau - R / tau)` at least `e^-80`, a normal float32); beyond, the float64 lanes do.
pub const MAX_NARROW_SHIFT_SPAN: f64 = 80.0;
/// Lanes of the float64 sums in the kernel (fixed, so the summation order does not depend on
/// the machine).
const LANES: usize = 8;

/// Bins of the histogram of negatives (pass 1), and sub-bins of the approximate pass 2.
pub const HISTOGRAM_BINS: usize = 1 << 16;

/// At most this many negatives are collected for the exact selection (`2^24`, 128 MiB of
/// `f64`); `N (N - 1)` stays below it for every `N <= 4096`.
pub const CANDIDATE_CAP: usize = 1 << 24;

/// The largest `N` for which the quantile margin is guaranteed exact whatever the embedding.
pub const EXACT_QUANTILE_MAX_N: usize = 4096;

/// How the negatives' quantile of the quantile margin is found (module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantileMode {
    /// A second pass selects the order statistics exactly.
    Exact,
    /// Interpolation inside the histogram's bin, no second pass (error at most `R / 2^16`).
    Histogram,
}

impl std::str::FromStr for QuantileMode {
    type Err = Error;

    /// `"exact"` or `"histogram"`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(QuantileMode::Exact),
            "histogram" => Ok(QuantileMode::Histogram),
            other => Err(Error::Config(format!(
                "invalid quantile method '{other}': use 'exact' (a second pass) or 'histogram' \
                 (interpolated in 2^16 bins, no second pass)"
            ))),
        }
    }
}

/// What to compute in the pass.
#[derive(Clone, Copy, Debug)]
struct ScanParams {
    /// `(t, b)` of the sigmoid loss, if it is wanted.
    sigmoid: Option<(f64, f64)>,
    /// `tau` of InfoNCE, if it is wanted in the pass (fixed shift).
    tau: Option<f64>,
    block: usize,
    parallel: bool,
    /// The histogram's bins ([`histogram_bins`]).
    bins: usize,
    /// Whether the pass keeps `S` for the exact quantile's second pass ([`keeps_s`]).
    keep: bool,
}

/// What one group gathers.
struct GroupAcc {
    /// `S_ii` of the group's rows, at their local index ([`Layout`]).
    pos: Vec<f64>,
    /// InfoNCE row sums (the group's rows, local index) and column sums (all `N`) of `e_ij`
    /// (empty without InfoNCE).
    rows: Vec<f64>,
    cols: Vec<f64>,
    sig: f64,
    s1: f64,
    s2: f64,
    neg_min: f64,
    neg_max: f64,
    /// The counts moved out of `staged` before it could overflow (empty until the first such
    /// move: only a group of more than `u32::MAX` negatives needs it).
    hist: Vec<u64>,
    /// The counts of the tiles since the last move into `hist` (a zeroed buffer of the thread's
    /// [`Spare`] buffers, given back zeroed by [`GroupAcc::drain_into`]).
    staged: Vec<u32>,
    staged_count: u64,
    /// The bins in use: the first `bins` counts of `staged` and `hist` (the rest stay zero).
    bins: usize,
    /// The group's rows of `S` in float64 (local row `l` at `l * N`), kept for the exact
    /// quantile's second pass when `S` is small ([`KEEP_MAX_BYTES`]); empty otherwise.
    kept: Vec<f64>,
    /// `local - global` row index of the block being visited (wrapping).
    base: usize,
}

impl GroupAcc {
    /// A group of `local` rows (its `pos` and `rows`), with the `n` column sums of InfoNCE, and
    /// a histogram of `bins` bins.
    fn new(local: usize, n: usize, info: bool, bins: usize, keep: bool) -> Self {
        GroupAcc {
            bins,
            kept: if keep {
                vec![0.0; local * n]
            } else {
                Vec::new()
            },
            pos: vec![0.0; local],
            rows: if info { vec![0.0; local] } else { Vec::new() },
            cols: if info { vec![0.0; n] } else { Vec::new() },
            base: 0,
            sig: 0.0,
            s1: 0.0,
            s2: 0.0,
            neg_min: f64::INFINITY,
            neg_max: f64::NEG_INFINITY,
            hist: Vec::new(),
            staged: spare_take(&SPARE_STAGED),
            staged_count: 0,
        }
    }

    /// Moves the staged (u32) counts into the histogram.
    fn flush(&mut self) {
        if self.hist.is_empty() {
            self.hist = vec![0; HISTOGRAM_BINS];
        }
        let bins = self.bins;
        for (h, s) in self.hist[..bins].iter_mut().zip(&mut self.staged[..bins]) {
            *h += u64::from(*s);
            *s = 0;
        }
        self.staged_count = 0;
    }

    /// Adds every count of the group (moved and staged) to `hist`, and gives the staged buffer
    /// back to the thread's spare buffers, zeroed.
    fn drain_into(&mut self, hist: &mut [u64]) {
        let bins = self.bins;
        for (h, s) in hist[..bins].iter_mut().zip(&mut self.staged[..bins]) {
            *h += u64::from(*s);
            *s = 0;
        }
        if !self.hist.is_empty() {
            hist[..bins]
                .iter_mut()
                .zip(&self.hist[..bins])
                .for_each(|(a, b)| *a += b);
        }
        self.staged_count = 0;
        spare_give(&SPARE_STAGED, std::mem::take(&mut self.staged));
    }
}

/// Zeroed histogram-sized buffers kept by a thread between scans (at most [`SPARE_MAX`] of
/// each kind), so that the many small scans of a sweep (one per cell) do not allocate, fault in
/// and free `HISTOGRAM_BINS`-sized buffers every time (that was a tenth of the paper's encoder
/// sweep; docs/PERFORMANCE.md). Bounded: at most `SPARE_MAX * 12 * HISTOGRAM_BINS` bytes
/// (6 MiB) a thread.
type Spare<T> = std::cell::RefCell<Vec<Vec<T>>>;

/// The most buffers of one kind a thread keeps.
const SPARE_MAX: usize = 8;

thread_local! {
    /// The groups' staged counts.
    static SPARE_STAGED: Spare<u32> = const { std::cell::RefCell::new(Vec::new()) };
    /// The merged histograms.
    static SPARE_HIST: Spare<u64> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A zeroed buffer of `HISTOGRAM_BINS` counts: a spare one of the thread, or a new one.
fn spare_take<T: Copy + Default>(spare: &'static std::thread::LocalKey<Spare<T>>) -> Vec<T> {
    spare
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| vec![T::default(); HISTOGRAM_BINS])
}

/// Keeps `buf` (zeroed by the caller, `HISTOGRAM_BINS` long) for the thread's next scan, unless
/// the thread keeps enough already.
fn spare_give<T>(spare: &'static std::thread::LocalKey<Spare<T>>, buf: Vec<T>) {
    if buf.len() != HISTOGRAM_BINS {
        return;
    }
    spare.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_MAX {
            s.push(buf);
        }
    });
}

/// The constants of the per-entry kernel.
#[derive(Clone, Copy)]
struct EntryKernel {
    t: f64,
    b: f64,
    inv_tau: f64,
    shift: f64,
    /// The shift of the negatives' sums (their approximate mean).
    c: f64,
    lo: f64,
    inv_w: f64,
}

impl EntryKernel {
    /// Whether the float32 lanes may take the per-entry terms of input in precision `T`
    /// (SPEC §1.1): float32 input, every sigmoid argument `|t S_ij - b| <= |t| R + |b|` far
    /// inside float32's range (at most `1e30`), and InfoNCE's exponents
    /// `S_ij / tau - R / tau >= -2 R / tau` at least `-`[`MAX_NARROW_SHIFT_SPAN`], where
    /// float32's `exp` is a normal number.
    fn narrow_ok<T: RowNormalize>(&self, r: f64, sig: bool, info: bool) -> bool {
        T::PRECISION == Precision::F32
            && (!sig || self.t.abs() * r + self.b.abs() <= 1e30)
            && (!info || 2.0 * self.shift <= MAX_NARROW_SHIFT_SPAN)
    }
}

/// Sums of one run of negatives.
#[derive(Default)]
struct RunSums {
    sig: f64,
    row: f64,
    s1: f64,
    s2: f64,
    min: f64,
    max: f64,
}

/// `log2(e)` in float32.
const LOG2_E_F32: f32 = std::f32::consts::LOG2_E;
/// High part of `ln 2` with 12 trailing zero bits (so `k * LN2_HI_F32` is exact for `|k| < 2^12`).
const LN2_HI_F32: f32 = 0.693_359_4;
/// `ln 2 - LN2_HI_F32`.
const LN2_LO_F32: f32 = -2.121_944_4e-4;
/// `1.5 * 2^23`: adding it rounds a float32 of magnitude below `2^22` to an integer.
const SHIFT_F32: f32 = 12_582_912.0;

/// `exp(a)` in float32 for `a <= 0`, branch-free so that a loop over it vectorises (SPEC §1.1).
///
/// # Formula
/// `a = k ln 2 + r`, `k = round(a / ln 2)`, `|r| <= ln(2)/2` (Cody-Waite, `ln 2` in two parts),
/// `exp(r)` by its Taylor polynomial of degree 7 (truncation below `6e-9` relative), then
/// `2^k` written into the exponent bits. Relative error below `2.5e-7` (4 ulp; tested against
/// float64 `exp`) for `a >= -87`; below, where `exp(a) < 1.7e-38`, the result is `0`.
#[inline(always)]
pub(crate) fn exp_nonpos_f32(a: f32) -> f32 {
    let normal = a >= -87.0;
    let a = if normal { a.min(0.0) } else { -87.0 };
    let kd = a * LOG2_E_F32 + SHIFT_F32;
    let k_bits = kd.to_bits().wrapping_sub(SHIFT_F32.to_bits());
    let k = kd - SHIFT_F32;
    let r = (a - k * LN2_HI_F32) - k * LN2_LO_F32;
    let r2 = r * r;
    let r4 = r2 * r2;
    let p = ((1.0 + r) + (0.5 + r * (1.0 / 6.0)) * r2)
        + ((1.0 / 24.0 + r * (1.0 / 120.0)) + (1.0 / 720.0 + r * (1.0 / 5040.0)) * r2) * r4;
    // k in [-126, 0]: 2^k is a normal float32 with biased exponent k + 127.
    let scale = f32::from_bits(k_bits.wrapping_add(127) << 23);
    if normal {
        p * scale
    } else {
        0.0
    }
}

/// `ln(1 + e)` in float32 for `e` in `[0, 1]`, branch-free: `2 atanh(z)`, `z = e / (2 + e)` in
/// `[0, 1/3]`, by its series `2 z sum_k z^{2k} / (2k + 1)` to `k = 6` (truncation below
/// `1.5e-8` relative; SPEC §1.1).
#[inline(always)]
fn ln1p_unit_f32(e: f32) -> f32 {
    let z = e / (2.0 + e);
    let w = z * z;
    let mut p = 1.0f32 / 13.0;
    for k in (0..6).rev() {
        p = p * w + 1.0 / (2 * k + 1) as f32;
    }
    2.0 * z * p
}

/// `softplus(y) = ln(1 + e^y)` in float32, branch-free from one `exp(-|y|)`: relative error
/// below `3.5e-7` (tested against float64; SPEC §1.1).
#[inline(always)]
pub(crate) fn softplus_f32(y: f32) -> f32 {
    y.max(0.0) + ln1p_unit_f32(exp_nonpos_f32(-y.abs()))
}

/// A sigmoid term `softplus(y)` of the pass: in float64 ([`softplus_fast`]), or with `NARROW`
/// from `y` rounded to float32 ([`softplus_f32`]; SPEC §1.1).
#[inline(always)]
fn softplus_term<const NARROW: bool>(y: f64) -> f64 {
    if NARROW {
        f64::from(softplus_f32(y as f32))
    } else {
        softplus_fast(y)
    }
}

/// An InfoNCE term `exp(min(a, 0))` of the pass: in float64 ([`exp_nonpos`]), or with `NARROW`
/// from `a` rounded to float32 ([`exp_nonpos_f32`]; SPEC §1.1).
#[inline(always)]
fn exp_term<const NARROW: bool>(a: f64) -> f64 {
    if NARROW {
        f64::from(exp_nonpos_f32(a as f32))
    } else {
        exp_nonpos(a.min(0.0))
    }
}

/// The kernel over a contiguous run of negatives `xs` of one row, with their columns' InfoNCE
/// sums `cols` (empty without InfoNCE) and the staged histogram `hist` (a run is at most
/// [`TILE_COLS`] long: part of one tile row), every sum in `LANES`
/// float64 lanes. With `NARROW` (float32 input, [`EntryKernel::narrow_ok`]), the two exponentials and
/// the logarithm run in float32 lanes ([`softplus_term`], [`exp_term`]); the arguments, the
/// statistics, the histogram and every sum stay float64.
#[inline(always)]
fn negatives_run<T: RowNormalize, const SIG: bool, const INFO: bool, const NARROW: bool>(
    xs: &[T],
    cols: &mut [f64],
    hist: &mut [u32],
    k: &EntryKernel,
) -> RunSums {
    let top = (hist.len() - 1) as f64;
    let mut sig = [0.0f64; LANES];
    let mut row = [0.0f64; LANES];
    let mut s1 = [0.0f64; LANES];
    let mut s2 = [0.0f64; LANES];
    let mut mn = [f64::INFINITY; LANES];
    let mut mx = [f64::NEG_INFINITY; LANES];
    let full = xs.len() / LANES * LANES;
    // NARROW: the float32 terms of the whole run first, each a plain loop over the run (what
    // the loop vectoriser turns into float32 vectors), read back below by the float64 sums.
    debug_assert!(xs.len() <= TILE_COLS, "a run is part of one tile row");
    let mut sp32 = [0.0f32; TILE_COLS];
    let mut e32 = [0.0f32; TILE_COLS];
    if NARROW {
        let m = full.min(TILE_COLS);
        if SIG {
            let (t, b) = (k.t, k.b);
            for (o, x) in sp32[..m].iter_mut().zip(&xs[..m]) {
                *o = (t * x.to_f64() - b) as f32;
            }
            for o in &mut sp32[..m] {
                *o = softplus_f32(*o);
            }
        }
        if INFO {
            let (it, sh) = (k.inv_tau, k.shift);
            for (o, x) in e32[..m].iter_mut().zip(&xs[..m]) {
                *o = (x.to_f64() * it - sh) as f32;
            }
            for o in &mut e32[..m] {
                *o = exp_nonpos_f32(*o);
            }
        }
    }
    // Stage by stage over LANES values, so that each stage is one vector loop.
    for start in (0..full).step_by(LANES) {
        let mut x = [0.0f64; LANES];
        for l in 0..LANES {
            x[l] = xs[start + l].to_f64();
        }
        if SIG && NARROW {
            for l in 0..LANES {
                sig[l] += f64::from(sp32[start + l]);
            }
        } else if SIG {
            let mut y = [0.0f64; LANES];
            for l in 0..LANES {
                y[l] = softplus_fast(k.t * x[l] - k.b);
            }
            for l in 0..LANES {
                sig[l] += y[l];
            }
        }
        if INFO {
            let mut e = [0.0f64; LANES];
            if NARROW {
                for l in 0..LANES {
                    e[l] = f64::from(e32[start + l]);
                }
            } else {
                for l in 0..LANES {
                    e[l] = exp_nonpos((x[l] * k.inv_tau - k.shift).min(0.0));
                }
            }
            for l in 0..LANES {
                row[l] += e[l];
            }
            let c = &mut cols[start..start + LANES];
            for l in 0..LANES {
                c[l] += e[l];
            }
        }
        let mut bin = [0u32; LANES];
        for l in 0..LANES {
            let dx = x[l] - k.c;
            s1[l] += dx;
            s2[l] += dx * dx;
            mn[l] = mn[l].min(x[l]);
            mx[l] = mx[l].max(x[l]);
            // bin_of, vectorised: truncation of a number in [0, bins - 1] is its floor.
            bin[l] = ((x[l] - k.lo) * k.inv_w).clamp(0.0, top) as u32;
        }
        for &b in &bin {
            hist[b as usize] += 1;
        }
    }
    let mut out = RunSums {
        sig: sig.iter().sum(),
        row: row.iter().sum(),
        s1: s1.iter().sum(),
        s2: s2.iter().sum(),
        min: mn.iter().fold(f64::INFINITY, |a, &x| a.min(x)),
        max: mx.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x)),
    };
    for j in full..xs.len() {
        let x: f64 = xs[j].to_f64();
        if SIG {
            out.sig += softplus_term::<NARROW>(k.t * x - k.b);
        }
        if INFO {
            let e = exp_term::<NARROW>(x * k.inv_tau - k.shift);
            out.row += e;
            cols[j] += e;
        }
        let dx = x - k.c;
        out.s1 += dx;
        out.s2 += dx * dx;
        out.min = out.min.min(x);
        out.max = out.max.max(x);
        hist[bin_of(x, k.lo, k.inv_w, hist.len())] += 1;
    }
    out
}

/// The negatives `xs[lo..hi]` of row `gi` of a tile whose first column is `c0`.
#[inline(always)]
fn visit_negatives<T: RowNormalize, const SIG: bool, const INFO: bool, const NARROW: bool>(
    acc: &mut GroupAcc,
    xs: &[T],
    (gi, c0): (usize, usize),
    (lo, hi): (usize, usize),
    k: &EntryKernel,
) {
    if lo >= hi {
        return;
    }
    let cols: &mut [f64] = if INFO {
        &mut acc.cols[c0 + lo..c0 + hi]
    } else {
        &mut []
    };
    let bins = acc.bins;
    let r = negatives_run::<T, SIG, INFO, NARROW>(&xs[lo..hi], cols, &mut acc.staged[..bins], k);
    acc.sig += r.sig;
    if INFO {
        acc.rows[gi.wrapping_add(acc.base)] += r.row;
    }
    acc.s1 += r.s1;
    acc.s2 += r.s2;
    acc.neg_min = acc.neg_min.min(r.min);
    acc.neg_max = acc.neg_max.max(r.max);
    acc.staged_count += (hi - lo) as u64;
}

/// One row of a tile: `xs` are `S[gi, c0..c0 + len]`.
#[inline(always)]
fn tile_row<T: RowNormalize, const SIG: bool, const INFO: bool, const NARROW: bool>(
    acc: &mut GroupAcc,
    xs: &[T],
    gi: usize,
    c0: usize,
    k: &EntryKernel,
) {
    let len = xs.len();
    match gi.checked_sub(c0).filter(|&j| j < len) {
        Some(j) => {
            visit_negatives::<T, SIG, INFO, NARROW>(acc, xs, (gi, c0), (0, j), k);
            let x: f64 = xs[j].to_f64();
            acc.pos[gi.wrapping_add(acc.base)] = x;
            if SIG {
                acc.sig += softplus_fast(-(k.t * x - k.b));
            }
            if INFO {
                let e = exp_nonpos((x * k.inv_tau - k.shift).min(0.0));
                acc.rows[gi.wrapping_add(acc.base)] += e;
                acc.cols[gi] += e;
            }
            visit_negatives::<T, SIG, INFO, NARROW>(acc, xs, (gi, c0), (j + 1, len), k);
        }
        None => visit_negatives::<T, SIG, INFO, NARROW>(acc, xs, (gi, c0), (0, len), k),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tile_avx2<T: RowNormalize, const SIG: bool, const INFO: bool, const NARROW: bool>(
    acc: &mut GroupAcc,
    tile: ArrayView2<T>,
    (r0, c0): (usize, usize),
    k: &EntryKernel,
) {
    tile_plain::<T, SIG, INFO, NARROW>(acc, tile, (r0, c0), k)
}

#[inline(always)]
fn tile_plain<T: RowNormalize, const SIG: bool, const INFO: bool, const NARROW: bool>(
    acc: &mut GroupAcc,
    tile: ArrayView2<T>,
    (r0, c0): (usize, usize),
    k: &EntryKernel,
) {
    for (i, row) in tile.outer_iter().enumerate() {
        let xs = row.as_slice().expect("tiles are standard-layout");
        tile_row::<T, SIG, INFO, NARROW>(acc, xs, r0 + i, c0, k);
    }
}

/// One tile through the kernel, in the AVX2 build where the CPU has it (no fused multiply-add,
/// so both builds give bitwise the same result).
fn tile_dispatch<T: RowNormalize, const SIG: bool, const INFO: bool, const NARROW: bool>(
    acc: &mut GroupAcc,
    tile: ArrayView2<T>,
    at: (usize, usize),
    k: &EntryKernel,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { tile_avx2::<T, SIG, INFO, NARROW>(acc, tile, at, k) };
    }
    tile_plain::<T, SIG, INFO, NARROW>(acc, tile, at, k)
}

/// How the rows are dealt: blocks of `block` rows, block `k` to group `k mod groups`; a group's
/// rows are numbered locally in the order it visits them.
#[derive(Clone, Copy, Debug)]
struct Layout {
    n: usize,
    block: usize,
    nblocks: usize,
    groups: usize,
}

impl Layout {
    fn new(n: usize, block: usize) -> Self {
        let block = block.clamp(1, n.max(1));
        let nblocks = n.div_ceil(block);
        Layout {
            n,
            block,
            nblocks,
            groups: GROUPS.min(nblocks),
        }
    }

    /// The row blocks of group `g`: `(local index of the first row, r0, r1)`.
    fn blocks(self, g: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        (g..self.nblocks)
            .step_by(self.groups)
            .enumerate()
            .map(move |(q, kb)| {
                let r0 = kb * self.block;
                (q * self.block, r0, (r0 + self.block).min(self.n))
            })
    }

    /// The number of local rows of group `g` (an upper bound: whole blocks).
    fn local_rows(self, g: usize) -> usize {
        self.blocks(g).count() * self.block
    }
}

/// Counts the row blocks done over the whole scan and tells a hook `(done, total)`.
struct Progress<'a> {
    done: std::sync::atomic::AtomicUsize,
    total: usize,
    hook: &'a (dyn Fn(usize, usize) + Sync),
}

impl Progress<'_> {
    fn tick(&self) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        (self.hook)(done, self.total);
    }
}

/// Runs `visit` on every tile of `S = U V^T` (`block` rows by [`TILE_COLS`] columns), the row
/// blocks dealt to [`GROUPS`] groups ([`Layout`]), each group's tiles in order; `visit` gets
/// `(r0, c0, l0)`: the tile's first row and column and the local index of its first row.
/// Returns the groups' states in group order; `init(g)` makes group `g`'s.
fn for_each_tile<T: RowNormalize, A: Send>(
    u: ArrayView2<T>,
    v: ArrayView2<T>,
    layout: Layout,
    (parallel, progress): (bool, Option<&Progress>),
    init: impl Fn(usize) -> A + Sync + Send,
    visit: impl Fn(&mut A, (usize, usize, usize), ArrayView2<T>) + Sync + Send,
) -> Vec<A> {
    let n = layout.n;
    let width = TILE_COLS.min(n);
    let run = |g: usize| {
        let mut acc = init(g);
        let mut buf = Array2::<T>::from_elem((layout.block, width), T::zero());
        for (l0, r0, r1) in layout.blocks(g) {
            let ub = u.slice(s![r0..r1, ..]);
            for c0 in (0..n).step_by(width) {
                let c1 = (c0 + width).min(n);
                let mut tile = buf.slice_mut(s![..r1 - r0, ..c1 - c0]);
                T::gemm(ub, v.slice(s![c0..c1, ..]).t(), tile.view_mut(), false);
                visit(&mut acc, (r0, c0, l0), tile.view());
            }
            if let Some(p) = progress {
                p.tick();
            }
        }
        acc
    };
    if parallel {
        (0..layout.groups).into_par_iter().map(run).collect()
    } else {
        (0..layout.groups).map(run).collect()
    }
}

/// `sum_{i != j} x_i.x_j` and `sum_{i != j} (x_i.x_j)^2` from `s = sum_i x_i` and `X^T X`
/// (module documentation), with `X^T X` accumulated in float64 from products of `block` rows.
fn within_sums<T: RowNormalize>(
    x: ArrayView2<T>,
    rows: &RowSums,
    block: usize,
    parallel: bool,
) -> (f64, f64) {
    let (n, d) = x.dim();
    let block = block.clamp(1, n);
    // ||X^T X||_F^2 by column chunks of X^T X, each a fixed task summing the blocks in order.
    const COLS: usize = 128;
    let chunks: Vec<usize> = (0..d).step_by(COLS).collect();
    let part = |&j0: &usize| {
        let j1 = (j0 + COLS).min(d);
        let mut acc = Array2::<f64>::zeros((d, j1 - j0));
        let mut tmp = Array2::<T>::from_elem((d, j1 - j0), T::zero());
        for r0 in (0..n).step_by(block) {
            let r1 = (r0 + block).min(n);
            let xb = x.slice(s![r0..r1, ..]);
            T::gemm(xb.t(), xb.slice(s![.., j0..j1]), tmp.view_mut(), false);
            acc.zip_mut_with(&tmp, |a, &b| *a += b.to_f64());
        }
        acc.iter().map(|a| a * a).sum::<f64>()
    };
    let parts: Vec<f64> = if parallel {
        chunks.par_iter().map(part).collect()
    } else {
        chunks.iter().map(part).collect()
    };
    let fro2: f64 = parts.iter().sum();
    let s2: f64 = rows.sum.iter().map(|a| a * a).sum();
    let n1: f64 = rows.norms2.iter().sum();
    let n2: f64 = rows.norms2.iter().map(|a| a * a).sum();
    (s2 - n1, fro2 - n2)
}

/// Statistics of `count` numbers from their sum and sum of squares (no minimum or maximum:
/// those are `NaN`).
fn stats_from_sums(count: usize, sum: f64, sumsq: f64) -> Stats {
    let k = count as f64;
    let mean = sum / k;
    Stats {
        count,
        mean,
        std: 0.0,
        min: f64::NAN,
        max: f64::NAN,
        m2: (sumsq - sum * mean).max(0.0),
    }
}

/// The result of the pass (before the quantile).
struct Pass {
    pos: Vec<f64>,
    neg: Stats,
    hist: Vec<u64>,
    sigmoid_sum: f64,
    /// InfoNCE's value, when computed in the pass.
    infonce: Option<f64>,
    /// The kept `S` (`N x N`, rows in order), gathered from the groups ([`GroupAcc::kept`]).
    kept: Option<Array2<f64>>,
}

/// The one pass (module documentation).
fn pass<T: RowNormalize>(
    u: ArrayView2<T>,
    v: ArrayView2<T>,
    p: &ScanParams,
    (r, su, sv): (f64, &[f64], &[f64]),
    progress: Option<&Progress>,
) -> Pass {
    let n = u.nrows();
    let diag: Vec<f64> = u
        .outer_iter()
        .zip(v.outer_iter())
        .map(|(a, b)| {
            a.iter()
                .zip(b.iter())
                .map(|(&x, &y)| x.to_f64() * y.to_f64())
                .sum()
        })
        .collect();
    let m = (n * (n - 1)) as f64;
    let total: f64 = su.iter().zip(sv).map(|(a, b)| a * b).sum();
    let c = (total - diag.iter().sum::<f64>()) / m;
    let (t, b) = p.sigmoid.unwrap_or((0.0, 0.0));
    let inv_tau = p.tau.map_or(0.0, |tau| 1.0 / tau);
    let k = EntryKernel {
        t,
        b,
        inv_tau,
        shift: r * inv_tau,
        c: if c.is_finite() { c } else { 0.0 },
        lo: -r,
        inv_w: p.bins as f64 / (2.0 * r),
    };
    let info = p.tau.is_some();
    let narrow = k.narrow_ok::<T>(r, p.sigmoid.is_some(), info);
    let tile_elems = (p.block.min(n) * TILE_COLS.min(n)) as u64;
    let layout = Layout::new(n, p.block);
    let visit = |acc: &mut GroupAcc, (r0, c0, l0): (usize, usize, usize), tile: ArrayView2<T>| {
        if acc.staged_count + tile_elems > u64::from(u32::MAX) {
            acc.flush();
        }
        acc.base = l0.wrapping_sub(r0);
        let at = (r0, c0);
        match (p.sigmoid.is_some(), info, narrow) {
            (true, true, false) => tile_dispatch::<T, true, true, false>(acc, tile, at, &k),
            (true, false, false) => tile_dispatch::<T, true, false, false>(acc, tile, at, &k),
            (false, true, false) => tile_dispatch::<T, false, true, false>(acc, tile, at, &k),
            (true, true, true) => tile_dispatch::<T, true, true, true>(acc, tile, at, &k),
            (true, false, true) => tile_dispatch::<T, true, false, true>(acc, tile, at, &k),
            (false, true, true) => tile_dispatch::<T, false, true, true>(acc, tile, at, &k),
            (false, false, _) => tile_dispatch::<T, false, false, false>(acc, tile, at, &k),
        }
        if p.keep {
            for (i, row) in tile.outer_iter().enumerate() {
                let at = (l0 + i) * n + c0;
                acc.kept[at..at + row.len()]
                    .iter_mut()
                    .zip(row.iter())
                    .for_each(|(a, &x)| *a = x.to_f64());
            }
        }
    };
    let init = |g: usize| GroupAcc::new(layout.local_rows(g), n, info, p.bins, p.keep);
    let groups = for_each_tile(u, v, layout, (p.parallel, progress), init, visit);
    // Merge in group order (rows back to their global index).
    let mut all = GroupAcc {
        pos: vec![0.0; n],
        rows: if info { vec![0.0; n] } else { Vec::new() },
        cols: if info { vec![0.0; n] } else { Vec::new() },
        hist: spare_take(&SPARE_HIST),
        staged: Vec::new(),
        bins: p.bins,
        kept: Vec::new(),
        sig: 0.0,
        s1: 0.0,
        s2: 0.0,
        neg_min: f64::INFINITY,
        neg_max: f64::NEG_INFINITY,
        staged_count: 0,
        base: 0,
    };
    let mut kept = p.keep.then(|| Array2::<f64>::zeros((n, n)));
    for (gi, mut g) in groups.into_iter().enumerate() {
        g.drain_into(&mut all.hist);
        if let Some(s) = kept.as_mut() {
            for (l0, r0, r1) in layout.blocks(gi) {
                s.slice_mut(s![r0..r1, ..]).assign(
                    &ArrayView2::from_shape((r1 - r0, n), &g.kept[l0 * n..(l0 + r1 - r0) * n])
                        .expect("a group keeps whole rows"),
                );
            }
        }
        for (l0, r0, r1) in layout.blocks(gi) {
            all.pos[r0..r1].copy_from_slice(&g.pos[l0..l0 + r1 - r0]);
            if info {
                all.rows[r0..r1].copy_from_slice(&g.rows[l0..l0 + r1 - r0]);
            }
        }
        all.cols.iter_mut().zip(&g.cols).for_each(|(a, b)| *a += b);
        all.sig += g.sig;
        all.s1 += g.s1;
        all.s2 += g.s2;
        all.neg_min = all.neg_min.min(g.neg_min);
        all.neg_max = all.neg_max.max(g.neg_max);
    }
    let infonce = p.tau.map(|tau| {
        let shift = k.shift;
        let rows: f64 = (0..n)
            .map(|i| shift + all.rows[i].ln() - all.pos[i] / tau)
            .sum();
        let cols: f64 = (0..n)
            .map(|j| shift + all.cols[j].ln() - all.pos[j] / tau)
            .sum();
        (rows + cols) / n as f64
    });
    let mean = k.c + all.s1 / m;
    let neg = Stats {
        count: n * (n - 1),
        mean,
        std: 0.0,
        min: all.neg_min,
        max: all.neg_max,
        m2: (all.s2 - all.s1 * all.s1 / m).max(0.0),
    };
    Pass {
        pos: all.pos,
        neg,
        hist: all.hist,
        sigmoid_sum: all.sig,
        infonce,
        kept,
    }
}

/// One sweep over a matrix's rows: their squared norms and their sum, in float64 (what the
/// pass, the bound `R` and the within-modality statistics need of it).
pub(crate) struct RowSums {
    norms2: Vec<f64>,
    sum: Vec<f64>,
}

impl RowSums {
    pub(crate) fn of<T: RowNormalize>(x: ArrayView2<T>) -> Self {
        let mut sum = vec![0.0f64; x.ncols()];
        let norms2 = x
            .outer_iter()
            .map(|r| {
                sum.iter_mut()
                    .zip(r.iter())
                    .for_each(|(s, &a)| *s += a.to_f64());
                r.iter().map(|&a| a.to_f64() * a.to_f64()).sum()
            })
            .collect();
        RowSums { norms2, sum }
    }

    fn max_norm(&self) -> f64 {
        self.norms2.iter().fold(0.0_f64, |m, &x| m.max(x)).sqrt()
    }
}

/// `R = max_i ||u_i|| max_j ||v_j||`, widened for the rounding of the products in precision
/// `T` of dimension `d` (every computed `S_ij` lies in `[-R, R]`).
pub(crate) fn bound_of<T: RowNormalize>(u: &RowSums, v: &RowSums, d: usize) -> f64 {
    let d = d as f64;
    (u.max_norm() * v.max_norm()).max(f64::MIN_POSITIVE) * (1.0 + 4.0 * (d + 2.0) * T::EPS)
}

/// The negatives' quantile `q` from the pass's histogram (`hist.len()` bins on `[-r, r]`):
/// exactly with a second pass, or by interpolation in the bins. The second pass reads the `S`
/// the first one `kept`, if it kept it, and computes `S` again otherwise. Returns `(q_neg,
/// absolute error bound)`.
fn negative_quantile<T: RowNormalize>(
    u: ArrayView2<T>,
    v: ArrayView2<T>,
    (hist, kept): (&[u64], Option<ArrayView2<f64>>),
    q: f64,
    r: f64,
    (mode, cap): (QuantileMode, usize),
    (block, parallel, progress): (usize, bool, Option<&Progress>),
) -> (f64, f64) {
    let n = u.nrows();
    let m_neg = n * (n - 1);
    let bins = hist.len();
    let (lo, width) = (-r, 2.0 * r);
    let bw = width / bins as f64;
    let inv_w = bins as f64 / width;
    let (k_lo, frac) = virtual_index(m_neg, q);
    let k_hi = (k_lo + 1).min(m_neg - 1);
    // (bin, rank within the bin) of order statistic k.
    let locate = |k: usize| {
        let mut below = 0u64;
        for (b, &c) in hist.iter().enumerate() {
            if below + c > k as u64 {
                return (b, (k as u64 - below) as usize);
            }
            below += c;
        }
        unreachable!("the histogram counts every negative")
    };
    let (b_lo, r_lo) = locate(k_lo);
    let (b_hi, r_hi) = locate(k_hi);
    if mode == QuantileMode::Histogram {
        let place =
            |b: usize, rank: usize| lo + (b as f64 + (rank as f64 + 0.5) / hist[b] as f64) * bw;
        return (lerp(place(b_lo, r_lo), place(b_hi, r_hi), frac), bw);
    }
    let targets: Vec<usize> = if b_lo == b_hi {
        vec![b_lo]
    } else {
        vec![b_lo, b_hi]
    };
    let crowd: u64 = targets.iter().map(|&b| hist[b]).sum();
    let is_target = |b: usize| targets.iter().position(|&tb| tb == b);
    let negatives = |row: &[T], gi: usize, c0: usize, f: &mut dyn FnMut(f64)| {
        for (j, &x) in row.iter().enumerate() {
            if c0 + j != gi {
                f(x.to_f64());
            }
        }
    };
    if let (true, Some(kept)) = (crowd as usize <= cap, kept) {
        // The values of the first pass, as kept: no product.
        let mut cand = vec![Vec::<f64>::new(); targets.len()];
        for (gi, row) in kept.outer_iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                if j != gi {
                    if let Some(t) = is_target(bin_of(x, lo, inv_w, bins)) {
                        cand[t].push(x);
                    }
                }
            }
        }
        if let Some(p) = progress {
            (0..Layout::new(n, block).nblocks).for_each(|_| p.tick());
        }
        let mut select =
            |t: usize, rank: usize| *cand[t].select_nth_unstable_by(rank, f64::total_cmp).1;
        let x_lo = select(0, r_lo);
        let x_hi = select(targets.len() - 1, r_hi);
        return (lerp(x_lo, x_hi, frac), 0.0);
    }
    if crowd as usize <= cap {
        let groups = for_each_tile(
            u,
            v,
            Layout::new(n, block),
            (parallel, progress),
            |_| vec![Vec::<f64>::new(); targets.len()],
            |acc, (r0, c0, _), tile| {
                for (i, row) in tile.outer_iter().enumerate() {
                    let row = row.as_slice().expect("tiles are standard-layout");
                    negatives(row, r0 + i, c0, &mut |x| {
                        if let Some(t) = is_target(bin_of(x, lo, inv_w, bins)) {
                            acc[t].push(x);
                        }
                    });
                }
            },
        );
        let mut cand = vec![Vec::<f64>::new(); targets.len()];
        for g in groups {
            cand.iter_mut().zip(g).for_each(|(a, b)| a.extend(b));
        }
        let mut select =
            |t: usize, rank: usize| *cand[t].select_nth_unstable_by(rank, f64::total_cmp).1;
        let x_lo = select(0, r_lo);
        let x_hi = select(targets.len() - 1, r_hi);
        return (lerp(x_lo, x_hi, frac), 0.0);
    }
    // Too crowded to collect: sub-histograms of the target bins.
    let sub_w = bw / bins as f64;
    let sub_inv = 1.0 / sub_w;
    let groups = for_each_tile(
        u,
        v,
        Layout::new(n, block),
        (parallel, progress),
        |_| vec![vec![0u64; bins]; targets.len()],
        |acc, (r0, c0, _), tile| {
            for (i, row) in tile.outer_iter().enumerate() {
                let row = row.as_slice().expect("tiles are standard-layout");
                negatives(row, r0 + i, c0, &mut |x| {
                    let b = bin_of(x, lo, inv_w, bins);
                    if let Some(t) = is_target(b) {
                        let start = lo + b as f64 * bw;
                        acc[t][bin_of(x, start, sub_inv, bins)] += 1;
                    }
                });
            }
        },
    );
    let mut sub = vec![vec![0u64; bins]; targets.len()];
    for g in groups {
        for (a, b) in sub.iter_mut().zip(g) {
            a.iter_mut().zip(&b).for_each(|(p, q)| *p += q);
        }
    }
    let centre = |t: usize, rank: usize| {
        let start = lo + targets[t] as f64 * bw;
        let mut below = 0u64;
        for (k, &c) in sub[t].iter().enumerate() {
            if below + c > rank as u64 {
                return start + (k as f64 + 0.5) * sub_w;
            }
            below += c;
        }
        unreachable!("the sub-histogram counts every value of its bin")
    };
    (
        lerp(centre(0, r_lo), centre(targets.len() - 1, r_hi), frac),
        sub_w / 2.0,
    )
}

/// The order statistics of the positives and the negatives that the margins are made of
/// (SPEC §7; [`super::margin::Margins`] builds them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrderStats {
    /// `min_i S_ii`.
    pub(crate) pos_min: f64,
    /// `max_{i != j} S_ij`.
    pub(crate) neg_max: f64,
    /// `q_p` of the positives (numpy's linear quantile, exact).
    pub(crate) q_pos: f64,
    /// `q_{1-p}` of the negatives.
    pub(crate) q_neg: f64,
    /// The level `p`.
    pub(crate) level: f64,
    /// An upper bound on the absolute error of `q_neg` (`0`: exact).
    pub(crate) q_neg_error: f64,
}

/// Everything one call of the scan finds.
pub(crate) struct Scan {
    pub(crate) measurement: Option<Measurement>,
    /// The order statistics the margins are made of (SPEC §7).
    pub(crate) order: OrderStats,
    pub(crate) sigmoid_loss: Option<f64>,
    pub(crate) infonce_loss: Option<f64>,
    pub(crate) passes: usize,
    /// The `S = U V^T` (float64, `N x N`) the pass kept for the exact quantile ([`keeps_s`]),
    /// if it kept it: the numbers of the pass's products, which are those of one product of any
    /// block of rows (`geometry::measure` reads them).
    pub(crate) kept: Option<Array2<f64>>,
}

/// What [`scan`] computes besides the margins.
pub(crate) struct ScanWants<'a> {
    pub(crate) sigmoid: Option<(f64, f64)>,
    pub(crate) tau: Option<f64>,
    pub(crate) measurement: bool,
    pub(crate) mode: QuantileMode,
    pub(crate) cap: usize,
    /// Whether the exact quantile may keep `S` for its second pass ([`keeps_s`]): the caller's
    /// memory limit allows it ([`memory_estimate`] with `keep`).
    pub(crate) keep: bool,
    /// Told `(row blocks done, total)` as the passes go (from worker threads).
    pub(crate) progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

/// The scan of `(U, V)` taken as given (checked by the caller: same shape, `N >= 2`, finite),
/// with the quantile level `level` = `p` (checked by the caller: `0 <= p <= 1/2`).
pub(crate) fn scan<T: RowNormalize>(
    (u, v): (ArrayView2<T>, ArrayView2<T>),
    (su, sv): (&RowSums, &RowSums),
    level: f64,
    opts: BlockOptions,
    wants: &ScanWants,
) -> Scan {
    let (n, d) = u.dim();
    let block = opts.block.max(1);
    let r = bound_of::<T>(su, sv, d);
    let fixed = wants
        .tau
        .filter(|&tau| 2.0 * r / tau <= MAX_FIXED_SHIFT_SPAN);
    let bins = histogram_bins(n, wants.mode, wants.cap);
    let params = ScanParams {
        sigmoid: wants.sigmoid,
        tau: fixed,
        block,
        parallel: opts.parallel,
        bins,
        keep: wants.keep && keeps_s((n, d), T::PRECISION, wants.mode, wants.cap),
    };
    let progress = wants.progress.map(|hook| Progress {
        done: Default::default(),
        total: Layout::new(n, block).nblocks * (1 + usize::from(wants.mode == QuantileMode::Exact)),
        hook,
    });
    let mut p = pass(u, v, &params, (r, &su.sum, &sv.sum), progress.as_ref());
    let mut passes = 1;
    let mut pos_sorted = p.pos.clone();
    pos_sorted.sort_by(f64::total_cmp);
    let q_pos = linear_quantile_sorted(&pos_sorted, level);
    let kept = std::mem::take(&mut p.kept);
    let (q_neg, err_neg) = negative_quantile(
        u,
        v,
        (&p.hist[..bins], kept.as_ref().map(|s| s.view())),
        1.0 - level,
        r,
        (wants.mode, wants.cap),
        (block, opts.parallel, progress.as_ref()),
    );
    let mut hist = std::mem::take(&mut p.hist);
    hist[..bins].fill(0);
    spare_give(&SPARE_HIST, hist);
    if wants.mode == QuantileMode::Exact {
        passes += 1;
    }
    let order = OrderStats {
        pos_min: pos_sorted[0],
        neg_max: p.neg.max,
        q_pos,
        q_neg,
        level,
        q_neg_error: err_neg,
    };
    let measurement = wants.measurement.then(|| {
        let mut pos = Stats::default();
        p.pos.iter().for_each(|&x| pos.push(x));
        let mut norms = Stats::default();
        for (&a, &b) in su.norms2.iter().zip(&sv.norms2) {
            norms.push(a);
            norms.push(b);
        }
        let count = n * (n - 1);
        let (wu, qu) = within_sums(u, su, block, opts.parallel);
        let (wv, qv) = within_sums(v, sv, block, opts.parallel);
        Measurement::from_stats(
            n,
            d,
            [
                pos,
                p.neg,
                stats_from_sums(count, wu, qu),
                stats_from_sums(count, wv, qv),
                norms,
            ],
        )
    });
    Scan {
        measurement,
        order,
        sigmoid_loss: wants.sigmoid.map(|_| p.sigmoid_sum / n as f64),
        infonce_loss: p.infonce,
        passes,
        kept,
    }
}

/// numpy's default (linear) quantile of `sorted` at level `q` (SPEC §7): virtual index
/// `h = (M - 1) q`, interpolation between `x_floor(h)` and the next value, with numpy's
/// two-sided `lerp` (so the result is the one numpy returns).
///
/// # Panics
/// Never for non-empty input; returns `NaN` for an empty slice.
pub fn linear_quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let (lo, frac) = virtual_index(sorted.len(), q);
    let a = sorted[lo];
    let b = sorted[(lo + 1).min(sorted.len() - 1)];
    lerp(a, b, frac)
}

/// `(floor(h), h - floor(h))` for `h = (M - 1) q`, clamped to `[0, M - 1]`.
pub(crate) fn virtual_index(m: usize, q: f64) -> (usize, f64) {
    let h = ((m - 1) as f64 * q).clamp(0.0, (m - 1) as f64);
    let lo = h.floor();
    (lo as usize, h - lo)
}

/// numpy's `_lerp`: `a + t (b - a)`, computed from `b` when `t >= 1/2`.
pub(crate) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// The largest `S` (as float64, `8 N^2` bytes) that the pass keeps for the exact quantile's
/// second pass, which then reads it instead of computing `S` again: 64 MiB (`N <= 2896`).
pub const KEEP_MAX_BYTES: usize = 64 << 20;

/// The smallest dimension `d` of float64 input at which keeping `S` beats computing it again
/// (twice that for float32, whose products are twice as fast): an entry costs `2d` flops to
/// compute, and 16 bytes and a fresh page's fault to keep and read back. Measured with
/// `ccem inspect`: float64 `N = d = 1024` 0.196 -> 0.164 s and float32 `N = 2000, d = 768`
/// 0.140 -> 0.128 s when kept, float32 `N = 2800, d = 300` 0.136 -> 0.143 s and `N = 2500,
/// d = 32` 0.048 -> 0.069 s (so neither is kept).
pub const KEEP_MIN_D: usize = 256;

/// Whether the pass keeps `S` for `N x d` inputs in precision `p`, `mode` and the candidates'
/// `cap`: an exact quantile of at most `cap` negatives (so that its second pass collects
/// candidates, never sub-histograms), with `8 N^2` at most [`KEEP_MAX_BYTES`] and `d` at least
/// [`KEEP_MIN_D`] (float64) or twice that (float32).
fn keeps_s((n, d): (usize, usize), p: Precision, mode: QuantileMode, cap: usize) -> bool {
    let min_d = match p {
        Precision::F64 => KEEP_MIN_D,
        Precision::F32 => 2 * KEEP_MIN_D,
    };
    mode == QuantileMode::Exact
        && d >= min_d
        && n.saturating_mul(n.saturating_sub(1)) <= cap
        && n.saturating_mul(n).saturating_mul(8) <= KEEP_MAX_BYTES
}

/// The bins of the negatives' histogram for `N = n`, `mode` and the candidates' `cap`:
/// [`HISTOGRAM_BINS`], except for an exact quantile of at most `min(cap, 2^16)` negatives, where
/// `N(N-1)` rounded up to a power of two (at least [`MIN_EXACT_BINS`]) is enough. There every
/// negative fits among the candidates, so the second pass always collects them and the quantile
/// is the order statistic itself, whatever the bins that locate it: the result is the same,
/// and the histogram's passes (staging, merging and zeroing every bin) cost in proportion to the
/// negatives, not to `2^16` (a sweep's small cells spent most of their report there,
/// docs/PERFORMANCE.md). The interpolated quantile, and the sub-histograms of a crowd above the
/// cap, keep `2^16` bins: their error bounds are the bins' widths.
fn histogram_bins(n: usize, mode: QuantileMode, cap: usize) -> usize {
    let negatives = n.saturating_mul(n.saturating_sub(1));
    if mode == QuantileMode::Exact && negatives <= cap.min(HISTOGRAM_BINS) {
        negatives.next_power_of_two().max(MIN_EXACT_BINS)
    } else {
        HISTOGRAM_BINS
    }
}

/// The fewest bins of an exact quantile's histogram ([`histogram_bins`]).
const MIN_EXACT_BINS: usize = 64;

/// The bin of `x` in `bins` equal bins on `[lo, lo + bins / inv_width)`, clamped to the first
/// and last bins. (Truncating a number in `[0, bins - 1]` is taking its floor: no libm call.)
#[inline(always)]
pub(crate) fn bin_of(x: f64, lo: f64, inv_width: f64, bins: usize) -> usize {
    ((x - lo) * inv_width).clamp(0.0, (bins - 1) as f64) as usize
}

/// The bytes [`super::inspect()`] allocates beyond its inputs, at most: the normalised copies, the
/// groups' column sums and histograms, the rows' results, the tiles in flight, the exact
/// quantile's candidates, and with `keep` the `S` it keeps ([`keeps_s`]).
pub(crate) fn memory_estimate(
    (n, d): (usize, usize),
    p: Precision,
    block: usize,
    (mode, keep): (QuantileMode, bool),
) -> f64 {
    let size = match p {
        Precision::F32 => 4.0,
        Precision::F64 => 8.0,
    };
    let (n, d) = (n as f64, d as f64);
    let layout = Layout::new(n as usize, block);
    let groups = layout.groups as f64;
    let hist = HISTOGRAM_BINS as f64 * 12.0;
    let tiles = groups.min(64.0) * layout.block as f64 * TILE_COLS as f64 * size;
    let candidates = match mode {
        QuantileMode::Exact => (n * (n - 1.0)).min(CANDIDATE_CAP as f64) * 8.0,
        QuantileMode::Histogram => 0.0,
    };
    // The kept `S`, whole blocks per group.
    let kept = if keep && keeps_s((n as usize, d as usize), p, mode, CANDIDATE_CAP) {
        (layout.nblocks * layout.block) as f64 * n * 8.0
    } else {
        0.0
    };
    2.0 * n * d * size + groups * (n * 8.0 + hist) + 6.0 * n * 8.0 + tiles + candidates + kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeping_s_gives_the_quantile_of_computing_it_again() {
        // From d = 512 (float32) or 256 (float64) the exact quantile's second pass reads the S
        // the first one kept; a cap just below N(N-1) turns keeping off (the second pass computes
        // S again): the same bits, at several blocks (groups of kept rows) and thread counts.
        fn case<T: RowNormalize>(n: usize, d: usize, block: usize) {
            let f =
                |i: usize, j: usize, k: usize| (((i * 31 + j * 17 + k) % 23) as f64 - 11.0) / 7.0;
            let u = Array2::from_shape_fn((n, d), |(i, j)| T::from_f64(f(i, j, 0)));
            let v = Array2::from_shape_fn((n, d), |(i, j)| T::from_f64(f(i, j, 5) + f(i, j, 0)));
            let sums = (RowSums::of(u.view()), RowSums::of(v.view()));
            let run = |cap: usize, threads: usize| {
                let wants = ScanWants {
                    sigmoid: Some((2.0, 1.0)),
                    tau: None,
                    measurement: false,
                    mode: QuantileMode::Exact,
                    cap,
                    keep: true,
                    progress: None,
                };
                let opts = BlockOptions {
                    block,
                    parallel: true,
                };
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| scan((u.view(), v.view()), (&sums.0, &sums.1), 0.05, opts, &wants))
            };
            let p = T::PRECISION;
            assert!(keeps_s((n, d), p, QuantileMode::Exact, CANDIDATE_CAP));
            assert!(!keeps_s((n, d), p, QuantileMode::Exact, n * (n - 1) - 1));
            let kept = run(CANDIDATE_CAP, 2);
            let again = run(n * (n - 1) - 1, 1);
            assert_eq!(kept.order.q_neg_error, 0.0);
            assert_eq!(again.order.q_neg_error, 0.0);
            assert_eq!(
                kept.order.q_neg.to_bits(),
                again.order.q_neg.to_bits(),
                "{p:?} {n} {block}"
            );
            assert_eq!(kept.order.neg_max.to_bits(), again.order.neg_max.to_bits());
            assert_eq!(kept.passes, again.passes);
        }
        for block in [7, 64, 1000] {
            case::<f64>(150, 256, block);
            case::<f32>(90, 512, block);
        }
        // A small d, or a large S, is computed again.
        assert!(!keeps_s(
            (1000, 32),
            Precision::F64,
            QuantileMode::Exact,
            CANDIDATE_CAP
        ));
        assert!(!keeps_s(
            (1000, 300),
            Precision::F32,
            QuantileMode::Exact,
            CANDIDATE_CAP
        ));
        assert!(!keeps_s(
            (3000, 768),
            Precision::F32,
            QuantileMode::Exact,
            CANDIDATE_CAP
        ));
        assert!(!keeps_s(
            (1000, 768),
            Precision::F32,
            QuantileMode::Histogram,
            CANDIDATE_CAP
        ));
    }

    #[test]
    fn lerp_and_quantile_match_numpy_examples() {
        // numpy.quantile([1, 2, 3, 4], 0.4) = 2.2; ([1, 2, 3, 4], 1) = 4; (.., 0) = 1.
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((linear_quantile_sorted(&x, 0.4) - 2.2).abs() < 1e-15);
        assert_eq!(linear_quantile_sorted(&x, 1.0), 4.0);
        assert_eq!(linear_quantile_sorted(&x, 0.0), 1.0);
        assert!(linear_quantile_sorted(&[], 0.5).is_nan());
    }

    /// The largest relative error of `f` against `exact` over `n + 1` points of `[lo, hi]`.
    fn worst(f: impl Fn(f32) -> f32, exact: impl Fn(f64) -> f64, (lo, hi): (f64, f64)) -> f64 {
        let n = 200_000;
        (0..=n)
            .map(|i| {
                let x = (lo + (hi - lo) * i as f64 / n as f64) as f32;
                let want = exact(f64::from(x));
                (f64::from(f(x)) - want).abs() / want
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn float32_exp_and_softplus_are_within_their_stated_errors() {
        let e = worst(exp_nonpos_f32, f64::exp, (-87.0, 0.0));
        assert!(e < 2.5e-7, "exp: {e}");
        let sp = worst(softplus_f32, crate::numerics::softplus, (-87.0, 87.0));
        assert!(sp < 3.5e-7, "softplus: {sp}");
        assert_eq!(exp_nonpos_f32(-88.0), 0.0);
        assert_eq!(exp_nonpos_f32(0.0), 1.0);
        assert_eq!(softplus_f32(200.0), 200.0);
    }

    /// The float32 lanes against the float64 lanes on the same float32 similarities: the sums
    /// within the bounds of SPEC §1.1, the statistics and the histogram bitwise equal.
    #[test]
    fn float32_lanes_are_within_the_stated_bound_of_float64_lanes() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let xs: Vec<f32> = (0..4099).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        for &(t, b, tau) in &[(10.0, 10.0, 0.07), (100.0, -3.0, 0.025), (0.5, 0.0, 10.0)] {
            let r = 1.0;
            let k = EntryKernel {
                t,
                b,
                inv_tau: 1.0 / tau,
                shift: r / tau,
                c: 0.01,
                lo: -r,
                inv_w: HISTOGRAM_BINS as f64 / (2.0 * r),
            };
            assert!(k.narrow_ok::<f32>(r, true, true));
            assert!(!k.narrow_ok::<f64>(r, true, true));
            // Runs of at most a tile's width, as the pass hands them to the kernel.
            let run = |narrow: bool| {
                let mut cols = vec![0.0; xs.len()];
                let mut hist = vec![0u32; HISTOGRAM_BINS];
                let mut all = RunSums {
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    ..RunSums::default()
                };
                for (x, c) in xs.chunks(TILE_COLS - 3).zip(cols.chunks_mut(TILE_COLS - 3)) {
                    let s = if narrow {
                        negatives_run::<f32, true, true, true>(x, c, &mut hist, &k)
                    } else {
                        negatives_run::<f32, true, true, false>(x, c, &mut hist, &k)
                    };
                    all.sig += s.sig;
                    all.row += s.row;
                    all.s1 += s.s1;
                    all.s2 += s.s2;
                    all.min = all.min.min(s.min);
                    all.max = all.max.max(s.max);
                }
                (all, cols, hist)
            };
            let (a, ca, ha) = run(true);
            let (w, cw, hw) = run(false);
            // SPEC §1.1: 2^-24 |y| + 3.5e-7 per sigmoid term, 2^-24 |a| + 2.5e-7 per exponential.
            let eps = 2f64.powi(-24);
            let sig_bound = eps * (t.abs() * r + b.abs()) + 3.5e-7;
            let exp_bound = eps * 2.0 * r / tau + 2.5e-7;
            let rel = |x: f64, y: f64| (x - y).abs() / y.abs();
            assert!(
                rel(a.sig, w.sig) <= sig_bound,
                "sigmoid {t} {b}: {}",
                rel(a.sig, w.sig)
            );
            assert!(
                rel(a.row, w.row) <= exp_bound,
                "row at tau {tau}: {}",
                rel(a.row, w.row)
            );
            for (x, y) in ca.iter().zip(&cw) {
                assert!(rel(*x, *y) <= exp_bound, "column at tau {tau}");
            }
            assert_eq!((a.s1, a.s2, a.min, a.max), (w.s1, w.s2, w.min, w.max));
            assert_eq!(ha, hw);
        }
    }
}
