//! Watching and stopping long work: the [`Monitor`] hook that the library's long loops call.
//!
//! A loop with steps (the free-embedding optimiser [`crate::optim::optimize_with`], the encoder
//! [`crate::encoder::train_monitored`]) polls [`Monitor::cancelled`] before every step and calls
//! [`Monitor::on_step`] every [`Monitor::every`] steps and once more at its last step (when
//! [`Monitor::observes`]). Returning [`ControlFlow::Break`] from `on_step`, or `true` from
//! `cancelled`, stops the run: it ends with [`crate::optim::Termination::Stopped`] and returns
//! its partial result. Loops without steps (restarts, sweep cells, a QR factorisation) poll
//! [`Monitor::cancelled`] and end with [`crate::error::Error::Interrupted`].
//!
//! Watching a run never changes it: the values reported at a due step are computed beside the
//! step, from the same parameters, and the result is bitwise that of an unwatched run
//! ([`Unwatched`], what [`crate::optim::optimize`] and [`crate::encoder::train`] use).
//!
//! [`Cancel`] is a shared flag: clone it, give one clone to the run and call [`Cancel::cancel`]
//! on another from any thread (a Ctrl-C handler, a GUI button).
//!
//! ```
//! use ccem::monitor::{Cancel, Monitor};
//! use ccem::optim::{optimize_with, FreeConfig, Termination};
//! use ccem::Loss;
//!
//! let cancel = Cancel::default();
//! cancel.cancel(); // e.g. from another thread
//! let cfg = FreeConfig::new(6, 6, Loss::sigmoid(1.0, 1.0)?, 0);
//! let r = optimize_with(&cfg, &cancel)?;
//! assert_eq!((r.termination, r.steps_run), (Termination::Stopped, 0));
//! # Ok::<(), ccem::Error>(())
//! ```

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One optimisation/training step as seen by a monitor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepProgress {
    /// Steps taken so far: the values below are those of the parameters after `step` steps.
    pub step: usize,
    /// The run's step limit.
    pub steps: usize,
    /// The loss at these parameters (a mini-batch run: the loss of the step's batch).
    pub loss: f64,
    /// The gradient's Euclidean norm (free embeddings: the Riemannian gradient over `U`, `V`
    /// and the learnt scalars; the encoder: over every weight and bias).
    pub grad_norm: f64,
    /// The sigmoid loss's scale `t` (`None` for InfoNCE).
    pub t: Option<f64>,
    /// The sigmoid loss's bias `b` (`None` for InfoNCE).
    pub b: Option<f64>,
    /// The margin `(min_i S_ii - max_{i != j} S_ij) / 2` (SPEC §7), where computed.
    pub margin: Option<f64>,
    /// The mean positive similarity `mean_i S_ii`, where computed.
    pub s_pos: Option<f64>,
    /// The mean negative similarity `mean_{i != j} S_ij`, where computed.
    pub s_neg: Option<f64>,
    /// Which random start this step belongs to (`0`-based; `0` for a run without restarts).
    pub restart: usize,
}

/// What a long loop calls so that its caller can observe progress and stop it.
pub trait Monitor: Sync {
    /// Called every `self.every()` steps and at the last step. `ControlFlow::Break(())` stops the run.
    fn on_step(&self, p: &StepProgress) -> ControlFlow<()>;
    /// Steps between two calls of [`Monitor::on_step`] (`0` counts as `1`).
    fn every(&self) -> usize {
        1
    }
    /// Polled in loops that have no steps (restarts, sweep cells, QR): true = stop now.
    /// Step loops poll it before every step too.
    fn cancelled(&self) -> bool {
        false
    }
    /// Whether [`Monitor::on_step`] wants to be called at all; `false` for a monitor that only
    /// cancels, so that the loop computes no progress values for it.
    fn observes(&self) -> bool {
        true
    }
}

/// The monitor of an unwatched run: it never stops anything and observes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unwatched;

impl Monitor for Unwatched {
    fn on_step(&self, _: &StepProgress) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn every(&self) -> usize {
        usize::MAX
    }
    fn observes(&self) -> bool {
        false
    }
}

/// A cancellation flag shared between clones: [`Cancel::cancel`] on one stops every run that
/// watches another.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag: every run watched by a clone stops at its next poll.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called on any clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Monitor for Cancel {
    fn on_step(&self, _: &StepProgress) -> ControlFlow<()> {
        if self.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
    fn every(&self) -> usize {
        usize::MAX
    }
    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }
    fn observes(&self) -> bool {
        false
    }
}

/// A view of a monitor that only forwards cancellation: for work that runs many monitored
/// loops at once (the cells of a sweep), whose step reports would interleave.
#[derive(Clone, Copy)]
pub struct CancelOnly<'a>(pub &'a dyn Monitor);

impl Monitor for CancelOnly<'_> {
    fn on_step(&self, _: &StepProgress) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn every(&self) -> usize {
        usize::MAX
    }
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
    fn observes(&self) -> bool {
        false
    }
}

/// `Err(Error::Interrupted)` when `m` is cancelled: the poll of a loop without steps.
///
/// # Errors
/// [`crate::error::Error::Interrupted`] naming `what` was interrupted.
pub fn check(m: &dyn Monitor, what: &str) -> crate::error::Result<()> {
    if m.cancelled() {
        Err(crate::error::Error::Interrupted(what.to_string()))
    } else {
        Ok(())
    }
}

/// A monitor's schedule for one step loop of `steps` steps.
pub(crate) struct Watch<'a> {
    m: &'a dyn Monitor,
    every: usize,
    observes: bool,
    /// The step limit (always due).
    steps: usize,
}

impl<'a> Watch<'a> {
    /// The schedule of `m` over a loop of `steps` steps.
    pub(crate) fn new(m: &'a dyn Monitor, steps: usize) -> Self {
        Watch {
            m,
            every: m.every().max(1),
            observes: m.observes(),
            steps,
        }
    }

    /// Whether the run must stop before its next step.
    pub(crate) fn cancelled(&self) -> bool {
        self.m.cancelled()
    }

    /// Whether step `step` is reported (every `every` steps and at the step limit).
    pub(crate) fn due(&self, step: usize) -> bool {
        self.observes && (step.is_multiple_of(self.every) || step == self.steps)
    }

    /// Whether the monitor observes at all (the last step of a run that stopped early is
    /// reported then).
    pub(crate) fn observes(&self) -> bool {
        self.observes
    }

    /// Reports `p`; `true` when the monitor asks to stop.
    pub(crate) fn report(&self, p: &StepProgress) -> bool {
        self.m.on_step(p).is_break()
    }
}

/// `(mean_i S_ii, mean_{i != j} S_ij)` of row-major `N x d` rows `x` (`U`) and `y` (`V`), from
/// the row sums in `O(N d)`: `sum_{i != j} S_ij = (sum_i u_i) . (sum_j v_j) - sum_i S_ii`.
pub(crate) fn mean_similarities(x: &[f64], y: &[f64], n: usize, d: usize) -> (f64, f64) {
    let mut su = vec![0.0; d];
    let mut sv = vec![0.0; d];
    let mut trace = 0.0;
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact(d)) {
        trace += xr.iter().zip(yr).map(|(a, b)| a * b).sum::<f64>();
        su.iter_mut().zip(xr).for_each(|(s, v)| *s += v);
        sv.iter_mut().zip(yr).for_each(|(s, v)| *s += v);
    }
    let total: f64 = su.iter().zip(&sv).map(|(a, b)| a * b).sum();
    let nf = n as f64;
    (trace / nf, (total - trace) / (nf * (nf - 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_is_shared_between_clones() {
        let a = Cancel::new();
        let b = a.clone();
        assert!(!b.is_cancelled() && !b.cancelled());
        a.cancel();
        assert!(b.is_cancelled() && b.cancelled());
        assert!(check(&b, "x").is_err());
        assert!(check(&Unwatched, "x").is_ok());
        assert!(CancelOnly(&b).cancelled());
    }

    #[test]
    fn a_watch_is_due_every_k_steps_and_at_the_end() {
        struct Every(usize);
        impl Monitor for Every {
            fn on_step(&self, _: &StepProgress) -> ControlFlow<()> {
                ControlFlow::Continue(())
            }
            fn every(&self) -> usize {
                self.0
            }
        }
        let m = Every(3);
        let w = Watch::new(&m, 7);
        let due: Vec<usize> = (0..=7).filter(|&k| w.due(k)).collect();
        assert_eq!(due, [0, 3, 6, 7]);
        assert!(!Watch::new(&Unwatched, 7).due(7));
        assert!(Watch::new(&Every(0), 2).due(1));
    }

    #[test]
    fn mean_similarities_match_the_dense_sum() {
        let x = [1.0, 0.0, 0.6, 0.8, 0.0, 1.0];
        let y = [0.0, 1.0, 1.0, 0.0, 0.6, 0.8];
        let (p, q) = mean_similarities(&x, &y, 3, 2);
        let dot = |i: usize, j: usize| x[2 * i] * y[2 * j] + x[2 * i + 1] * y[2 * j + 1];
        let trace = dot(0, 0) + dot(1, 1) + dot(2, 2);
        let all: f64 = (0..3)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .map(|(i, j)| dot(i, j))
            .sum();
        assert!((p - trace / 3.0).abs() < 1e-15);
        assert!((q - (all - trace) / 6.0).abs() < 1e-15);
    }
}
