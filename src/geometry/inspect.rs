//! `inspect`: an embedding measured, both losses evaluated and the margins found in **one
//! blocked pass** over `S = U V^T`, in float32 or float64 (SPEC.md §4.1).
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
//!     cancellation) and a histogram of [`HISTOGRAM_BINS`] bins on `[-R, R]`,
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
//! use ccem::geometry::inspect::{inspect, InspectConfig};
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

use super::margin::{
    bin_of, lerp, linear_quantile_sorted, margin_bound, virtual_index, Margins, QuantileLevel,
    CANDIDATE_CAP, EXACT_QUANTILE_MAX_N, HISTOGRAM_BINS,
};
use super::measure::{Measurement, Stats};
use crate::base::Precision;
use crate::error::{Error, Result};
use crate::loss::embedding::RowNormalize;
use crate::loss::sigmoid::softplus_fast;
use crate::loss::sigmoid_grad::exp_nonpos;
use crate::loss::{driver, infonce_clip, BlockOptions, Loss};
use crate::matrix::Matrix;
use crate::report::Report;
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;
use serde::Serialize;

/// Columns of one tile of `S`.
pub const TILE_COLS: usize = 512;
/// The default rows per block: the fastest of 256, 512 and 1024 at `N = 8192, d = 768` in
/// float32 on the development machine (2.0 s against 2.2-2.4 s for 256; fewer packings of the
/// products per flop), with `1024 x 512` float32 tiles (2 MiB) per group in flight.
pub const DEFAULT_INSPECT_BLOCK: usize = 1024;
/// The number of groups the row blocks are dealt to (fixed: the results do not depend on the
/// thread count).
pub const GROUPS: usize = 16;
/// InfoNCE runs in the pass (one shift for every row and column) while `2 R / tau` is at most
/// this.
pub const MAX_FIXED_SHIFT_SPAN: f64 = 600.0;
/// Lanes of the float64 sums in the kernel (fixed, so the summation order does not depend on
/// the machine).
const LANES: usize = 8;

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
    hist: Vec<u64>,
    staged: Vec<u32>,
    staged_count: u64,
    /// `local - global` row index of the block being visited (wrapping).
    base: usize,
}

impl GroupAcc {
    /// A group of `local` rows (its `pos` and `rows`), with the `n` column sums of InfoNCE.
    fn new(local: usize, n: usize, info: bool) -> Self {
        GroupAcc {
            pos: vec![0.0; local],
            rows: if info { vec![0.0; local] } else { Vec::new() },
            cols: if info { vec![0.0; n] } else { Vec::new() },
            base: 0,
            sig: 0.0,
            s1: 0.0,
            s2: 0.0,
            neg_min: f64::INFINITY,
            neg_max: f64::NEG_INFINITY,
            hist: vec![0; HISTOGRAM_BINS],
            staged: vec![0; HISTOGRAM_BINS],
            staged_count: 0,
        }
    }

    /// Moves the staged (u32) counts into the histogram.
    fn flush(&mut self) {
        for (h, s) in self.hist.iter_mut().zip(self.staged.iter_mut()) {
            *h += u64::from(*s);
            *s = 0;
        }
        self.staged_count = 0;
    }
}

/// The constants of the per-entry kernel.
#[derive(Clone, Copy)]
struct Kernel {
    t: f64,
    b: f64,
    inv_tau: f64,
    shift: f64,
    /// The shift of the negatives' sums (their approximate mean).
    c: f64,
    lo: f64,
    inv_w: f64,
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

/// The kernel over a contiguous run of negatives `xs` of one row, with their columns' InfoNCE
/// sums `cols` (empty without InfoNCE): everything but the histogram, in `LANES` float64 lanes.
#[inline(always)]
fn negatives_run<T: RowNormalize, const SIG: bool, const INFO: bool>(
    xs: &[T],
    cols: &mut [f64],
    hist: &mut [u32],
    k: &Kernel,
) -> RunSums {
    let top = (HISTOGRAM_BINS - 1) as f64;
    let mut sig = [0.0f64; LANES];
    let mut row = [0.0f64; LANES];
    let mut s1 = [0.0f64; LANES];
    let mut s2 = [0.0f64; LANES];
    let mut mn = [f64::INFINITY; LANES];
    let mut mx = [f64::NEG_INFINITY; LANES];
    let full = xs.len() / LANES * LANES;
    // Stage by stage over LANES values, so that each stage is one vector loop.
    for start in (0..full).step_by(LANES) {
        let mut x = [0.0f64; LANES];
        for l in 0..LANES {
            x[l] = xs[start + l].to_f64();
        }
        if SIG {
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
            for l in 0..LANES {
                e[l] = exp_nonpos((x[l] * k.inv_tau - k.shift).min(0.0));
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
            out.sig += softplus_fast(k.t * x - k.b);
        }
        if INFO {
            let e = exp_nonpos((x * k.inv_tau - k.shift).min(0.0));
            out.row += e;
            cols[j] += e;
        }
        let dx = x - k.c;
        out.s1 += dx;
        out.s2 += dx * dx;
        out.min = out.min.min(x);
        out.max = out.max.max(x);
        hist[bin_of(x, k.lo, k.inv_w, HISTOGRAM_BINS)] += 1;
    }
    out
}

/// The negatives `xs[lo..hi]` of row `gi` of a tile whose first column is `c0`.
#[inline(always)]
fn visit_negatives<T: RowNormalize, const SIG: bool, const INFO: bool>(
    acc: &mut GroupAcc,
    xs: &[T],
    (gi, c0): (usize, usize),
    (lo, hi): (usize, usize),
    k: &Kernel,
) {
    if lo >= hi {
        return;
    }
    let cols: &mut [f64] = if INFO {
        &mut acc.cols[c0 + lo..c0 + hi]
    } else {
        &mut []
    };
    let r = negatives_run::<T, SIG, INFO>(&xs[lo..hi], cols, &mut acc.staged, k);
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
fn tile_row<T: RowNormalize, const SIG: bool, const INFO: bool>(
    acc: &mut GroupAcc,
    xs: &[T],
    gi: usize,
    c0: usize,
    k: &Kernel,
) {
    let len = xs.len();
    match gi.checked_sub(c0).filter(|&j| j < len) {
        Some(j) => {
            visit_negatives::<T, SIG, INFO>(acc, xs, (gi, c0), (0, j), k);
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
            visit_negatives::<T, SIG, INFO>(acc, xs, (gi, c0), (j + 1, len), k);
        }
        None => visit_negatives::<T, SIG, INFO>(acc, xs, (gi, c0), (0, len), k),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tile_avx2<T: RowNormalize, const SIG: bool, const INFO: bool>(
    acc: &mut GroupAcc,
    tile: ArrayView2<T>,
    (r0, c0): (usize, usize),
    k: &Kernel,
) {
    tile_plain::<T, SIG, INFO>(acc, tile, (r0, c0), k)
}

#[inline(always)]
fn tile_plain<T: RowNormalize, const SIG: bool, const INFO: bool>(
    acc: &mut GroupAcc,
    tile: ArrayView2<T>,
    (r0, c0): (usize, usize),
    k: &Kernel,
) {
    for (i, row) in tile.outer_iter().enumerate() {
        let xs = row.as_slice().expect("tiles are standard-layout");
        tile_row::<T, SIG, INFO>(acc, xs, r0 + i, c0, k);
    }
}

/// One tile through the kernel, in the AVX2 build where the CPU has it (no fused multiply-add,
/// so both builds give bitwise the same result).
fn tile_dispatch<T: RowNormalize, const SIG: bool, const INFO: bool>(
    acc: &mut GroupAcc,
    tile: ArrayView2<T>,
    at: (usize, usize),
    k: &Kernel,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { tile_avx2::<T, SIG, INFO>(acc, tile, at, k) };
    }
    tile_plain::<T, SIG, INFO>(acc, tile, at, k)
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
    let k = Kernel {
        t,
        b,
        inv_tau,
        shift: r * inv_tau,
        c: if c.is_finite() { c } else { 0.0 },
        lo: -r,
        inv_w: HISTOGRAM_BINS as f64 / (2.0 * r),
    };
    let info = p.tau.is_some();
    let tile_elems = (p.block.min(n) * TILE_COLS.min(n)) as u64;
    let layout = Layout::new(n, p.block);
    let visit = |acc: &mut GroupAcc, (r0, c0, l0): (usize, usize, usize), tile: ArrayView2<T>| {
        if acc.staged_count + tile_elems > u64::from(u32::MAX) {
            acc.flush();
        }
        acc.base = l0.wrapping_sub(r0);
        let at = (r0, c0);
        match (p.sigmoid.is_some(), info) {
            (true, true) => tile_dispatch::<T, true, true>(acc, tile, at, &k),
            (true, false) => tile_dispatch::<T, true, false>(acc, tile, at, &k),
            (false, true) => tile_dispatch::<T, false, true>(acc, tile, at, &k),
            (false, false) => tile_dispatch::<T, false, false>(acc, tile, at, &k),
        }
    };
    let init = |g: usize| GroupAcc::new(layout.local_rows(g), n, info);
    let groups = for_each_tile(u, v, layout, (p.parallel, progress), init, visit);
    // Merge in group order (rows back to their global index).
    let mut all = GroupAcc::new(n, 0, false);
    if info {
        all.rows = vec![0.0; n];
        all.cols = vec![0.0; n];
    }
    for (gi, mut g) in groups.into_iter().enumerate() {
        g.flush();
        for (l0, r0, r1) in layout.blocks(gi) {
            all.pos[r0..r1].copy_from_slice(&g.pos[l0..l0 + r1 - r0]);
            if info {
                all.rows[r0..r1].copy_from_slice(&g.rows[l0..l0 + r1 - r0]);
            }
        }
        all.cols.iter_mut().zip(&g.cols).for_each(|(a, b)| *a += b);
        all.hist.iter_mut().zip(&g.hist).for_each(|(a, b)| *a += b);
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
fn bound_of<T: RowNormalize>(u: &RowSums, v: &RowSums, d: usize) -> f64 {
    let d = d as f64;
    (u.max_norm() * v.max_norm()).max(f64::MIN_POSITIVE) * (1.0 + 4.0 * (d + 2.0) * T::EPS)
}

/// The negatives' quantile `q` from the pass's histogram: exactly with a second pass, or by
/// interpolation in the bins. Returns `(q_neg, absolute error bound)`.
fn negative_quantile<T: RowNormalize>(
    u: ArrayView2<T>,
    v: ArrayView2<T>,
    hist: &[u64],
    q: f64,
    r: f64,
    (mode, cap): (QuantileMode, usize),
    (block, parallel, progress): (usize, bool, Option<&Progress>),
) -> (f64, f64) {
    let n = u.nrows();
    let m_neg = n * (n - 1);
    let bins = HISTOGRAM_BINS;
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

/// Everything one call of the scan finds.
pub(crate) struct Scan {
    pub(crate) measurement: Option<Measurement>,
    pub(crate) margins: Margins,
    pub(crate) sigmoid_loss: Option<f64>,
    pub(crate) infonce_loss: Option<f64>,
    pub(crate) passes: usize,
}

/// What [`scan`] computes besides the margins.
pub(crate) struct ScanWants<'a> {
    pub(crate) sigmoid: Option<(f64, f64)>,
    pub(crate) tau: Option<f64>,
    pub(crate) measurement: bool,
    pub(crate) mode: QuantileMode,
    pub(crate) cap: usize,
    /// Told `(row blocks done, total)` as the passes go (from worker threads).
    pub(crate) progress: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

/// The scan of `(U, V)` taken as given (checked by the caller: same shape, `N >= 2`, finite).
pub(crate) fn scan<T: RowNormalize>(
    (u, v): (ArrayView2<T>, ArrayView2<T>),
    (su, sv): (&RowSums, &RowSums),
    level: QuantileLevel,
    opts: BlockOptions,
    wants: &ScanWants,
) -> Scan {
    let (n, d) = u.dim();
    let block = opts.block.max(1);
    let r = bound_of::<T>(su, sv, d);
    let fixed = wants
        .tau
        .filter(|&tau| 2.0 * r / tau <= MAX_FIXED_SHIFT_SPAN);
    let params = ScanParams {
        sigmoid: wants.sigmoid,
        tau: fixed,
        block,
        parallel: opts.parallel,
    };
    let progress = wants.progress.map(|hook| Progress {
        done: Default::default(),
        total: Layout::new(n, block).nblocks * (1 + usize::from(wants.mode == QuantileMode::Exact)),
        hook,
    });
    let p = pass(u, v, &params, (r, &su.sum, &sv.sum), progress.as_ref());
    let mut passes = 1;
    let mut pos_sorted = p.pos.clone();
    pos_sorted.sort_by(f64::total_cmp);
    let q_pos = linear_quantile_sorted(&pos_sorted, level.get());
    let (q_neg, err_neg) = negative_quantile(
        u,
        v,
        &p.hist,
        1.0 - level.get(),
        r,
        (wants.mode, wants.cap),
        (block, opts.parallel, progress.as_ref()),
    );
    if wants.mode == QuantileMode::Exact {
        passes += 1;
    }
    let margins = Margins {
        margin: (pos_sorted[0] - p.neg.max) / 2.0,
        margin_bias: (pos_sorted[0] + p.neg.max) / 2.0,
        margin_bound: margin_bound(n),
        margin_quantile: (q_pos - q_neg) / 2.0,
        margin_quantile_p: level.get(),
        quantile_error: err_neg / 2.0,
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
        margins,
        sigmoid_loss: wants.sigmoid.map(|_| p.sigmoid_sum / n as f64),
        infonce_loss: p.infonce,
        passes,
    }
}

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
}

impl Default for InspectConfig {
    fn default() -> Self {
        InspectConfig {
            t: 10.0,
            b: None,
            tau: 0.07,
            margin_quantile: super::DEFAULT_MARGIN_QUANTILE,
            normalize: true,
            block: DEFAULT_INSPECT_BLOCK,
            precision: None,
            quantile: None,
            parallel: true,
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
/// `t`, `b`, `tau`, quantile level or `block = 0`.
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
    crate::limits::check_memory(
        &format!("inspecting {n} pairs"),
        memory_estimate(u.dim(), precision, cfg.block, mode),
    )?;
    let wants = ScanWants {
        sigmoid: Some((cfg.t, b)),
        tau: Some(cfg.tau),
        measurement: true,
        mode,
        cap: CANDIDATE_CAP,
        progress: Some(progress),
    };
    let opts = BlockOptions {
        block: cfg.block,
        parallel: cfg.parallel,
    };
    let how = (level, opts, &wants);
    let (sc, infonce_fallback) = match (u, v) {
        (Matrix::F64(u), Matrix::F64(v)) => scan_pair(u, v, cfg.normalize, how, &info)?,
        (Matrix::F32(u), Matrix::F32(v)) => scan_pair(u, v, cfg.normalize, how, &info)?,
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
    let mut report = Report::from_measurement(m, &sig);
    report.margins = Some(sc.margins);
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
        quantile_method: mode,
        margin_quantile_error: sc.margins.quantile_error,
        passes: sc.passes + usize::from(infonce_fallback.is_some()),
    })
}

/// The bytes [`inspect`] allocates beyond its inputs, at most: the normalised copies, the
/// groups' column sums and histograms, the rows' results, the tiles in flight, and the exact
/// quantile's candidates.
fn memory_estimate((n, d): (usize, usize), p: Precision, block: usize, mode: QuantileMode) -> f64 {
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
    2.0 * n * d * size + groups * (n * 8.0 + hist) + 6.0 * n * 8.0 + tiles + candidates
}

/// Normalises a checked pair when asked and scans it; InfoNCE
/// by its own pass when the scan could not take it (module documentation).
fn scan_pair<T: RowNormalize>(
    u: Array2<T>,
    v: Array2<T>,
    normalize: bool,
    (level, opts, wants): (QuantileLevel, BlockOptions, &ScanWants),
    info: &Loss,
) -> Result<(Scan, Option<f64>)> {
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
    let sc = scan((u.view(), v.view()), (&sums.0, &sums.1), level, opts, wants);
    let fallback = sc
        .infonce_loss
        .is_none()
        .then(|| driver::value(info, u.view(), v.view(), opts));
    Ok((sc, fallback))
}

#[cfg(test)]
mod tests;
