//! The double-Constant Embedding Model (SPEC.md §2), the measurement of any embedding
//! against it (SPEC.md §4), its margins (SPEC.md §7), and the one-pass scan engine that
//! `crate::inspect` (SPEC §4.1) and the margins share (`scan`).

mod ccem;
mod margin;
mod measure;
pub(crate) mod scan;

pub use ccem::{
    ccem_embedding, ccem_embedding_with, random_orthogonal, random_orthogonal_rows, simplex_etf,
    Ccem,
};
pub(crate) use margin::margins_keeping;
pub use margin::{margin_bound, margins, Margins, QuantileLevel, DEFAULT_MARGIN_QUANTILE};
pub(crate) use measure::measure_with;
pub use measure::{measure, Measurement, Stats};
pub use scan::{
    linear_quantile_sorted, QuantileMode, CANDIDATE_CAP, EXACT_QUANTILE_MAX_N, HISTOGRAM_BINS,
};
