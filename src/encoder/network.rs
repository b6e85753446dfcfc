//! The encoder network of SPEC.md §5 with its preallocated workspace: forward pass, analytic
//! backward pass, SGD step.
//!
//! Both sides go through the one shared network as a single stacked batch of `2N` rows: rows
//! `0..N` are the inputs `x^u_i`, rows `N..2N` the inputs `x^v_i`. Every activation is stored
//! row-major as a `2N x width` matrix, so each layer is one matrix product per pass and the
//! weight gradients are automatically summed over the `2N` rows of both sides.
//!
//! # Forward (SPEC §5)
//! `H_0 = X` (`2N x 2d`), `H_l = ReLU(H_{l-1} W_l^T + 1 b_l^T)` for `l = 1..L` (`L = 2` or `3`),
//! `E_i = H_{L,i} / max(||H_{L,i}||, 1e-12)`, `U = E[0..N]`, `V = E[N..2N]`, `S = U V^T`.
//!
//! # Backward (SPEC §1, "Gradients")
//! `G = dL/dS` from [`Loss::value_grad_s`]; `dL/dU = G V`, `dL/dV = G^T U`; through the
//! normalisation `dL/dy = (I - e e^T)(dL/de) / ||y||` when `||y|| > eps`, else `(dL/de) / eps`
//! (the normalisation is then the linear map `y / eps`); through each ReLU
//! `dL/dZ_l = dL/dH_l . [H_l > 0]` (the subgradient `0` at `0`, as PyTorch); and
//! `dL/dW_l = (dL/dZ_l)^T H_{l-1}`, `dL/db_l = 1^T dL/dZ_l`, `dL/dH_{l-1} = (dL/dZ_l) W_l`.
//!
//! Every buffer is allocated once in [`Encoder::new`]; a training step allocates nothing in this
//! module (the loss on `S` may allocate two length-`N` vectors for InfoNCE).

use super::scalar::Scalar;
use super::sigmoid_grad::sigmoid_grad_s;
use super::EncoderConfig;
use crate::error::Result;
use crate::loss::Loss;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{StandardNormal, Uniform};

/// `ReLU(x) = max(x, 0)`, propagating NaN (as PyTorch does) so that a divergence is never hidden.
#[inline(always)]
pub(super) fn relu<T: Scalar>(x: T) -> T {
    if x < T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// The encoder of SPEC §5 for one configuration: data, parameters, gradients and every buffer of
/// the forward and backward passes, allocated once.
///
/// `T` is the network's floating-point type (`f32` as PyTorch, or `f64`); the loss on `S` is
/// always evaluated in `f64`.
///
/// # Randomness
/// Everything is drawn in [`Encoder::new`] from `ChaCha8Rng::seed_from_u64(cfg.seed)`, always in
/// `f64` and then rounded to `T` (so the `f32` and `f64` networks start from the same point), in
/// this order: `x^u` (`N x 2d`, row-major, `N(0, 1)`), `x^v` (likewise), then for each layer its
/// weight (`out x in`, row-major) and its bias, each entry `~ Uniform(-1/sqrt(in), 1/sqrt(in))`
/// (PyTorch's `nn.Linear` default).
#[derive(Clone, Debug)]
pub struct Encoder<T: Scalar> {
    n: usize,
    d: usize,
    /// `2N x 2d` inputs: `x^u` stacked over `x^v`.
    x: Array2<T>,
    /// Weights `W_l` (`out x in`).
    w: Vec<Array2<T>>,
    /// Biases `b_l`.
    b: Vec<Array1<T>>,
    /// `dL/dW_l`.
    gw: Vec<Array2<T>>,
    /// `dL/db_l`.
    gb: Vec<Array1<T>>,
    /// Post-ReLU activations `H_l`, `2N x d` each.
    h: Vec<Array2<T>>,
    /// `||y_i||` of the network's outputs (before the `eps` floor).
    norm: Array1<T>,
    /// Normalised embeddings `E` (`2N x d`): `U` over `V`.
    e: Array2<T>,
    /// `S = U V^T` in the network's type.
    s: Array2<T>,
    /// `S` widened to `f64` for the loss.
    s64: Array2<f64>,
    /// `G = dL/dS` in `f64`.
    g64: Array2<f64>,
    /// `G` in the network's type.
    g: Array2<T>,
    /// Two `2N x d` back-propagation buffers used in turn.
    da: Array2<T>,
    db: Array2<T>,
}

impl<T: Scalar> Encoder<T> {
    /// Draws the data and the initial network for `cfg` (see the type's doc for the order).
    ///
    /// # Errors
    /// An invalid configuration ([`EncoderConfig::validate`]).
    pub fn new(cfg: &EncoderConfig) -> Result<Self> {
        cfg.validate()?;
        let (n, d) = (cfg.n, cfg.d);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut x = Array2::<T>::zeros((2 * n, 2 * d));
        for xi in x.iter_mut() {
            *xi = T::from_f64(rng.sample::<f64, _>(StandardNormal));
        }
        let mut w = Vec::with_capacity(cfg.layers);
        let mut b = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let fan_in = if l == 0 { 2 * d } else { d };
            let a = 1.0 / (fan_in as f64).sqrt();
            let dist = Uniform::new(-a, a).expect("-a < a for a finite a > 0");
            let wl = Array2::from_shape_simple_fn((d, fan_in), || T::from_f64(rng.sample(dist)));
            let bl = Array1::from_shape_simple_fn(d, || T::from_f64(rng.sample(dist)));
            w.push(wl);
            b.push(bl);
        }
        let gw = w.iter().map(|wl| Array2::zeros(wl.raw_dim())).collect();
        let gb = b.iter().map(|bl| Array1::zeros(bl.raw_dim())).collect();
        Ok(Encoder {
            n,
            d,
            x,
            w,
            b,
            gw,
            gb,
            h: (0..cfg.layers).map(|_| Array2::zeros((2 * n, d))).collect(),
            norm: Array1::zeros(2 * n),
            e: Array2::zeros((2 * n, d)),
            s: Array2::zeros((n, n)),
            s64: Array2::zeros((n, n)),
            g64: Array2::zeros((n, n)),
            g: Array2::zeros((n, n)),
            da: Array2::zeros((2 * n, d)),
            db: Array2::zeros((2 * n, d)),
        })
    }

    /// The batch size `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The embedding dimension `d` (inputs are in `R^{2d}`).
    pub fn d(&self) -> usize {
        self.d
    }

    /// The number of layers `L` (2 or 3).
    pub fn layers(&self) -> usize {
        self.w.len()
    }

    /// The inputs, `x^u` (rows `0..N`) stacked over `x^v` (rows `N..2N`), `2N x 2d`.
    pub fn inputs(&self) -> ArrayView2<'_, T> {
        self.x.view()
    }

    /// The weight `W_l` of layer `l` (0-based; `out x in`).
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn weight(&self, l: usize) -> ArrayView2<'_, T> {
        self.w[l].view()
    }

    /// Mutable access to `W_l` (e.g. for finite differences).
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn weight_mut(&mut self, l: usize) -> ArrayViewMut2<'_, T> {
        self.w[l].view_mut()
    }

    /// The bias `b_l` of layer `l` (0-based).
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn bias(&self, l: usize) -> ArrayView1<'_, T> {
        self.b[l].view()
    }

    /// Mutable access to `b_l`.
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn bias_mut(&mut self, l: usize) -> ArrayViewMut1<'_, T> {
        self.b[l].view_mut()
    }

    /// `dL/dW_l` from the last [`Encoder::loss_grad`].
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn weight_grad(&self, l: usize) -> ArrayView2<'_, T> {
        self.gw[l].view()
    }

    /// `dL/db_l` from the last [`Encoder::loss_grad`].
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn bias_grad(&self, l: usize) -> ArrayView1<'_, T> {
        self.gb[l].view()
    }

    /// The normalised embeddings `U` (`N x d`) of the last forward pass.
    pub fn u(&self) -> ArrayView2<'_, T> {
        self.e.slice_axis(Axis(0), (0..self.n).into())
    }

    /// The normalised embeddings `V` (`N x d`) of the last forward pass.
    pub fn v(&self) -> ArrayView2<'_, T> {
        self.e.slice_axis(Axis(0), (self.n..2 * self.n).into())
    }

    /// `S = U V^T` (in `f64`) of the last [`Encoder::loss`] or [`Encoder::loss_grad`].
    pub fn similarities(&self) -> ArrayView2<'_, f64> {
        self.s64.view()
    }

    /// The floating-point operations of one forward pass (the matrix products only, two flops
    /// per multiply-add): `sum_l 2 (2N) in_l out_l + 2 N^2 d`.
    pub fn flops_forward(&self) -> f64 {
        let layers: f64 = self.w.iter().map(|w| w.len() as f64).sum();
        let (n, d) = (self.n as f64, self.d as f64);
        2.0 * (2.0 * n) * layers + 2.0 * n * n * d
    }

    /// The floating-point operations of one training step (forward and backward products):
    /// the forward pass, `G V` and `G^T U` (`4 N^2 d`), every `dL/dW_l` (`2 (2N) in_l out_l`) and
    /// every `dL/dH_{l-1}` for `l >= 2` (`2 (2N) d^2` each).
    pub fn flops_per_step(&self) -> f64 {
        let layers: f64 = self.w.iter().map(|w| w.len() as f64).sum();
        let hidden: f64 = self.w.iter().skip(1).map(|w| w.len() as f64).sum();
        let (n, d) = (self.n as f64, self.d as f64);
        self.flops_forward() + 4.0 * n * n * d + 4.0 * n * layers + 4.0 * n * hidden
    }

    /// Runs the network on both sides and fills `E` (hence `U`, `V`) and `S` (also in `f64`).
    ///
    /// Returns `false` if a non-finite value appeared (an output norm that is NaN or infinite).
    fn forward(&mut self) -> bool {
        let Encoder {
            x,
            w,
            b,
            h,
            norm,
            e,
            s,
            s64,
            n,
            ..
        } = self;
        for l in 0..w.len() {
            let (prev, rest) = h.split_at_mut(l);
            let out = &mut rest[0];
            let input = if l == 0 { x.view() } else { prev[l - 1].view() };
            out.assign(&b[l]);
            general_mat_mul(T::ONE, &input, &w[l].t(), T::ONE, out);
            out.mapv_inplace(relu);
        }
        let y = &h[h.len() - 1];
        let mut finite = true;
        Zip::from(e.rows_mut())
            .and(y.rows())
            .and(norm)
            .for_each(|mut ei, yi, ni| {
                let r = yi.dot(&yi).sqrt();
                finite &= r.is_finite();
                *ni = r;
                let inv = T::ONE / if r > T::NORM_EPS { r } else { T::NORM_EPS };
                Zip::from(&mut ei).and(&yi).for_each(|e, &y| *e = y * inv);
            });
        let (u, v) = e.view().split_at(Axis(0), *n);
        general_mat_mul(T::ONE, &u, &v.t(), T::ZERO, s);
        Zip::from(s64).and(&*s).for_each(|a, &b| *a = b.to_f64());
        finite
    }

    /// The loss at the current parameters (forward pass only; fills `U`, `V`, `S`).
    ///
    /// Non-finite if the network produced a non-finite value.
    pub fn loss(&mut self, loss: &Loss) -> f64 {
        let finite = self.forward();
        let value = loss.value_s(self.s64.view());
        if finite {
            value
        } else {
            f64::NAN
        }
    }

    /// The loss at the current parameters and its gradient with respect to every `W_l` and `b_l`
    /// (read them with [`Encoder::weight_grad`] and [`Encoder::bias_grad`]).
    ///
    /// Non-finite if the network produced a non-finite value; the gradients are then not
    /// computed (they keep their previous values).
    pub fn loss_grad(&mut self, loss: &Loss) -> f64 {
        let finite = self.forward();
        let value = loss.value_grad_s(self.s64.view(), self.g64.view_mut());
        if !finite || !value.is_finite() {
            return f64::NAN;
        }
        self.backward();
        value
    }

    /// The gradient of the loss with respect to every `W_l` and `b_l`, as [`Encoder::loss_grad`]
    /// but without evaluating the loss itself (for the sigmoid loss `G` then comes from the
    /// vectorised [`super::sigmoid_grad`], for InfoNCE from [`Loss::value_grad_s`]). This is the
    /// training step; [`Encoder::last_loss`] gives the loss at the same parameters if wanted.
    ///
    /// Returns `false` (gradients not computed) if the network produced a non-finite value.
    pub fn grad(&mut self, loss: &Loss) -> bool {
        if !self.forward() {
            return false;
        }
        match *loss {
            Loss::Sigmoid { t, b } => {
                let n = self.n;
                let s = self.s64.as_slice().expect("owned standard layout");
                let g = self.g64.as_slice_mut().expect("owned standard layout");
                sigmoid_grad_s(s, g, n, t, b);
            }
            _ => {
                if !loss
                    .value_grad_s(self.s64.view(), self.g64.view_mut())
                    .is_finite()
                {
                    return false;
                }
            }
        }
        self.backward();
        true
    }

    /// The loss `L(S)` of the `S` of the last forward pass ([`Encoder::grad`], [`Encoder::loss`]
    /// or [`Encoder::loss_grad`]), without running the network again.
    pub fn last_loss(&self, loss: &Loss) -> f64 {
        loss.value_s(self.s64.view())
    }

    /// Back-propagates `G = dL/dS` (in `g64`) to every parameter (module doc, "Backward").
    fn backward(&mut self) {
        let Encoder {
            n,
            x,
            w,
            gw,
            gb,
            h,
            norm,
            e,
            g64,
            g,
            da,
            db,
            ..
        } = self;
        let n = *n;
        Zip::from(&mut *g)
            .and(&*g64)
            .for_each(|a, &b| *a = T::from_f64(b));
        // dL/dU = G V, dL/dV = G^T U.
        {
            let (u, v) = e.view().split_at(Axis(0), n);
            let (mut du, mut dv) = da.view_mut().split_at(Axis(0), n);
            general_mat_mul(T::ONE, &*g, &v, T::ZERO, &mut du);
            general_mat_mul(T::ONE, &g.t(), &u, T::ZERO, &mut dv);
        }
        // Through the normalisation and the last ReLU: dL/dZ_L.
        let last = h.len() - 1;
        Zip::from(da.rows_mut())
            .and(e.rows())
            .and(&*norm)
            .and(h[last].rows())
            .for_each(|mut dyi, ei, &r, yi| {
                if r > T::NORM_EPS {
                    let dot = ei.dot(&dyi);
                    let inv = T::ONE / r;
                    Zip::from(&mut dyi)
                        .and(&ei)
                        .and(&yi)
                        .for_each(|dy, &e, &y| {
                            *dy = if y > T::ZERO {
                                (*dy - e * dot) * inv
                            } else {
                                T::ZERO
                            };
                        });
                } else {
                    let inv = T::ONE / T::NORM_EPS;
                    Zip::from(&mut dyi).and(&yi).for_each(|dy, &y| {
                        *dy = if y > T::ZERO { *dy * inv } else { T::ZERO };
                    });
                }
            });
        // Layers, last to first; `cur` holds dL/dZ_l.
        let (mut cur, mut nxt) = (da, db);
        for l in (0..w.len()).rev() {
            let input = if l == 0 { x.view() } else { h[l - 1].view() };
            general_mat_mul(T::ONE, &cur.t(), &input, T::ZERO, &mut gw[l]);
            let gbl = &mut gb[l];
            gbl.fill(T::ZERO);
            for row in cur.rows() {
                Zip::from(&mut *gbl).and(&row).for_each(|a, &b| *a = *a + b);
            }
            if l > 0 {
                general_mat_mul(T::ONE, &*cur, &w[l], T::ZERO, &mut *nxt);
                Zip::from(&mut *nxt).and(&h[l - 1]).for_each(|dz, &y| {
                    *dz = if y > T::ZERO { *dz } else { T::ZERO };
                });
                std::mem::swap(&mut cur, &mut nxt);
            }
        }
    }

    /// One SGD step `theta <- theta - lr * dL/dtheta` on every parameter, with the gradients of
    /// the last [`Encoder::loss_grad`] (no momentum, no weight decay; SPEC §5).
    ///
    /// Returns `false` if a parameter became non-finite.
    pub fn sgd_step(&mut self, lr: f64) -> bool {
        let lr = T::from_f64(lr);
        let mut finite = true;
        for (wl, gl) in self.w.iter_mut().zip(&self.gw) {
            Zip::from(wl).and(gl).for_each(|p, &g| {
                *p = *p - lr * g;
                finite &= p.is_finite();
            });
        }
        for (bl, gl) in self.b.iter_mut().zip(&self.gb) {
            Zip::from(bl).and(gl).for_each(|p, &g| {
                *p = *p - lr * g;
                finite &= p.is_finite();
            });
        }
        finite
    }
}
