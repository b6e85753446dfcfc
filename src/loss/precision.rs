//! The float32 path of the losses and their gradients (SPEC.md §1, "float32 path").
//!
//! The same losses, gradients and blocking as the float64 API ([`super::sigmoid`],
//! [`super::infonce`], [`super::embedding`], [`super::blocked`]), for `f32` embeddings:
//!
//! - the matrix products `S_B = U_B V^T`, `G_B V` and `G_B^T U_B` run in float32
//!   ([`super::sgemm`], the kernel chosen by measurement), as PyTorch's do;
//! - every entry's loss term and gradient is evaluated in float64 from the float32 `S_ij` and
//!   rounded once to float32 when stored in `G`; the sums over pairs (the loss, the row and
//!   column log-sum-exps, the per-row statistics) accumulate in float64;
//! - the row normalisation computes each norm in float64.
//!
//! # Accuracy (tested against the float64 path, `N` up to 4096, `d = 768`)
//! The loss agrees to a relative `1e-5` and each gradient to `1e-4` of its Frobenius norm
//! (SPEC §1.1; `t` up to 100, `tau` down to 0.01). The error comes from the float32 products:
//! `S_ij` carries an absolute error of order `sqrt(d) 2^-24`, which the logit `t S - b` scales
//! by `t`. At `N = 4096, d = 768` (`bench/loss_vs_torch.py`) the float32 and float64 losses
//! agree to `1e-8` relative, and both agree with PyTorch's float32 loss to `6e-8`.
//!
//! # Threads and reproducibility
//! As in [`super::blocked`]: fixed chunks of the output per task, blocks in order, partial sums
//! added in chunk order, each product single-threaded within its task. Every result is bitwise
//! independent of the thread count (tested with pools of 1 and 2 threads).
//!
//! # Example
//! ```
//! use ccem::loss::precision::{blocked_loss_grad_f32, loss_grad_uv_f32, normalize_rows_f32};
//! use ccem::loss::{BlockOptions, Loss};
//! use ndarray::Array2;
//! let x = Array2::from_shape_fn((6, 4), |(i, j)| ((i * 3 + j) % 5) as f32 - 2.0);
//! let u = normalize_rows_f32(x.view(), "U").unwrap().u;
//! let loss = Loss::sigmoid(10.0, 10.0).unwrap();
//! let dense = loss_grad_uv_f32(&loss, u.view(), u.view());
//! let opts = BlockOptions { block: 4, parallel: true };
//! let blocked = blocked_loss_grad_f32(&loss, u.view(), u.view(), opts);
//! assert!((dense.value - blocked.value).abs() < 1e-12 * dense.value);
//! ```

use super::blocked::map_items;
use super::sgemm::sgemm;
use super::sigmoid_grad::exp_nonpos;
use super::{BlockOptions, Loss};
use crate::error::{check_batch, Error, Result};
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Zip};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Columns of `S_B` (and rows of `dL/dV`) per parallel task.
pub const COL_CHUNK: usize = 512;
/// Rows of `dL/dU` per parallel task.
pub const ROW_CHUNK: usize = 128;
/// Lanes of the vectorised float64 sums (a fixed number: the summation order does not depend
/// on the machine).
const LANES: usize = 8;

/// The floating-point precision of a loss evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 products, float64 sums (this module).
    F32,
    /// float64 throughout ([`super::blocked`], [`super::embedding`]).
    F64,
}

impl std::str::FromStr for Precision {
    type Err = Error;

    /// `"f32"`/`"float32"` or `"f64"`/`"float64"`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(Precision::F32),
            "f64" | "float64" => Ok(Precision::F64),
            other => Err(Error::Config(format!(
                "invalid precision '{other}': use 'f32' (float32 products, float64 sums) or \
                 'f64' (float64 throughout)"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        })
    }
}

/// A loss value (float64) with its float32 gradients with respect to the two embedding matrices.
#[derive(Clone, Debug)]
pub struct LossGradF32 {
    /// The loss.
    pub value: f64,
    /// `dL/dU` (or `dL/dX` for raw inputs), `N x d`.
    pub du: Array2<f32>,
    /// `dL/dV` (or `dL/dY`), `N x d`.
    pub dv: Array2<f32>,
}

/// float32 rows put on the unit sphere, with the norms they had (float64).
#[derive(Clone, Debug)]
pub struct NormalizedF32 {
    /// `u_i = x_i / ||x_i||`, rounded to float32.
    pub u: Array2<f32>,
    /// `||x_i||`, accumulated in float64.
    pub norms: Array1<f64>,
}

/// `u_i = x_i / ||x_i||` for every row, the norm accumulated in float64.
///
/// # Errors
/// A row of zero or non-finite norm ([`Error::ZeroRow`]), naming `which` and the row.
pub fn normalize_rows_f32(x: ArrayView2<f32>, which: &'static str) -> Result<NormalizedF32> {
    let norms: Array1<f64> = x
        .outer_iter()
        .map(|r| {
            r.iter()
                .map(|&a| f64::from(a) * f64::from(a))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    if let Some((row, &norm)) = norms
        .iter()
        .enumerate()
        .find(|(_, &nr)| !(nr.is_finite() && nr > 0.0))
    {
        return Err(Error::ZeroRow { which, row, norm });
    }
    let mut u = Array2::<f32>::zeros(x.raw_dim());
    Zip::from(u.rows_mut())
        .and(x.rows())
        .and(&norms)
        .for_each(|mut ur, xr, &nr| ur.zip_mut_with(&xr, |a, &b| *a = (f64::from(b) / nr) as f32));
    Ok(NormalizedF32 { u, norms })
}

/// `dL/dx_i = (dL/du_i - (u_i . dL/du_i) u_i) / ||x_i||` (SPEC §1), each row's dot product in
/// float64, the result rounded to float32.
pub fn backprop_normalization_f32(
    u: ArrayView2<f32>,
    norms: ArrayView1<f64>,
    du: ArrayView2<f32>,
) -> Array2<f32> {
    let mut dx = Array2::<f32>::zeros(du.raw_dim());
    Zip::from(dx.rows_mut())
        .and(u.rows())
        .and(du.rows())
        .and(&norms)
        .for_each(|mut out, ur, gr, &nr| {
            let proj: f64 = ur
                .iter()
                .zip(gr.iter())
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            Zip::from(&mut out)
                .and(&ur)
                .and(&gr)
                .for_each(|o, &a, &g| *o = ((f64::from(g) - proj * f64::from(a)) / nr) as f32);
        });
    dx
}

/// `ln(1 + e)` for `e` in `[0, 1]`, branch-free: `2 atanh(z)`, `z = e / (2 + e)` in `[0, 1/3]`,
/// by its series `2 z sum_k z^{2k} / (2k + 1)` to `k = 13` (truncation below `2e-15` relative).
#[inline(always)]
fn ln1p_unit(e: f64) -> f64 {
    let z = e / (2.0 + e);
    let w = z * z;
    let mut p = 1.0 / 29.0;
    for k in (0..14).rev() {
        p = p * w + 1.0 / (2 * k + 1) as f64;
    }
    2.0 * z * p
}

/// `softplus(y) = ln(1 + e^y)`, branch-free from one `exp(-|y|)` (relative error below `1e-15`).
#[inline(always)]
pub(crate) fn softplus_fast(y: f64) -> f64 {
    y.max(0.0) + ln1p_unit(exp_nonpos(-y.abs()))
}

/// The loss term `softplus(y)` and its derivative `sigmoid(y)`, from one `exp(-|y|)`.
#[inline(always)]
fn softplus_sigmoid(y: f64) -> (f64, f64) {
    let e = exp_nonpos(-y.abs());
    let sp = y.max(0.0) + ln1p_unit(e);
    let r = 1.0 / (1.0 + e);
    (sp, if y >= 0.0 { r } else { e * r })
}

/// Sum of the sigmoid loss terms of a contiguous run of entries that are all negatives
/// (`y = t S - b`) or all positives (`y = -(t S - b)`, `sign = -1`); with `WRITE`, each entry is
/// overwritten by its gradient `-sign * scale * sigmoid(y)` (a positive's gradient is negative).
#[inline(always)]
fn sigmoid_run<const WRITE: bool>(xs: &mut [f32], sign: f64, t: f64, b: f64, scale: f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for ch in &mut chunks {
        for (x, a) in ch.iter_mut().zip(acc.iter_mut()) {
            let (sp, sg) = softplus_sigmoid(sign * (t * f64::from(*x) - b));
            *a += sp;
            if WRITE {
                *x = (sign * scale * sg) as f32;
            }
        }
    }
    let mut tail = 0.0;
    for x in chunks.into_remainder() {
        let (sp, sg) = softplus_sigmoid(sign * (t * f64::from(*x) - b));
        tail += sp;
        if WRITE {
            *x = (sign * scale * sg) as f32;
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// One row of a block of `S`: its loss terms summed, and with `WRITE` the row overwritten by
/// `G_ij = -(z_ij t / n) sigmoid(-z_ij (t S_ij - b))`; `diag` is the local column of the
/// positive pair, if it lies in this row.
#[inline(always)]
fn sigmoid_row<const WRITE: bool>(
    row: &mut [f32],
    diag: Option<usize>,
    t: f64,
    b: f64,
    n: usize,
) -> f64 {
    let scale = t / n as f64;
    match diag {
        Some(j) if j < row.len() => {
            let (left, rest) = row.split_at_mut(j);
            let (mid, right) = rest.split_at_mut(1);
            let l = sigmoid_run::<WRITE>(left, 1.0, t, b, scale);
            let m = sigmoid_run::<WRITE>(mid, -1.0, t, b, scale);
            let r = sigmoid_run::<WRITE>(right, 1.0, t, b, scale);
            l + m + r
        }
        _ => sigmoid_run::<WRITE>(row, 1.0, t, b, scale),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sigmoid_row_avx2<const WRITE: bool>(
    row: &mut [f32],
    diag: Option<usize>,
    t: f64,
    b: f64,
    n: usize,
) -> f64 {
    sigmoid_row::<WRITE>(row, diag, t, b, n)
}

/// [`sigmoid_row`] in the AVX2 build where the CPU has it (no fused multiply-add, so both builds
/// give bitwise the same result).
fn sigmoid_row_dispatch<const WRITE: bool>(
    row: &mut [f32],
    diag: Option<usize>,
    t: f64,
    b: f64,
    n: usize,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { sigmoid_row_avx2::<WRITE>(row, diag, t, b, n) };
    }
    sigmoid_row::<WRITE>(row, diag, t, b, n)
}

/// The block of `S` whose top-left entry is `(row0, col0)` of the full `n x n` matrix: the sum
/// of its sigmoid loss terms (not divided by `n`), and with `WRITE` the block overwritten by `G`.
fn sigmoid_block_f32<const WRITE: bool>(
    mut sg: ArrayViewMut2<f32>,
    (row0, col0): (usize, usize),
    n: usize,
    t: f64,
    b: f64,
) -> f64 {
    let mut total = 0.0;
    for (i, mut row) in sg.outer_iter_mut().enumerate() {
        let diag = (row0 + i).checked_sub(col0);
        total += match row.as_slice_mut() {
            Some(r) => sigmoid_row_dispatch::<WRITE>(r, diag, t, b, n),
            None => {
                let mut r = row.to_vec();
                let v = sigmoid_row_dispatch::<WRITE>(&mut r, diag, t, b, n);
                if WRITE {
                    row.iter_mut().zip(&r).for_each(|(a, &x)| *a = x);
                }
                v
            }
        };
    }
    total
}

/// Row maximum and `sum_j exp(x_j - max)` of `x = S_row / tau`, in float64.
fn row_max_sum(row: &[f32], tau: f64) -> (f64, f64) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
    let m = f64::from(m) / tau;
    let mut acc = [0.0f64; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for ch in &mut chunks {
        for (x, a) in ch.iter().zip(acc.iter_mut()) {
            *a += exp_nonpos((f64::from(*x) / tau - m).min(0.0));
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| exp_nonpos((f64::from(x) / tau - m).min(0.0)))
        .sum();
    (m, acc.iter().sum::<f64>() + tail)
}

/// Updates the running column `(max, sum)` pairs of `S / tau` with the rows of `chunk`:
/// `M_j = max(cmax_j, max_i x_ij)`, `csum_j <- csum_j e^{cmax_j - M_j} + sum_i e^{x_ij - M_j}`.
fn update_columns(chunk: ArrayView2<f32>, tau: f64, cmax: &mut [f64], csum: &mut [f64]) {
    let mut newmax = cmax.to_vec();
    for row in chunk.outer_iter() {
        for (m, &x) in newmax.iter_mut().zip(row.iter()) {
            *m = m.max(f64::from(x) / tau);
        }
    }
    for ((s, old), &m) in csum.iter_mut().zip(cmax.iter()).zip(&newmax) {
        *s *= if *old == f64::NEG_INFINITY {
            0.0
        } else {
            exp_nonpos((old - m).min(0.0))
        };
    }
    for row in chunk.outer_iter() {
        for ((s, &m), &x) in csum.iter_mut().zip(&newmax).zip(row.iter()) {
            *s += exp_nonpos((f64::from(x) / tau - m).min(0.0));
        }
    }
    cmax.copy_from_slice(&newmax);
}

/// Overwrites the block of `S` at `(row0, col0)` with the InfoNCE gradient
/// `(e^{S/tau - r_i} + e^{S/tau - c_j} - 2 delta_ij) / (n tau)`.
fn infonce_grad_block_f32(
    mut sg: ArrayViewMut2<f32>,
    (row0, col0): (usize, usize),
    lse_rows: &[f64],
    lse_cols: &[f64],
    tau: f64,
    n: usize,
) {
    let scale = 1.0 / (n as f64 * tau);
    let p =
        |x: f64, ri: f64, cj: f64| exp_nonpos((x - ri).min(0.0)) + exp_nonpos((x - cj).min(0.0));
    for (i, mut row) in sg.outer_iter_mut().enumerate() {
        let ri = lse_rows[i];
        let diag = (row0 + i).checked_sub(col0).filter(|&j| j < row.len());
        let s_diag = diag.map(|j| f64::from(row[j]) / tau);
        for (e, &cj) in row.iter_mut().zip(lse_cols) {
            *e = (scale * p(f64::from(*e) / tau, ri, cj)) as f32;
        }
        if let (Some(j), Some(x)) = (diag, s_diag) {
            row[j] = (scale * (p(x, ri, lse_cols[j]) - 2.0)) as f32;
        }
    }
}

/// `sum_i (r_i - S_ii / tau) + sum_j (c_j - S_jj / tau)`, over `N`.
fn infonce_from_lse(diag: &[f64], tau: f64, r: &[f64], c: &[f64]) -> f64 {
    let n = diag.len();
    let rows: f64 = (0..n).map(|i| r[i] - diag[i] / tau).sum();
    let cols: f64 = (0..n).map(|j| c[j] - diag[j] / tau).sum();
    (rows + cols) / n as f64
}

/// The row and column log-sum-exps of a whole `S / tau`.
fn lse_of(s: ArrayView2<f32>, tau: f64) -> (Vec<f64>, Vec<f64>) {
    let n = s.ncols();
    let rows = s
        .outer_iter()
        .map(|row| {
            let (m, sum) = row_max_sum(&row.to_vec(), tau);
            m + sum.ln()
        })
        .collect();
    let (mut cmax, mut csum) = (vec![f64::NEG_INFINITY; n], vec![0.0; n]);
    update_columns(s, tau, &mut cmax, &mut csum);
    let cols = cmax.iter().zip(&csum).map(|(m, s)| m + s.ln()).collect();
    (rows, cols)
}

/// `L_sig(S; t, b)` (SPEC §1) of a square float32 `S`, terms in float64, summed in float64.
pub fn sigmoid_loss_f32(s: ArrayView2<f32>, t: f64, b: f64) -> f64 {
    let n = s.nrows();
    let mut scratch = s.to_owned();
    sigmoid_block_f32::<false>(scratch.view_mut(), (0, 0), n, t, b) / n as f64
}

/// [`sigmoid_loss_f32`] and its gradient `G_ij = -(z_ij t/N) sigmoid(-z_ij (t S_ij - b))`
/// (evaluated in float64, stored in float32) written into `g` (SPEC §1).
pub fn sigmoid_loss_grad_f32(s: ArrayView2<f32>, t: f64, b: f64, mut g: ArrayViewMut2<f32>) -> f64 {
    let n = s.nrows();
    g.assign(&s);
    sigmoid_block_f32::<true>(g, (0, 0), n, t, b) / n as f64
}

/// `L_info(S; tau)` (SPEC §1) of a square float32 `S`, the log-sum-exps in float64.
pub fn infonce_loss_f32(s: ArrayView2<f32>, tau: f64) -> f64 {
    let (r, c) = lse_of(s, tau);
    let diag: Vec<f64> = s.diag().iter().map(|&x| f64::from(x)).collect();
    infonce_from_lse(&diag, tau, &r, &c)
}

/// [`infonce_loss_f32`] and its gradient `G = (P_row + P_col - 2I)/(N tau)` (float64, stored in
/// float32) written into `g`.
pub fn infonce_loss_grad_f32(s: ArrayView2<f32>, tau: f64, mut g: ArrayViewMut2<f32>) -> f64 {
    let n = s.nrows();
    let (r, c) = lse_of(s, tau);
    let diag: Vec<f64> = s.diag().iter().map(|&x| f64::from(x)).collect();
    g.assign(&s);
    infonce_grad_block_f32(g, (0, 0), &r, &c, tau, n);
    infonce_from_lse(&diag, tau, &r, &c)
}

impl Loss {
    /// The loss of a square float32 similarity matrix (the float32 path of [`Loss::value_s`]).
    pub fn value_s_f32(&self, s: ArrayView2<f32>) -> f64 {
        match *self {
            Loss::Sigmoid { t, b } => sigmoid_loss_f32(s, t, b),
            Loss::InfoNce { tau } => infonce_loss_f32(s, tau),
        }
    }

    /// The loss of a float32 `S` and its gradient `G = dL/dS` in float32 (the float32 path of
    /// [`Loss::value_grad_s`]).
    pub fn value_grad_s_f32(&self, s: ArrayView2<f32>, g: ArrayViewMut2<f32>) -> f64 {
        match *self {
            Loss::Sigmoid { t, b } => sigmoid_loss_grad_f32(s, t, b, g),
            Loss::InfoNce { tau } => infonce_loss_grad_f32(s, tau, g),
        }
    }
}

/// `u_i . v_i` for every row, accumulated in float64.
fn diag_dots(u: ArrayView2<f32>, v: ArrayView2<f32>) -> Vec<f64> {
    u.outer_iter()
        .zip(v.outer_iter())
        .map(|(a, b)| {
            a.iter()
                .zip(b.iter())
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum()
        })
        .collect()
}

/// The row and column log-sum-exps of `U V^T / tau` in one blocked pass (float32 products,
/// float64 sums); see [`super::blocked`].
fn log_sum_exps_f32(
    u: ArrayView2<f32>,
    v: ArrayView2<f32>,
    tau: f64,
    opts: BlockOptions,
) -> (Vec<f64>, Vec<f64>) {
    let n = u.nrows();
    let block = opts.block.clamp(1, n.max(1));
    let mut rows = Vec::with_capacity(n);
    let mut col_max = vec![f64::NEG_INFINITY; n];
    let mut col_sum = vec![0.0; n];
    let mut buf = Array2::<f32>::zeros((block, n));
    for r0 in (0..n).step_by(block) {
        let r1 = (r0 + block).min(n);
        let ub = u.slice(s![r0..r1, ..]);
        let mut sb = buf.slice_mut(s![..r1 - r0, ..]);
        let items: Vec<_> = sb
            .axis_chunks_iter_mut(Axis(1), COL_CHUNK)
            .zip(
                col_max
                    .chunks_mut(COL_CHUNK)
                    .zip(col_sum.chunks_mut(COL_CHUNK)),
            )
            .collect();
        let row_parts = map_items(items, opts.parallel, |k, (mut chunk, (cmax, csum))| {
            let c0 = k * COL_CHUNK;
            let vj = v.slice(s![c0..c0 + chunk.ncols(), ..]);
            sgemm(ub, vj.t(), chunk.view_mut(), false);
            update_columns(chunk.view(), tau, cmax, csum);
            chunk
                .outer_iter()
                .map(|row| match row.as_slice() {
                    Some(r) => row_max_sum(r, tau),
                    None => row_max_sum(&row.to_vec(), tau),
                })
                .collect::<Vec<(f64, f64)>>()
        });
        for i in 0..r1 - r0 {
            let m = row_parts
                .iter()
                .fold(f64::NEG_INFINITY, |a, p| a.max(p[i].0));
            let sum: f64 = row_parts.iter().map(|p| p[i].1 * (p[i].0 - m).exp()).sum();
            rows.push(m + sum.ln());
        }
    }
    let cols = col_max
        .iter()
        .zip(&col_sum)
        .map(|(m, s)| m + s.ln())
        .collect();
    (rows, cols)
}

/// The loss of float32 `(U, V)` in blocks (no gradient): the float32 path of
/// [`blocked_loss`](super::blocked_loss).
pub fn blocked_loss_f32(
    loss: &Loss,
    u: ArrayView2<f32>,
    v: ArrayView2<f32>,
    opts: BlockOptions,
) -> f64 {
    let n = u.nrows();
    match *loss {
        Loss::Sigmoid { t, b } => {
            let block = opts.block.clamp(1, n.max(1));
            let mut total = 0.0;
            let mut buf = Array2::<f32>::zeros((block, n));
            for r0 in (0..n).step_by(block) {
                let r1 = (r0 + block).min(n);
                let ub = u.slice(s![r0..r1, ..]);
                let mut sb = buf.slice_mut(s![..r1 - r0, ..]);
                let chunks: Vec<_> = sb.axis_chunks_iter_mut(Axis(1), COL_CHUNK).collect();
                let parts = map_items(chunks, opts.parallel, |k, mut chunk| {
                    let c0 = k * COL_CHUNK;
                    let vj = v.slice(s![c0..c0 + chunk.ncols(), ..]);
                    sgemm(ub, vj.t(), chunk.view_mut(), false);
                    sigmoid_block_f32::<false>(chunk, (r0, c0), n, t, b)
                });
                total += parts.iter().sum::<f64>();
            }
            total / n as f64
        }
        Loss::InfoNce { tau } => {
            let (r, c) = log_sum_exps_f32(u, v, tau, opts);
            infonce_from_lse(&diag_dots(u, v), tau, &r, &c)
        }
    }
}

/// The loss of float32 `(U, V)` and its float32 gradients `dL/dU = G V`, `dL/dV = G^T U`, in
/// blocks of rows: the float32 path of [`blocked_loss_grad`](super::blocked_loss_grad), with
/// the same passes, `block x N` float32 of extra memory, and the same reproducibility guarantee.
///
/// `U`, `V` are taken as given (row-normalise them first if they are raw); shapes must match.
pub fn blocked_loss_grad_f32(
    loss: &Loss,
    u: ArrayView2<f32>,
    v: ArrayView2<f32>,
    opts: BlockOptions,
) -> LossGradF32 {
    let (n, d) = u.dim();
    let block = opts.block.clamp(1, n.max(1));
    let lse = match *loss {
        Loss::InfoNce { tau } => Some(log_sum_exps_f32(u, v, tau, opts)),
        Loss::Sigmoid { .. } => None,
    };
    let mut du = Array2::<f32>::zeros((n, d));
    let mut dv = Array2::<f32>::zeros((n, d));
    let mut buf = Array2::<f32>::zeros((block, n));
    let mut total = 0.0;
    for r0 in (0..n).step_by(block) {
        let r1 = (r0 + block).min(n);
        let ub = u.slice(s![r0..r1, ..]);
        let mut sb = buf.slice_mut(s![..r1 - r0, ..]);
        // 1. S_B, then G_B in place, by chunks of columns.
        let chunks: Vec<_> = sb.axis_chunks_iter_mut(Axis(1), COL_CHUNK).collect();
        let parts = map_items(chunks, opts.parallel, |k, mut chunk| {
            let c0 = k * COL_CHUNK;
            let c1 = c0 + chunk.ncols();
            sgemm(ub, v.slice(s![c0..c1, ..]).t(), chunk.view_mut(), false);
            match (*loss, &lse) {
                (Loss::Sigmoid { t, b }, _) => sigmoid_block_f32::<true>(chunk, (r0, c0), n, t, b),
                (Loss::InfoNce { tau }, Some((r, c))) => {
                    infonce_grad_block_f32(chunk, (r0, c0), &r[r0..r1], &c[c0..c1], tau, n);
                    0.0
                }
                (Loss::InfoNce { .. }, None) => unreachable!("log-sum-exps computed above"),
            }
        });
        total += parts.iter().sum::<f64>();
        let g = sb.view();
        // 2. (dL/dU)_B = G_B V, by chunks of the block's rows.
        let mut du_b = du.slice_mut(s![r0..r1, ..]);
        let rows: Vec<_> = du_b
            .axis_chunks_iter_mut(Axis(0), ROW_CHUNK)
            .zip(g.axis_chunks_iter(Axis(0), ROW_CHUNK))
            .collect();
        map_items(rows, opts.parallel, |_, (out, gr)| sgemm(gr, v, out, false));
        // 3. (dL/dV)_J += G_B[:, J]^T U_B, by chunks of rows of dL/dV.
        let cols: Vec<_> = dv.axis_chunks_iter_mut(Axis(0), COL_CHUNK).collect();
        map_items(cols, opts.parallel, |k, out| {
            let c0 = k * COL_CHUNK;
            let gj = g.slice(s![.., c0..c0 + out.nrows()]);
            sgemm(gj.t(), ub, out, true);
        });
    }
    let value = match (*loss, &lse) {
        (Loss::InfoNce { tau }, Some((r, c))) => infonce_from_lse(&diag_dots(u, v), tau, r, c),
        _ => total / n as f64,
    };
    LossGradF32 { value, du, dv }
}

/// The loss of float32 `(U, V)` and its gradients, with `S` and `G` held in full (`N x N`
/// float32, one block of `N` rows of [`blocked_loss_grad_f32`]): the float32 path of
/// [`loss_grad_uv`](super::loss_grad_uv). For large `N` use [`blocked_loss_grad_f32`].
pub fn loss_grad_uv_f32(loss: &Loss, u: ArrayView2<f32>, v: ArrayView2<f32>) -> LossGradF32 {
    let opts = BlockOptions {
        block: u.nrows().max(1),
        parallel: true,
    };
    blocked_loss_grad_f32(loss, u, v, opts)
}

/// The loss of the row-normalised float32 `(X / ||X||, Y / ||Y||)` and its gradient with respect
/// to the raw `X` and `Y`, through the normalisation (SPEC §1), in blocks of `opts.block` rows:
/// the float32 path of [`loss_grad_raw`](super::loss_grad_raw).
///
/// # Errors
/// Shapes differ, `N < 2`, or a row cannot be normalised.
pub fn loss_grad_raw_f32(
    loss: &Loss,
    x: ArrayView2<f32>,
    y: ArrayView2<f32>,
    opts: BlockOptions,
) -> Result<LossGradF32> {
    if x.dim() != y.dim() {
        return Err(Error::ShapeMismatch {
            u_rows: x.nrows(),
            u_cols: x.ncols(),
            v_rows: y.nrows(),
            v_cols: y.ncols(),
        });
    }
    check_batch(x.nrows())?;
    let nx = normalize_rows_f32(x, "X")?;
    let ny = normalize_rows_f32(y, "Y")?;
    let lg = blocked_loss_grad_f32(loss, nx.u.view(), ny.u.view(), opts);
    Ok(LossGradF32 {
        value: lg.value,
        du: backprop_normalization_f32(nx.u.view(), nx.norms.view(), lg.du.view()),
        dv: backprop_normalization_f32(ny.u.view(), ny.norms.view(), lg.dv.view()),
    })
}

#[cfg(test)]
mod tests;
