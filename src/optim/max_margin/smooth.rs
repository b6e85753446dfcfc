//! The smooth max-min ascent of one start (SPEC.md §7.3, "smooth stage").
//!
//! For a sharpness `beta`, the margin is approximated from below by
//! `F_beta = (softmin_beta(S_ii) - softmax_beta(S_ij, i != j)) / 2` with
//! `softmin_beta(x) = -(1/beta) log sum e^{-beta x}` and
//! `softmax_beta(y) = (1/beta) log sum e^{beta y}`, so that
//! `m - log(N^2 (N-1)) / (2 beta) <= F_beta <= m`. Its gradient is `dF/dS_ii = w_i / 2`,
//! `dF/dS_ij = -p_ij / 2` with `w` and `p` the two softmax weight vectors, then `dF/dU = G V`,
//! `dF/dV = G^T U` (as for the losses, SPEC §1). `beta` grows geometrically over the stages, each
//! stage takes Adam ascent steps on the product of spheres (Riemannian gradient, then the rows
//! renormalised) with the rate `lr * beta_0 / beta`. The exact margin of every iterate is
//! computed from `S`, and the best iterate is the result of the start.
//!
//! A *tied* start keeps `V = U = X` (the spherical-code subproblem: `S = X X^T`, every positive
//! is 1, `dF/dX = -P X` with `P` the symmetric softmax weights of the off-diagonal entries),
//! at half the cost; an untied start moves `U` and `V` separately.

use super::super::{Adam, Optimizer};
use super::starts::normalize_rows;
use super::SmoothingSchedule;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// `min_i S_ii` and `max_{i != j} S_ij` of an iterate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Extremes {
    pub pos_min: f64,
    pub neg_max: f64,
}

impl Extremes {
    /// `(min S_ii - max S_ij) / 2`.
    pub fn margin(&self) -> f64 {
        (self.pos_min - self.neg_max) / 2.0
    }
    /// `(min S_ii + max S_ij) / 2`.
    pub fn bias(&self) -> f64 {
        (self.pos_min + self.neg_max) / 2.0
    }
}

/// The best iterate of one start.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    /// Its extremes (`None`: a non-finite value appeared before any finite iterate).
    pub ext: Option<Extremes>,
    /// `U` then `V`, row-major, `2 N d` values (a tied start repeats `X`).
    pub uv: Vec<f64>,
    /// A non-finite value appeared (the start stopped there).
    pub diverged: bool,
}

impl Outcome {
    /// The margin (`-inf` for a start without a finite iterate).
    pub fn margin(&self) -> f64 {
        self.ext.map_or(f64::NEG_INFINITY, |e| e.margin())
    }
}

/// Buffers of one start.
pub(crate) struct Work {
    n: usize,
    d: usize,
    tied: bool,
    /// `X` (tied) or `[U | V]`, row-major.
    theta: Vec<f64>,
    grad: Vec<f64>,
    /// `S`, then `-dF/dS` in place.
    s: Array2<f64>,
    opt: Adam,
}

impl Work {
    /// Buffers for `N x d`, tied (`U = V`) or not.
    pub fn new(n: usize, d: usize, tied: bool) -> Self {
        let len = if tied { n * d } else { 2 * n * d };
        Work {
            n,
            d,
            tied,
            theta: vec![0.0; len],
            grad: vec![0.0; len],
            s: Array2::zeros((n, n)),
            opt: Adam::new(len),
        }
    }

    /// Runs the stages `first_stage..` of `schedule` from `start` (`X` for a tied start, else
    /// `[U | V]`; unit rows) and returns the best iterate (the start itself included).
    pub fn run(
        &mut self,
        start: &[f64],
        schedule: &SmoothingSchedule,
        first_stage: usize,
    ) -> Outcome {
        self.theta.copy_from_slice(start);
        let mut best: Option<(Extremes, Vec<f64>)> = None;
        let mut keep = |ext: Extremes, theta: &[f64]| {
            if best.as_ref().is_none_or(|(b, _)| ext.margin() > b.margin()) {
                best = Some((ext, theta.to_vec()));
            }
        };
        let mut diverged = false;
        'stages: for k in first_stage.min(schedule.stages - 1)..schedule.stages {
            let beta = schedule.beta(k);
            let lr = schedule.lr * schedule.beta0 / beta;
            self.opt.reset();
            for _ in 0..schedule.steps_per_stage {
                let Some(ext) = self.gradient(beta) else {
                    diverged = true;
                    break 'stages;
                };
                keep(ext, &self.theta);
                self.opt.step(&mut self.theta, &self.grad, lr);
                if !normalize_rows(&mut self.theta, self.d) {
                    diverged = true;
                    break 'stages;
                }
            }
        }
        if !diverged {
            match self.gradient(schedule.beta_max) {
                Some(ext) => keep(ext, &self.theta),
                None => diverged = true,
            }
        }
        let (ext, theta) = match best {
            Some((e, t)) => (Some(e), t),
            None => (None, self.theta.clone()),
        };
        let uv = if self.tied {
            let mut uv = theta.clone();
            uv.extend_from_slice(&theta);
            uv
        } else {
            theta
        };
        Outcome { ext, uv, diverged }
    }

    /// `S`, its extremes, and `-grad F_beta` (Riemannian) into `self.grad` (the descent
    /// direction for Adam, which minimises); `None` if a value is not finite.
    fn gradient(&mut self, beta: f64) -> Option<Extremes> {
        let (n, d) = (self.n, self.d);
        let nd = n * d;
        let x = ArrayView2::from_shape((n, d), &self.theta[..nd]).expect("N x d");
        let y = if self.tied {
            x
        } else {
            ArrayView2::from_shape((n, d), &self.theta[nd..]).expect("N x d")
        };
        general_mat_mul(1.0, &x, &y.t(), 0.0, &mut self.s);
        let mut ext = Extremes {
            pos_min: f64::INFINITY,
            neg_max: f64::NEG_INFINITY,
        };
        let mut finite = true;
        for ((i, j), &v) in self.s.indexed_iter() {
            finite &= v.is_finite();
            if i == j {
                ext.pos_min = ext.pos_min.min(v);
            } else {
                ext.neg_max = ext.neg_max.max(v);
            }
        }
        if !finite {
            return None;
        }
        // Softmax weights, shifted by the extremes: w_i ~ e^{-beta (S_ii - min)},
        // p_ij ~ e^{beta (S_ij - max)}. G = -dF/dS = (-w_i on the diagonal, p_ij off it) / 2.
        let (mut zw, mut zp) = (0.0, 0.0);
        for ((i, j), v) in self.s.indexed_iter_mut() {
            if i == j {
                *v = if self.tied {
                    0.0
                } else {
                    (-beta * (*v - ext.pos_min)).exp()
                };
                zw += *v;
            } else {
                *v = (beta * (*v - ext.neg_max)).exp();
                zp += *v;
            }
        }
        let zw = if zw > 0.0 { zw } else { 1.0 };
        for ((i, j), v) in self.s.indexed_iter_mut() {
            *v = if i == j {
                -0.5 * *v / zw
            } else {
                0.5 * *v / zp
            };
        }
        let (gx, gy) = self.grad.split_at_mut(nd);
        let mut gx = ArrayViewMut2::from_shape((n, d), gx).expect("N x d");
        if self.tied {
            // d/dX of F(X X^T): (G + G^T) X = 2 G X for the symmetric G.
            general_mat_mul(2.0, &self.s, &x, 0.0, &mut gx);
            project(&mut gx, &x);
        } else {
            let mut gy = ArrayViewMut2::from_shape((n, d), gy).expect("N x d");
            general_mat_mul(1.0, &self.s, &y, 0.0, &mut gx);
            general_mat_mul(1.0, &self.s.t(), &x, 0.0, &mut gy);
            project(&mut gx, &x);
            project(&mut gy, &y);
        }
        if self.grad.iter().all(|g| g.is_finite()) {
            Some(ext)
        } else {
            None
        }
    }
}

/// `g_i <- g_i - (g_i . x_i) x_i` for every row (the tangent part at unit rows `x`).
fn project(g: &mut ArrayViewMut2<f64>, x: &ArrayView2<f64>) {
    for (mut gi, xi) in g.outer_iter_mut().zip(x.outer_iter()) {
        let c = gi.dot(&xi);
        gi.scaled_add(-c, &xi);
    }
}

/// The exact extremes of `(U, V)` given as `[U | V]` (`2 N d` values, row-major).
pub(crate) fn extremes(uv: &[f64], n: usize, d: usize) -> Extremes {
    let (u, v) = uv.split_at(n * d);
    let mut ext = Extremes {
        pos_min: f64::INFINITY,
        neg_max: f64::NEG_INFINITY,
    };
    for (i, ui) in u.chunks_exact(d).enumerate() {
        for (j, vj) in v.chunks_exact(d).enumerate() {
            let s: f64 = ui.iter().zip(vj).map(|(a, b)| a * b).sum();
            if i == j {
                ext.pos_min = ext.pos_min.min(s);
            } else {
                ext.neg_max = ext.neg_max.max(s);
            }
        }
    }
    ext
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Riemannian gradient of `F_beta` against central finite differences along tangent
    /// directions (untied and tied).
    #[test]
    fn gradient_matches_finite_differences() {
        for tied in [false, true] {
            let (n, d, beta) = (4usize, 3usize, 3.0);
            let mut rng = super::super::starts::rng(1, 0);
            let len = if tied { n * d } else { 2 * n * d };
            let mut theta = super::super::starts::gaussian(&mut rng, len);
            normalize_rows(&mut theta, d);
            let f = |th: &[f64]| -> f64 {
                let uv: Vec<f64> = if tied { [th, th].concat() } else { th.to_vec() };
                let (u, v) = uv.split_at(n * d);
                let (mut sw, mut sp) = (0.0, 0.0);
                for (i, ui) in u.chunks_exact(d).enumerate() {
                    for (j, vj) in v.chunks_exact(d).enumerate() {
                        let s: f64 = ui.iter().zip(vj).map(|(a, b)| a * b).sum();
                        if i == j {
                            sw += (-beta * s).exp();
                        } else {
                            sp += (beta * s).exp();
                        }
                    }
                }
                let softmin = if tied { 1.0 } else { -sw.ln() / beta };
                (softmin - sp.ln() / beta) / 2.0
            };
            let mut w = Work::new(n, d, tied);
            w.theta.copy_from_slice(&theta);
            w.gradient(beta).unwrap();
            let dir = super::super::starts::gaussian(&mut rng, len);
            // Tangent part of the direction, and the curve x(h) = normalise(x + h dir).
            let mut tdir = dir.clone();
            for (t, x) in tdir.chunks_exact_mut(d).zip(theta.chunks_exact(d)) {
                let c: f64 = t.iter().zip(x).map(|(a, b)| a * b).sum();
                t.iter_mut().zip(x).for_each(|(a, b)| *a -= c * b);
            }
            let h = 1e-6;
            let at = |s: f64| {
                let mut y: Vec<f64> = theta.iter().zip(&tdir).map(|(a, b)| a + s * b).collect();
                normalize_rows(&mut y, d);
                f(&y)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            let an: f64 = -w.grad.iter().zip(&tdir).map(|(a, b)| a * b).sum::<f64>();
            assert!((fd - an).abs() < 1e-7, "tied {tied}: fd {fd} vs {an}");
        }
    }
}
