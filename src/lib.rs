//! `ccem`: the geometry of contrastive losses.
//!
//! Implements *Analysis of Using Sigmoid Loss for Contrastive Learning* (C. Lee, J. Chang,
//! J. Sohn, AISTATS 2024, arXiv:2402.12613): the sigmoid (SigLIP) and symmetric InfoNCE (CLIP)
//! losses with exact gradients ([`loss`]), the double-Constant Embedding Model ([`Ccem`]), the
//! exact optimum of the sigmoid loss ([`Optimum`], [`predict`]), the measurement of any
//! embedding against it ([`measure`], [`Report`]), free-embedding optimisation ([`optimize`]),
//! mini-batch training and the optimum of the expected mini-batch loss ([`batch`],
//! [`predict_batch`]),
//! the paper's encoder experiment ([`encoder::train`]) and resumable sweeps over grids of
//! `(N, t)` ([`sweep`]). Every formula is stated in its doc comment with the section of the
//! specification (`docs/SPEC.md` in the repository) it comes from.
//!
//! The library computes and returns; it never prints. Bad input is an [`Error`], never a panic:
//! configurations are checked once into [`Valid`] values, which the runners take.
//!
//! InfoNCE is, as in the paper, the **sum** of the row and the column cross-entropies: twice
//! open_clip's `ClipLoss` (their mean); see [`loss::infonce_clip`].
//!
//! # Cargo features
//! - `cli` (default): the `ccem` command-line program (clap, indicatif, anyhow).
//! - `plot` (default): the figures ([`plot`], [`reproduce`]; plotters, ab_glyph).
//!
//! With `default-features = false` the library builds without any of these crates.
//!
//! # Example
//! ```
//! use ccem::{optimize, predict, FreeConfig, Loss, Phase, Report};
//!
//! // The theory: the optimum of the sigmoid loss for N = 8 pairs at t = b = 1.
//! let loss = Loss::sigmoid(1.0, 1.0)?;
//! let theory = predict(8, 8, &loss).expect("d >= N: the theory applies");
//! assert_eq!(theory.phase, Phase::Intermediate);
//!
//! // The experiment: free unit embeddings in R^8, optimised from a random start ...
//! let run = optimize(&FreeConfig::new(8, 8, loss, 42))?;
//! // ... measured and compared with the theory.
//! let report = Report::new(run.u.view(), run.v.view(), &loss)?;
//! assert_eq!(report.meets_theory(), Some(true));
//! let m = report.measurement.unwrap();
//! assert!((m.pos.mean - theory.s_pos).abs() < 1e-3);
//! # Ok::<(), ccem::Error>(())
//! ```
#![warn(missing_docs)]

pub mod base;
pub mod batch;
#[cfg(feature = "plot")]
mod chart;
pub mod encoder;
pub mod error;
pub mod geometry;
pub mod grid;
pub mod inspect;
pub mod io;
pub mod limits;
pub mod loss;
pub mod matrix;
pub mod monitor;
pub mod numerics;
pub mod optim;
pub mod options;
#[cfg(feature = "plot")]
pub mod plot;
pub mod record;
pub mod report;
#[cfg(feature = "plot")]
pub mod reproduce;
pub mod sweep;
pub mod theory;
mod valid;

pub use encoder::{EncoderConfig, EncoderResult};
pub use error::{Error, Result};
pub use geometry::{measure, Ccem, Measurement, Stats};
pub use loss::{BlockOptions, Loss, LossKind};
pub use optim::{optimize, FreeConfig, FreeResult, OptimizerKind, Termination};
pub use report::Report;
pub use sweep::{Mode, ResultRow, RowStatus, SweepSpec};
pub use theory::{predict, predict_batch, BiasMode, Optimum, Phase};
pub use valid::Valid;
