//! The double-Constant Embedding Model (SPEC.md §2), the measurement of any embedding
//! against it (SPEC.md §4), and its margins (SPEC.md §6).

pub mod ccem;
pub mod margin;
pub mod measure;

pub use ccem::{ccem_embedding, random_orthogonal, simplex_etf, Ccem};
pub use margin::{margin_bound, margins, Margins, QuantileLevel};
pub use measure::{measure, Measurement, Stats};
