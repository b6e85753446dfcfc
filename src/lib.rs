//! `ccem`: the geometry of contrastive losses.
//!
//! Implements *Analysis of Using Sigmoid Loss for Contrastive Learning* (C. Lee, J. Chang,
//! J. Sohn, AISTATS 2024, arXiv:2402.12613): the sigmoid (SigLIP) and symmetric InfoNCE (CLIP)
//! losses with exact gradients ([`loss`]), the double-Constant Embedding Model ([`geometry`]),
//! the exact optimum of the sigmoid loss ([`theory`]), and the measurement of any embedding
//! against it ([`geometry::measure`](mod@geometry::measure)). Every formula is stated in its doc comment with the section
//! of `SPEC.md` it comes from.
//!
//! The library computes and returns; it never prints. The `ccem` binary owns all output.

pub mod batch;
pub mod encoder;
pub mod error;
pub mod geometry;
pub mod grid;
pub mod io;
pub mod loss;
pub mod numerics;
pub mod optim;
pub mod plot;
pub mod reproduce;
pub mod sweep;
pub mod theory;

pub use error::{Error, Result};
