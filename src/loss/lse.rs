//! Log-sum-exps of similarities over temperature, in units that never cancel (SPEC §1.0).
//!
//! The InfoNCE family needs, per anchor `a`, `ln sum_k w_ak e^{S_ak / tau}`. Each is held as a
//! maximum `m_a` in units of `S` and the logarithm of the shifted sum, so a cross-entropy term
//! `ln sum_k e^{S_ak / tau} - S_a,pos / tau` is computed as `(m_a - S_a,pos) / tau + ln_a`:
//! both parts are `>= 0` (when the positive is in the sum) and nothing large cancels, for any
//! `tau > 0`.

use super::sigmoid_grad::exp_nonpos;
use crate::base::Real;
use ndarray::ArrayView2;

/// The per-anchor log-sum-exps of `x = S / tau`, each held as a maximum in units of `S` and the
/// logarithm of the shifted sum, so that a term `log sum_j e^{x_ij} - x_ii` is computed as
/// `(m_i - S_ii) / tau + ln_i`: both parts are `>= 0` and no large numbers cancel, down to any
/// `tau > 0` (SPEC §1.0, "Numerics").
///
/// For a loss of the joint views ([`super::contrastive::Views::Joint`]) only the rows are
/// filled (the columns are empty) and `diag` holds each anchor's positive similarity.
#[derive(Clone, Debug, PartialEq)]
pub struct Lse {
    /// `1 / tau`.
    pub inv_tau: f64,
    /// `m_i = max_j S_ij` (over the entries of non-zero weight).
    pub row_max: Vec<f64>,
    /// `ln sum_j w_ij e^{(S_ij - m_i) / tau}`.
    pub row_ln: Vec<f64>,
    /// `m'_j = max_i S_ij`.
    pub col_max: Vec<f64>,
    /// `ln sum_i e^{(S_ij - m'_j) / tau}` (`>= 0`).
    pub col_ln: Vec<f64>,
    /// `S_ii` (joint views: `S_a,pos(a)`), as computed by the same products as the maxima (so
    /// `m_i >= S_ii` exactly when the positive is in the sum).
    pub diag: Vec<f64>,
}

/// `e^{a}` for `a <= 0` (vectorisable; `a` above 0 is clamped to 0).
#[inline(always)]
pub(crate) fn exp_le0(a: f64) -> f64 {
    exp_nonpos(a.min(0.0))
}

/// A row's `(max S_ij, sum_j e^{(S_ij - max) inv_tau})` over a slice of its entries.
#[inline]
pub(crate) fn row_max_sum<R: Real>(row: &[R], inv_tau: f64) -> (f64, f64) {
    const LANES: usize = 8;
    let m = row
        .iter()
        .fold(f64::NEG_INFINITY, |a, &x| a.max(x.to_f64()));
    let mut acc = [0.0f64; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for ch in &mut chunks {
        for (x, a) in ch.iter().zip(acc.iter_mut()) {
            *a += exp_le0((x.to_f64() - m) * inv_tau);
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| exp_le0((x.to_f64() - m) * inv_tau))
        .sum();
    (m, acc.iter().sum::<f64>() + tail)
}

/// Merges `(max, shifted sum)` parts of one anchor, in order: `(M, sum_p s_p e^{(m_p - M) inv_tau})`.
pub(crate) fn merge_parts(
    parts: impl Iterator<Item = (f64, f64)> + Clone,
    inv_tau: f64,
) -> (f64, f64) {
    let m = parts.clone().fold(f64::NEG_INFINITY, |a, p| a.max(p.0));
    let sum = parts
        .filter(|&(pm, _)| pm > f64::NEG_INFINITY)
        .map(|(pm, ps)| ps * exp_le0((pm - m) * inv_tau))
        .sum();
    (m, sum)
}

/// Updates running column `(max, sum)` pairs with the rows of `chunk` (in `S` units).
pub(crate) fn update_columns<R: Real>(
    chunk: ArrayView2<R>,
    inv_tau: f64,
    cmax: &mut [f64],
    csum: &mut [f64],
) {
    let mut newmax = cmax.to_vec();
    for row in chunk.outer_iter() {
        for (m, &x) in newmax.iter_mut().zip(row.iter()) {
            *m = m.max(x.to_f64());
        }
    }
    for ((s, old), &m) in csum.iter_mut().zip(cmax.iter()).zip(&newmax) {
        *s *= if *old == f64::NEG_INFINITY {
            0.0
        } else {
            exp_le0((old - m) * inv_tau)
        };
    }
    for row in chunk.outer_iter() {
        for ((s, &m), &x) in csum.iter_mut().zip(&newmax).zip(row.iter()) {
            *s += exp_le0((x.to_f64() - m) * inv_tau);
        }
    }
    cmax.copy_from_slice(&newmax);
}

/// The [`Lse`] of a whole square `S` held in memory.
pub fn lse_of<R: Real>(s: ArrayView2<R>, inv_tau: f64) -> Lse {
    let n = s.ncols();
    let (mut row_max, mut row_ln) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for row in s.outer_iter() {
        let (m, sum) = row_max_sum(&row.to_vec(), inv_tau);
        row_max.push(m);
        row_ln.push(sum.ln());
    }
    let (mut cmax, mut csum) = (vec![f64::NEG_INFINITY; n], vec![0.0; n]);
    update_columns(s, inv_tau, &mut cmax, &mut csum);
    Lse {
        inv_tau,
        row_max,
        row_ln,
        col_ln: csum.iter().map(|s| s.ln()).collect(),
        col_max: cmax,
        diag: s.diag().iter().map(|x| x.to_f64()).collect(),
    }
}

/// The weighted per-anchor log-sum-exps of the rows of a block `m` of `S / tau` (or `K / tau`)
/// whose first row is anchor `row0` of `pairs` pairs: `m_a = max {S_ak : w(a, k) > 0}`,
/// `row_ln = ln sum_k w(a, k) e^{(S_ak - m_a) / tau}` (`-inf` for an empty sum), and `diag`
/// the positive `S_a,pos(a)` (`pos(a) = a` for cross views, `(a + N) mod 2N` with `joint`).
/// The columns are left empty. Every row of `m` must hold all the columns.
pub fn anchor_lse_of<R: Real>(
    m: ArrayView2<R>,
    inv_tau: f64,
    row0: usize,
    pairs: usize,
    joint: bool,
    w: impl Fn(usize, usize) -> f64,
) -> Lse {
    let rows = m.nrows();
    let (mut row_max, mut row_ln, mut diag) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    for (i, row) in m.outer_iter().enumerate() {
        let a = row0 + i;
        let (mx, sum) = weighted_row_max_sum(row.iter().map(|x| x.to_f64()), a, 0, inv_tau, &w);
        row_max.push(mx);
        row_ln.push(sum.ln());
        diag.push(row[positive_of(a, pairs, joint)].to_f64());
    }
    Lse {
        inv_tau,
        row_max,
        row_ln,
        col_max: Vec::new(),
        col_ln: Vec::new(),
        diag,
    }
}

/// The positive of anchor `a`: `a` (cross views) or `(a + N) mod 2N` (joint views).
#[inline]
pub fn positive_of(a: usize, pairs: usize, joint: bool) -> usize {
    if !joint {
        a
    } else if a < pairs {
        a + pairs
    } else {
        a - pairs
    }
}

/// Anchor `a`'s `(max, sum_k w(a, k) e^{(x_k - max) inv_tau})` over entries `x_k` of its row
/// whose columns start at `col0`, the maximum over the entries of positive weight
/// (`(-inf, 0)` if none).
pub(crate) fn weighted_row_max_sum(
    row: impl Iterator<Item = f64> + Clone,
    a: usize,
    col0: usize,
    inv_tau: f64,
    w: &impl Fn(usize, usize) -> f64,
) -> (f64, f64) {
    let m = row
        .clone()
        .enumerate()
        .filter(|&(k, _)| w(a, col0 + k) > 0.0)
        .fold(f64::NEG_INFINITY, |acc, (_, x)| acc.max(x));
    if m == f64::NEG_INFINITY {
        return (m, 0.0);
    }
    let sum = row
        .enumerate()
        .map(|(k, x)| {
            let wk = w(a, col0 + k);
            if wk > 0.0 {
                wk * exp_le0((x - m) * inv_tau)
            } else {
                0.0
            }
        })
        .sum();
    (m, sum)
}
