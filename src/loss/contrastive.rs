//! [`ContrastiveLoss`]: what a loss is, for every algorithm of the crate.
//!
//! A loss of `N` pairs of unit rows `(u_i, v_i)` is a function of the similarity matrix
//! `S = U V^T` (SPEC §1). It states:
//!
//! - its name and its parameters ([`ContrastiveLoss::name`], [`ContrastiveLoss::params`]);
//! - what it needs before the main pass ([`ContrastiveLoss::prepass`]): nothing (the additive
//!   losses, `sum phi(S_ii) + sum psi(S_ij)`), or the per-anchor log-sum-exps of `S / tau`
//!   over each row and each column (the InfoNCE family), which the driver computes in one
//!   blocked pass ([`Lse`]);
//! - its terms and its gradient on one block of `S` ([`ContrastiveLoss::block`]), written
//!   once, generic over the precision `R: Real` of the block;
//! - how the block sums (and the pre-pass) make the value ([`ContrastiveLoss::finish`]).
//!
//! With that, [`super::driver`] evaluates it in blocks of rows (memory `O(N * block)`), in
//! either precision, bitwise independent of the thread count; [`super::evaluate`] adds the
//! row normalisation; and the dense `N x N` entry points used by the optimiser and the encoder
//! ([`ContrastiveLoss::value_s`], [`ContrastiveLoss::value_grad_s`],
//! [`ContrastiveLoss::grad_s`]) come for free, though a loss may override them with a tuned
//! kernel.
//!
//! A loss that exists only in a downstream crate (or a test) implements this trait and runs
//! through [`super::driver`] and [`super::evaluate::evaluate_with`]; a built-in loss is one file
//! in `src/loss/` and one line of the registry ([`super::registry`]). `docs/ARCHITECTURE.md`
//! gives the recipe.

use super::lse::{anchor_lse_of, lse_of, Lse};
use crate::base::Real;
use ndarray::{ArrayView2, ArrayViewMut2};
use std::fmt::Debug;

/// Which similarities a loss reads (SPEC §1.0, "Views").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Views {
    /// The cross-view similarities `S = U V^T` (`N x N`): pair `i`'s positive is `S_ii`.
    Cross,
    /// The similarities of all `2N` views, `K = Z Z^T` with `Z = [U; V]` (`2N x 2N`): anchor
    /// `a < N` is `u_a`, anchor `a >= N` is `v_{a - N}`, the positive of `a` is
    /// `(a + N) mod 2N`, and `K_aa = 1` is the anchor itself. The gradient is
    /// `dL/dZ = (G + G^T) Z` with `G = dL/dK`, every entry of `K` taken as its own variable.
    Joint,
}

/// What a loss needs from a pass over `S` before its terms can be evaluated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Prepass {
    /// Nothing: every term depends on its own `S_ij` (an additive loss).
    None,
    /// The log-sum-exps of every row and every column of `S / tau` (see [`Lse`]).
    LogSumExp {
        /// `1 / tau`.
        inv_tau: f64,
    },
    /// The weighted log-sum-exp of every row (anchor) of `S / tau` (or `K / tau`),
    /// `ln sum_k w_ak e^{S_ak / tau}` with the weights of [`ContrastiveLoss::lse_weight`]; the
    /// columns are not computed.
    AnchorLogSumExp {
        /// `1 / tau`.
        inv_tau: f64,
    },
}

/// A dense kernel of the free-embedding optimiser tuned for one loss (SPEC §1), which a loss
/// declares through [`ContrastiveLoss::tuned`]: the optimiser (`optim::objective`) runs it in
/// its preallocated workspace instead of the generic [`dense`] path. Every other algorithm
/// reads the same facts from it: the learnt scalars exist for [`Tuned::Sigmoid`] only, and so
/// does the expected mini-batch loss of SPEC §8 (negatives weighted by `w`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tuned {
    /// SigLIP's sigmoid loss with logit `t S - b` and no within-view negatives: the kernel that
    /// also returns the sums the learnt `t` and `b` need (SPEC §7) and weights every negative
    /// term by `w` (SPEC §8).
    Sigmoid {
        /// The scale `t`.
        t: f64,
        /// The bias `b`.
        b: f64,
    },
    /// CLIP's symmetric InfoNCE with temperature `tau` and no within-view negatives: the row
    /// and column softmax in one pass over the workspace.
    InfoNce {
        /// The temperature `tau`.
        tau: f64,
    },
}

/// Where a block of `S` lies, and the pre-pass restricted to it.
#[derive(Clone, Copy, Debug)]
pub struct BlockAt<'a> {
    /// The block's first row in `S`.
    pub row0: usize,
    /// The block's first column in `S`.
    pub col0: usize,
    /// The number of rows (and columns) of the whole matrix: `N` for [`Views::Cross`], `2N`
    /// for [`Views::Joint`].
    pub n: usize,
    /// `N`, the number of pairs.
    pub pairs: usize,
    /// The pre-pass ([`Prepass::LogSumExp`]), whole (index it with `row0 + i`, `col0 + j`).
    pub lse: Option<&'a Lse>,
}

impl BlockAt<'_> {
    /// The local column of the positive pair of the block's row `i`, if it lies in the block
    /// (of `ncols` columns).
    #[inline]
    pub fn diag_col(&self, i: usize, ncols: usize) -> Option<usize> {
        (self.row0 + i)
            .checked_sub(self.col0)
            .filter(|&j| j < ncols)
    }

    /// [`Views::Joint`]: the local column of the positive of the block's row `i`
    /// (`(row0 + i + N) mod 2N`), if it lies in the block (of `ncols` columns).
    #[inline]
    pub fn positive_col(&self, i: usize, ncols: usize) -> Option<usize> {
        let a = self.row0 + i;
        let pos = if a < self.pairs {
            a + self.pairs
        } else {
            a - self.pairs
        };
        pos.checked_sub(self.col0).filter(|&j| j < ncols)
    }
}

/// A contrastive loss of `S = U V^T` (module documentation).
///
/// # Example: a loss defined outside the crate
/// ```
/// use ccem::base::Real;
/// use ccem::loss::contrastive::{BlockAt, ContrastiveLoss};
/// use ccem::loss::driver;
/// use ccem::loss::BlockOptions;
/// use ndarray::{array, ArrayViewMut2};
///
/// /// `L = (1/N) sum_ij (S_ij - delta_ij)^2`.
/// #[derive(Debug)]
/// struct Square;
/// impl ContrastiveLoss for Square {
///     fn name(&self) -> &'static str { "square" }
///     fn params(&self) -> Vec<(&'static str, f64)> { vec![] }
///     fn block<R: Real, const GRAD: bool>(&self, mut s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
///         let mut total = 0.0;
///         for ((i, j), e) in s.indexed_iter_mut() {
///             let target = if at.row0 + i == at.col0 + j { 1.0 } else { 0.0 };
///             let r = e.to_f64() - target;
///             total += r * r;
///             if GRAD { *e = R::from_f64(2.0 * r / at.n as f64); }
///         }
///         total
///     }
/// }
/// let u = array![[1.0, 0.0], [0.0, 1.0]];
/// let lg = driver::value_grad(&Square, u.view(), u.view(), BlockOptions::default());
/// assert_eq!(lg.value, 0.0);
/// ```
pub trait ContrastiveLoss: Debug + Send + Sync {
    /// The loss's name, as the command line and Python spell it (`sigmoid`, `infonce`, ...).
    fn name(&self) -> &'static str;

    /// Its parameters, `(name, value)`, in the order the outputs list them.
    fn params(&self) -> Vec<(&'static str, f64)>;

    /// The similarities it reads (default: [`Views::Cross`]).
    fn views(&self) -> Views {
        Views::Cross
    }

    /// [`Prepass::AnchorLogSumExp`]: the weight `w_ak >= 0` of entry `(a, k)` in anchor `a`'s
    /// denominator (`0` leaves it out); `pairs` is `N` (default: `1`).
    fn lse_weight(&self, _a: usize, _k: usize, _pairs: usize) -> f64 {
        1.0
    }

    /// What the driver computes before the main pass (default: nothing).
    fn prepass(&self) -> Prepass {
        Prepass::None
    }

    /// The sum of the loss's terms over a block of `S` (not yet divided by anything; see
    /// [`ContrastiveLoss::finish`]), and with `GRAD` the block overwritten in place by
    /// `G = dL/dS` (each entry read before it is written).
    ///
    /// `s` holds `S[row0.., col0..]` in precision `R`; evaluate each term in `f64` from
    /// [`Real::to_f64`] and store `G` with [`Real::from_f64`].
    fn block<R: Real, const GRAD: bool>(&self, s: ArrayViewMut2<R>, at: &BlockAt) -> f64;

    /// Whether [`ContrastiveLoss::finish`] needs the block sums for the value, beyond the
    /// pre-pass (default `true`); `false` lets the driver skip the main pass when no gradient
    /// is asked for (InfoNCE: the value is its log-sum-exps').
    fn value_needs_blocks(&self) -> bool {
        true
    }

    /// The loss from the sum of [`ContrastiveLoss::block`] over all blocks and, for
    /// [`Prepass::LogSumExp`], the log-sum-exps (default: `sum / N`).
    fn finish(&self, block_sum: f64, n: usize, _lse: Option<&Lse>) -> f64 {
        block_sum / n as f64
    }

    /// The value in open_clip's `ClipLoss` convention, for a loss that has one (InfoNCE: half
    /// of ccem's sum of the two cross-entropies); `None` for the others.
    fn clip_value(&self, _value: f64) -> Option<f64> {
        None
    }

    /// The optimiser's tuned kernel for this loss, if it has one ([`Tuned`]; default `None`:
    /// the generic dense path).
    fn tuned(&self) -> Option<Tuned> {
        None
    }

    /// Whether the free-embedding optimiser steps on `log L` rather than `L` (default `false`):
    /// for a loss that is positive and falls by orders of magnitude towards its optimum (the
    /// InfoNCE family at small `tau`), so that Adam's steps keep their scale (`optim` module
    /// documentation, "InfoNCE steps on `log L`").
    fn steps_on_log(&self) -> bool {
        false
    }

    /// For a loss that is a sum of one term per entry of `S` whose terms do not depend on `N`,
    /// `L = (1/N) sum_ij term(S_ij, i == j)` (SigLIP's sigmoid): the term of an entry `s`, a
    /// positive one when `positive` (default `None`: the loss is not such a sum). The hardest
    /// batch search (`batch::hardest`) then sums the terms per batch instead of evaluating each
    /// batch's loss.
    fn pair_term(&self, _s: f64, _positive: bool) -> Option<f64> {
        None
    }

    /// The affinity of pairs `i != j` of `S` in the even-sized spectral clustering of the
    /// hardest batches (Cho et al.; `batch::hardest`, batches of `b`): large when the two pairs
    /// add much loss by sharing a batch. Default: with [`ContrastiveLoss::pair_term`], the two
    /// negatives' terms `term(S_ij) + term(S_ji)`; otherwise the loss of the pair's own `2 x 2`
    /// block of `S` (a loss of the cross views).
    fn pair_affinity(&self, s: ArrayView2<f64>, i: usize, j: usize, _b: usize) -> f64 {
        if let (Some(a), Some(c)) = (
            self.pair_term(s[[i, j]], false),
            self.pair_term(s[[j, i]], false),
        ) {
            return a + c;
        }
        let sub = [s[[i, i]], s[[i, j]], s[[j, i]], s[[j, j]]];
        self.value_s(ArrayView2::from_shape((2, 2), &sub[..]).expect("2 x 2"))
    }

    /// The loss of a whole `N x N` similarity matrix (dense; [`dense`]). Only for
    /// [`Views::Cross`]: a loss of the joint views needs `U` and `V` ([`super::driver`]).
    fn value_s(&self, s: ArrayView2<f64>) -> f64 {
        let mut scratch = s.to_owned();
        dense::<f64, Self, false>(self, scratch.view_mut())
    }

    /// The loss of `S` and `G = dL/dS` written into `g` (same shape).
    fn value_grad_s(&self, s: ArrayView2<f64>, mut g: ArrayViewMut2<f64>) -> f64 {
        g.assign(&s);
        dense::<f64, Self, true>(self, g)
    }

    /// `G = dL/dS` alone, written into `g`; `false` if a non-finite value appeared.
    fn grad_s(&self, s: ArrayView2<f64>, g: ArrayViewMut2<f64>) -> bool {
        let mut g = g;
        let v = self.value_grad_s(s, g.view_mut());
        v.is_finite() && g.iter().all(|x| x.is_finite())
    }
}

/// The loss of a whole square matrix of its views held in `s` (`S`, `N x N`, for
/// [`Views::Cross`]; `K`, `2N x 2N`, for [`Views::Joint`]), and with `GRAD` `s` overwritten by
/// `G = dL/dS`: the dense path of [`ContrastiveLoss::value_s`] and
/// [`ContrastiveLoss::value_grad_s`] for a loss without a tuned dense kernel (and the float32
/// dense path, `R = f32`).
pub fn dense<R: Real, L: ContrastiveLoss + ?Sized, const GRAD: bool>(
    loss: &L,
    mut s: ArrayViewMut2<R>,
) -> f64 {
    let n = s.nrows();
    let pairs = match loss.views() {
        Views::Cross => n,
        Views::Joint => n / 2,
    };
    let lse = match loss.prepass() {
        Prepass::None => None,
        Prepass::LogSumExp { inv_tau } => Some(lse_of(s.view(), inv_tau)),
        Prepass::AnchorLogSumExp { inv_tau } => {
            let joint = loss.views() == Views::Joint;
            Some(anchor_lse_of(s.view(), inv_tau, 0, pairs, joint, |a, k| {
                loss.lse_weight(a, k, pairs)
            }))
        }
    };
    let at = BlockAt {
        row0: 0,
        col0: 0,
        n,
        pairs,
        lse: lse.as_ref(),
    };
    let total = loss.block::<R, GRAD>(s.view_mut(), &at);
    loss.finish(total, pairs, lse.as_ref())
}
