//! Mini-batch training of the encoder (SPEC.md §8, [`crate::batch`]).
//!
//! - `expected` (sigmoid only) and the negative-variance penalty at the full batch train the
//!   full network on the full data with `G = dL/dS` of the expected objective: the sigmoid
//!   gradient with its off-diagonal entries multiplied by `w = (B-1)/(N-1)`
//!   ([`weight_negatives`]), plus the penalty's gradient.
//! - `shuffled`, `fixed`, `all`, `hardest`: a second network of batch size `B` holds the
//!   parameters during training. Each step copies the batch's `2B` inputs (its `x^u` and `x^v`
//!   rows) into it and takes one SGD step on the batch loss (plus the penalty) there, so a step
//!   costs what a full-batch step of size `B` costs (the per-sample speed is that of the full
//!   batch; `benches/encoder.rs`). `hardest` also runs the full network forward each step to
//!   score every batch. At the end the parameters go back to the full network, which is
//!   evaluated on all `N` pairs.
//! - The reported loss is the expected objective at the end: for the sigmoid loss the
//!   weighted loss, for InfoNCE the full-batch loss; plus the penalty on all pairs.

use super::network::Encoder;
use super::{EncoderConfig, EncoderResult, LossObserver};
use crate::base::Real;
use crate::batch::hardest::HardestChooser;
use crate::batch::{BatchSampler, Batching, MiniBatch};
use crate::loss::minibatch::{sigmoid_loss_weighted, weight_negatives, NegVariance};
use crate::loss::Loss;
use crate::loss::{ContrastiveLoss, Tuned};
use crate::monitor::Watch;
use crate::optim::Termination;
use crate::valid::Valid;
use ndarray::{s, ArrayView2};

/// `x == 0` (serde's `skip_serializing_if` for the penalty weight).
pub(super) fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Copies every weight and bias of `src` into `dst` (same `d` and layers).
fn copy_params<T: Real>(src: &Encoder<T>, dst: &mut Encoder<T>) {
    for l in 0..src.layers() {
        dst.weight_mut(l).assign(&src.weight(l));
        dst.bias_mut(l).assign(&src.bias(l));
    }
}

/// The expected objective at the last forward pass of `net` (module documentation).
fn objective_value<T: Real>(
    net: &Encoder<T>,
    loss: &Loss,
    w: f64,
    penalty: Option<NegVariance>,
) -> f64 {
    let s = net.similarities();
    let base = match loss.tuned() {
        Some(Tuned::Sigmoid { t, b }) if w != 1.0 => sigmoid_loss_weighted(s, t, b, w),
        _ => net.last_loss(loss),
    };
    base + penalty.map_or(0.0, |p| p.value(s))
}

/// [`super::train_with`] for a mini-batch run or a penalised one (module documentation).
///
/// The configuration is checked (the batch is for `N`, `hardest` is affordable, the penalty
/// weight is valid). An `expected` setting with InfoNCE (which [`MiniBatch::new`] refuses for
/// that loss) trains on the plain full-batch loss, InfoNCE having no weighted form.
pub(super) fn train_batched<T: Real>(
    cfg: &Valid<EncoderConfig>,
    loss: &Loss,
    mut observer: Option<LossObserver<'_>>,
    watch: &Watch,
) -> EncoderResult {
    let n = cfg.n;
    let mb = cfg.batch.unwrap_or_else(|| MiniBatch::full(n));
    let penalty = NegVariance::new(cfg.neg_variance_weight, n)
        .ok()
        .filter(|p| p.lambda > 0.0);
    let w = match loss.tuned() {
        Some(Tuned::Sigmoid { .. }) => mb.weight(),
        _ => 1.0,
    };
    let adjust = |s: ArrayView2<'_, f64>, mut g: ndarray::ArrayViewMut2<'_, f64>| {
        if w != 1.0 && !mb.is_stochastic() {
            weight_negatives(g.view_mut(), w);
        }
        if let Some(p) = penalty {
            p.add_value_grad(s, g);
        }
    };
    // The same configuration without its mini-batch fields: still valid.
    let mut full = Encoder::<T>::from_valid(&Valid::new_unchecked(EncoderConfig {
        batch: None,
        neg_variance_weight: 0.0,
        ..**cfg
    }));
    let mut steps_run = 0;
    let mut diverged = false;
    let mut stopped = false;
    let mut last_batches = Vec::new();
    if !mb.is_stochastic() {
        for k in 0..cfg.steps {
            if watch.cancelled() {
                stopped = true;
                break;
            }
            if !full.grad_with(loss, adjust) {
                diverged = true;
                break;
            }
            if let Some(obs) = observer.as_mut() {
                obs(k, objective_value(&full, loss, w, penalty));
            }
            if watch.due(k) {
                let value = objective_value(&full, loss, w, penalty);
                if watch.report(&super::progress(&full, loss, value, k, cfg.steps)) {
                    stopped = true;
                    break;
                }
            }
            steps_run += 1;
            if !full.sgd_step(cfg.lr) {
                diverged = true;
                break;
            }
        }
    } else {
        let bsz = mb.size();
        // Batch size `B >= 2` (a valid mini-batch): still a valid configuration.
        let mut worker = Encoder::<T>::from_valid(&Valid::new_unchecked(EncoderConfig {
            n: bsz,
            batch: None,
            neg_variance_weight: 0.0,
            ..**cfg
        }));
        copy_params(&full, &mut worker);
        let mut sampler = BatchSampler::new(mb, cfg.seed, 0);
        // `hardest` was checked by `EncoderConfig::validate`.
        let mut hardest = (mb.batching() == Batching::Hardest)
            .then(|| HardestChooser::new(&mb, cfg.seed, 0).ok())
            .flatten();
        let mut idx = Vec::with_capacity(bsz);
        let data = full.inputs().to_owned();
        for k in 0..cfg.steps {
            if watch.cancelled() {
                stopped = true;
                break;
            }
            if let Some(chooser) = hardest.as_mut() {
                if chooser.needs_similarities() {
                    copy_params(&worker, &mut full);
                    full.loss(loss);
                }
                if chooser
                    .next_batch(loss, full.similarities(), &mut idx)
                    .is_none()
                {
                    diverged = true;
                    break;
                }
                sampler.record(&idx);
            } else {
                sampler.next_batch(&mut idx);
            }
            {
                let mut dst = worker.inputs_mut();
                for (r, &i) in idx.iter().enumerate() {
                    dst.slice_mut(s![r, ..]).assign(&data.slice(s![i, ..]));
                    dst.slice_mut(s![bsz + r, ..])
                        .assign(&data.slice(s![n + i, ..]));
                }
            }
            if !worker.grad_with(loss, adjust) {
                diverged = true;
                break;
            }
            if let Some(obs) = observer.as_mut() {
                obs(k, objective_value(&worker, loss, 1.0, penalty));
            }
            if watch.due(k) {
                let value = objective_value(&worker, loss, 1.0, penalty);
                if watch.report(&super::progress(&worker, loss, value, k, cfg.steps)) {
                    stopped = true;
                    break;
                }
            }
            steps_run += 1;
            if !worker.sgd_step(cfg.lr) {
                diverged = true;
                break;
            }
        }
        copy_params(&worker, &mut full);
        last_batches = sampler.last_batches();
    }
    let value = {
        let raw = full.loss(loss);
        if raw.is_finite() {
            objective_value(&full, loss, w, penalty)
        } else {
            raw
        }
    };
    diverged |= !value.is_finite();
    if let Some(obs) = observer.as_mut() {
        obs(steps_run, value);
    }
    if !diverged && watch.observes() && !stopped {
        // The gradient at the final parameters, for the report only.
        full.grad_with(loss, adjust);
        watch.report(&super::progress(&full, loss, value, steps_run, cfg.steps));
    }
    let s = full.similarities();
    let nf = n as f64;
    let trace: f64 = s.diag().sum();
    EncoderResult {
        s_pos: trace / nf,
        s_neg: (s.sum() - trace) / (nf * (nf - 1.0)),
        loss: value,
        termination: if stopped {
            Termination::Stopped
        } else {
            Termination::from_flags(false, diverged)
        },
        steps_run,
        u: full.u().mapv(Real::to_f64),
        v: full.v().mapv(Real::to_f64),
        last_batches,
    }
}
