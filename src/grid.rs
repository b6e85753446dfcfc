//! Parameter grids on the command line: a single value, `4..50` (integers, inclusive) and
//! `0.1..5:10` (10 values, linspace, inclusive), or a comma-separated list `1,2,5`.

use crate::error::{Error, Result};

fn bad(spec: &str, reason: impl Into<String>) -> Error {
    Error::InvalidGrid {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

/// Parses an integer grid: `10`, `4..50` (inclusive), `4..50:2` (step 2) or `4,8,16`.
///
/// # Errors
/// An empty range (`5..4`), a zero step, or a value that is not a non-negative integer.
pub fn parse_int_grid(spec: &str) -> Result<Vec<usize>> {
    let s = spec.trim();
    let int = |x: &str| -> Result<usize> {
        x.trim().parse::<usize>().map_err(|_| {
            bad(
                spec,
                format!("'{}' is not a non-negative integer", x.trim()),
            )
        })
    };
    if s.is_empty() {
        return Err(bad(spec, "empty"));
    }
    if s.contains(',') {
        return s.split(',').map(int).collect();
    }
    match s.split_once("..") {
        None => Ok(vec![int(s)?]),
        Some((lo, rest)) => {
            let (hi, step) = match rest.split_once(':') {
                None => (rest, 1),
                Some((hi, st)) => (hi, int(st)?),
            };
            let (lo, hi) = (int(lo)?, int(hi)?);
            if step == 0 {
                return Err(bad(spec, "the step must be >= 1"));
            }
            if hi < lo {
                return Err(bad(spec, format!("empty range: {hi} < {lo}")));
            }
            Ok((lo..=hi).step_by(step).collect())
        }
    }
}

/// Parses a real grid: `1.5`, `0.1..5:10` (10 values from 0.1 to 5, inclusive, evenly spaced)
/// or `0.5,1,2`. `a..a:1` is the single value `a`.
///
/// # Errors
/// A count of 0, fewer than 2 values between distinct ends, `hi < lo`, a missing count, or a
/// value that is not a finite number.
pub fn parse_real_grid(spec: &str) -> Result<Vec<f64>> {
    let s = spec.trim();
    let real = |x: &str| -> Result<f64> {
        let v = x
            .trim()
            .parse::<f64>()
            .map_err(|_| bad(spec, format!("'{}' is not a number", x.trim())))?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(bad(spec, format!("'{}' is not finite", x.trim())))
        }
    };
    if s.is_empty() {
        return Err(bad(spec, "empty"));
    }
    if s.contains(',') {
        return s.split(',').map(real).collect();
    }
    match s.split_once("..") {
        None => Ok(vec![real(s)?]),
        Some((lo, rest)) => {
            let (hi, count) = rest.split_once(':').ok_or_else(|| {
                bad(
                    spec,
                    "a real range needs a count: LO..HI:COUNT, e.g. 0.1..5:10",
                )
            })?;
            let (lo, hi) = (real(lo)?, real(hi)?);
            let count: usize = count
                .trim()
                .parse()
                .map_err(|_| bad(spec, format!("count '{}' is not an integer", count.trim())))?;
            if count == 0 {
                return Err(bad(spec, "the count must be >= 1"));
            }
            if hi < lo {
                return Err(bad(spec, format!("empty range: {hi} < {lo}")));
            }
            if count == 1 {
                return if hi == lo {
                    Ok(vec![lo])
                } else {
                    Err(bad(
                        spec,
                        "one value cannot span two different ends; use a count >= 2",
                    ))
                };
            }
            Ok(linspace(lo, hi, count))
        }
    }
}

/// `count` evenly spaced values from `lo` to `hi` inclusive (numpy's `linspace`): value `k` is
/// `lo + k (hi - lo)/(count - 1)`, and the last is exactly `hi`.
pub fn linspace(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if count == 1 {
        return vec![lo];
    }
    let step = (hi - lo) / (count - 1) as f64;
    (0..count)
        .map(|k| {
            if k + 1 == count {
                hi
            } else {
                lo + step * k as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_grids() {
        assert_eq!(parse_int_grid("4..7").unwrap(), vec![4, 5, 6, 7]);
        assert_eq!(parse_int_grid("10").unwrap(), vec![10]);
        assert_eq!(parse_int_grid("4..10:3").unwrap(), vec![4, 7, 10]);
        assert_eq!(parse_int_grid("3,5").unwrap(), vec![3, 5]);
        assert!(parse_int_grid("5..4").is_err());
        assert!(parse_int_grid("4..x").is_err());
        assert!(parse_int_grid("-3").is_err());
        assert!(parse_int_grid("").is_err());
    }

    #[test]
    fn real_grids() {
        let g = parse_real_grid("0.1..5:10").unwrap();
        assert_eq!(g.len(), 10);
        assert_eq!(g[0], 0.1);
        assert_eq!(g[9], 5.0);
        assert!((g[1] - (0.1 + 4.9 / 9.0)).abs() < 1e-15);
        assert_eq!(parse_real_grid("2.5").unwrap(), vec![2.5]);
        assert!(parse_real_grid("0.1..5:0").is_err());
        assert!(parse_real_grid("0.1..5").is_err());
        assert!(parse_real_grid("5..0.1:3").is_err());
        assert!(parse_real_grid("nan").is_err());
        assert!(parse_real_grid("1..2:1").is_err());
    }
}
