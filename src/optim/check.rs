//! Judging a free-embedding result against the theory (SPEC.md §3, §4).
//!
//! A result meets the theory when its mean positive similarity is within [`S_POS_TOL`] of the
//! predicted `s_+* = 1 - 2c*` and the Gram distance of `[U; V]` to the predicted CCEM
//! (`Measurement::gram_distance_to(c*)`, SPEC §4) is within [`GRAM_TOL`].

use crate::geometry::Measurement;
use crate::loss::Loss;
use crate::theory::{s_pos_of_c, SigmoidOptimum};
use serde::Serialize;

/// Tolerance on `|mean S_ii - s_+*|`.
pub const S_POS_TOL: f64 = 1e-3;
/// Tolerance on the Gram distance to the predicted CCEM.
pub const GRAM_TOL: f64 = 1e-3;

/// The predicted `c*` for `N` pairs in `R^d` under `loss` (SPEC §3): the sigmoid optimum's
/// `c*` when `d >= N` and `t > 0`; `0` (the simplex ETF) for InfoNCE when `d >= N - 1`.
/// `None` where the theory makes no prediction (smaller `d`, or `t = 0`).
pub fn theory_c_star(n: usize, d: usize, loss: &Loss) -> Option<f64> {
    match *loss {
        Loss::Sigmoid { t, b } => {
            if d < n || t <= 0.0 || n < 2 {
                None
            } else {
                Some(SigmoidOptimum::solve_unchecked(n, t, b).c_star)
            }
        }
        Loss::InfoNce { .. } => (n >= 2 && d + 1 >= n).then_some(0.0),
    }
}

/// `|s_pos_mean - s_pos_theory| <= S_POS_TOL` and `gram_distance_to_theory <= GRAM_TOL`, with
/// `s_pos_mean` the measured mean of `S_ii`, `s_pos_theory = s_+* = 1 - 2c*` and
/// `gram_distance_to_theory = Measurement::gram_distance_to(c*)` (SPEC §4). `false` if any
/// argument is NaN.
pub fn meets_theory(s_pos_mean: f64, s_pos_theory: f64, gram_distance_to_theory: f64) -> bool {
    (s_pos_mean - s_pos_theory).abs() <= S_POS_TOL && gram_distance_to_theory <= GRAM_TOL
}

/// A measured embedding next to the theory's prediction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TheoryComparison {
    /// The predicted `c*`.
    pub c_star: f64,
    /// The predicted `s_+* = 1 - 2c*`.
    pub s_pos_theory: f64,
    /// `|mean S_ii - s_+*|`.
    pub s_pos_error: f64,
    /// `||G - G_CCEM(c*)||_F / (2N)` (SPEC §4).
    pub gram_distance_to_theory: f64,
    /// Both within tolerance ([`S_POS_TOL`], [`GRAM_TOL`]).
    pub meets_theory: bool,
}

impl TheoryComparison {
    /// Compares `m` with the CCEM of parameter `c_star`.
    pub fn new(m: &Measurement, c_star: f64) -> Self {
        let s_pos_theory = s_pos_of_c(c_star);
        let s_pos_error = (m.pos.mean - s_pos_theory).abs();
        let gram_distance_to_theory = m.gram_distance_to(c_star);
        TheoryComparison {
            c_star,
            s_pos_theory,
            s_pos_error,
            gram_distance_to_theory,
            meets_theory: meets_theory(m.pos.mean, s_pos_theory, gram_distance_to_theory),
        }
    }
}
