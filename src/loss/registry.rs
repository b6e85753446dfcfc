//! The registry of built-in losses: one line per loss.
//!
//! From the list at the bottom of this file, the `registry!` macro writes:
//! - [`LossKind`], a loss without its parameters (the command line's `--loss` values, the
//!   `objective` column and key, Python's `loss=` names);
//! - [`Loss`], a loss with its validated parameters (one variant per line, wrapping the loss's
//!   own type), serialised as `{"objective": NAME, PARAM: VALUE, ...}`;
//! - the dispatch: [`Loss`] is itself a [`ContrastiveLoss`], which forwards every method to
//!   the loss it holds, and [`Loss::with`] hands the concrete type to generic code (so a
//!   blocked kernel is monomorphised per loss, never dispatched per entry).
//!
//! Adding a built-in loss: write its file in `src/loss/` (a type implementing
//! [`ContrastiveLoss`]), then add one line here (`docs/ARCHITECTURE.md`, "A new loss").

use super::contrastive::{BlockAt, ContrastiveLoss, Prepass, Tuned, Views};
use super::lse::Lse;
use super::params::{FromParams, LossParams};
use crate::base::Real;
use ndarray::{ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// Generic code that takes a concrete loss type ([`Loss::with`]).
pub trait WithLoss {
    /// What the code returns.
    type Output;
    /// Runs the code on the concrete loss.
    fn call<L: ContrastiveLoss>(self, loss: &L) -> Self::Output;
}

macro_rules! registry {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal : $summary:literal ),+ $(,)?) => {
        /// The kind of a loss, without its parameters (module documentation).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum LossKind {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )+
        }

        impl LossKind {
            /// Every registered loss, in registry order.
            pub const ALL: &'static [LossKind] = &[$( LossKind::$variant ),+];

            /// The loss's name (`sigmoid`, `infonce`, ...).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( LossKind::$variant => $name, )+
                }
            }

            /// The loss's one-line meaning, with its parameters (the command line's `--help`
            /// lists it next to the name).
            pub fn summary(self) -> &'static str {
                match self {
                    $( LossKind::$variant => $summary, )+
                }
            }

            /// The names of the parameters this loss takes ([`FromParams::PARAMS`]).
            pub fn params(self) -> &'static [&'static str] {
                match self {
                    $( LossKind::$variant => <$ty as FromParams>::PARAMS, )+
                }
            }

            /// Whether this loss is additive ([`FromParams::ADDITIVE`]), not InfoNCE-based.
            pub fn additive(self) -> bool {
                match self {
                    $( LossKind::$variant => <$ty as FromParams>::ADDITIVE, )+
                }
            }

            /// Whether this loss takes the parameter `name`.
            pub fn takes(self, name: &str) -> bool {
                self.params().contains(&name)
            }

            /// The registered names, comma-separated (for messages).
            pub fn names() -> String {
                Self::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        /// A registered loss with its validated parameters (module documentation).
        ///
        /// Construct it from a loss's own constructor (`Sigmoid::new(t, b)?.into()`) or the
        /// shortcuts [`Loss::sigmoid`], [`Loss::sigmoid_relative`], [`Loss::infonce`].
        #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "objective")]
        pub enum Loss {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($ty), )+
        }

        $(
            impl From<$ty> for Loss {
                fn from(l: $ty) -> Self {
                    Loss::$variant(l)
                }
            }
        )+

        impl Loss {
            /// Which kind of loss this is.
            pub fn kind(&self) -> LossKind {
                match self {
                    $( Loss::$variant(_) => LossKind::$variant, )+
                }
            }

            /// The loss of kind `kind` from the parameters a caller gave: the one resolver of
            /// every loss's options ([`FromParams`]; [`super::params`]).
            ///
            /// ```
            /// use ccem::loss::{Loss, LossKind, LossParams};
            /// let p = LossParams { tau: Some(0.5), ..Default::default() };
            /// let loss = Loss::build("simclr".parse()?, &p)?;
            /// assert_eq!(loss.name(), "simclr");
            /// // A parameter the loss does not take is refused, naming both.
            /// let bad = LossParams { t: Some(1.0), ..p };
            /// let err = Loss::build(LossKind::SimClr, &bad).unwrap_err().to_string();
            /// assert!(err.contains("simclr") && err.contains("'t'"));
            /// # Ok::<(), ccem::Error>(())
            /// ```
            ///
            /// # Errors
            /// A parameter the loss does not take, a missing one, or an invalid value (each
            /// message names the loss and the parameter).
            pub fn build(kind: LossKind, p: &LossParams) -> crate::error::Result<Loss> {
                match kind {
                    $( LossKind::$variant => Ok(Loss::$variant(<$ty as FromParams>::from_params(p)?)), )+
                }
            }

            /// Runs generic code on the concrete loss held.
            pub fn with<W: WithLoss>(&self, w: W) -> W::Output {
                match self {
                    $( Loss::$variant(l) => w.call(l), )+
                }
            }
        }

        impl ContrastiveLoss for Loss {
            fn name(&self) -> &'static str {
                self.kind().as_str()
            }
            fn params(&self) -> Vec<(&'static str, f64)> {
                match self { $( Loss::$variant(l) => l.params(), )+ }
            }
            fn views(&self) -> Views {
                match self { $( Loss::$variant(l) => l.views(), )+ }
            }
            fn lse_weight(&self, a: usize, k: usize, pairs: usize) -> f64 {
                match self { $( Loss::$variant(l) => l.lse_weight(a, k, pairs), )+ }
            }
            fn prepass(&self) -> Prepass {
                match self { $( Loss::$variant(l) => l.prepass(), )+ }
            }
            fn value_needs_blocks(&self) -> bool {
                match self { $( Loss::$variant(l) => l.value_needs_blocks(), )+ }
            }
            fn block<R: Real, const GRAD: bool>(&self, s: ArrayViewMut2<R>, at: &BlockAt) -> f64 {
                match self { $( Loss::$variant(l) => l.block::<R, GRAD>(s, at), )+ }
            }
            fn finish(&self, block_sum: f64, n: usize, lse: Option<&Lse>) -> f64 {
                match self { $( Loss::$variant(l) => l.finish(block_sum, n, lse), )+ }
            }
            fn clip_value(&self, value: f64) -> Option<f64> {
                match self { $( Loss::$variant(l) => l.clip_value(value), )+ }
            }
            fn tuned(&self) -> Option<Tuned> {
                match self { $( Loss::$variant(l) => l.tuned(), )+ }
            }
            fn steps_on_log(&self) -> bool {
                match self { $( Loss::$variant(l) => l.steps_on_log(), )+ }
            }
            fn pair_term(&self, s: f64, positive: bool) -> Option<f64> {
                match self { $( Loss::$variant(l) => l.pair_term(s, positive), )+ }
            }
            fn pair_affinity(&self, s: ArrayView2<f64>, i: usize, j: usize, b: usize) -> f64 {
                match self { $( Loss::$variant(l) => l.pair_affinity(s, i, j, b), )+ }
            }
            fn value_s(&self, s: ArrayView2<f64>) -> f64 {
                match self { $( Loss::$variant(l) => l.value_s(s), )+ }
            }
            fn value_grad_s(&self, s: ArrayView2<f64>, g: ArrayViewMut2<f64>) -> f64 {
                match self { $( Loss::$variant(l) => l.value_grad_s(s, g), )+ }
            }
            fn grad_s(&self, s: ArrayView2<f64>, g: ArrayViewMut2<f64>) -> bool {
                match self { $( Loss::$variant(l) => l.grad_s(s, g), )+ }
            }
        }
    };
}

registry! {
    /// The sigmoid loss of SigLIP (SPEC §1): [`super::sigmoid`].
    Sigmoid(super::sigmoid::Sigmoid) = "sigmoid":
        "SigLIP's sigmoid loss: scale t, bias b (or relative_bias), within_view W (default 0)",
    /// Symmetric InfoNCE, the loss of CLIP (SPEC §1): [`super::infonce`].
    InfoNce(super::infonce::InfoNce) = "infonce":
        "CLIP's symmetric InfoNCE (sum of row and column cross-entropies): tau, within_view W",
    /// SimCLR's NT-Xent over the `2N` views (SPEC §1.6): [`super::simclr`].
    SimClr(super::simclr::SimClr) = "simclr":
        "SimCLR's NT-Xent over the 2N views (cross- and within-view negatives): tau",
    /// The decoupled contrastive loss (SPEC §1.6): [`super::dcl`].
    Dcl(super::dcl::Dcl) = "dcl":
        "decoupled contrastive loss (SimCLR without the positive in the denominator): tau",
    /// The decoupled hyperspherical energy loss, within-view negatives (SPEC §1.6):
    /// [`super::dhel`].
    Dhel(super::dhel::Dhel) = "dhel":
        "decoupled hyperspherical energy loss (within-view negatives only): tau",
    /// The spectral contrastive loss (SPEC §1.7): [`super::spectral`].
    Spectral(super::spectral::Spectral) = "spectral":
        "spectral contrastive loss -2 mean S_ii + mean_{i!=j} S_ij^2: no parameter",
}

impl From<Tuned> for Loss {
    /// The loss a tuned kernel computes ([`Tuned`]): the plain sigmoid at `(t, b)` (a learnt
    /// scale and bias are not checked again), or CLIP's InfoNCE at `tau`.
    fn from(k: Tuned) -> Self {
        match k {
            Tuned::Sigmoid { t, b } => Loss::Sigmoid(super::sigmoid::Sigmoid { t, b, within: 0.0 }),
            Tuned::InfoNce { tau } => Loss::InfoNce(super::infonce::InfoNce { tau, within: 0.0 }),
        }
    }
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LossKind {
    type Err = crate::error::Error;

    /// A registered name (any case).
    fn from_str(s: &str) -> crate::error::Result<Self> {
        let key = s.trim().to_ascii_lowercase();
        LossKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == key)
            .ok_or_else(|| {
                crate::error::Error::Config(format!(
                    "unknown loss '{s}': use one of {}",
                    LossKind::names()
                ))
            })
    }
}
