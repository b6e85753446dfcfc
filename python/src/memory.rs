//! `max_memory=`: the most memory a call may use, as a size string (`"512M"`, `"1.5G"`) or a
//! number of bytes, read once into the library's option and checked by its resolver
//! ([`ccem::options::parse_max_memory`]), as `ccem --max-memory` is.

use crate::convert;
use ccem::limits::MemoryLimit;
use ccem::options::{parse_max_memory, MemoryArg, Spelling};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

/// `max_memory=` as the library's raw option: `None`, a `str` or an `int` (not a `bool`).
///
/// # Errors
/// `TypeError` for any other type (an `int` beyond 64 bits is passed on as its digits).
pub fn arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<MemoryArg>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(MemoryArg::Text(s.to_str()?.to_string())));
    }
    if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        // An int beyond 64 bits goes to the library as its digits, which it reads or refuses
        // (a value, not a type, error) as it does the command line's.
        return Ok(Some(match obj.extract::<i64>() {
            Ok(b) => MemoryArg::Bytes(b),
            Err(_) => MemoryArg::Text(obj.str()?.to_str()?.to_string()),
        }));
    }
    Err(PyTypeError::new_err(format!(
        "max_memory must be a size such as \"512M\" or a number of bytes, got {}",
        obj.get_type().name()?
    )))
}

/// `max_memory=` as the limit itself (for the calls without a raw-options struct).
///
/// # Errors
/// As [`arg`]; `ValueError` for a size the library refuses.
pub fn limit(obj: Option<&Bound<'_, PyAny>>) -> PyResult<MemoryLimit> {
    parse_max_memory(arg(obj)?.as_ref(), Spelling::Keyword).map_err(convert::error)
}
