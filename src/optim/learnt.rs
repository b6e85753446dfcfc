//! Where a run with learnt `t` ends (SPEC.md §7.1): the margin it approaches, the rate
//! `-log(L) / t`, and the stopping rule on the margin.
//!
//! With `t = exp(t')` learnt and a constellation within reach, the loss can be driven to `0`
//! and `t` grows without end, so the gradient-norm rule of [`super::optimize`] never fires in
//! a meaningful way. What converges is the geometry: the margin `m` of `(U, V)`, and
//! `-log(L) / t`, which tends to `m` when the bias sits at `r_b*` (SPEC §7.1). A run with a
//! learnt `t` therefore stops when the margin has converged: every [`MARGIN_CHECK_EVERY`]
//! steps the exact margin is recorded, and the run stops once the last
//! [`MARGIN_WINDOW`] records (a window of `MARGIN_CHECK_EVERY * (MARGIN_WINDOW - 1)` steps)
//! span at most `MARGIN_TOL * max(|m|, 1e-2)` (or at the step limit). The gradient-norm rule
//! is not used then.

use crate::numerics::log_softplus;

/// Steps between two margin records.
pub const MARGIN_CHECK_EVERY: usize = 50;
/// Records in the convergence window.
pub const MARGIN_WINDOW: usize = 41;
/// Relative spread of the margin over the window that counts as converged.
pub const MARGIN_TOL: f64 = 1e-5;

/// `(min_i S_ii, max_{i != j} S_ij)` for row-major `N x d` rows `x` (`U`) and `y` (`V`), by
/// direct dot products (`O(N^2 d)`, no allocation).
pub fn extremes(x: &[f64], y: &[f64], n: usize, d: usize) -> (f64, f64) {
    let (mut pos_min, mut neg_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        for j in 0..n {
            let yj = &y[j * d..(j + 1) * d];
            let s: f64 = xi.iter().zip(yj).map(|(a, b)| a * b).sum();
            if i == j {
                pos_min = pos_min.min(s);
            } else {
                neg_max = neg_max.max(s);
            }
        }
    }
    (pos_min, neg_max)
}

/// `log L_sig` of SPEC §1 for row-major unit rows, computed in log space so that it stays
/// finite where `L` underflows (`log L = logsumexp_ij log softplus(-z_ij (t S_ij - b)) - log N`,
/// with [`log_softplus`]).
pub fn log_sigmoid_loss(x: &[f64], y: &[f64], n: usize, d: usize, t: f64, b: f64) -> f64 {
    let mut terms = Vec::with_capacity(n * n);
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        for j in 0..n {
            let yj = &y[j * d..(j + 1) * d];
            let s: f64 = xi.iter().zip(yj).map(|(a, b)| a * b).sum();
            let logit = t * s - b;
            terms.push(log_softplus(if i == j { -logit } else { logit }));
        }
    }
    crate::numerics::log_sum_exp(terms.iter().copied()) - (n as f64).ln()
}

/// `log_loss_rate = -log(L) / t` of a run with learnt `t` (SPEC §7): it tends to the margin when
/// the bias sits at `margin_bias`. `None` unless the loss is the sigmoid loss with `t` learnt and
/// the run did not diverge. The one home of this key for the CLI and the Python package.
pub fn log_loss_rate(cfg: &super::FreeConfig, r: &super::FreeResult) -> Option<f64> {
    use crate::loss::ContrastiveLoss;
    match r.final_loss(cfg).tuned() {
        Some(crate::loss::Tuned::Sigmoid { t, b })
            if cfg.learn_t && !r.termination.is_diverged() =>
        {
            let (x, y) = (r.u.as_slice(), r.v.as_slice());
            x.zip(y)
                .map(|(x, y)| -log_sigmoid_loss(x, y, cfg.n, cfg.d, t, b) / t)
        }
        _ => None,
    }
}

/// The margin-convergence rule (module documentation).
#[derive(Clone, Debug, Default)]
pub struct MarginTracker {
    history: Vec<f64>,
}

impl MarginTracker {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a record is due at `step` (every [`MARGIN_CHECK_EVERY`] steps).
    pub fn due(&self, step: usize) -> bool {
        step.is_multiple_of(MARGIN_CHECK_EVERY)
    }

    /// Records the margin `m` and returns whether the margin has converged.
    pub fn record(&mut self, m: f64) -> bool {
        self.history.push(m);
        if self.history.len() < MARGIN_WINDOW {
            return false;
        }
        let w = &self.history[self.history.len() - MARGIN_WINDOW..];
        let lo = w.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        hi - lo <= MARGIN_TOL * m.abs().max(1e-2)
    }

    /// The last recorded margin.
    pub fn last(&self) -> Option<f64> {
        self.history.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_loss_matches_the_loss_where_it_does_not_underflow() {
        let (n, d) = (3, 2);
        let x = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0];
        let y = [0.6, 0.8, 0.0, 1.0, -0.8, 0.6];
        for &(t, b) in &[(1.0, 0.5), (10.0, 3.0), (50.0, -5.0)] {
            let mut direct = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let s: f64 = (0..d).map(|k| x[i * d + k] * y[j * d + k]).sum();
                    let z = if i == j { 1.0 } else { -1.0 };
                    direct += crate::numerics::softplus(-z * (t * s - b));
                }
            }
            direct /= n as f64;
            let got = log_sigmoid_loss(&x, &y, n, d, t, b);
            assert!(
                (got - direct.ln()).abs() < 1e-10,
                "{got} vs {}",
                direct.ln()
            );
        }
        // Where L underflows (here L ~ e^{-5e4}) the log stays finite, and with the bias at
        // r_b* = (1 + 0)/2, -log(L)/t tends to the margin 1/2.
        let (pmin, nmax) = extremes(&x, &x, n, d);
        assert_eq!((pmin, nmax), (1.0, 0.0));
        let t = 1e5;
        let rate = -log_sigmoid_loss(&x, &x, n, d, t, 0.5 * t) / t;
        assert!((rate - 0.5).abs() < 1e-4, "{rate}");
    }

    #[test]
    fn tracker_fires_only_on_a_flat_window() {
        let mut tr = MarginTracker::new();
        let mut fired = None;
        for step in 0..5000 {
            let m = 0.5 - (-(step as f64) / 200.0).exp();
            if tr.due(step) && tr.record(m) {
                fired = Some(step);
                break;
            }
        }
        let s = fired.expect("converges");
        // The change over the window must be below tol: e^{-s/200} * (e^{500/200} - 1) small.
        assert!(s > 2000, "{s}");
        let mut tr = MarginTracker::new();
        assert!((0..3000).all(|k| !(tr.due(k) && tr.record(k as f64))));
    }
}
