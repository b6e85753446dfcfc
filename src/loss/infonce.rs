//! Symmetric InfoNCE, the CLIP loss (SPEC.md §1).
//!
//! `L_info(S; tau) = (1/N) sum_i [r_i - S_ii/tau] + (1/N) sum_j [c_j - S_jj/tau]` with the row and
//! column log-sum-exps `r_i = log sum_j e^{S_ij/tau}`, `c_j = log sum_i e^{S_ij/tau}`; gradient
//! `G = (P_row + P_col - 2I) / (N tau)`, `P_row,ij = e^{S_ij/tau - r_i}`, `P_col,ij = e^{S_ij/tau - c_j}`.
//! Every exponent is shifted by its log-sum-exp, so `tau` down to `1e-3` (and below) stays finite.
//!
//! # Convention
//! `ccem`'s symmetric InfoNCE is the **sum** of the row and the column cross-entropies, as in the
//! paper (Lee, Chang, Sohn 2024). open_clip's `ClipLoss` takes their **mean**, so its value is
//! exactly half of ours; [`infonce_clip`] converts, and every output that prints an InfoNCE loss
//! prints the CLIP value beside it (`infonce_loss_clip`, `loss_clip`).

use super::contrastive::{BlockAt, ContrastiveLoss, Lse, Prepass};
use super::sigmoid_grad::exp_nonpos;
use crate::base::Real;
use crate::error::{check_positive, Result};
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// Symmetric InfoNCE (CLIP's loss) with temperature `tau > 0`, as the **sum** of the row and
/// the column cross-entropies (SPEC §1; [`infonce_clip`] gives open_clip's mean):
/// `L = (1/N) sum_i [r_i - S_ii/tau] + (1/N) sum_j [c_j - S_jj/tau]`,
/// `G = (P_row + P_col - 2I) / (N tau)`.
///
/// ```
/// use ccem::loss::infonce::InfoNce;
/// use ccem::loss::contrastive::ContrastiveLoss;
/// use ndarray::array;
/// let loss = InfoNce::new(1.0)?;
/// let s = array![[1.0, 0.0], [0.0, 1.0]];
/// assert!((loss.value_s(s.view()) - 2.0 * (-1.0f64).exp().ln_1p()).abs() < 1e-15);
/// assert!(InfoNce::new(0.0).is_err());
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoNce {
    /// Temperature (divides the similarities), `> 0`.
    pub tau: f64,
}

impl InfoNce {
    /// Symmetric InfoNCE with temperature `tau`.
    ///
    /// # Errors
    /// `tau <= 0` or non-finite.
    pub fn new(tau: f64) -> Result<Self> {
        Ok(InfoNce {
            tau: check_positive("tau", tau)?,
        })
    }
}

impl ContrastiveLoss for InfoNce {
    fn name(&self) -> &'static str {
        "infonce"
    }

    fn params(&self) -> Vec<(&'static str, f64)> {
        vec![("tau", self.tau)]
    }

    fn prepass(&self) -> Prepass {
        Prepass::LogSumExp {
            inv_tau: 1.0 / self.tau,
        }
    }

    fn value_needs_blocks(&self) -> bool {
        false
    }

    /// `G_ij = (e^{S_ij/tau - r_i} + e^{S_ij/tau - c_j} - 2 delta_ij) / (N tau)`, each
    /// exponent formed as `(S_ij - m_i)/tau - ln_i <= 0` ([`Lse`]); the terms themselves are
    /// in [`ContrastiveLoss::finish`], so the block sum is `0`.
    fn block<R: Real, const GRAD: bool>(&self, mut s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
        if !GRAD {
            return 0.0;
        }
        let lse = at
            .lse
            .expect("the driver runs the pre-pass this loss asks for");
        let it = lse.inv_tau;
        let scale = it / at.n as f64;
        let ncols = s.ncols();
        let cm = &lse.col_max[at.col0..at.col0 + ncols];
        let cl = &lse.col_ln[at.col0..at.col0 + ncols];
        for (i, mut row) in s.outer_iter_mut().enumerate() {
            let (mi, li) = (lse.row_max[at.row0 + i], lse.row_ln[at.row0 + i]);
            let diag = at.diag_col(i, ncols);
            let s_diag = diag.map(|j| row[j].to_f64());
            for ((e, &mj), &lj) in row.iter_mut().zip(cm).zip(cl) {
                let x = e.to_f64();
                let p = exp_nonpos(((x - mi) * it - li).min(0.0))
                    + exp_nonpos(((x - mj) * it - lj).min(0.0));
                *e = R::from_f64(scale * p);
            }
            if let (Some(j), Some(x)) = (diag, s_diag) {
                let p = exp_nonpos(((x - mi) * it - li).min(0.0))
                    + exp_nonpos(((x - cm[j]) * it - cl[j]).min(0.0));
                row[j] = R::from_f64(scale * (p - 2.0));
            }
        }
        0.0
    }

    /// `(1/N) sum_i [(m_i - S_ii)/tau + ln_i] + (1/N) sum_j [(m'_j - S_jj)/tau + ln'_j]`: every
    /// term is `>= 0`, so the value is never negative, for any `tau > 0` (SPEC §1, "Numerics").
    fn finish(&self, _block_sum: f64, n: usize, lse: Option<&Lse>) -> f64 {
        let lse = lse.expect("the driver runs the pre-pass this loss asks for");
        let it = lse.inv_tau;
        let rows: f64 = (0..n)
            .map(|i| (lse.row_max[i] - lse.diag[i]) * it + lse.row_ln[i])
            .sum();
        let cols: f64 = (0..n)
            .map(|j| (lse.col_max[j] - lse.diag[j]) * it + lse.col_ln[j])
            .sum();
        (rows + cols) / n as f64
    }

    fn clip_value(&self, value: f64) -> Option<f64> {
        Some(infonce_clip(value))
    }

    /// [`infonce_loss`].
    fn value_s(&self, s: ArrayView2<f64>) -> f64 {
        infonce_loss(s, self.tau)
    }

    /// [`infonce_loss_grad`].
    fn value_grad_s(&self, s: ArrayView2<f64>, g: ArrayViewMut2<f64>) -> f64 {
        infonce_loss_grad(s, self.tau, g)
    }

    fn grad_s(&self, s: ArrayView2<f64>, g: ArrayViewMut2<f64>) -> bool {
        infonce_loss_grad(s, self.tau, g).is_finite()
    }
}

/// Log-sum-exp of each row of `S / tau`.
pub(crate) fn row_lse(s: ArrayView2<f64>, tau: f64) -> Vec<f64> {
    s.outer_iter()
        .map(|row| {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &x| a.max(x)) / tau;
            m + row.iter().map(|&x| (x / tau - m).exp()).sum::<f64>().ln()
        })
        .collect()
}

/// For a block of rows of `S` starting at row `row0`, with `lse_rows` the log-sum-exps of its own
/// rows: the row-wise cross-entropy part `sum_i (r_i - S_{i,row0+i}/tau)`.
pub(crate) fn infonce_block(s: ArrayView2<f64>, row0: usize, lse_rows: &[f64], tau: f64) -> f64 {
    s.outer_iter()
        .enumerate()
        .map(|(i, row)| lse_rows[i] - row[row0 + i] / tau)
        .sum()
}

/// Overwrites the block of `S` whose top-left entry is `(row0, col0)` of the full matrix with the
/// gradient block `(e^{S/tau - r_i} + e^{S/tau - c_j} - 2 delta_ij) / (N tau)`; `lse_rows` and
/// `lse_cols` hold the `r_i` of the block's rows and the `c_j` of its columns, `n` is `N`.
pub(crate) fn infonce_grad_in_place(
    mut sg: ArrayViewMut2<f64>,
    (row0, col0): (usize, usize),
    lse_rows: &[f64],
    lse_cols: &[f64],
    tau: f64,
    n: usize,
) {
    let scale = 1.0 / (n as f64 * tau);
    for (i, mut row) in sg.outer_iter_mut().enumerate() {
        let ri = lse_rows[i];
        let diag = (row0 + i).wrapping_sub(col0);
        for (j, e) in row.iter_mut().enumerate() {
            let x = *e / tau;
            let mut v = (x - ri).exp() + (x - lse_cols[j]).exp();
            if j == diag {
                v -= 2.0;
            }
            *e = scale * v;
        }
    }
}

/// `L_info(S; tau)` for a square `S` (SPEC §1).
pub fn infonce_loss(s: ArrayView2<f64>, tau: f64) -> f64 {
    let n = s.nrows();
    let r = row_lse(s, tau);
    let c = row_lse(s.t(), tau);
    let rows: f64 = (0..n).map(|i| r[i] - s[[i, i]] / tau).sum();
    let cols: f64 = (0..n).map(|j| c[j] - s[[j, j]] / tau).sum();
    (rows + cols) / n as f64
}

/// [`infonce_loss`] and its gradient `G = (P_row + P_col - 2I)/(N tau)` written into `g`.
pub fn infonce_loss_grad(s: ArrayView2<f64>, tau: f64, mut g: ArrayViewMut2<f64>) -> f64 {
    let n = s.nrows();
    let r = row_lse(s, tau);
    let c = row_lse(s.t(), tau);
    let rows = infonce_block(s, 0, &r, tau);
    g.assign(&s);
    infonce_grad_in_place(g, (0, 0), &r, &c, tau, n);
    let cols: f64 = (0..n).map(|j| c[j] - s[[j, j]] / tau).sum();
    (rows + cols) / n as f64
}

/// An InfoNCE value of `ccem` (the sum of the two cross-entropies) in open_clip's `ClipLoss`
/// convention (their mean): `value / 2`. See the module's "Convention".
///
/// ```
/// use ccem::loss::{infonce_clip, infonce_loss};
/// use ndarray::array;
///
/// let s = array![[1.0, 0.0], [0.0, 1.0]];
/// let ours = infonce_loss(s.view(), 1.0);
/// // Each cross-entropy term is log(1 + e^{-1}); ccem sums rows and columns, CLIP averages them.
/// assert!((ours - 2.0 * (-1.0f64).exp().ln_1p()).abs() < 1e-15);
/// assert_eq!(infonce_clip(ours), ours / 2.0);
/// ```
pub fn infonce_clip(value: f64) -> f64 {
    0.5 * value
}
