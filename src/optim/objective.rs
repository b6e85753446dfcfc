//! The objective of the free-embedding problem and its Riemannian gradient, evaluated in a
//! preallocated workspace (no allocation per evaluation).
//!
//! # Formula (SPEC.md §1)
//! For unit rows `X` (`= U`) and `Y` (`= V`), `N x d` each:
//!
//! 1. `S = X Y^T` (one `general_mat_mul` into the `N x N` buffer);
//! 2. the loss `L(S)` and `G = dL/dS`, written over `S` in place:
//!    - sigmoid: `H_ij = dL/dlogit_ij = -(z_ij / N) sigmoid(-z_ij (t S_ij - b))`, `G = t H`,
//!      and the two sums `sum_ij H_ij` and `sum_ij H_ij S_ij` that the scalar gradients need
//!      (see [`super::scalars`]);
//!    - InfoNCE: `G = (P_row + P_col - 2I) / (N tau)` with the row and column softmax of
//!      `S / tau`, each shifted by its own maximum;
//! 3. `dL/dU = G V` and `dL/dV = G^T U` (two more products into preallocated outputs);
//! 4. the Riemannian gradient on the sphere, `grad_i = (I - u_i u_i^T) dL/du_i`: for a raw row
//!    `x_i` of norm 1 this is also the gradient through the normalisation
//!    `dL/dx = (I - u u^T)(dL/du) / ||x||` of SPEC §1.
//!
//! The sigmoid kernel lives with the loss (`crate::loss::sigmoid`); the InfoNCE one here needs
//! the workspace's row and column buffers.

use crate::loss::contrastive::dense;
use crate::loss::sigmoid::sigmoid_grad_sums_in_place;
use crate::loss::{ContrastiveLoss, Loss, Tuned, Views};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

/// The scale and bias of one sigmoid evaluation, or the temperature of InfoNCE.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Objective {
    /// Sigmoid loss, logit `t S - b`, every negative term weighted by `w` (`1`: the loss
    /// itself; `(B-1)/(N-1)`: the expected mini-batch loss, SPEC §8).
    Sigmoid { t: f64, b: f64, w: f64 },
    /// Symmetric InfoNCE with temperature `tau`.
    InfoNce { tau: f64 },
    /// Any other loss, through its [`ContrastiveLoss`] dense path: on `S` for a loss of the
    /// cross views, on `K = Z Z^T` for one of the joint views (SPEC §1.0), with
    /// `dL/dZ = (G + G^T) Z`.
    Generic(Loss),
}

impl From<Loss> for Objective {
    /// A loss with a tuned kernel ([`ContrastiveLoss::tuned`]: SigLIP's sigmoid, whose kernel
    /// also gives the sums that the learnt `t` and `b` need, and CLIP's InfoNCE) runs it; every
    /// other loss goes through the trait.
    fn from(l: Loss) -> Self {
        match l.tuned() {
            Some(Tuned::Sigmoid { t, b }) => Objective::Sigmoid { t, b, w: 1.0 },
            Some(Tuned::InfoNce { tau }) => Objective::InfoNce { tau },
            None => Objective::Generic(l),
        }
    }
}

/// What one evaluation returns besides the gradients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StepEval {
    /// The loss, or `NaN` when it was not asked for.
    pub loss: f64,
    /// Sigmoid only: `sum_ij H_ij`, `H = dL/dlogit` (`0` for InfoNCE).
    pub sum_h: f64,
    /// Sigmoid only: `sum_ij H_ij S_ij` (`0` for InfoNCE).
    pub sum_hs: f64,
    /// `||G||_1 = sum_ij |G_ij|`: the total size of the forces `G_ij v_j` whose sum is
    /// `dL/du_i` (so `||dL/dU||_F <= ||G||_1`); the stopping rule's yardstick.
    pub g_l1: f64,
}

/// Buffers for one problem size: `S`/`G` (`N x N`), the InfoNCE row softmax (`N x N`), and the
/// per-row / per-column scratch vectors. Allocated once per [`super::optimize`] call.
pub(crate) struct Workspace {
    n: usize,
    d: usize,
    /// `S`, then `G` in place; row-major `N x N`.
    sg: Vec<f64>,
    /// InfoNCE: `exp(S_ij / tau - max_j S_ij / tau)` (row part).
    p: Vec<f64>,
    /// Per-row scratch (maxima, then sums).
    row: Vec<f64>,
    /// Per-column scratch.
    col: Vec<f64>,
    /// Per-column scratch (sums).
    col2: Vec<f64>,
    /// The diagonal of `S` (InfoNCE needs it after `S` is overwritten).
    diag: Vec<f64>,
    /// The negative-variance penalty added to the loss (SPEC §8), if any
    /// ([`Workspace::set_penalty`]).
    penalty: Option<crate::loss::minibatch::NegVariance>,
    /// A copy of `S` for the penalty (empty without one).
    s_keep: Vec<f64>,
}

impl Workspace {
    /// Buffers for `N` pairs in `R^d`.
    pub fn new(n: usize, d: usize) -> Self {
        Workspace {
            n,
            d,
            sg: vec![0.0; n * n],
            p: vec![0.0; n * n],
            row: vec![0.0; n],
            col: vec![0.0; n],
            col2: vec![0.0; n],
            diag: vec![0.0; n],
            penalty: None,
            s_keep: Vec::new(),
        }
    }

    /// Adds the negative-variance penalty of SPEC §8 to every evaluation (`None`: none).
    pub fn set_penalty(&mut self, p: Option<crate::loss::minibatch::NegVariance>) {
        self.penalty = p.filter(|p| p.lambda > 0.0);
        if self.penalty.is_some() {
            self.s_keep.resize(self.n * self.n, 0.0);
        }
    }

    /// Evaluates the objective at unit rows `x` (`U`) and `y` (`V`), both row-major `N x d`
    /// slices, and writes the Riemannian gradients into `gx`, `gy` (same layout).
    ///
    /// Rows must have norm 1 (the caller renormalises after every step); the projection
    /// `(I - u u^T)` then makes the gradient tangent to the sphere.
    pub fn evaluate(
        &mut self,
        obj: Objective,
        x: &[f64],
        y: &[f64],
        gx: &mut [f64],
        gy: &mut [f64],
        want_loss: bool,
    ) -> StepEval {
        let (n, d) = (self.n, self.d);
        let xv = ArrayView2::from_shape((n, d), x).expect("X is N x d");
        let yv = ArrayView2::from_shape((n, d), y).expect("Y is N x d");
        if let Objective::Generic(loss) = obj {
            if loss.views() == Views::Joint {
                return self.evaluate_joint(&loss, xv, yv, gx, gy);
            }
        }
        {
            let mut s = ArrayViewMut2::from_shape((n, n), &mut self.sg[..]).expect("S is N x N");
            general_mat_mul(1.0, &xv, &yv.t(), 0.0, &mut s);
        }
        if self.penalty.is_some() {
            // The kernels overwrite `S` with `G`: keep `S` for the penalty.
            self.s_keep.copy_from_slice(&self.sg);
        }
        let mut eval = match obj {
            Objective::Sigmoid { t, b, w } => {
                let p = if want_loss {
                    sigmoid_grad_sums_in_place::<true>(&mut self.sg, n, t, b, w)
                } else {
                    sigmoid_grad_sums_in_place::<false>(&mut self.sg, n, t, b, w)
                };
                StepEval {
                    loss: p.loss,
                    sum_h: p.sum_h,
                    sum_hs: p.sum_hs,
                    g_l1: p.g_l1,
                }
            }
            Objective::InfoNce { tau } => self.infonce_kernel(tau),
            Objective::Generic(loss) => {
                let mut g =
                    ArrayViewMut2::from_shape((n, n), &mut self.sg[..]).expect("S is N x N");
                let loss = dense::<f64, Loss, true>(&loss, g.view_mut());
                StepEval {
                    loss,
                    sum_h: 0.0,
                    sum_hs: 0.0,
                    g_l1: g.iter().map(|x| x.abs()).sum(),
                }
            }
        };
        if let Some(p) = self.penalty {
            let sv = ArrayView2::from_shape((n, n), &self.s_keep[..]).expect("S is N x N");
            let gv = ArrayViewMut2::from_shape((n, n), &mut self.sg[..]).expect("G is N x N");
            let r = p.add_value_grad(sv, gv);
            // `||G||_1` is that of the penalised gradient (both kernels report `sum |G_ij|`).
            eval.g_l1 = self.sg.iter().map(|g| g.abs()).sum();
            eval.loss += r;
        }
        let g = ArrayView2::from_shape((n, n), &self.sg[..]).expect("G is N x N");
        {
            let mut gxv = ArrayViewMut2::from_shape((n, d), &mut *gx).expect("dX is N x d");
            general_mat_mul(1.0, &g, &yv, 0.0, &mut gxv);
            let mut gyv = ArrayViewMut2::from_shape((n, d), &mut *gy).expect("dY is N x d");
            general_mat_mul(1.0, &g.t(), &xv, 0.0, &mut gyv);
        }
        project_rows(x, gx, d);
        project_rows(y, gy, d);
        eval
    }

    /// A loss of the joint views (SPEC §1.0): `K = Z Z^T`, its dense `G = dL/dK`, and
    /// `dL/dZ = (G + G^T) Z` split into `dL/dU` and `dL/dV`, projected onto the spheres.
    fn evaluate_joint(
        &mut self,
        loss: &Loss,
        xv: ArrayView2<f64>,
        yv: ArrayView2<f64>,
        gx: &mut [f64],
        gy: &mut [f64],
    ) -> StepEval {
        let (n, d) = (self.n, self.d);
        let z = ndarray::concatenate(ndarray::Axis(0), &[xv, yv]).expect("X and Y are N x d");
        let mut g = z.dot(&z.t());
        // The penalty reads `S = K[..N, N..]`, which the loss overwrites with `G`.
        let s_keep = self
            .penalty
            .map(|_| g.slice(ndarray::s![..n, n..]).to_owned());
        let mut value = dense::<f64, Loss, true>(loss, g.view_mut());
        if let (Some(p), Some(sk)) = (self.penalty, s_keep) {
            // `dR/dK` is `dR/dS` on the block `K[..N, N..]` (every entry its own variable).
            value += p.add_value_grad(sk.view(), g.slice_mut(ndarray::s![..n, n..]));
        }
        let g_l1 = g.iter().map(|x| x.abs()).sum();
        let dz = g.dot(&z) + g.t().dot(&z);
        gx.copy_from_slice(
            dz.slice(ndarray::s![..n, ..])
                .as_standard_layout()
                .as_slice()
                .expect("standard layout"),
        );
        gy.copy_from_slice(
            dz.slice(ndarray::s![n.., ..])
                .as_standard_layout()
                .as_slice()
                .expect("standard layout"),
        );
        project_rows(xv.as_slice().expect("X is row-major"), gx, d);
        project_rows(yv.as_slice().expect("Y is row-major"), gy, d);
        StepEval {
            loss: value,
            sum_h: 0.0,
            sum_hs: 0.0,
            g_l1,
        }
    }

    /// The InfoNCE loss and `G` over `S` in place (module documentation). Two exponentials
    /// per entry: the row softmax and the column softmax, each shifted by its own maximum, so
    /// no exponent is positive and no row or column sum is below 1.
    fn infonce_kernel(&mut self, tau: f64) -> StepEval {
        let n = self.n;
        let inv_tau = 1.0 / tau;
        let (sg, p) = (&mut self.sg, &mut self.p);
        let (rmax, cmax, csum, diag) =
            (&mut self.row, &mut self.col, &mut self.col2, &mut self.diag);
        cmax.fill(f64::NEG_INFINITY);
        csum.fill(0.0);
        for i in 0..n {
            let r = &sg[i * n..(i + 1) * n];
            diag[i] = r[i];
            let mut m = f64::NEG_INFINITY;
            for (cm, &s) in cmax.iter_mut().zip(r) {
                m = m.max(s);
                *cm = cm.max(s);
            }
            rmax[i] = m;
        }
        // Row sums (kept in `rmax`'s place as log-sum-exps after the pass) and column sums.
        let mut loss = 0.0;
        for i in 0..n {
            let mi = rmax[i] * inv_tau;
            let (srow, prow) = (&mut sg[i * n..(i + 1) * n], &mut p[i * n..(i + 1) * n]);
            let mut rs = 0.0;
            for j in 0..n {
                let a = srow[j] * inv_tau;
                let er = (a - mi).exp();
                let ec = (a - cmax[j] * inv_tau).exp();
                rs += er;
                csum[j] += ec;
                prow[j] = er;
                srow[j] = ec;
            }
            // log-sum-exp of row i is mi + ln(rs).
            loss += mi + rs.ln() - diag[i] * inv_tau;
            rmax[i] = rs;
        }
        for j in 0..n {
            loss += cmax[j] * inv_tau + csum[j].ln() - diag[j] * inv_tau;
        }
        let scale = inv_tau / n as f64;
        for c in csum.iter_mut() {
            *c = 1.0 / *c;
        }
        let mut g_l1 = 0.0;
        for i in 0..n {
            let inv_r = 1.0 / rmax[i];
            let (srow, prow) = (&mut sg[i * n..(i + 1) * n], &p[i * n..(i + 1) * n]);
            for j in 0..n {
                let g = scale * (prow[j] * inv_r + srow[j] * csum[j]);
                g_l1 += g;
                srow[j] = g;
            }
            // The diagonal is P_row,ii + P_col,ii - 2 <= 0: it was counted as positive above.
            let gii = srow[i] - 2.0 * scale;
            g_l1 += gii.abs() - srow[i];
            srow[i] = gii;
        }
        StepEval {
            loss: loss / n as f64,
            sum_h: 0.0,
            sum_hs: 0.0,
            g_l1,
        }
    }
}

/// `g_i <- g_i - (g_i . x_i) x_i` for every row (`x_i` of norm 1): the projection onto the
/// tangent space of the sphere at `x_i`.
fn project_rows(x: &[f64], g: &mut [f64], d: usize) {
    for (xr, gr) in x.chunks_exact(d).zip(g.chunks_exact_mut(d)) {
        let dot: f64 = xr.iter().zip(gr.iter()).map(|(a, b)| a * b).sum();
        for (gv, &xv) in gr.iter_mut().zip(xr) {
            *gv -= dot * xv;
        }
    }
}
