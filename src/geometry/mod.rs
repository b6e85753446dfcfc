//! The double-Constant Embedding Model (SPEC.md §2) and the measurement of any embedding
//! against it (SPEC.md §4).

mod ccem;
mod measure;

pub use ccem::{ccem_embedding, random_orthogonal, simplex_etf, Ccem};
pub use measure::{measure, Measurement, Stats};
