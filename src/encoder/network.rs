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
//! `G = dL/dS` from [`Loss::value_grad_s`]; `dL/dU = G V`, `dL/dV = G^T U`. A loss of the joint
//! views ([`Views::Joint`], SPEC §1.0) reads `K = E E^T` over the `2N` views instead (formed
//! in each forward pass once such a loss was evaluated), and `dL/dE = (G + G^T) E` with
//! `G = dL/dK`. Then through the
//! normalisation `dL/dy = (I - e e^T)(dL/de) / ||y||` when `||y|| > eps`, else `(dL/de) / eps`
//! (the normalisation is then the linear map `y / eps`); through each ReLU
//! `dL/dZ_l = dL/dH_l . [H_l > 0]` (the subgradient `0` at `0`, as PyTorch); and
//! `dL/dW_l = (dL/dZ_l)^T H_{l-1}`, `dL/db_l = 1^T dL/dZ_l`, `dL/dH_{l-1} = (dL/dZ_l) W_l`.
//!
//! # Layout
//! Every product is `C = A B` with `B` and `C` row-major and their column count padded to a
//! multiple of 8 ([`crate::base::gemm`]); `A` may be a transposed view. So the weights are stored
//! transposed, `W_l^T` (`in x d_p`, `d_p` = `d` rounded up to 8), every activation is
//! `2N x d_p`, and `S` is `N x N_p`. The padding columns hold zeros and stay zero through every
//! pass (zero weights and biases give zero pre-activations, `ReLU(0) = 0`, zero gradients), so
//! they never change a result. The forward and backward products are then
//! `Z_l = H_{l-1} W_l^T`, `S = U (V^T)`, `G V`, `G^T U`, `dL/dW_l^T = H_{l-1}^T dL/dZ_l` and
//! `dL/dH_{l-1} = dL/dZ_l W_l` (`V^T` and `W_l` copied into padded buffers each step for the
//! tiled kernel; the blocked kernel packs its operands anyway, so it reads them transposed in
//! place).
//!
//! Every buffer is allocated once in [`Encoder::new`]; a training step allocates nothing in this
//! module (the loss on `S` may allocate two length-`N` vectors for InfoNCE). The elementwise
//! passes (normalisation, conversions, SGD step) run on the rayon pool from `2^16` entries; each
//! is entrywise or row by row, so the results stay bitwise independent of the thread count.

use super::EncoderConfig;
use crate::base::gemm::{column_sums, gemm_epilogue, gemm_kernel, padded, Epilogue, GemmKernel};
use crate::base::Real;
use crate::error::Result;
use crate::loss::contrastive::dense;
use crate::loss::Loss;
use crate::loss::{ContrastiveLoss, Views};
use crate::valid::Valid;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{StandardNormal, Uniform};
use rayon::prelude::*;

/// The fewest entries of an elementwise pass of the workspace (the normalisation, the
/// conversions of `S` and `G`, the SGD step) that runs on the rayon pool; a smaller one (a
/// sweep's cell) runs on the calling thread, where a parallel call would cost more than the
/// pass. Every such pass is entrywise or row by row, so how it is split never changes a bit.
pub(super) const PAR_MIN: usize = 1 << 16;

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
pub struct Encoder<T: Real> {
    n: usize,
    d: usize,
    /// `2N x 2d` inputs: `x^u` stacked over `x^v`.
    x: Array2<T>,
    /// Transposed weights `W_l^T` (`in x d_p`, zero columns `d..d_p`).
    wt: Vec<Array2<T>>,
    /// Biases `b_l` (`d_p`, zero beyond `d`).
    b: Vec<Array1<T>>,
    /// `dL/dW_l^T` (`in x d_p`).
    gwt: Vec<Array2<T>>,
    /// `dL/db_l` (`d_p`).
    gb: Vec<Array1<T>>,
    /// `W_l` (`d x d_p`) copied from `W_l^T` for `dL/dH_{l-1} = dL/dZ_l W_l`.
    w_scratch: Array2<T>,
    /// Post-ReLU activations `H_l`, `2N x d_p` each.
    h: Vec<Array2<T>>,
    /// `||y_i||` of the network's outputs (before the `eps` floor).
    norm: Array1<T>,
    /// Normalised embeddings `E` (`2N x d_p`): `U` over `V`.
    e: Array2<T>,
    /// `V^T` (`d x N_p`, zero columns `N..N_p`).
    vt: Array2<T>,
    /// `S = U V^T` in the network's type (`N x N_p`).
    s: Array2<T>,
    /// `S` widened to `f64` for the loss (`N x N`).
    s64: Array2<f64>,
    /// `G = dL/dS` in `f64`.
    g64: Array2<f64>,
    /// `G` in the network's type.
    g: Array2<T>,
    /// Two `2N x d_p` back-propagation buffers used in turn.
    da: Array2<T>,
    db: Array2<T>,
    /// The kernel of every product ([`GemmKernel::Auto`] unless set).
    kernel: GemmKernel,
    /// The buffers of a loss of the joint views ([`Views::Joint`]), allocated by the first
    /// evaluation of such a loss; from then on every forward pass also forms `K`.
    joint: Option<Joint<T>>,
}

/// The buffers of a loss of the joint views (SPEC §1.0): `K = E E^T` over the `2N` views
/// `E = [U; V]`, `G = dL/dK`, and the symmetric `G + G^T` that gives `dL/dE = (G + G^T) E`.
#[derive(Clone, Debug)]
struct Joint<T: Real> {
    /// `E^T` (`d x 2N_p`, zero columns `2N..2N_p`).
    et: Array2<T>,
    /// `K` in the network's type (`2N x 2N_p`).
    k: Array2<T>,
    /// `K` widened to `f64` (`2N x 2N`).
    k64: Array2<f64>,
    /// `G = dL/dK` in `f64` (`2N x 2N`).
    g64: Array2<f64>,
    /// `G + G^T` in the network's type (`2N x 2N`).
    gs: Array2<T>,
}

impl<T: Real> Joint<T> {
    fn new(n: usize, d: usize) -> Self {
        let m = 2 * n;
        Joint {
            et: Array2::zeros((d, padded(m))),
            k: Array2::zeros((m, padded(m))),
            k64: Array2::zeros((m, m)),
            g64: Array2::zeros((m, m)),
            gs: Array2::zeros((m, m)),
        }
    }
}

impl<T: Real> Encoder<T> {
    /// Draws the data and the initial network for `cfg` (see the type's doc for the order).
    ///
    /// # Errors
    /// An invalid configuration ([`EncoderConfig::validate`]).
    pub fn new(cfg: &EncoderConfig) -> Result<Self> {
        Ok(Self::from_valid(&cfg.check()?))
    }

    /// [`Encoder::new`] for a configuration already checked: it cannot fail.
    pub fn from_valid(cfg: &Valid<EncoderConfig>) -> Self {
        let (n, d) = (cfg.n, cfg.d);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut x = Array2::<T>::zeros((2 * n, 2 * d));
        for xi in x.iter_mut() {
            *xi = T::from_f64(rng.sample::<f64, _>(StandardNormal));
        }
        let dp = padded(d);
        let mut wt = Vec::with_capacity(cfg.layers);
        let mut b = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let fan_in = if l == 0 { 2 * d } else { d };
            let a = 1.0 / (fan_in as f64).sqrt();
            let dist = Uniform::new(-a, a).expect("-a < a for a finite a > 0");
            // Drawn as W_l (out x in, row-major), stored transposed.
            let mut wtl = Array2::<T>::zeros((fan_in, dp));
            for o in 0..d {
                for i in 0..fan_in {
                    wtl[[i, o]] = T::from_f64(rng.sample(dist));
                }
            }
            let mut bl = Array1::<T>::zeros(dp);
            for o in 0..d {
                bl[o] = T::from_f64(rng.sample(dist));
            }
            wt.push(wtl);
            b.push(bl);
        }
        let gwt = wt.iter().map(|w| Array2::zeros(w.raw_dim())).collect();
        let gb = b.iter().map(|bl| Array1::zeros(bl.raw_dim())).collect();
        Encoder {
            n,
            d,
            x,
            wt,
            b,
            gwt,
            gb,
            w_scratch: Array2::zeros((d, dp)),
            h: (0..cfg.layers)
                .map(|_| Array2::zeros((2 * n, dp)))
                .collect(),
            norm: Array1::zeros(2 * n),
            e: Array2::zeros((2 * n, dp)),
            vt: Array2::zeros((d, padded(n))),
            s: Array2::zeros((n, padded(n))),
            s64: Array2::zeros((n, n)),
            g64: Array2::zeros((n, n)),
            g: Array2::zeros((n, n)),
            da: Array2::zeros((2 * n, dp)),
            db: Array2::zeros((2 * n, dp)),
            kernel: GemmKernel::Auto,
            joint: None,
        }
    }

    /// Allocates the joint views' buffers when `loss` reads them and they are not there yet;
    /// returns whether it does. A new allocation fills `K` from the current embeddings.
    fn prepare(&mut self, loss: &Loss) -> bool {
        let joint = loss.views() == Views::Joint;
        if joint && self.joint.is_none() {
            self.joint = Some(Joint::new(self.n, self.d));
        }
        joint
    }

    /// `K = E E^T` (and in `f64`) from the embeddings of the last forward pass.
    fn form_joint(&mut self) {
        let (m, d, kernel) = (2 * self.n, self.d, self.kernel);
        let Some(j) = self.joint.as_mut() else {
            return;
        };
        let e = self.e.slice(s![.., ..d]);
        product_with_transposed(kernel, e, e, &mut j.et, &mut j.k);
        convert(j.k64.view_mut(), j.k.slice(s![.., ..m]), T::to_f64);
    }

    /// The loss at the `S` (or `K`) of the last forward pass.
    fn value_at(&self, loss: &Loss) -> f64 {
        match (loss.views(), self.joint.as_ref()) {
            (Views::Joint, Some(j)) => {
                let mut k = j.k64.clone();
                dense::<f64, Loss, false>(loss, k.view_mut())
            }
            _ => loss.value_s(self.s64.view()),
        }
    }

    /// Runs every matrix product on `kernel` from now on (default [`GemmKernel::Auto`], the
    /// kernel chosen by size); for comparisons of the kernels (`examples/encoder_precision.rs`).
    pub fn set_kernel(&mut self, kernel: GemmKernel) {
        self.kernel = kernel;
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
        self.wt.len()
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
        self.wt[l].slice(s![.., ..self.d]).reversed_axes()
    }

    /// Mutable access to `W_l` (e.g. for finite differences).
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn weight_mut(&mut self, l: usize) -> ArrayViewMut2<'_, T> {
        let d = self.d;
        self.wt[l].slice_mut(s![.., ..d]).reversed_axes()
    }

    /// The bias `b_l` of layer `l` (0-based).
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn bias(&self, l: usize) -> ArrayView1<'_, T> {
        self.b[l].slice(s![..self.d])
    }

    /// Mutable access to `b_l`.
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn bias_mut(&mut self, l: usize) -> ArrayViewMut1<'_, T> {
        let d = self.d;
        self.b[l].slice_mut(s![..d])
    }

    /// `dL/dW_l` from the last [`Encoder::loss_grad`].
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn weight_grad(&self, l: usize) -> ArrayView2<'_, T> {
        self.gwt[l].slice(s![.., ..self.d]).reversed_axes()
    }

    /// `dL/db_l` from the last [`Encoder::loss_grad`].
    ///
    /// # Panics
    /// `l >= layers()`.
    pub fn bias_grad(&self, l: usize) -> ArrayView1<'_, T> {
        self.gb[l].slice(s![..self.d])
    }

    /// The normalised embeddings `U` (`N x d`) of the last forward pass.
    pub fn u(&self) -> ArrayView2<'_, T> {
        self.e.slice(s![..self.n, ..self.d])
    }

    /// The normalised embeddings `V` (`N x d`) of the last forward pass.
    pub fn v(&self) -> ArrayView2<'_, T> {
        self.e.slice(s![self.n.., ..self.d])
    }

    /// `S = U V^T` (in `f64`) of the last [`Encoder::loss`] or [`Encoder::loss_grad`].
    pub fn similarities(&self) -> ArrayView2<'_, f64> {
        self.s64.view()
    }

    /// The floating-point operations of one forward pass (the matrix products only, two flops
    /// per multiply-add): `sum_l 2 (2N) in_l out_l + 2 N^2 d`.
    pub fn flops_forward(&self) -> f64 {
        let (n, d) = (self.n as f64, self.d as f64);
        2.0 * (2.0 * n) * self.weight_entries() + 2.0 * n * n * d
    }

    /// The floating-point operations of one training step (forward and backward products):
    /// the forward pass, `G V` and `G^T U` (`4 N^2 d`), every `dL/dW_l` (`2 (2N) in_l out_l`) and
    /// every `dL/dH_{l-1}` for `l >= 2` (`2 (2N) d^2` each). Counted on the true sizes, not the
    /// padded ones.
    pub fn flops_per_step(&self) -> f64 {
        let (n, d) = (self.n as f64, self.d as f64);
        let hidden = (self.layers() - 1) as f64 * d * d;
        self.flops_forward() + 4.0 * n * n * d + 4.0 * n * self.weight_entries() + 4.0 * n * hidden
    }

    /// `sum_l in_l out_l`, the number of weights.
    fn weight_entries(&self) -> f64 {
        let d = self.d as f64;
        2.0 * d * d + (self.layers() - 1) as f64 * d * d
    }

    /// Runs the network on both sides and fills `E` (hence `U`, `V`) and `S` (also in `f64`).
    ///
    /// Returns `false` if a non-finite value appeared (an output norm that is NaN or infinite).
    fn forward(&mut self) -> bool {
        let Encoder {
            n,
            d,
            x,
            wt,
            b,
            h,
            norm,
            e,
            vt,
            s,
            s64,
            kernel,
            ..
        } = self;
        let (n, d, kernel) = (*n, *d, *kernel);
        for l in 0..wt.len() {
            let (prev, rest) = h.split_at_mut(l);
            let out = &mut rest[0];
            let input = if l == 0 {
                x.view()
            } else {
                prev[l - 1].slice(s![.., ..d])
            };
            // H_l = ReLU(H_{l-1} W_l^T + 1 b_l^T), bias and ReLU in the product's epilogue.
            let bias = b[l].as_slice().expect("a bias is contiguous");
            gemm_epilogue(
                kernel,
                input,
                wt[l].view(),
                out.view_mut(),
                Epilogue::BiasRelu(bias),
            );
        }
        let y = &h[h.len() - 1];
        let dp = y.ncols();
        let (es, ys) = (contiguous_mut(e), contiguous(y));
        let norms = norm.as_slice_mut().expect("a norm vector is contiguous");
        // One row: `e_i = y_i / max(||y_i||, eps)`; whether `||y_i||` is finite.
        let normalise = |((ei, yi), ni): ((&mut [T], &[T]), &mut T)| {
            let r = dot(yi, yi).sqrt();
            *ni = r;
            let inv = T::ONE / if r > T::NORM_EPS { r } else { T::NORM_EPS };
            ei.iter_mut().zip(yi).for_each(|(e, &y)| *e = y * inv);
            r.finite()
        };
        let finite = if es.len() >= PAR_MIN {
            es.par_chunks_exact_mut(dp)
                .zip(ys.par_chunks_exact(dp))
                .zip(norms.par_iter_mut())
                .map(normalise)
                .reduce(|| true, |a, b| a & b)
        } else {
            es.chunks_exact_mut(dp)
                .zip(ys.chunks_exact(dp))
                .zip(norms.iter_mut())
                .map(normalise)
                .fold(true, |a, b| a & b)
        };
        let (eu, ev) = (e.slice(s![..n, ..d]), e.slice(s![n.., ..d]));
        product_with_transposed(kernel, eu, ev, vt, s);
        convert(s64.view_mut(), s.slice(s![.., ..n]), T::to_f64);
        self.form_joint();
        finite
    }

    /// The loss at the current parameters (forward pass only; fills `U`, `V`, `S`).
    ///
    /// Non-finite if the network produced a non-finite value.
    pub fn loss(&mut self, loss: &Loss) -> f64 {
        self.prepare(loss);
        let finite = self.forward();
        let value = self.value_at(loss);
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
        if self.prepare(loss) {
            let finite = self.forward();
            let j = self.joint.as_mut().expect("prepared");
            j.g64.assign(&j.k64);
            let value = dense::<f64, Loss, true>(loss, j.g64.view_mut());
            if !finite || !value.is_finite() {
                return f64::NAN;
            }
            self.backward_joint();
            return value;
        }
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
    /// vectorised kernel of [`Loss::grad_s`], for InfoNCE from [`Loss::value_grad_s`]). This is
    /// the training step; [`Encoder::last_loss`] gives the loss at the same parameters if wanted.
    ///
    /// Returns `false` (gradients not computed) if the network produced a non-finite value.
    pub fn grad(&mut self, loss: &Loss) -> bool {
        self.grad_with(loss, |_, _| {})
    }

    /// As [`Encoder::grad`], then `adjust(S, G_S)` before the backward pass, with `G_S` the
    /// gradient with respect to the entries of `S` (for a loss of the joint views, the block
    /// `K[..N, N..]` of `dL/dK`): the hook of the mini-batch objectives (`batched.rs`: the
    /// weighted negatives, the penalty).
    pub(super) fn grad_with(
        &mut self,
        loss: &Loss,
        adjust: impl FnOnce(ArrayView2<'_, f64>, ArrayViewMut2<'_, f64>),
    ) -> bool {
        let joint = self.prepare(loss);
        if !self.forward() {
            return false;
        }
        if joint {
            let n = self.n;
            let j = self.joint.as_mut().expect("prepared");
            j.g64.assign(&j.k64);
            let value = dense::<f64, Loss, true>(loss, j.g64.view_mut());
            if !value.is_finite() || !j.g64.iter().all(|x| x.is_finite()) {
                return false;
            }
            adjust(self.s64.view(), j.g64.slice_mut(s![..n, n..]));
            self.backward_joint();
        } else {
            if !loss.grad_s(self.s64.view(), self.g64.view_mut()) {
                return false;
            }
            adjust(self.s64.view(), self.g64.view_mut());
            self.backward();
        }
        true
    }

    /// Mutable access to the inputs (`x^u` over `x^v`, `2N x 2d`): a batch's rows are copied
    /// in by `batched.rs`.
    pub(super) fn inputs_mut(&mut self) -> ArrayViewMut2<'_, T> {
        self.x.view_mut()
    }

    /// The loss `L(S)` of the `S` of the last forward pass ([`Encoder::grad`], [`Encoder::loss`]
    /// or [`Encoder::loss_grad`]), without running the network again.
    pub fn last_loss(&self, loss: &Loss) -> f64 {
        self.value_at(loss)
    }

    /// Back-propagates `G = dL/dS` (in `g64`) to every parameter (module doc, "Backward").
    fn backward(&mut self) {
        let Encoder {
            n,
            e,
            g64,
            g,
            da,
            kernel,
            ..
        } = self;
        let (n, kernel) = (*n, *kernel);
        convert(g.view_mut(), g64.view(), T::from_f64);
        // dL/dU = G V, dL/dV = G^T U.
        gemm_kernel(
            kernel,
            g.view(),
            e.slice(s![n.., ..]),
            da.slice_mut(s![..n, ..]),
            false,
        );
        gemm_kernel(
            kernel,
            g.t(),
            e.slice(s![..n, ..]),
            da.slice_mut(s![n.., ..]),
            false,
        );
        self.backward_embeddings();
    }

    /// Back-propagates `G = dL/dK` of a loss of the joint views (in the joint buffers):
    /// `dL/dE = (G + G^T) E` (SPEC §1.0), then as [`Encoder::backward`].
    fn backward_joint(&mut self) {
        let Encoder {
            e,
            da,
            kernel,
            joint,
            ..
        } = self;
        let j = joint.as_mut().expect("the joint buffers");
        Zip::from(&mut j.gs)
            .and(&j.g64)
            .and(j.g64.t())
            .for_each(|a, &b, &c| *a = T::from_f64(b + c));
        gemm_kernel(*kernel, j.gs.view(), e.view(), da.view_mut(), false);
        self.backward_embeddings();
    }

    /// Back-propagates `dL/dE` (in `da`) through the normalisation and every layer to every
    /// parameter (module doc, "Backward").
    fn backward_embeddings(&mut self) {
        let Encoder {
            d,
            x,
            wt,
            gwt,
            gb,
            w_scratch,
            h,
            norm,
            e,
            da,
            db,
            kernel,
            ..
        } = self;
        let (d, kernel) = (*d, *kernel);
        // Through the normalisation and the last ReLU: dL/dZ_L, and in the same pass its
        // column sums dL/db_L (row by row, in order).
        let last = h.len() - 1;
        let gb_last = gb[last].as_slice_mut().expect("a bias is contiguous");
        gb_last.fill(T::ZERO);
        let dp = da.ncols();
        let (das, es, hs) = (contiguous_mut(da), contiguous(e), contiguous(&h[last]));
        let norms = norm.as_slice().expect("a norm vector is contiguous");
        if das.len() >= PAR_MIN {
            // Rows in parallel, then the column sums over fixed column chunks, each column in
            // row order: the bits of the fused pass below.
            das.par_chunks_exact_mut(dp)
                .zip(es.par_chunks_exact(dp))
                .zip(norms.par_iter())
                .zip(hs.par_chunks_exact(dp))
                .for_each(|(((dyi, ei), &r), yi)| normalisation_grad(dyi, ei, r, yi));
            column_sums(da.view(), gb_last);
        } else {
            for (((dyi, ei), &r), yi) in das
                .chunks_exact_mut(dp)
                .zip(es.chunks_exact(dp))
                .zip(norms.iter())
                .zip(hs.chunks_exact(dp))
            {
                normalisation_grad(dyi, ei, r, yi);
                gb_last
                    .iter_mut()
                    .zip(dyi.iter())
                    .for_each(|(a, &b)| *a = *a + b);
            }
        }
        // Layers, last to first; `cur` holds dL/dZ_l.
        let (mut cur, mut nxt) = (da, db);
        for l in (0..wt.len()).rev() {
            let input = if l == 0 {
                x.view()
            } else {
                h[l - 1].slice(s![.., ..d])
            };
            gemm_kernel(kernel, input.t(), cur.view(), gwt[l].view_mut(), false);
            // dL/db_l is already in gb[l] (summed as dL/dZ_l was written).
            if l > 0 {
                // dL/dZ_{l-1} = (dL/dZ_l W_l) . [H_{l-1} > 0] and its column sums dL/db_{l-1},
                // in the product's epilogue.
                let sums = gb[l - 1].as_slice_mut().expect("a bias is contiguous");
                sums.fill(T::ZERO);
                let dz = cur.slice(s![.., ..d]);
                let w = wt[l].slice(s![.., ..d]);
                if kernel.resolve(dz.nrows(), d, w_scratch.ncols()) == GemmKernel::Blocked {
                    // The blocked product packs `B`, so it reads `W_l` through the transposed
                    // view; the padding columns of `dL/dZ_{l-1}` stay zero.
                    gemm_epilogue(
                        GemmKernel::Blocked,
                        dz,
                        w.t(),
                        nxt.slice_mut(s![.., ..d]),
                        Epilogue::Mask(h[l - 1].slice(s![.., ..d]), &mut sums[..d]),
                    );
                } else {
                    w_scratch.slice_mut(s![.., ..d]).assign(&w.t());
                    gemm_epilogue(
                        kernel,
                        dz,
                        w_scratch.view(),
                        nxt.view_mut(),
                        Epilogue::Mask(h[l - 1].view(), sums),
                    );
                }
                std::mem::swap(&mut cur, &mut nxt);
            }
        }
    }

    /// Whether every padding column (weights, biases, activations, embeddings, `V^T`, `S`) is
    /// zero: the invariant of the padded layout (module doc, "Layout").
    #[cfg(test)]
    pub(super) fn padding_is_zero(&self) -> bool {
        let (n, d) = (self.n, self.d);
        let zero = |x: ArrayView2<'_, T>| x.iter().all(|&v| v == T::ZERO);
        self.wt
            .iter()
            .chain(&self.gwt)
            .all(|w| zero(w.slice(s![.., d..])))
            && self
                .b
                .iter()
                .chain(&self.gb)
                .all(|b| b.slice(s![d..]).iter().all(|&v| v == T::ZERO))
            && self.h.iter().all(|h| zero(h.slice(s![.., d..])))
            && zero(self.e.slice(s![.., d..]))
            && zero(self.vt.slice(s![.., n..]))
            && zero(self.s.slice(s![.., n..]))
            && zero(self.w_scratch.slice(s![.., d..]))
    }

    /// One SGD step `theta <- theta - lr * dL/dtheta` on every parameter, with the gradients of
    /// the last [`Encoder::loss_grad`] (no momentum, no weight decay; SPEC §5).
    ///
    /// Returns `false` if a parameter became non-finite.
    pub fn sgd_step(&mut self, lr: f64) -> bool {
        let lr = T::from_f64(lr);
        let mut finite = true;
        for (wl, gl) in self.wt.iter_mut().zip(&self.gwt) {
            finite &= descend(contiguous_mut(wl), contiguous(gl), lr);
        }
        for (bl, gl) in self.b.iter_mut().zip(&self.gb) {
            let (p, g) = (bl.as_slice_mut(), gl.as_slice());
            finite &= descend(
                p.expect("a bias is contiguous"),
                g.expect("a bias gradient is contiguous"),
                lr,
            );
        }
        finite
    }
}

/// The entries of a standard-layout (row-major, contiguous) array: every buffer of the
/// workspace is one.
fn contiguous<T>(a: &Array2<T>) -> &[T] {
    a.as_slice()
        .expect("the workspace's buffers are contiguous")
}

/// [`contiguous`], mutable.
fn contiguous_mut<T>(a: &mut Array2<T>) -> &mut [T] {
    a.as_slice_mut()
        .expect("the workspace's buffers are contiguous")
}

/// `dst = f(src)` entrywise, on the rayon pool from [`PAR_MIN`] entries.
fn convert<A: Copy + Sync, B: Send>(
    dst: ArrayViewMut2<'_, B>,
    src: ArrayView2<'_, A>,
    f: impl Fn(A) -> B + Sync + Send,
) {
    let zip = Zip::from(dst).and(src);
    if zip.size() >= PAR_MIN {
        zip.par_for_each(|a, &b| *a = f(b));
    } else {
        zip.for_each(|a, &b| *a = f(b));
    }
}

/// The SGD step `p -= lr g` on one parameter array, on the rayon pool from [`PAR_MIN`] entries;
/// whether every new entry is finite.
fn descend<T: Real>(p: &mut [T], g: &[T], lr: T) -> bool {
    let step = |(p, &g): (&mut T, &T)| {
        *p = *p - lr * g;
        p.finite()
    };
    if p.len() >= PAR_MIN {
        p.par_iter_mut()
            .zip(g.par_iter())
            .map(step)
            .reduce(|| true, |a, b| a & b)
    } else {
        p.iter_mut().zip(g).map(step).fold(true, |a, b| a & b)
    }
}

/// Through the normalisation and the last ReLU, one row: `dy <- (dy - e (e . dy)) / ||y||` where
/// `y > 0` when `||y|| = r > eps`, else `dy / eps` there; `0` where `y <= 0` (module doc,
/// "Backward").
#[inline(always)]
fn normalisation_grad<T: Real>(dyi: &mut [T], ei: &[T], r: T, yi: &[T]) {
    if r > T::NORM_EPS {
        let dot = dot(ei, dyi);
        let inv = T::ONE / r;
        // Computed everywhere, then selected: a branch-free loop that the compiler vectorises
        // (the same numbers as computing it only where `y > 0`).
        for ((dy, &e), &y) in dyi.iter_mut().zip(ei).zip(yi) {
            let g = (*dy - e * dot) * inv;
            *dy = if y > T::ZERO { g } else { T::ZERO };
        }
    } else {
        let inv = T::ONE / T::NORM_EPS;
        for (dy, &y) in dyi.iter_mut().zip(yi) {
            let g = *dy * inv;
            *dy = if y > T::ZERO { g } else { T::ZERO };
        }
    }
}

/// `C = A B^T` (`A: m x d`, `B: n x d`, `C: m x n_p`) for `S = U V^T` and `K = E E^T`. The tiled
/// kernel needs `B^T` with contiguous rows, so `B^T` is copied into `bt` (`d x n_p`) first; the
/// blocked one packs `B` anyway, so it reads the transposed view and writes `C`'s first `n`
/// columns (the padding columns stay zero). The kernel is the one `kernel` resolves to for the
/// padded product, so the choice is that of the padded layout.
fn product_with_transposed<T: Real>(
    kernel: GemmKernel,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    bt: &mut Array2<T>,
    c: &mut Array2<T>,
) {
    let (m, d) = a.dim();
    let n = b.nrows();
    if kernel.resolve(m, d, bt.ncols()) == GemmKernel::Blocked {
        gemm_kernel(
            GemmKernel::Blocked,
            a,
            b.t(),
            c.slice_mut(s![.., ..n]),
            false,
        );
    } else {
        bt.slice_mut(s![.., ..n]).assign(&b.t());
        gemm_kernel(kernel, a, bt.view(), c.view_mut(), false);
    }
}

/// `sum_i x_i y_i` in the order of `ndarray`'s dot product of two contiguous vectors (eight
/// partial sums over the blocks of eight, added as `((p0 + p4) + (p1 + p5)) ...`, then the
/// tail), so that the results are those of `x.dot(&y)`, bitwise.
#[inline(always)]
fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    let n = x.len().min(y.len());
    let mut p = [T::ZERO; 8];
    let (xc, yc) = (x[..n].chunks_exact(8), y[..n].chunks_exact(8));
    let (xt, yt) = (xc.remainder(), yc.remainder());
    for (xb, yb) in xc.zip(yc) {
        for l in 0..8 {
            p[l] = p[l] + xb[l] * yb[l];
        }
    }
    let mut sum = T::ZERO;
    sum = sum + (p[0] + p[4]);
    sum = sum + (p[1] + p[5]);
    sum = sum + (p[2] + p[6]);
    sum = sum + (p[3] + p[7]);
    for (&a, &b) in xt.iter().zip(yt) {
        sum = sum + a * b;
    }
    sum
}
