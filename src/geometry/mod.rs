//! The double-Constant Embedding Model (SPEC.md §2), the measurement of any embedding
//! against it (SPEC.md §4; in one pass with both losses, [`inspect()`], SPEC §4.1), and its margins
//! (SPEC.md §7).

mod ccem;
pub mod inspect;
mod margin;
mod measure;
mod scan;

pub use ccem::{
    ccem_embedding, ccem_embedding_with, random_orthogonal, random_orthogonal_rows, simplex_etf,
    Ccem,
};
pub use inspect::{inspect, inspect_with, InspectConfig, Inspection, QuantileMode};
pub use margin::{margin_bound, margins, Margins, QuantileLevel, DEFAULT_MARGIN_QUANTILE};
pub use measure::{measure, Measurement, Stats};
pub use scan::{linear_quantile_sorted, CANDIDATE_CAP, EXACT_QUANTILE_MAX_N, HISTOGRAM_BINS};
