//! The one place where Python objects become Rust values and back.
//!
//! - [`matrix`]: a numpy array (float32 or float64, any layout) as an owned `N x d`
//!   [`Matrix`] of the same precision; [`matrix_out`] gives an array back.
//! - [`parse`]: a string option (`precision=`, `quantile=`) through the library's `FromStr`.
//! - [`error`]: a library error as the Python exception for it.
//!
//! Records (a `Serialize` struct as a dict, many records as numpy columns) are in
//! [`crate::columns`], re-exported here.

use ccem::limits::MemoryLimit;
use ccem::matrix::Matrix;
use ccem::Error;
use ndarray::Array2;
use numpy::{
    dtype, IntoPyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;

pub use crate::columns::{record, Columns};

/// A library error as a Python exception: `OSError` for I/O, `ValueError` for everything else
/// (bad values, shapes, configurations), with the library's message.
pub fn error(e: Error) -> PyErr {
    // The library's option names in Python's spelling (`max_memory=`).
    let e = ccem::options::Spelling::Keyword.respell(e);
    match e {
        Error::Io { .. } => {
            // The message names the file; the cause follows it.
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            PyOSError::new_err(msg)
        }
        Error::Interrupted(_) => PyKeyboardInterrupt::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// `ValueError(msg)`.
pub fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// A count (`n`, `d`, `steps`, ...) from a Python int: a negative value is a `ValueError`
/// naming it (pyo3 would raise `OverflowError`); the library checks the rest.
pub fn count(x: i64, name: &str) -> PyResult<usize> {
    usize::try_from(x).map_err(|_| value_error(format!("invalid {name} = {x}: must be >= 0")))
}

/// Reads `obj` (a numpy array, or anything `numpy.asarray` accepts, e.g. a list) as a 2-D
/// float32/float64 matrix named `name` in messages. Any memory layout and either byte order is
/// accepted.
///
/// # Errors
/// `TypeError` for any other dtype (integers, float16, objects, ...); `ValueError` for a number
/// of dimensions other than 2, or a copy larger than `max_memory` (e.g. a zero-stride
/// `numpy.broadcast_to` view of a huge shape).
pub fn matrix(obj: &Bound<'_, PyAny>, name: &str, max_memory: MemoryLimit) -> PyResult<Matrix> {
    let py = obj.py();
    let arr = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let np = py.import("numpy")?;
            let a = np
                .call_method1("asarray", (obj,))
                .map_err(|e| PyTypeError::new_err(format!("{name} must be a numpy array: {e}")))?;
            a.cast_into::<PyUntypedArray>()?
        }
    };
    // Every path below copies the array (a zero-stride view such as `np.broadcast_to` takes
    // its full size then): check that size against the memory limit first.
    let bytes = arr
        .shape()
        .iter()
        .fold(arr.dtype().itemsize() as f64, |a, &x| a * x as f64);
    max_memory
        .check(&format!("copying {name} (shape {:?})", arr.shape()), bytes)
        .map_err(error)?;
    // A float array in the other byte order (e.g. read from a big-endian file) is converted to
    // the native one: same values, same precision.
    let arr = if arr.dtype().kind() == b'f' && arr.dtype().is_native_byteorder() == Some(false) {
        let native = arr.dtype().call_method1("newbyteorder", ("=",))?;
        arr.call_method1("astype", (native,))?
            .cast_into::<PyUntypedArray>()?
    } else {
        arr
    };
    let dt = arr.dtype();
    let is_f64 = dt.is_equiv_to(&dtype::<f64>(py));
    if !is_f64 && !dt.is_equiv_to(&dtype::<f32>(py)) {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a float32 or float64 array, got dtype {}; convert it with \
             {name}.astype(numpy.float64)",
            dt.str()?
        )));
    }
    if arr.ndim() != 2 {
        return Err(value_error(format!(
            "{name} must be a 2-D array (N rows of dimension d), got shape {:?}",
            arr.shape()
        )));
    }
    // An owned copy in standard layout, in the array's own precision.
    Ok(if is_f64 {
        let a = arr.cast::<PyArrayDyn<f64>>()?.readonly();
        let view = a.as_array();
        Matrix::F64(Array2::from_shape_fn(
            (view.shape()[0], view.shape()[1]),
            |(i, j)| view[[i, j]],
        ))
    } else {
        let a = arr.cast::<PyArrayDyn<f32>>()?.readonly();
        let view = a.as_array();
        Matrix::F32(Array2::from_shape_fn(
            (view.shape()[0], view.shape()[1]),
            |(i, j)| view[[i, j]],
        ))
    })
}

/// `m` as a numpy array of its own precision.
pub fn matrix_out(py: Python<'_>, m: Matrix) -> Bound<'_, PyAny> {
    match m {
        Matrix::F64(a) => a.into_pyarray(py).into_any(),
        Matrix::F32(a) => a.into_pyarray(py).into_any(),
    }
}

/// A bias argument as given: `None`, a number, or a string (`"tied"` or a number), parsed by
/// the library ([`ccem::options::parse_bias`]).
pub fn bias_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<ccem::options::BiasArg>> {
    use ccem::options::BiasArg;
    match obj {
        None => Ok(None),
        Some(x) if x.is_none() => Ok(None),
        Some(x) => match x.cast::<pyo3::types::PyString>() {
            Ok(s) => Ok(Some(BiasArg::Text(s.to_str()?.to_string()))),
            Err(_) => Ok(Some(BiasArg::Value(x.extract::<f64>()?))),
        },
    }
}

/// `relative_bias=`: `None`/`False` (absolute bias), `True` (the relative parametrisation, its
/// value from `init_b` when learnt: the CLI's `--relative-bias` alone) or a number `r_b`.
pub fn relative_bias_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Option<f64>>> {
    match obj {
        None => Ok(None),
        Some(x) if x.is_none() => Ok(None),
        Some(x) if x.is_instance_of::<pyo3::types::PyBool>() => {
            Ok(x.extract::<bool>()?.then_some(None))
        }
        Some(x) => Ok(Some(Some(x.extract::<f64>()?))),
    }
}

/// An optional string argument parsed by the library's `FromStr` (its error as `ValueError`).
pub fn parse<T: std::str::FromStr<Err = ccem::Error>>(s: Option<&str>) -> PyResult<Option<T>> {
    s.map(str::parse).transpose().map_err(error)
}
