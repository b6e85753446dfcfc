//! What the page draws beyond the library's records: the loss on the CCEM as a function of `c`,
//! the `(N, t)` phase map with its boundaries, the Gram matrix of the optimal CCEM, and the
//! histograms of a user's similarities. Each is a thin loop over the library's formulas.

use ccem::theory::zoo::ZooLoss;
use ccem::theory::{
    batch::negative_weight, s_neg_of_c, s_pos_of_c, s_within_of_c, BiasMode, Optimum,
};
use ndarray::{s, Array2, ArrayView2};
use serde::Serialize;

/// Points of the `l(c)` curve on `[0, 1]`.
pub const CURVE_POINTS: usize = 201;

/// The largest number of pairs the Gram heatmap shows.
pub const GRAM_PAIRS: usize = 64;

/// The loss on the CCEM against `c`: the loss's CCEM function `l_w(c)` (SPEC §9.1; for the
/// sigmoid loss and InfoNCE that of SPEC §3), negatives weighted by `w` (SPEC §9.4), at
/// [`CURVE_POINTS`] points.
#[derive(Serialize)]
pub struct Curve {
    /// `c` from 0 to 1.
    pub c: Vec<f64>,
    /// The loss at each `c`.
    pub loss: Vec<f64>,
}

/// The curve of `loss` ([`ZooLoss::value_weighted`]) for `n` pairs, negatives weighted by `w`
/// ([`ZooLoss::batch_weight`]; `1` for the full batch).
pub fn curve(n: usize, loss: &ZooLoss, w: f64) -> Curve {
    let c: Vec<f64> = (0..CURVE_POINTS)
        .map(|k| k as f64 / (CURVE_POINTS - 1) as f64)
        .collect();
    let loss = c.iter().map(|&c| loss.value_weighted(n, w, c)).collect();
    Curve { c, loss }
}

/// The Gram matrix of the first `m = min(N, 64)` pairs of the CCEM of `N` pairs with parameter
/// `c`, in the order `u_1..u_m, v_1..v_m` (SPEC §2): `u_i . u_j = v_i . v_j = s_within`,
/// `u_i . v_i = s_+`, `u_i . v_j = s_-`, ones on the diagonal. Row-major, `2m x 2m`.
#[derive(Serialize)]
pub struct Gram {
    /// Pairs shown.
    pub m: usize,
    /// The `2m x 2m` entries, row by row.
    pub values: Vec<f64>,
}

/// [`Gram`] of the CCEM of `n` pairs at `c` (`None` when `c` is not finite: the degenerate phase).
pub fn gram(n: usize, c: f64) -> Option<Gram> {
    if !c.is_finite() {
        return None;
    }
    let m = n.min(GRAM_PAIRS);
    let (sp, sn, sw) = (s_pos_of_c(c), s_neg_of_c(n, c), s_within_of_c(n, c));
    let mut values = Vec::with_capacity(4 * m * m);
    for i in 0..2 * m {
        for j in 0..2 * m {
            let same_side = (i < m) == (j < m);
            let same_pair = i % m == j % m;
            values.push(match (same_side, same_pair) {
                (true, true) => 1.0,
                (true, false) => sw,
                (false, true) => sp,
                (false, false) => sn,
            });
        }
    }
    Some(Gram { m, values })
}

/// The `(N, t)` phase map of the sigmoid loss: `s_+*` on a grid, the ETF and antipodal
/// boundaries, and the current point.
#[derive(Serialize)]
pub struct PhaseMap {
    /// The batch sizes (columns), increasing, roughly log-spaced.
    pub ns: Vec<usize>,
    /// The scales (rows), increasing.
    pub ts: Vec<f64>,
    /// `s_+*` per cell, row `t` by row (`null` where the mini-batch does not fit or `t = 0`).
    pub s_pos: Vec<Vec<Option<f64>>>,
    /// Points `(N, t)` where the phase enters the ETF ([`BiasMode::etf_boundaries_weighted`]).
    pub etf: Vec<(usize, f64)>,
    /// Points `(N, t)` where the phase leaves or enters antipodal.
    pub antipodal: Vec<(usize, f64)>,
}

/// Columns of the phase map.
const MAP_NS: usize = 48;
/// Rows of the phase map.
const MAP_TS: usize = 60;

/// The phase map around `(n, t)` under the bias setting `mode` and, with `batch`, the negative
/// weight `w = (B-1)/(N-1)` of each column (SPEC §3, §8). `N` runs from 3 (from `B` with a batch)
/// to `max(4N, 100)`, `t` from 0 to `max(2t, 10)`.
pub fn phase_map(n: usize, t: f64, mode: BiasMode, batch: Option<usize>) -> PhaseMap {
    let lo = batch.unwrap_or(3).max(3);
    let hi = (4 * n).max(100).max(lo + 1).min(1 << 40);
    let mut ns: Vec<usize> = (0..MAP_NS)
        .map(|k| {
            let x = (lo as f64).ln()
                + ((hi as f64).ln() - (lo as f64).ln()) * k as f64 / (MAP_NS - 1) as f64;
            x.exp().round() as usize
        })
        .collect();
    ns.dedup();
    let t_hi = (2.0 * t).max(10.0);
    let ts: Vec<f64> = (1..=MAP_TS)
        .map(|k| t_hi * k as f64 / MAP_TS as f64)
        .collect();
    let weight = |n: usize| batch.map_or(Some(1.0), |b| negative_weight(n, b).ok());
    let s_pos = ts
        .iter()
        .map(|&t| {
            ns.iter()
                .map(|&n| {
                    weight(n)
                        .map(|w| Optimum::sigmoid_weighted_unchecked(n, t, mode.bias(t), w).s_pos)
                })
                .collect()
        })
        .collect();
    let (mut etf, mut antipodal) = (Vec::new(), Vec::new());
    for &n in &ns {
        let Some(w) = weight(n) else { continue };
        for t in mode.etf_boundaries_weighted(n, w) {
            if t <= t_hi {
                etf.push((n, t));
            }
        }
        if let Some(t) = mode
            .antipodal_boundary_weighted(n, w)
            .filter(|&t| t <= t_hi)
        {
            antipodal.push((n, t));
        }
    }
    PhaseMap {
        ns,
        ts,
        s_pos,
        etf,
        antipodal,
    }
}

/// Bins of the similarity histograms on `[-1, 1]`.
pub const HIST_BINS: usize = 80;

/// The most rows whose negatives enter the histogram (evenly spaced rows; the positives are
/// always all `N`).
pub const HIST_ROWS: usize = 1024;

/// Histograms of the positive similarities `S_ii` and of the negative ones `S_ij` (`i != j`) of
/// the rows of `u`, `v` (already normalised when the inspection normalises), on [`HIST_BINS`]
/// bins over `[lo, hi]` (the range of the values, widened to include `[-1, 1]` for unit rows).
#[derive(Serialize)]
pub struct Histograms {
    /// The bin edges (`HIST_BINS + 1`).
    pub edges: Vec<f64>,
    /// Counts of the positives.
    pub pos: Vec<u64>,
    /// Counts of the negatives (of the sampled rows).
    pub neg: Vec<u64>,
    /// Rows whose negatives were counted.
    pub neg_rows: usize,
}

/// [`Histograms`] of `(u, v)`: the positives of every row, the negatives of at most
/// [`HIST_ROWS`] evenly spaced rows against every column.
pub fn histograms(u: ArrayView2<f64>, v: ArrayView2<f64>) -> Histograms {
    let n = u.nrows();
    let rows: Vec<usize> = if n <= HIST_ROWS {
        (0..n).collect()
    } else {
        (0..HIST_ROWS).map(|k| k * n / HIST_ROWS).collect()
    };
    let pos: Vec<f64> = (0..n).map(|i| u.row(i).dot(&v.row(i))).collect();
    let mut neg = Vec::with_capacity(rows.len() * n.saturating_sub(1));
    for chunk in rows.chunks(64) {
        let sub = Array2::from_shape_fn((chunk.len(), u.ncols()), |(r, c)| u[[chunk[r], c]]);
        let s = sub.dot(&v.t());
        for (r, &i) in chunk.iter().enumerate() {
            let row = s.slice(s![r, ..]);
            neg.extend(
                row.iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, &x)| x),
            );
        }
    }
    let finite = pos.iter().chain(&neg).copied().filter(|x| x.is_finite());
    let (mut lo, mut hi) = finite.fold((-1.0f64, 1.0f64), |(a, b), x| (a.min(x), b.max(x)));
    if hi <= lo {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let width = (hi - lo) / HIST_BINS as f64;
    let bin = |x: f64| (((x - lo) / width) as usize).min(HIST_BINS - 1);
    let count = |xs: &[f64]| {
        let mut h = vec![0u64; HIST_BINS];
        for &x in xs.iter().filter(|x| x.is_finite()) {
            h[bin(x)] += 1;
        }
        h
    };
    Histograms {
        edges: (0..=HIST_BINS).map(|k| lo + width * k as f64).collect(),
        pos: count(&pos),
        neg: count(&neg),
        neg_rows: rows.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ccem::geometry::Ccem;
    use ccem::loss::ContrastiveLoss;

    #[test]
    fn the_curve_is_the_loss_of_the_ccem() {
        // InfoNCE: the dense loss of the CCEM at each c, and the optimum's loss at c = 0.
        let (n, tau) = (7, 0.3);
        let loss = ccem::Loss::infonce(tau).unwrap();
        let zoo = ZooLoss::from_loss(&loss).unwrap();
        let k = CURVE_POINTS - 1;
        let curve = curve(n, &zoo, 1.0);
        for i in [0, k / 5, k / 2, 9 * k / 10] {
            let c = curve.c[i];
            let (u, v) = Ccem::from_c(n, n, c).unwrap().build();
            let s = u.dot(&v.t());
            let dense = loss.value_s(s.view());
            let closed = curve.loss[i];
            assert!(
                (dense - closed).abs() < 1e-12 * dense.abs().max(1.0),
                "{c}: {dense} {closed}"
            );
        }
        let o = Optimum::infonce(n, tau).unwrap();
        assert!((curve.loss[0] - o.loss).abs() < 1e-12 * o.loss);
        // The sigmoid loss: SPEC §3's l_w(c), mini-batch weight included.
        let (t, b, w) = (2.0, 1.0, 0.5);
        let sig = ZooLoss::sigmoid(t, b, 0.0).unwrap();
        let curve = super::curve(12, &sig, w);
        for (&c, &l) in curve.c.iter().zip(&curve.loss) {
            let exact = ccem::theory::ccem_loss_weighted(12, t, b, w, c);
            assert!(
                (l - exact).abs() < 1e-12 * exact.abs().max(1.0),
                "{c}: {l} {exact}"
            );
        }
    }

    #[test]
    fn gram_has_the_ccem_blocks() {
        let (u, v) = Ccem::from_c(5, 5, 0.3).unwrap().build();
        let x = ndarray::concatenate(ndarray::Axis(0), &[u.view(), v.view()]).unwrap();
        let g = x.dot(&x.t());
        let ours = gram(5, 0.3).unwrap();
        assert_eq!(ours.m, 5);
        for (a, b) in g.iter().zip(&ours.values) {
            assert!((a - b).abs() < 1e-12);
        }
        assert_eq!(gram(1000, 0.1).unwrap().values.len(), 4 * 64 * 64);
        assert!(gram(10, f64::NAN).is_none());
    }

    #[test]
    fn phase_map_tied_boundaries() {
        let m = phase_map(10, 1.0, BiasMode::Tied, None);
        assert_eq!(m.ts.len(), MAP_TS);
        assert!(m.ns.windows(2).all(|w| w[0] < w[1]));
        // Tied: ETF at t = ((N-1)/N) log(N-3).
        let (n, t) = m.etf.iter().find(|p| p.0 == 100).copied().unwrap();
        assert!((t - (99.0 / 100.0) * 97f64.ln()).abs() < 1e-9, "{n} {t}");
    }

    #[test]
    fn histograms_count_every_pair() {
        let (u, v) = Ccem::from_c(6, 6, 0.2).unwrap().build();
        let h = histograms(u.view(), v.view());
        assert_eq!(h.pos.iter().sum::<u64>(), 6);
        assert_eq!(h.neg.iter().sum::<u64>(), 30);
        assert_eq!(h.edges.len(), HIST_BINS + 1);
    }
}
