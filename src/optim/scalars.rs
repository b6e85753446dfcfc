//! Learnable scale `t` and bias `b` of the sigmoid loss, parametrised as SigLIP trains them.
//!
//! # Parametrisation (SPEC.md §1)
//! - scale: `t = exp(t')`, the parameter is `t'` (so `t > 0` always);
//! - bias, absolute: `b` itself (logit `t S - b`);
//! - bias, relative: `b = r_b t`, the parameter is `r_b` (logit `t (S - r_b)`).
//!
//! A parameter that is not learnt stays at its initial value; with the relative bias and a
//! learnt `t`, a fixed `r_b` makes `b` follow `t`.
//!
//! # Gradients
//! With `H_ij = dL/dlogit_ij` (so that `G = dL/dS = t H`), the chain rule on
//! `logit_ij = t S_ij - b` gives `dL/dt |_b = sum_ij H_ij S_ij = sum_ij G_ij S_ij / t` and
//! `dL/db |_t = -sum_ij H_ij = -sum_ij G_ij / t`. Hence
//!
//! - absolute bias: `dL/dt' = t sum H S`, `dL/db = -sum H`;
//! - relative bias: `b = r_b t` moves with `t`, so
//!   `dL/dt' = t (dL/dt + r_b dL/db) = t sum H (S - r_b)` and `dL/dr_b = t dL/db = -t sum H`.
//!
//! The sums come from the same pass that computes `G` (`objective.rs`); using `H` rather
//! than `G / t` keeps them exact at any `t`. Each formula is checked against finite differences
//! in the tests.

/// Which of the sigmoid loss's two scalars are learnt, and how the bias is parametrised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScalarFlags {
    /// Learn `t' = log t`.
    pub learn_t: bool,
    /// Learn the bias parameter (`b`, or `r_b` when [`ScalarFlags::relative_bias`]).
    pub learn_b: bool,
    /// Parametrise the bias as `b = r_b t`.
    pub relative_bias: bool,
}

/// The current scale and bias parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scalars {
    /// The scale `t`.
    t: f64,
    /// `b`, or `r_b` with the relative bias.
    bias_param: f64,
    flags: ScalarFlags,
}

impl Scalars {
    /// From the initial `t` and `b` (`r_b = b / t` with the relative bias; the caller checks
    /// that `t > 0` whenever `t` is learnt or the bias is relative).
    pub fn new(t: f64, b: f64, flags: ScalarFlags) -> Self {
        let bias_param = if flags.relative_bias { b / t } else { b };
        Scalars {
            t,
            bias_param,
            flags,
        }
    }

    /// The scale `t`.
    pub fn t(&self) -> f64 {
        self.t
    }

    /// The bias `b` (`r_b t` with the relative bias).
    pub fn b(&self) -> f64 {
        if self.flags.relative_bias {
            self.bias_param * self.t
        } else {
            self.bias_param
        }
    }

    /// How many scalars the optimiser sees (0, 1 or 2).
    pub fn len(&self) -> usize {
        usize::from(self.flags.learn_t) + usize::from(self.flags.learn_b)
    }

    /// `true` when nothing is learnt.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the learnt parameters, `[t'][b or r_b]`, into `out` (length [`Scalars::len`]).
    pub fn write(&self, out: &mut [f64]) {
        let mut k = 0;
        if self.flags.learn_t {
            out[k] = self.t.ln();
            k += 1;
        }
        if self.flags.learn_b {
            out[k] = self.bias_param;
        }
    }

    /// Reads the learnt parameters back from `p` (the layout of [`Scalars::write`]).
    pub fn read(&mut self, p: &[f64]) {
        let mut k = 0;
        if self.flags.learn_t {
            self.t = p[k].exp();
            k += 1;
        }
        if self.flags.learn_b {
            self.bias_param = p[k];
        }
    }

    /// The gradient with respect to the learnt parameters (module documentation), from
    /// `sum_h = sum_ij H_ij` and `sum_hs = sum_ij H_ij S_ij`, written into `out`.
    pub fn gradient(&self, sum_h: f64, sum_hs: f64, out: &mut [f64]) {
        let (d_log_t, d_bias) = scalar_gradients(
            self.t,
            self.bias_param,
            self.flags.relative_bias,
            sum_h,
            sum_hs,
        );
        let mut k = 0;
        if self.flags.learn_t {
            out[k] = d_log_t;
            k += 1;
        }
        if self.flags.learn_b {
            out[k] = d_bias;
        }
    }
}

/// `(dL/dt', dL/d(bias parameter))` for `t = exp(t')` (module documentation):
///
/// - absolute bias (`bias_param = b`): `(t sum H S, -sum H)`;
/// - relative bias (`bias_param = r_b`): `(t sum H (S - r_b), -t sum H)`,
///
/// with `sum_h = sum_ij H_ij`, `sum_hs = sum_ij H_ij S_ij` and `H = dL/dlogit`.
pub fn scalar_gradients(
    t: f64,
    bias_param: f64,
    relative_bias: bool,
    sum_h: f64,
    sum_hs: f64,
) -> (f64, f64) {
    if relative_bias {
        (t * (sum_hs - bias_param * sum_h), -t * sum_h)
    } else {
        (t * sum_hs, -sum_h)
    }
}
