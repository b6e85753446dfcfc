//! The one place where Python objects become Rust values and back.
//!
//! - [`matrix`]: a numpy array (float32 or float64, any layout) as an owned `N x d`
//!   [`Matrix`] of the same precision; [`matrix_out`] gives an array back.
//! - [`parse`]: a string option (`precision=`, `quantile=`) through the library's `FromStr`.
//! - [`record`]: a `Serialize` record (the same struct the CLI prints as JSON) as a dict.
//! - [`columns`]: many records as a dict of numpy columns (nulls become NaN).
//! - [`error`]: a library error as the Python exception for it.

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
use pyo3::types::{PyDict, PyList};
use rayon::prelude::*;
use serde::ser::{self, Impossible, Serialize};
use std::borrow::Cow;

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

/// A record (any `Serialize` struct, the one the CLI prints with `--format json`) as a dict with
/// the same keys. Numbers stay numbers (a NaN or an infinity stays a float; the CLI's JSON shows
/// them as `null`), `None` fields are `None`, enums are their lower-case names.
pub fn record<'py, T: Serialize>(py: Python<'py>, rec: &T) -> PyResult<Bound<'py, PyDict>> {
    let obj = pythonize::pythonize(py, rec)
        .map_err(|e| PyTypeError::new_err(format!("cannot convert a record: {e}")))?;
    Ok(obj.cast_into::<PyDict>()?)
}

/// One column of [`columns`].
enum Column {
    /// Only nulls so far (this many).
    Nulls(usize),
    F64(Vec<f64>),
    I64(Vec<i64>),
    /// Booleans, possibly with nulls (then it becomes an object array of True/False/None).
    Bool(Vec<Option<bool>>),
    /// Strings; a null is an empty string.
    Str(Vec<Cow<'static, str>>),
}

/// One value of a record's field.
enum Value {
    Null,
    F64(f64),
    I64(i64),
    Bool(bool),
    Str(Cow<'static, str>),
}

impl Column {
    /// Appends `x`, settling the column's type on its first non-null value (an integer column
    /// that meets a null or a float becomes a float column).
    fn push(&mut self, x: Value) -> Result<(), ColumnError> {
        match (&*self, &x) {
            (Column::Nulls(k), Value::Null) => {
                *self = Column::Nulls(k + 1);
                return Ok(());
            }
            (Column::Nulls(0), Value::I64(_)) => *self = Column::I64(Vec::new()),
            (Column::Nulls(k), Value::F64(_) | Value::I64(_)) => {
                *self = Column::F64(vec![f64::NAN; *k])
            }
            (Column::Nulls(k), Value::Bool(_)) => *self = Column::Bool(vec![None; *k]),
            (Column::Nulls(k), Value::Str(_)) => *self = Column::Str(vec![Cow::Borrowed(""); *k]),
            (Column::I64(v), Value::Null | Value::F64(_)) => {
                *self = Column::F64(v.iter().map(|&i| i as f64).collect())
            }
            _ => {}
        }
        match (self, x) {
            (Column::F64(v), Value::F64(f)) => v.push(f),
            (Column::F64(v), Value::I64(i)) => v.push(i as f64),
            (Column::F64(v), Value::Null) => v.push(f64::NAN),
            (Column::I64(v), Value::I64(i)) => v.push(i),
            (Column::Bool(v), Value::Bool(b)) => v.push(Some(b)),
            (Column::Bool(v), Value::Null) => v.push(None),
            (Column::Str(v), Value::Str(s)) => v.push(s),
            (Column::Str(v), Value::Null) => v.push(Cow::Borrowed("")),
            _ => return Err(ColumnError("a field changes type between records".into())),
        }
        Ok(())
    }

    /// The values, for [`Column::append`].
    fn into_values(self) -> Vec<Value> {
        match self {
            Column::Nulls(k) => (0..k).map(|_| Value::Null).collect(),
            Column::F64(v) => v.into_iter().map(Value::F64).collect(),
            Column::I64(v) => v.into_iter().map(Value::I64).collect(),
            Column::Bool(v) => v
                .into_iter()
                .map(|b| b.map_or(Value::Null, Value::Bool))
                .collect(),
            Column::Str(v) => v.into_iter().map(Value::Str).collect(),
        }
    }

    /// Appends the column `other` (of the same field in later records).
    fn append(&mut self, other: Column) -> Result<(), ColumnError> {
        match (&mut *self, other) {
            (Column::F64(a), Column::F64(b)) => a.extend(b),
            (Column::I64(a), Column::I64(b)) => a.extend(b),
            (Column::Bool(a), Column::Bool(b)) => a.extend(b),
            (Column::Str(a), Column::Str(b)) => a.extend(b),
            (_, b) => {
                for x in b.into_values() {
                    self.push(x)?;
                }
            }
        }
        Ok(())
    }
}

/// A chunk of records, owned or borrowed, for [`Columns::build`].
pub trait RecordsRef {
    /// The chunk's columns.
    fn columns(&self) -> Result<Columns, ColumnError>;
}

impl<T: Serialize> RecordsRef for Vec<T> {
    fn columns(&self) -> Result<Columns, ColumnError> {
        Columns::of_serial(self)
    }
}

impl<T: Serialize> RecordsRef for &[T] {
    fn columns(&self) -> Result<Columns, ColumnError> {
        Columns::of_serial(self)
    }
}

/// Records per parallel task of [`Columns::build`].
const CHUNK: usize = 1 << 14;

/// Records turned into columns: `keys[i]` names `cols[i]`.
pub struct Columns {
    keys: Vec<Cow<'static, str>>,
    cols: Vec<Column>,
}

impl Columns {
    /// Columns of `records` (structs of scalars: numbers, options, strings, unit enums).
    pub fn of<T: Serialize + Sync>(records: &[T]) -> Result<Self, ColumnError> {
        Columns::build(records.len(), |r| Ok::<_, ColumnError>(&records[r]))
    }

    /// Columns of `len` records made by `make` for consecutive ranges of indices, in chunks in
    /// parallel (so the records of a chunk stay in cache) and joined in order.
    pub fn build<R, E, F>(len: usize, make: F) -> Result<Self, E>
    where
        R: RecordsRef,
        E: From<ColumnError> + Send,
        F: Fn(std::ops::Range<usize>) -> Result<R, E> + Sync,
    {
        let parts = (0..len.div_ceil(CHUNK))
            .into_par_iter()
            .map(|k| {
                let recs = make(k * CHUNK..((k + 1) * CHUNK).min(len))?;
                Ok(recs.columns()?)
            })
            .collect::<Result<Vec<Columns>, E>>()?;
        let mut parts = parts.into_iter();
        let Some(mut all) = parts.next() else {
            return Ok(Columns {
                keys: Vec::new(),
                cols: Vec::new(),
            });
        };
        for part in parts {
            if part.keys != all.keys {
                return Err(ColumnError("records with different fields".into()).into());
            }
            for (a, b) in all.cols.iter_mut().zip(part.cols) {
                a.append(b)?;
            }
        }
        Ok(all)
    }

    fn of_serial<T: Serialize>(records: &[T]) -> Result<Self, ColumnError> {
        let mut c = Columns {
            keys: Vec::new(),
            cols: Vec::new(),
        };
        for (row, r) in records.iter().enumerate() {
            r.serialize(RowSer {
                cols: &mut c,
                row,
                field: 0,
            })?;
        }
        Ok(c)
    }

    /// A dict of numpy arrays of `shape` (the number of records must be its product).
    pub fn into_dict<'py>(self, py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyDict>> {
        let np = py.import("numpy")?;
        let dict = PyDict::new(py);
        for (key, col) in self.keys.into_iter().zip(self.cols) {
            let flat: Bound<'py, PyAny> = match col {
                Column::Nulls(k) => vec![f64::NAN; k].into_pyarray(py).into_any(),
                Column::F64(v) => v.into_pyarray(py).into_any(),
                Column::I64(v) => v.into_pyarray(py).into_any(),
                Column::Bool(v) if v.iter().all(Option::is_some) => v
                    .into_iter()
                    .map(|b| b == Some(true))
                    .collect::<Vec<bool>>()
                    .into_pyarray(py)
                    .into_any(),
                Column::Bool(v) => {
                    let list = PyList::new(py, v)?;
                    np.call_method1("array", (list, "object"))?
                }
                Column::Str(v) => unicode_array(py, &v)?,
            };
            dict.set_item(key, flat.call_method1("reshape", (shape.to_vec(),))?)?;
        }
        Ok(dict)
    }
}

/// Strings as a numpy fixed-width unicode array (`<U{width}`), built from one UCS-4 buffer
/// rather than one Python string per element.
fn unicode_array<'py>(py: Python<'py>, v: &[Cow<'static, str>]) -> PyResult<Bound<'py, PyAny>> {
    let width = v
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut buf = vec![0u32; v.len() * width];
    for (i, s) in v.iter().enumerate() {
        for (j, ch) in s.chars().enumerate() {
            buf[i * width + j] = ch as u32;
        }
    }
    let codes = buf.into_pyarray(py);
    let np = py.import("numpy")?;
    let dt = np.call_method1("dtype", (format!("<U{width}"),))?;
    codes.call_method1("view", (dt,))
}

/// Why records could not be turned into columns (a field that is not a scalar).
#[derive(Debug)]
pub struct ColumnError(String);

impl std::fmt::Display for ColumnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ColumnError {}

impl ser::Error for ColumnError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ColumnError(msg.to_string())
    }
}

impl From<ColumnError> for PyErr {
    fn from(e: ColumnError) -> PyErr {
        PyTypeError::new_err(format!("cannot convert records to columns: {e}"))
    }
}

/// Serialises one record (a struct) into the columns.
struct RowSer<'a> {
    cols: &'a mut Columns,
    row: usize,
    field: usize,
}

impl ser::SerializeStruct for RowSer<'_> {
    type Ok = ();
    type Error = ColumnError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ColumnError> {
        self.key(key)?;
        ser::SerializeMap::serialize_value(self, value)
    }

    fn end(self) -> Result<(), ColumnError> {
        ser::SerializeMap::end(self)
    }
}

impl RowSer<'_> {
    /// The next field is `key`: a new column in the first record, else checked to be the
    /// column's.
    fn key(&mut self, key: &str) -> Result<(), ColumnError> {
        if self.row == 0 {
            self.cols.keys.push(Cow::Owned(key.to_string()));
            self.cols.cols.push(Column::Nulls(0));
        } else if self.cols.keys.get(self.field).map(|k| k.as_ref()) != Some(key) {
            return Err(ColumnError(format!(
                "records with different fields ({key})"
            )));
        }
        Ok(())
    }
}

/// Records that serialise as maps: `#[serde(flatten)]` fields (a [`ccem::Report`] inside a
/// command's record) and map-shaped records ([`ccem::Optimum`]). Keys must be strings.
impl ser::SerializeMap for RowSer<'_> {
    type Ok = ();
    type Error = ColumnError;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), ColumnError> {
        if self.row == 0 {
            self.cols
                .keys
                .push(Cow::Owned(key.serialize(KeySer(None))?));
            self.cols.cols.push(Column::Nulls(0));
            return Ok(());
        }
        let expected = self.cols.keys.get(self.field).map(|k| k.as_ref());
        key.serialize(KeySer(Some(expected.unwrap_or_default())))?;
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), ColumnError> {
        let x = value.serialize(ValueSer)?;
        self.cols.cols[self.field].push(x)?;
        self.field += 1;
        Ok(())
    }

    fn end(self) -> Result<(), ColumnError> {
        if self.field != self.cols.keys.len() {
            return Err(ColumnError("records with different fields".into()));
        }
        Ok(())
    }
}

fn unsupported<T>(what: &str) -> Result<T, ColumnError> {
    Err(ColumnError(format!(
        "a record must be a struct of scalars ({what})"
    )))
}

/// Serialises a map key: in the first record the key itself; in the others it is compared with
/// the column's name (no allocation per cell) and an empty string is returned.
struct KeySer<'a>(Option<&'a str>);

macro_rules! not_a_key {
    ($($m:ident($($a:ty),*)),*) => {$(
        fn $m(self, $(_: $a),*) -> Result<String, ColumnError> { unsupported("a map key that is not a string") }
    )*};
}

impl ser::Serializer for KeySer<'_> {
    type Ok = String;
    type Error = ColumnError;
    type SerializeSeq = Impossible<String, ColumnError>;
    type SerializeTuple = Impossible<String, ColumnError>;
    type SerializeTupleStruct = Impossible<String, ColumnError>;
    type SerializeTupleVariant = Impossible<String, ColumnError>;
    type SerializeMap = Impossible<String, ColumnError>;
    type SerializeStruct = Impossible<String, ColumnError>;
    type SerializeStructVariant = Impossible<String, ColumnError>;

    fn serialize_str(self, v: &str) -> Result<String, ColumnError> {
        match self.0 {
            None => Ok(v.to_string()),
            Some(k) if k == v => Ok(String::new()),
            Some(_) => Err(ColumnError(format!("records with different fields ({v})"))),
        }
    }

    not_a_key!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str)
    );

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<String, ColumnError> {
        unsupported("an optional map key")
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, ColumnError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, ColumnError> {
        unsupported("a map key that is not a string")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, ColumnError> {
        unsupported("a map key that is not a string")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ColumnError> {
        unsupported("a map key that is not a string")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ColumnError> {
        unsupported("a map key that is not a string")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ColumnError> {
        unsupported("a map key that is not a string")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, ColumnError> {
        unsupported("a map key that is not a string")
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, ColumnError> {
        unsupported("a map key that is not a string")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ColumnError> {
        unsupported("a map key that is not a string")
    }
}

macro_rules! not_a_record {
    ($($m:ident($($a:ty),*)),*) => {$(
        fn $m(self, $(_: $a),*) -> Result<(), ColumnError> { unsupported(stringify!($m)) }
    )*};
}

impl<'a> ser::Serializer for RowSer<'a> {
    type Ok = ();
    type Error = ColumnError;
    type SerializeSeq = Impossible<(), ColumnError>;
    type SerializeTuple = Impossible<(), ColumnError>;
    type SerializeTupleStruct = Impossible<(), ColumnError>;
    type SerializeTupleVariant = Impossible<(), ColumnError>;
    type SerializeMap = RowSer<'a>;
    type SerializeStruct = RowSer<'a>;
    type SerializeStructVariant = Impossible<(), ColumnError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<RowSer<'a>, ColumnError> {
        Ok(self)
    }

    not_a_record!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str)
    );

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), ColumnError> {
        unsupported("option")
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), ColumnError> {
        unsupported("newtype")
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), ColumnError> {
        unsupported("variant")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, ColumnError> {
        unsupported("sequence")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ColumnError> {
        unsupported("tuple")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ColumnError> {
        unsupported("tuple struct")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ColumnError> {
        unsupported("tuple variant")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<RowSer<'a>, ColumnError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ColumnError> {
        unsupported("struct variant")
    }
}

/// Serialises one field's value into a [`Value`].
struct ValueSer;

macro_rules! scalar {
    ($($m:ident($t:ty) => $e:expr),*) => {$(
        fn $m(self, v: $t) -> Result<Value, ColumnError> { Ok($e(v)) }
    )*};
}

impl ser::Serializer for ValueSer {
    type Ok = Value;
    type Error = ColumnError;
    type SerializeSeq = Impossible<Value, ColumnError>;
    type SerializeTuple = Impossible<Value, ColumnError>;
    type SerializeTupleStruct = Impossible<Value, ColumnError>;
    type SerializeTupleVariant = Impossible<Value, ColumnError>;
    type SerializeMap = Impossible<Value, ColumnError>;
    type SerializeStruct = Impossible<Value, ColumnError>;
    type SerializeStructVariant = Impossible<Value, ColumnError>;

    scalar!(
        serialize_bool(bool) => Value::Bool,
        serialize_i8(i8) => |v| Value::I64(i64::from(v)),
        serialize_i16(i16) => |v| Value::I64(i64::from(v)),
        serialize_i32(i32) => |v| Value::I64(i64::from(v)),
        serialize_i64(i64) => Value::I64,
        serialize_u8(u8) => |v| Value::I64(i64::from(v)),
        serialize_u16(u16) => |v| Value::I64(i64::from(v)),
        serialize_u32(u32) => |v| Value::I64(i64::from(v)),
        serialize_u64(u64) => |v| i64::try_from(v).map_or(Value::F64(v as f64), Value::I64),
        serialize_f32(f32) => |v| Value::F64(f64::from(v)),
        serialize_f64(f64) => Value::F64,
        serialize_char(char) => |v: char| Value::Str(Cow::Owned(v.to_string())),
        serialize_str(&str) => |v: &str| Value::Str(Cow::Owned(v.to_string()))
    );

    fn serialize_bytes(self, _: &[u8]) -> Result<Value, ColumnError> {
        unsupported("bytes")
    }
    fn serialize_none(self) -> Result<Value, ColumnError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<Value, ColumnError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ColumnError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, ColumnError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, ColumnError> {
        Ok(Value::Str(Cow::Borrowed(variant)))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Value, ColumnError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Value, ColumnError> {
        unsupported("variant with data")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, ColumnError> {
        unsupported("sequence")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ColumnError> {
        unsupported("tuple")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ColumnError> {
        unsupported("tuple struct")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ColumnError> {
        unsupported("tuple variant")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, ColumnError> {
        unsupported("map")
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, ColumnError> {
        unsupported("nested struct")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ColumnError> {
        unsupported("struct variant")
    }
}
