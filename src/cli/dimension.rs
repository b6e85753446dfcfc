//! `ccem theory --d D`: where the CCEM optimum applies, and what replaces it below (SPEC §7).

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

/// Adds `d`, `ccem_applies`, `margin_bound` and `max_margin` to a record, and empties the
/// prediction where `d` is below `needed(N)` ([`ccem::record::with_dimension`]).
pub fn annotate_one<T: Serialize>(
    r: &T,
    d: usize,
    needed: impl Fn(usize) -> usize,
) -> Result<Value> {
    Ok(ccem::record::with_dimension(r, d, needed)?)
}

/// The note printed (to standard error) when some cell has `d` below what the theory needs.
pub const BELOW_NOTE: &str = "note: for d < N the CCEM optimum (Lee, Chang, Sohn) does not apply: \
the minimiser is not a CCEM. With t and the relative bias learnt, the sigmoid loss heads for a \
maximum-margin constellation (Bangachev et al. 2025), whose margin is at most margin_bound = \
N/(2(N-1)) (reached by the simplex ETF, which needs d >= N-1); find it with the max_margin command shown.";
