//! `ccem theory --d D`: where the CCEM optimum applies, and what replaces it below (SPEC §7).

use anyhow::Result;
use ccem::geometry::margin_bound;
use serde::Serialize;
use serde_json::{Map, Value};

/// The prediction keys of a `ccem theory` record, emptied where the theory does not apply.
const PREDICTION_KEYS: [&str; 9] = [
    "c_star",
    "delta_star",
    "s_pos",
    "s_neg",
    "loss",
    "loss_clip",
    "phase",
    "t_etf_boundary",
    "t_antipodal_boundary",
];

/// Adds `d`, `ccem_applies`, `margin_bound` and `max_margin` (the command that finds the
/// maximum-margin constellation) to a record, and empties the prediction where `d` is below
/// `needed(N)` (`N` for the sigmoid loss, `N - 1` for InfoNCE): one record.
pub fn annotate_one<T: Serialize>(
    r: &T,
    d: usize,
    needed: impl Fn(usize) -> usize,
) -> Result<Value> {
    let Value::Object(m) = serde_json::to_value(r)? else {
        anyhow::bail!("a theory record is not an object");
    };
    let n = m.get("n").and_then(Value::as_u64).unwrap_or(0) as usize;
    let applies = d >= needed(n);
    let mut o = Map::new();
    for (k, v) in m {
        let blank = !applies && PREDICTION_KEYS.contains(&k.as_str());
        o.insert(k.clone(), if blank { Value::Null } else { v });
        if k == "n" {
            o.insert("d".into(), d.into());
        }
    }
    o.insert("ccem_applies".into(), applies.into());
    o.insert("margin_bound".into(), margin_bound(n.max(2)).into());
    o.insert(
        "max_margin".into(),
        (!applies)
            .then(|| format!("ccem max-margin --n {n} --d {d}"))
            .into(),
    );
    Ok(Value::Object(o))
}

/// The note printed (to standard error) when some cell has `d` below what the theory needs.
pub const BELOW_NOTE: &str = "note: for d < N the CCEM optimum (Lee, Chang, Sohn) does not apply: \
the minimiser is not a CCEM. With t and the relative bias learnt, the sigmoid loss heads for a \
maximum-margin constellation (Bangachev et al. 2025), whose margin is at most margin_bound = \
N/(2(N-1)) (reached by the simplex ETF, which needs d >= N-1); find it with the max_margin command shown.";
