//! The library's error type: every way an input can be invalid, with the offending value.
//!
//! Constructors and readers validate once at the boundary and return
//! one of these; kernels behind a validated type do not re-check.

use std::path::PathBuf;

/// Everything that can go wrong in `ccem`'s library calls.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A batch needs at least two pairs (one positive and one negative per row).
    #[error("batch size N = {n} is too small: need N >= 2")]
    BatchTooSmall {
        /// The batch size given.
        n: usize,
    },
    /// The CCEM lives in `R^N`: it needs `d >= N`.
    #[error("dimension d = {d} is smaller than the batch size N = {n}: the CCEM needs d >= N")]
    DimensionTooSmall {
        /// The batch size.
        n: usize,
        /// The dimension given.
        d: usize,
    },
    /// A parameter that must be a finite number with a given sign was not.
    #[error("invalid {name} = {value:?}: {requirement}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What it must be.
        requirement: &'static str,
    },
    /// Two matrices that must have the same shape do not.
    #[error(
        "shape mismatch: U is {u_rows} x {u_cols} but V is {v_rows} x {v_cols}; they must match"
    )]
    ShapeMismatch {
        /// Rows of `U`.
        u_rows: usize,
        /// Columns of `U`.
        u_cols: usize,
        /// Rows of `V`.
        v_rows: usize,
        /// Columns of `V`.
        v_cols: usize,
    },
    /// A row has zero (or non-finite) norm and cannot be put on the sphere.
    #[error("row {row} of {which} has norm {norm}: it cannot be normalised (use rows with a non-zero, finite norm)")]
    ZeroRow {
        /// Which matrix.
        which: &'static str,
        /// The row.
        row: usize,
        /// Its norm.
        norm: f64,
    },
    /// A matrix holds a NaN or an infinity.
    #[error("{which} holds a non-finite value at row {row}, column {col}")]
    NonFinite {
        /// Which matrix.
        which: &'static str,
        /// The row of the entry.
        row: usize,
        /// The column of the entry.
        col: usize,
    },
    /// A grid specification such as `4..50` or `0.1..5:10` could not be parsed or is empty.
    #[error("invalid grid '{spec}': {reason}")]
    InvalidGrid {
        /// The grid as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or has the wrong content.
    #[error("cannot read '{path}': {reason}")]
    BadInput {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O failure while writing results.
    #[error("I/O error on '{path}'")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A run that would need more memory than it may use (see [`crate::limits`]).
    #[error("{what} would need about {} of memory, more than the {} {}{}; use a smaller problem{}", format_bytes(*.bytes), format_bytes(*.limit), .limit_source, if *.explicit { format!(" ({})", .option) } else { String::new() }, if *.explicit { format!(" or raise {}", .option) } else { format!(" (or set a limit with {} if you know better)", .option) })]
    TooLarge {
        /// What was estimated (e.g. "optimize with N = 1000000, d = 1000000").
        what: String,
        /// The estimated size in bytes.
        bytes: u64,
        /// The limit it exceeds, in bytes.
        limit: u64,
        /// Where the limit comes from (e.g. "available (MemAvailable)", or "allowed" for an
        /// explicit limit).
        limit_source: &'static str,
        /// Whether the limit was set explicitly ([`crate::limits::MemoryLimit::Bytes`]).
        explicit: bool,
        /// The option that sets the limit, as the caller spells it: the library's
        /// `max_memory` ([`crate::limits::MAX_MEMORY`]), which a front end replaces by its own
        /// spelling (`--max-memory`, `max_memory=`).
        option: String,
    },
    /// A configuration that cannot be run (e.g. a sweep directory made by another configuration).
    /// The options it names are marked with [`option`]; displayed as it is, the message shows
    /// the library's names, and each front end spells them its own way
    /// ([`crate::options::Spelling::respell`]).
    #[error("{}", spell_options(.0, str::to_string))]
    Config(String),
    /// Work stopped by its monitor ([`crate::monitor::Monitor::cancelled`]) outside a step loop
    /// (a step loop returns its partial result instead); names what was interrupted.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

/// Short for `std::result::Result<T, ccem::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// Checks that `value` is finite; `name` names it in the error.
pub fn check_finite(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            requirement: "must be a finite number",
        })
    }
}

/// Checks that `value` is finite and `>= 0`.
pub fn check_nonneg(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            requirement: "must be a finite number >= 0",
        })
    }
}

/// Checks that `value` is finite and `> 0`.
pub fn check_positive(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            requirement: "must be a finite number > 0",
        })
    }
}

/// The largest magnitude accepted for the sigmoid loss's scale `t` and bias `b`: `1e250`.
///
/// Beyond it the loss's terms (`2 t c`, `(N - 1) softplus(..)`) overflow to infinity, so results
/// would be silently wrong; well inside it every value is computed in full precision.
pub const MAX_MAGNITUDE: f64 = 1e250;

/// Checks that the sigmoid scale `t` is finite, `>= 0` and at most [`MAX_MAGNITUDE`].
pub fn check_scale(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && (0.0..=MAX_MAGNITUDE).contains(&value) {
        Ok(value)
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            requirement: "must be a finite number in [0, 1e250]",
        })
    }
}

/// Checks that the sigmoid bias `b` is finite with `|b| <= ` [`MAX_MAGNITUDE`].
pub fn check_bias(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value.abs() <= MAX_MAGNITUDE {
        Ok(value)
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            requirement: "must be a finite number in [-1e250, 1e250]",
        })
    }
}

/// Checks that a batch has at least two pairs.
pub fn check_batch(n: usize) -> Result<usize> {
    if n >= 2 {
        Ok(n)
    } else {
        Err(Error::BatchTooSmall { n })
    }
}

/// Opens an option's name in an [`Error::Config`] message ([`option`]).
const OPTION_START: char = '\u{2}';
/// Closes an option's name in an [`Error::Config`] message.
const OPTION_END: char = '\u{3}';

/// The option `name` (the library's, `snake_case`) marked in an [`Error::Config`] message, so
/// that each front end spells it its own way ([`crate::options::Spelling::respell`]:
/// `--within-view` on the command line, `within_view` in Python). Displayed without a front
/// end, the message shows `name`.
///
/// ```
/// use ccem::error::{option, Error};
/// let e = Error::Config(format!("{} must be >= 1", option("seeds")));
/// assert_eq!(e.to_string(), "seeds must be >= 1");
/// ```
pub fn option(name: &str) -> String {
    format!("{OPTION_START}{name}{OPTION_END}")
}

/// `msg` with every option marked by [`option`] replaced by `spell(name)`.
pub fn spell_options(msg: &str, spell: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(a) = rest.find(OPTION_START) {
        out.push_str(&rest[..a]);
        let after = &rest[a + OPTION_START.len_utf8()..];
        match after.find(OPTION_END) {
            Some(b) => {
                out.push_str(&spell(&after[..b]));
                rest = &after[b + OPTION_END.len_utf8()..];
            }
            None => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `1.5 GiB`, `12.0 MiB`, `900 B`: a size for people.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut x = bytes as f64 / 1024.0;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}
