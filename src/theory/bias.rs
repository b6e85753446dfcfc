//! How the bias `b` is set across a grid of scales `t`, and the phase boundaries that follow.

use super::{
    antipodal_threshold_tied, antipodal_threshold_tied_weighted,
    ccem_log_derivative_ratio_weighted, etf_threshold_tied_weighted,
};
use serde::{Deserialize, Serialize};

/// The bias as a function of the scale `t` (SPEC §1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum BiasMode {
    /// `b = t` (the paper's figures).
    Tied,
    /// A fixed `b`, whatever `t`.
    Fixed(f64),
    /// The relative bias `r_b = b / t` (Bangachev et al. 2025): `b = r_b t`.
    Relative(f64),
}

impl BiasMode {
    /// The bias at scale `t`.
    #[inline]
    pub fn bias(self, t: f64) -> f64 {
        match self {
            BiasMode::Tied => t,
            BiasMode::Fixed(b) => b,
            BiasMode::Relative(r) => r * t,
        }
    }

    /// A short label: `tied`, `b=1.5`, `rb=0.8`.
    pub fn label(self) -> String {
        match self {
            BiasMode::Tied => "tied (b = t)".to_string(),
            BiasMode::Fixed(b) => format!("b = {b}"),
            BiasMode::Relative(r) => format!("b = {r} t"),
        }
    }

    /// Scales `t` in `(t_lo, t_hi]` where the phase changes from non-ETF to ETF (`l'(0)` changes
    /// sign), for batch size `n`. For [`BiasMode::Tied`] this is the closed form
    /// `((N-1)/N) log(N-3)`; otherwise it is located by scanning `steps` points and bisecting.
    pub fn etf_boundaries(self, n: usize, t_lo: f64, t_hi: f64, steps: usize) -> Vec<f64> {
        self.etf_boundaries_weighted(n, 1.0, t_lo, t_hi, steps)
    }

    /// Scales where the phase changes to or from antipodal (`l'(1)` changes sign). For
    /// [`BiasMode::Tied`] the closed form `(1/2) log((N-2)/2)`; in general `t + b = log((N-2)/2)`.
    pub fn antipodal_boundaries(self, n: usize, t_lo: f64, t_hi: f64, steps: usize) -> Vec<f64> {
        if let BiasMode::Tied = self {
            return antipodal_threshold_tied(n)
                .filter(|&t| t > t_lo && t <= t_hi)
                .into_iter()
                .collect();
        }
        self.antipodal_boundaries_weighted(n, 1.0, t_lo, t_hi, steps)
    }

    /// [`BiasMode::etf_boundaries`] for the loss whose negative pairs are weighted by `w`
    /// (SPEC §8, mini-batches: `w = (B-1)/(N-1)`); the tied closed form is
    /// [`etf_threshold_tied_weighted`].
    pub fn etf_boundaries_weighted(
        self,
        n: usize,
        w: f64,
        t_lo: f64,
        t_hi: f64,
        steps: usize,
    ) -> Vec<f64> {
        if let BiasMode::Tied = self {
            return etf_threshold_tied_weighted(n, w)
                .filter(|&t| t > t_lo && t <= t_hi)
                .into_iter()
                .collect();
        }
        sign_changes(
            |t| ccem_log_derivative_ratio_weighted(n, t, self.bias(t), w, 0.0),
            t_lo,
            t_hi,
            steps,
        )
    }

    /// [`BiasMode::antipodal_boundaries`] under the negative weight `w` (SPEC §8): in general
    /// `t + b = log(w (N-2)/2)`; tied, [`antipodal_threshold_tied_weighted`].
    pub fn antipodal_boundaries_weighted(
        self,
        n: usize,
        w: f64,
        t_lo: f64,
        t_hi: f64,
        steps: usize,
    ) -> Vec<f64> {
        if let BiasMode::Tied = self {
            return antipodal_threshold_tied_weighted(n, w)
                .filter(|&t| t > t_lo && t <= t_hi)
                .into_iter()
                .collect();
        }
        sign_changes(
            |t| ccem_log_derivative_ratio_weighted(n, t, self.bias(t), w, 1.0),
            t_lo,
            t_hi,
            steps,
        )
    }
}

/// Roots of `f` on `[lo, hi]` found by scanning `steps` intervals and bisecting each sign change.
fn sign_changes(f: impl Fn(f64) -> f64, lo: f64, hi: f64, steps: usize) -> Vec<f64> {
    let steps = steps.max(1);
    let mut roots = Vec::new();
    let h = (hi - lo) / steps as f64;
    let mut a = lo;
    let mut fa = f(a);
    for k in 1..=steps {
        let b = lo + h * k as f64;
        let fb = f(b);
        if fa.is_finite() && fb.is_finite() && (fa < 0.0) != (fb < 0.0) {
            let (mut x0, mut x1, mut f0) = (a, b, fa);
            for _ in 0..100 {
                let m = 0.5 * (x0 + x1);
                let fm = f(m);
                if (fm < 0.0) == (f0 < 0.0) {
                    x0 = m;
                    f0 = fm;
                } else {
                    x1 = m;
                }
            }
            roots.push(0.5 * (x0 + x1));
        }
        a = b;
        fa = fb;
    }
    roots
}
