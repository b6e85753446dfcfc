//! The Python extension `ccem._ccem`: a thin binding of the `ccem` library (pyo3 + rust-numpy).
//!
//! One file per area; every function reads its arguments, calls the library without the GIL,
//! and turns the library's records into dicts through [`convert`]. Nothing here computes what
//! the library computes. The Python package `ccem` (python/ccem/__init__.py) re-exports these
//! functions; `__init__.pyi` holds their type stubs.

mod convert;
mod inspect;
mod interrupt;
mod losses;
mod max_margin;
mod memory;
mod runs;
mod sweep;
mod theory;

use pyo3::prelude::*;

/// The geometry of contrastive losses (SigLIP's sigmoid loss, CLIP's InfoNCE) from numpy.
#[pymodule]
fn _ccem(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(theory::theory, m)?)?;
    m.add_function(wrap_pyfunction!(losses::sigmoid_loss, m)?)?;
    m.add_function(wrap_pyfunction!(losses::infonce_loss, m)?)?;
    m.add_function(wrap_pyfunction!(losses::loss, m)?)?;
    m.add_function(wrap_pyfunction!(losses::ccem_embedding, m)?)?;
    m.add_function(wrap_pyfunction!(inspect::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(runs::optimize, m)?)?;
    m.add_function(wrap_pyfunction!(max_margin::max_margin, m)?)?;
    m.add_function(wrap_pyfunction!(runs::train, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::sweep, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::plot, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
