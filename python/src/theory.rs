//! `ccem.theory`: the exact optimum on scalars or on numpy arrays that broadcast.
//!
//! Every cell is the library's [`Optimum`] (its `Serialize` gives the keys of
//! `ccem theory --format json`), with the phase boundaries of its `N` and bias setting after it.

use crate::convert::{self, value_error, Columns};
use ccem::theory::{BiasMode, Optimum};
use ccem::LossKind;
use numpy::PyReadonlyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString};
use serde::Serialize;

/// One cell of the sigmoid theory (of the expected loss over batches of `batch`, if given),
/// with its phase boundaries (SPEC §3.2, weighted with mini-batches as §8) if asked for. The
/// library checks the cell (`N >= 2`, `2 <= B <= N`, a valid loss) before the boundaries.
fn sigmoid_cell(
    n: usize,
    t: f64,
    m: BiasMode,
    batch: Option<usize>,
    with_boundaries: bool,
) -> ccem::Result<SigmoidCell> {
    let (optimum, w) = match batch {
        Some(bsz) => (
            Optimum::sigmoid_batch(n, bsz, t, m.bias(t))?,
            Some(ccem::theory::batch::negative_weight(n, bsz)?),
        ),
        None => (Optimum::sigmoid(n, t, m.bias(t))?, None),
    };
    let (t_etf_boundary, t_antipodal_boundary) = if with_boundaries {
        let wt = w.unwrap_or(1.0);
        (
            m.etf_boundary_weighted(n, wt),
            m.antipodal_boundary_weighted(n, wt),
        )
    } else {
        (None, None)
    };
    Ok(SigmoidCell {
        optimum,
        t_etf_boundary,
        t_antipodal_boundary,
        batch,
        w,
    })
}
