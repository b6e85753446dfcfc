//! Adam (Kingma & Ba 2015) on a flat parameter vector.
//!
//! `m <- beta1 m + (1 - beta1) g`, `v <- beta2 v + (1 - beta2) g^2` (entry-wise),
//! `x <- x - lr * m_hat / (sqrt(v_hat) + eps)` with the bias corrections
//! `m_hat = m / (1 - beta1^k)`, `v_hat = v / (1 - beta2^k)` at step `k = 1, 2, ...`.

use super::Optimizer;

/// Adam's first-moment decay (the usual default).
pub const ADAM_BETA1: f64 = 0.9;
/// Adam's second-moment decay (the usual default).
pub const ADAM_BETA2: f64 = 0.999;
/// Adam's denominator guard (the usual default).
pub const ADAM_EPS: f64 = 1e-8;

/// Adam's state: the two moment estimates and the step count.
#[derive(Clone, Debug)]
pub struct Adam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    /// `beta1^k` and `beta2^k`, kept as running products.
    pow1: f64,
    pow2: f64,
}

impl Adam {
    /// Adam for `len` parameters with the default `beta1 = 0.9`, `beta2 = 0.999`,
    /// `eps = 1e-8`.
    pub fn new(len: usize) -> Self {
        Self::with(len, ADAM_BETA1, ADAM_BETA2, ADAM_EPS)
    }

    /// Adam with explicit constants.
    pub fn with(len: usize, beta1: f64, beta2: f64, eps: f64) -> Self {
        Adam {
            beta1,
            beta2,
            eps,
            m: vec![0.0; len],
            v: vec![0.0; len],
            pow1: 1.0,
            pow2: 1.0,
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [f64], grad: &[f64], lr: f64) {
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        self.pow1 *= b1;
        self.pow2 *= b2;
        let c1 = 1.0 / (1.0 - self.pow1);
        let c2 = 1.0 / (1.0 - self.pow2);
        for (((x, &g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *x -= lr * (*m * c1) / ((*v * c2).sqrt() + eps);
        }
    }

    fn reset(&mut self) {
        self.m.fill(0.0);
        self.v.fill(0.0);
        self.pow1 = 1.0;
        self.pow2 = 1.0;
    }
}
