//! Memory limits: estimate what a run needs before starting it, and refuse it with
//! [`Error::TooLarge`] (naming the size) when it exceeds the memory it may use, instead of
//! aborting on a failed allocation half-way.
//!
//! The limit is a value, [`MemoryLimit`], that every entry point which checks memory takes
//! explicitly (a field of its configuration, or an argument): a number of bytes (the option
//! `max_memory`: the command line's `--max-memory`, Python's `max_memory=`), or by default the
//! memory available to new processes at the moment of the check (`MemAvailable` in
//! `/proc/meminfo`, or the address space left under `ulimit -v` when that is smaller), or
//! [`FALLBACK_LIMIT`] where that file does not exist. A limit given to one call never affects
//! another.
//!
//! ```
//! use ccem::limits::{self, MemoryLimit};
//! let limit = MemoryLimit::parse("1G")?; // 1 GiB
//! assert!(limit.check("a small run", 1e6).is_ok());
//! let e = limit.check("optimize with N = 1000000", limits::free_run_bytes(1_000_000, 1_000_000));
//! assert!(e.unwrap_err().to_string().contains("more than the 1.0 GiB"));
//! # Ok::<(), ccem::Error>(())
//! ```

use crate::error::{Error, Result};

/// The limit when none is set and `/proc/meminfo` cannot be read: 4 GiB.
pub const FALLBACK_LIMIT: u64 = 4 << 30;

/// The library's name of the option that sets a [`MemoryLimit`] (the front ends spell it
/// `--max-memory` and `max_memory=`).
pub const MAX_MEMORY: &str = "max_memory";

/// The most memory a run may use: explicit bytes, or the memory available when it is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MemoryLimit {
    /// The memory available at the moment of the check ([`available_limit`]).
    #[default]
    Available,
    /// At most this many bytes (`>= 1`).
    Bytes(u64),
    /// The memory available as read once ([`MemoryLimit::measured`]): for work that checks many
    /// pieces against one reading (a sweep's cells), so that no piece reads `/proc` again.
    Measured {
        /// The bytes available when it was read.
        bytes: u64,
        /// Where they come from (as [`available_limit`] says).
        source: &'static str,
    },
}

impl MemoryLimit {
    /// At most `bytes` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] named `max_memory` for `bytes = 0`.
    pub fn bytes(bytes: u64) -> Result<Self> {
        if bytes == 0 {
            return Err(Error::InvalidParameter {
                name: MAX_MEMORY,
                value: 0.0,
                requirement: "a memory limit must be at least 1 byte",
            });
        }
        Ok(MemoryLimit::Bytes(bytes))
    }

    /// A size as [`parse_bytes`] reads it (`512M`, `1.5G`, `1000000`).
    ///
    /// # Errors
    /// As [`parse_bytes`].
    pub fn parse(s: &str) -> Result<Self> {
        parse_bytes(s).map(MemoryLimit::Bytes)
    }

    /// The limit in force now: `(bytes, where it comes from, whether it was set explicitly)`.
    pub fn resolve(self) -> (u64, &'static str, bool) {
        match self {
            MemoryLimit::Available => {
                let (bytes, source) = available_limit();
                (bytes, source, false)
            }
            MemoryLimit::Bytes(b) => (b, "allowed", true),
            MemoryLimit::Measured { bytes, source } => (bytes, source, false),
        }
    }

    /// This limit with the memory available read now, once: [`MemoryLimit::Available`] becomes
    /// [`MemoryLimit::Measured`] (a check then reads nothing, and its refusal says the same as
    /// the check it replaces); an explicit limit stays as it is.
    ///
    /// ```
    /// use ccem::limits::MemoryLimit;
    /// assert!(matches!(MemoryLimit::Available.measured(), MemoryLimit::Measured { .. }));
    /// assert_eq!(MemoryLimit::Bytes(1024).measured(), MemoryLimit::Bytes(1024));
    /// ```
    pub fn measured(self) -> MemoryLimit {
        match self {
            MemoryLimit::Available => {
                let (bytes, source) = available_limit();
                MemoryLimit::Measured { bytes, source }
            }
            other => other,
        }
    }

    /// Checks that `bytes` (an estimate; any non-negative number, saturating) fits this limit.
    ///
    /// # Errors
    /// [`Error::TooLarge`] naming `what`, the size and the limit.
    pub fn check(self, what: &str, bytes: f64) -> Result<()> {
        let (limit, limit_source, explicit) = self.resolve();
        if bytes.is_nan() || bytes > limit as f64 {
            return Err(Error::TooLarge {
                what: what.to_string(),
                bytes: if bytes.is_nan() {
                    u64::MAX
                } else {
                    bytes as u64
                },
                limit,
                limit_source,
                explicit,
                option: MAX_MEMORY.to_string(),
            });
        }
        Ok(())
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes (`None` where it cannot be read).
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The address space this process may still map under its `ulimit -v` (`RLIMIT_AS` from
/// `/proc/self/limits` minus `VmSize` from `/proc/self/status`); `None` when unlimited or
/// unreadable.
pub fn address_space_left() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft: u64 = line
        .trim_start_matches("Max address space")
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let vm = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let kib: u64 = vm.split_whitespace().nth(1)?.parse().ok()?;
    Some(soft.saturating_sub(kib.saturating_mul(1024)))
}

/// The limit of [`MemoryLimit::Available`] now: `(bytes, where it comes from)`, the memory
/// available, or the address space left under `ulimit -v` when that is smaller.
pub fn available_limit() -> (u64, &'static str) {
    let (avail, source) = match available_memory() {
        Some(b) => (b, "available (MemAvailable)"),
        None => (FALLBACK_LIMIT, "assumed available"),
    };
    match address_space_left() {
        Some(left) if left < avail => (left, "address space left (ulimit -v)"),
        _ => (avail, source),
    }
}

pub use crate::error::format_bytes;

/// Parses a size: a number of bytes with an optional unit `K`, `M`, `G`, `T` (powers of 1024;
/// `KiB`, `MB`, `g`, ... are accepted too), e.g. `512M`, `1.5G`, `1000000`.
///
/// # Errors
/// [`Error::Config`] for anything else, or a size of 0.
pub fn parse_bytes(s: &str) -> Result<u64> {
    let bad = || {
        Error::Config(format!(
            "invalid memory size '{s}': use e.g. 512M, 8G or 1.5G"
        ))
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = x * mult as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Bytes of an `rows x cols` matrix of f64 (as a float, so that it cannot overflow).
pub fn matrix_bytes(rows: usize, cols: usize) -> f64 {
    8.0 * rows as f64 * cols as f64
}

/// Estimated memory of a free-embedding optimisation ([`crate::optim::optimize`]) with `N = n`
/// pairs in `R^d`: two `N x N` buffers of the objective, and about twelve `N x d` arrays (the
/// parameters, their gradient, the optimiser's moments, the best start, the result).
pub fn free_run_bytes(n: usize, d: usize) -> f64 {
    2.0 * matrix_bytes(n, n) + 12.0 * matrix_bytes(n, d)
}

/// Estimated memory of an encoder run ([`crate::encoder::train`]): four `N x N` similarity and
/// gradient buffers, about `11 + 2 layers` arrays of `N x d` (data, activations,
/// back-propagation) and `4 layers + 1` of `d x d` (weights, their gradients).
pub fn encoder_run_bytes(n: usize, d: usize, layers: usize) -> f64 {
    4.0 * matrix_bytes(n, n)
        + (11.0 + 2.0 * layers as f64) * matrix_bytes(n, d)
        + (4.0 * layers as f64 + 1.0) * matrix_bytes(d, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        for bad in ["", "G", "-1G", "0", "1X", "nan"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
        assert_eq!(format_bytes(100), "100 B");
    }

    #[test]
    fn a_measured_limit_refuses_as_the_available_one() {
        let (bytes, source) = available_limit();
        let measured = MemoryLimit::Available.measured();
        assert_eq!(measured, MemoryLimit::Measured { bytes, source });
        assert_eq!(measured.resolve(), (bytes, source, false));
        let fresh = MemoryLimit::Available
            .check("x", f64::INFINITY)
            .unwrap_err();
        let once = measured.check("x", f64::INFINITY).unwrap_err();
        let text = |e: Error| {
            e.to_string()
                .split(" than the ")
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(text(fresh), text(once));
        assert!(measured.check("x", bytes as f64).is_ok());
        assert!(measured.check("x", bytes as f64 + 1e6).is_err());
        assert_eq!(MemoryLimit::Bytes(7).measured(), MemoryLimit::Bytes(7));
    }

    #[test]
    fn available_memory_is_read() {
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(available_memory().unwrap() > 0);
        }
    }

    #[test]
    fn estimates_grow_with_the_problem() {
        assert!(free_run_bytes(1_000_000, 1_000_000) > 1e13);
        assert!(encoder_run_bytes(1_000_000, 1_000_000, 2) > 1e13);
        assert!(free_run_bytes(50, 50) < 1e6);
        let e = MemoryLimit::default()
            .check("x", f64::INFINITY)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x would need about"), "{e}");
    }

    #[test]
    fn a_limit_given_to_one_call_does_not_affect_the_next() {
        let small = MemoryLimit::parse("1K").unwrap();
        let e = small.check("x", 1e6).unwrap_err().to_string();
        assert!(
            e.contains("more than the 1.0 KiB allowed (max_memory); use a smaller problem or raise max_memory"),
            "{e}"
        );
        // The next call, with the default limit, is not refused.
        assert!(MemoryLimit::default().check("x", 1e6).is_ok());
        assert!(MemoryLimit::bytes(0).is_err());
        assert_eq!(MemoryLimit::bytes(5).unwrap(), MemoryLimit::Bytes(5));
        let (_, source, explicit) = MemoryLimit::Available.resolve();
        assert!(!explicit && !source.is_empty());
    }
}
