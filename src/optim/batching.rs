//! Mini-batch training of free embeddings (SPEC.md §8, [`crate::batch`]).
//!
//! - `expected` (and any strategy at `B = N`) runs the full-batch solver of the parent module on
//!   the expected loss: the sigmoid loss with every negative term weighted by
//!   `w = (B-1)/(N-1)` ([`FreeConfig::negative_weight`]), with the same stopping rule.
//! - `shuffled`, `fixed`, `all`, `hardest` step on one batch at a time: the `B` rows of `X` and
//!   of `Y` in the batch are gathered into a `B x d` workspace, the batch loss (SPEC §1 with `N`
//!   replaced by `B`) and its Riemannian gradient are evaluated there exactly as for the full
//!   batch, and the gradient is scattered back (zero on the other rows). The optimiser then
//!   steps on the whole parameter vector (so Adam's momentum still moves rows outside the
//!   batch, as it does in PyTorch) and every row is renormalised. There is no stopping rule:
//!   the run takes `steps` batch steps with the learning-rate schedule; `converged` is `false`.
//!   InfoNCE steps on the batch loss itself (not its logarithm).
//! - The reported loss and gradient norm are those of the expected objective at the end (for
//!   the sigmoid loss the weighted loss; InfoNCE, which has none, the full-batch loss), plus
//!   the penalty if any.
//! - The negative-variance penalty (SPEC §8) is added to each batch's loss; under `expected` its
//!   expectation, `lambda` times the mean of `(S_ij + 1/(N-1))^2` over all negative pairs.

use super::{norm, FreeConfig, RestartOutcome, Solver};
use crate::batch::hardest::{check_hardest, HardestChooser};
use crate::batch::{BatchSampler, Batching, MiniBatch};
use crate::error::{Error, Result};
use crate::loss::minibatch::NegVariance;
use crate::loss::Loss;
use crate::loss::{ContrastiveLoss, Tuned};
use crate::monitor::Watch;
use crate::optim::objective::{Objective, Workspace};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};

/// `x == 0` (serde's `skip_serializing_if` for the penalty weight).
pub(super) fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl FreeConfig {
    /// Checks the mini-batch fields: the batch is for these `N` and this loss
    /// ([`MiniBatch::new`]), `hardest` is affordable, the penalty weight is finite and `>= 0`.
    pub(super) fn validate_batch(&self) -> Result<()> {
        NegVariance::new(self.neg_variance_weight, self.n.max(2))?;
        if let Some(mb) = self.batch {
            if mb.n() != self.n {
                return Err(Error::Config(format!(
                    "the mini-batch setting is for N = {} but the problem has N = {}",
                    mb.n(),
                    self.n
                )));
            }
            MiniBatch::new(self.n, mb.size(), Some(mb.batching()), &self.loss)?;
            if mb.batching() == Batching::Hardest && !mb.is_full() {
                check_hardest(self.n, mb.size())?;
            }
        }
        Ok(())
    }

    /// The weight of every negative term in the objective the run minimises in expectation:
    /// `(B-1)/(N-1)` for the sigmoid loss with batches, `1` otherwise (SPEC §8).
    pub fn negative_weight(&self) -> f64 {
        match (self.batch, self.loss.tuned()) {
            (Some(mb), Some(Tuned::Sigmoid { .. })) => mb.weight(),
            _ => 1.0,
        }
    }

    /// The penalty of the full-batch evaluation (`expected`, and the final report).
    /// The weight was checked by [`FreeConfig::validate`], so the construction cannot fail.
    pub(super) fn penalty(&self) -> Option<NegVariance> {
        (self.neg_variance_weight > 0.0)
            .then(|| NegVariance::new(self.neg_variance_weight, self.n).ok())
            .flatten()
    }

    /// The theory's prediction for the objective this run minimises in expectation (SPEC §3,
    /// §8): [`crate::batch::predict_trained`] at the final `loss`.
    pub fn prediction(&self, loss: &Loss) -> Option<crate::theory::Optimum> {
        crate::batch::predict_trained(
            self.n,
            self.d,
            loss,
            self.batch.as_ref(),
            self.neg_variance_weight > 0.0,
        )
    }

    /// The predicted `c*` of [`FreeConfig::prediction`], when it is a number.
    pub fn expected_c_star(&self, loss: &Loss) -> Option<f64> {
        self.prediction(loss)
            .map(|o| o.c_star)
            .filter(|c| c.is_finite())
    }
}

/// Buffers of a stochastic mini-batch run.
pub(super) struct Batched {
    mb: MiniBatch,
    /// The batch workspace (`B x B`).
    ws: Workspace,
    /// Gathered rows `X[batch]`, `Y[batch]` and their gradients (`B x d` each).
    bx: Vec<f64>,
    by: Vec<f64>,
    gbx: Vec<f64>,
    gby: Vec<f64>,
    /// The batch's indices.
    idx: Vec<usize>,
    /// `hardest`: the full `S` (`N x N`).
    s_full: Array2<f64>,
}

impl Batched {
    /// Buffers for `cfg` when it samples batches; `None` for the full batch or `expected`.
    pub(super) fn new(cfg: &FreeConfig) -> Option<Self> {
        let mb = cfg.batch.filter(|mb| mb.is_stochastic())?;
        let (b, d) = (mb.size(), cfg.d);
        let mut ws = Workspace::new(b, d);
        ws.set_penalty(cfg.penalty());
        let s_full = if mb.batching() == Batching::Hardest {
            Array2::zeros((cfg.n, cfg.n))
        } else {
            Array2::zeros((0, 0))
        };
        Some(Batched {
            mb,
            ws,
            bx: vec![0.0; b * d],
            by: vec![0.0; b * d],
            gbx: vec![0.0; b * d],
            gby: vec![0.0; b * d],
            idx: Vec::with_capacity(b),
            s_full,
        })
    }
}

impl Solver {
    /// Restart `r` of a stochastic mini-batch run (module documentation).
    pub(super) fn run_batched(
        &mut self,
        cfg: &FreeConfig,
        bt: &mut Batched,
        r: usize,
        t0: f64,
        b0: f64,
        watch: &Watch,
    ) -> RestartOutcome {
        let (n, d) = (self.n, self.d);
        let nd = n * d;
        let (mut diverged, mut scalars) = self.random_start(cfg, r as u64, t0, b0);
        let mut stopped = false;
        let mut reported = None;
        let r64 = r as u64;
        let mut sampler = BatchSampler::new(bt.mb, cfg.seed, r64);
        // `hardest` was checked by `validate_batch`.
        let mut hardest = (bt.mb.batching() == Batching::Hardest)
            .then(|| HardestChooser::new(&bt.mb, cfg.seed, r64).ok())
            .flatten();

        let mut steps_run = 0;
        while !diverged && steps_run < cfg.steps {
            if watch.cancelled() {
                stopped = true;
                break;
            }
            let loss_now = match cfg.loss.tuned() {
                Some(Tuned::Sigmoid { .. }) => Loss::from(Tuned::Sigmoid {
                    t: scalars.t(),
                    b: scalars.b(),
                }),
                _ => cfg.loss,
            };
            if let Some(chooser) = hardest.as_mut() {
                if chooser.needs_similarities() {
                    let x = ArrayView2::from_shape((n, d), &self.theta[..nd]).expect("N x d");
                    let y = ArrayView2::from_shape((n, d), &self.theta[nd..2 * nd]).expect("N x d");
                    general_mat_mul(1.0, &x, &y.t(), 0.0, &mut bt.s_full);
                }
                if chooser
                    .next_batch(&loss_now, bt.s_full.view(), &mut bt.idx)
                    .is_none()
                {
                    diverged = true;
                    break;
                }
                sampler.record(&bt.idx);
            } else {
                sampler.next_batch(&mut bt.idx);
            }
            for (k, &i) in bt.idx.iter().enumerate() {
                bt.bx[k * d..(k + 1) * d].copy_from_slice(&self.theta[i * d..(i + 1) * d]);
                bt.by[k * d..(k + 1) * d]
                    .copy_from_slice(&self.theta[nd + i * d..nd + (i + 1) * d]);
            }
            let obj = Objective::from(loss_now);
            // A due step also computes the batch's loss: the gradient is bitwise the same.
            let due = watch.due(steps_run);
            let ev = bt
                .ws
                .evaluate(obj, &bt.bx, &bt.by, &mut bt.gbx, &mut bt.gby, due);
            self.grad.fill(0.0);
            for (k, &i) in bt.idx.iter().enumerate() {
                self.grad[i * d..(i + 1) * d].copy_from_slice(&bt.gbx[k * d..(k + 1) * d]);
                self.grad[nd + i * d..nd + (i + 1) * d]
                    .copy_from_slice(&bt.gby[k * d..(k + 1) * d]);
            }
            scalars.gradient(ev.sum_h, ev.sum_hs, &mut self.grad[2 * nd..]);
            let gn = norm(&self.grad);
            if !gn.is_finite() {
                diverged = true;
                break;
            }
            if due {
                reported = Some(steps_run);
                if watch.report(&self.progress(cfg, r, steps_run, ev.loss, gn, &scalars)) {
                    stopped = true;
                    break;
                }
            }
            let lr = cfg.lr * cfg.schedule.factor(steps_run);
            steps_run += 1;
            if !self.step(lr, &mut scalars) {
                diverged = true;
                break;
            }
        }
        let (mut loss, mut grad_norm, mut grad_norm_relative) = (f64::NAN, f64::NAN, f64::NAN);
        if !diverged {
            let ev = self.evaluate(cfg, &scalars, true);
            grad_norm = norm(&self.grad);
            grad_norm_relative = if ev.g_l1 > 0.0 {
                grad_norm / ev.g_l1
            } else {
                0.0
            };
            loss = ev.loss;
            if watch.observes() && reported != Some(steps_run) {
                watch.report(&self.progress(cfg, r, steps_run, loss, grad_norm, &scalars));
            }
        }
        let (t, b) = super::scalar_values(&cfg.loss, &scalars);
        RestartOutcome {
            loss,
            t,
            b,
            steps_run,
            converged: false,
            grad_norm,
            grad_norm_relative,
            diverged: diverged || !loss.is_finite(),
            stopped,
            last_batches: sampler.last_batches(),
        }
    }
}
