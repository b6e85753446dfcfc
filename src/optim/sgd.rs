//! Gradient descent with optional heavy-ball momentum on a flat parameter vector.
//!
//! `buf <- mu buf + g`, `x <- x - lr buf` (PyTorch's `SGD` form; `mu = 0` is plain gradient
//! descent).

use super::Optimizer;

/// SGD's state: the momentum buffer.
#[derive(Clone, Debug)]
pub struct Sgd {
    momentum: f64,
    buf: Vec<f64>,
}

impl Sgd {
    /// SGD for `len` parameters with momentum `mu` in `[0, 1)` (`0`: none).
    pub fn new(len: usize, momentum: f64) -> Self {
        Sgd {
            momentum,
            buf: vec![0.0; len],
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f64], grad: &[f64], lr: f64) {
        let mu = self.momentum;
        if mu == 0.0 {
            for (x, &g) in params.iter_mut().zip(grad) {
                *x -= lr * g;
            }
            return;
        }
        for ((x, &g), b) in params.iter_mut().zip(grad).zip(self.buf.iter_mut()) {
            *b = mu * *b + g;
            *x -= lr * *b;
        }
    }

    fn reset(&mut self) {
        self.buf.fill(0.0);
    }
}
