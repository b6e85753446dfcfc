//! Parameter grids on the command line: a single value, `4..50` (integers, inclusive) and
//! `0.1..5:10` (10 values, linspace, inclusive), or a comma-separated list `1,2,5`.
//!
//! A grid is parsed into an [`IntGrid`] or a [`RealGrid`], which hold the range, not its values:
//! `4..1000000000` costs a few bytes, and its values are produced lazily ([`IntGrid::iter`]).
//! [`parse_int_grid`] and [`parse_real_grid`] materialise a grid as a `Vec`, refusing grids of more
//! than [`MAX_GRID_VALUES`] values. A grid never holds the same value twice.

use crate::error::{Error, Result};

/// The most values [`parse_int_grid`] / [`parse_real_grid`] (and [`IntGrid::to_vec`],
/// [`RealGrid::to_vec`]) materialise: ten million.
pub const MAX_GRID_VALUES: usize = 10_000_000;

fn bad(spec: &str, reason: impl Into<String>) -> Error {
    Error::InvalidGrid {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

/// An integer grid: an inclusive range with a step, or a list of distinct values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntGrid {
    /// `lo, lo + step, ...` up to `hi` inclusive (`lo <= hi`, `step >= 1`).
    Range {
        /// First value.
        lo: usize,
        /// Upper end (included when on the step).
        hi: usize,
        /// Step, `>= 1`.
        step: usize,
    },
    /// Distinct values in the order given.
    List(Vec<usize>),
}

impl IntGrid {
    /// Parses `10`, `4..50` (inclusive), `4..50:2` (step 2) or `4,8,16`.
    ///
    /// ```
    /// use ccem::grid::IntGrid;
    /// let g = IntGrid::parse("4..10:3").unwrap();
    /// assert_eq!(g.len(), 3);
    /// assert_eq!(g.iter().collect::<Vec<_>>(), vec![4, 7, 10]);
    /// assert_eq!(IntGrid::parse("4..1000000000").unwrap().len(), 999_999_997);
    /// assert!(IntGrid::parse("4,4").is_err()); // a repeated value
    /// ```
    ///
    /// # Errors
    /// An empty range (`5..4`), a zero step, a value that is not a non-negative integer, or a
    /// value given twice.
    pub fn parse(spec: &str) -> Result<Self> {
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
            let v = s.split(',').map(int).collect::<Result<Vec<_>>>()?;
            let mut sorted = v.clone();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return Err(bad(
                    spec,
                    format!("{} is given twice (a cell would run twice)", w[0]),
                ));
            }
            return Ok(IntGrid::List(v));
        }
        match s.split_once("..") {
            None => Ok(IntGrid::List(vec![int(s)?])),
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
                Ok(IntGrid::Range { lo, hi, step })
            }
        }
    }

    /// Number of values (at least 1).
    pub fn len(&self) -> usize {
        match self {
            IntGrid::Range { lo, hi, step } => (hi - lo) / step + 1,
            IntGrid::List(v) => v.len(),
        }
    }

    /// Whether the grid has no value (never, for a parsed grid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `k` (`None` past the end).
    pub fn get(&self, k: usize) -> Option<usize> {
        (k < self.len()).then(|| match self {
            IntGrid::Range { lo, step, .. } => lo + k * step,
            IntGrid::List(v) => v[k],
        })
    }

    /// The values, in order, produced lazily.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).map(move |k| self.get(k).expect("k < len"))
    }

    /// The smallest value.
    pub fn min(&self) -> usize {
        self.iter_extremes().0
    }

    /// The largest value.
    pub fn max(&self) -> usize {
        self.iter_extremes().1
    }

    fn iter_extremes(&self) -> (usize, usize) {
        match self {
            IntGrid::Range { lo, .. } => (*lo, self.get(self.len() - 1).unwrap_or(*lo)),
            IntGrid::List(v) => (
                v.iter().copied().min().unwrap_or(0),
                v.iter().copied().max().unwrap_or(0),
            ),
        }
    }

    /// The values as a `Vec`.
    ///
    /// # Errors
    /// [`Error::InvalidGrid`] for more than [`MAX_GRID_VALUES`] values.
    pub fn to_vec(&self) -> Result<Vec<usize>> {
        check_materialisable(self.len(), || self.to_string())?;
        Ok(self.iter().collect())
    }
}

impl std::fmt::Display for IntGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntGrid::Range { lo, hi, step: 1 } => write!(f, "{lo}..{hi}"),
            IntGrid::Range { lo, hi, step } => write!(f, "{lo}..{hi}:{step}"),
            IntGrid::List(v) => {
                let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                write!(f, "{}", s.join(","))
            }
        }
    }
}

/// A real grid: `count` evenly spaced values from `lo` to `hi` inclusive, or a list of distinct
/// finite values.
#[derive(Clone, Debug, PartialEq)]
pub enum RealGrid {
    /// [`linspace`]`(lo, hi, count)`: `lo < hi` and `count >= 2` with distinct values, or
    /// `lo == hi` and `count == 1`.
    Linspace {
        /// First value.
        lo: f64,
        /// Last value.
        hi: f64,
        /// Number of values.
        count: usize,
    },
    /// Distinct values in the order given.
    List(Vec<f64>),
}

impl RealGrid {
    /// Parses `1.5`, `0.1..5:10` (10 values from 0.1 to 5, inclusive, evenly spaced) or
    /// `0.5,1,2`. `a..a:1` is the single value `a`.
    ///
    /// ```
    /// use ccem::grid::RealGrid;
    /// let g = RealGrid::parse("0.1..5:100000000").unwrap(); // nothing is allocated
    /// assert_eq!(g.len(), 100_000_000);
    /// assert_eq!(g.get(99_999_999), Some(5.0));
    /// assert!(RealGrid::parse("0.5,1,0.5").is_err()); // a repeated value
    /// ```
    ///
    /// # Errors
    /// A count of 0, fewer than 2 values between distinct ends, `hi < lo`, a missing count, a
    /// value that is not a finite number, a value given twice, or a range whose values are so
    /// close that neighbours would be equal.
    pub fn parse(spec: &str) -> Result<Self> {
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
            let v = s.split(',').map(real).collect::<Result<Vec<_>>>()?;
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return Err(bad(
                    spec,
                    format!("{} is given twice (a cell would run twice)", w[0]),
                ));
            }
            return Ok(RealGrid::List(v));
        }
        match s.split_once("..") {
            None => Ok(RealGrid::List(vec![real(s)?])),
            Some((lo, rest)) => {
                let (hi, count) = rest.split_once(':').ok_or_else(|| {
                    bad(
                        spec,
                        "a real range needs a count: LO..HI:COUNT, e.g. 0.1..5:10",
                    )
                })?;
                let (lo, hi) = (real(lo)?, real(hi)?);
                let count: usize = count.trim().parse().map_err(|_| {
                    bad(spec, format!("count '{}' is not an integer", count.trim()))
                })?;
                if count == 0 {
                    return Err(bad(spec, "the count must be >= 1"));
                }
                if hi < lo {
                    return Err(bad(spec, format!("empty range: {hi} < {lo}")));
                }
                if count == 1 {
                    return if hi == lo {
                        Ok(RealGrid::Linspace { lo, hi, count })
                    } else {
                        Err(bad(
                            spec,
                            "one value cannot span two different ends; use a count >= 2",
                        ))
                    };
                }
                if hi == lo {
                    return Err(bad(
                        spec,
                        format!(
                            "{count} values from {lo} to {hi} would all be equal: give one value"
                        ),
                    ));
                }
                // Neighbours are distinct when the step exceeds twice the spacing of floats at
                // the larger end (each value is rounded by at most half of that spacing).
                let step = linspace_step(lo, hi, count);
                if step <= 4.0 * f64::EPSILON * lo.abs().max(hi.abs()) {
                    return Err(bad(
                        spec,
                        format!("{count} values between {lo} and {hi} are too close to be distinct numbers"),
                    ));
                }
                Ok(RealGrid::Linspace { lo, hi, count })
            }
        }
    }

    /// Number of values (at least 1).
    pub fn len(&self) -> usize {
        match self {
            RealGrid::Linspace { count, .. } => *count,
            RealGrid::List(v) => v.len(),
        }
    }

    /// Whether the grid has no value (never, for a parsed grid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `k` (`None` past the end); for a range, exactly [`linspace`]'s value `k`.
    pub fn get(&self, k: usize) -> Option<f64> {
        (k < self.len()).then(|| match self {
            RealGrid::Linspace { lo, hi, count } => linspace_value(*lo, *hi, *count, k),
            RealGrid::List(v) => v[k],
        })
    }

    /// The values, in order, produced lazily.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.len()).map(move |k| self.get(k).expect("k < len"))
    }

    /// The smallest value.
    pub fn min(&self) -> f64 {
        match self {
            RealGrid::Linspace { lo, .. } => *lo,
            RealGrid::List(v) => v.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }

    /// The largest value.
    pub fn max(&self) -> f64 {
        match self {
            RealGrid::Linspace { hi, .. } => *hi,
            RealGrid::List(v) => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// The values as a `Vec`.
    ///
    /// # Errors
    /// [`Error::InvalidGrid`] for more than [`MAX_GRID_VALUES`] values.
    pub fn to_vec(&self) -> Result<Vec<f64>> {
        check_materialisable(self.len(), || self.to_string())?;
        Ok(self.iter().collect())
    }
}

impl std::fmt::Display for RealGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RealGrid::Linspace { lo, hi, count } => write!(f, "{lo}..{hi}:{count}"),
            RealGrid::List(v) => {
                let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                write!(f, "{}", s.join(","))
            }
        }
    }
}

fn check_materialisable(len: usize, spec: impl FnOnce() -> String) -> Result<()> {
    if len > MAX_GRID_VALUES {
        Err(bad(
            &spec(),
            format!("{len} values is too many (at most {MAX_GRID_VALUES} here)"),
        ))
    } else {
        Ok(())
    }
}

/// Parses an integer grid ([`IntGrid::parse`]) into its values.
///
/// # Errors
/// Those of [`IntGrid::parse`], and more than [`MAX_GRID_VALUES`] values.
pub fn parse_int_grid(spec: &str) -> Result<Vec<usize>> {
    IntGrid::parse(spec)?.to_vec()
}

/// Parses a real grid ([`RealGrid::parse`]) into its values.
///
/// # Errors
/// Those of [`RealGrid::parse`], and more than [`MAX_GRID_VALUES`] values.
pub fn parse_real_grid(spec: &str) -> Result<Vec<f64>> {
    RealGrid::parse(spec)?.to_vec()
}

/// The step `(hi - lo)/(count - 1)` of a linspace, without overflow when `hi - lo` exceeds the
/// largest float (e.g. `-1e308..1e308`).
fn linspace_step(lo: f64, hi: f64, count: usize) -> f64 {
    let m = (count - 1) as f64;
    let step = (hi - lo) / m;
    if step.is_finite() {
        step
    } else {
        hi / m - lo / m
    }
}

/// Value `k` of `linspace(lo, hi, count)`.
fn linspace_value(lo: f64, hi: f64, count: usize, k: usize) -> f64 {
    if count == 1 {
        return lo;
    }
    if k + 1 == count {
        return hi;
    }
    let step = linspace_step(lo, hi, count);
    let v = lo + step * k as f64;
    if v.is_finite() {
        v
    } else {
        // `step * k` overflowed although the value lies between finite ends.
        let f = k as f64 / (count - 1) as f64;
        lo * (1.0 - f) + hi * f
    }
}

/// `count` evenly spaced values from `lo` to `hi` inclusive (numpy's `linspace`): value `k` is
/// `lo + k (hi - lo)/(count - 1)`, and the last is exactly `hi`. Finite ends give finite values,
/// even when `hi - lo` overflows.
///
/// ```
/// assert_eq!(ccem::grid::linspace(0.0, 1.0, 3), vec![0.0, 0.5, 1.0]);
/// assert_eq!(ccem::grid::linspace(-1e308, 1e308, 3), vec![-1e308, 0.0, 1e308]);
/// ```
pub fn linspace(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    (0..count)
        .map(|k| linspace_value(lo, hi, count, k))
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

    #[test]
    fn a_repeated_value_is_an_error() {
        for spec in ["4,4", "4,5,4"] {
            let e = parse_int_grid(spec).unwrap_err().to_string();
            assert!(e.contains("4 is given twice"), "{e}");
        }
        for spec in ["0.5,0.5", "1,2,1.0", "1..1:3", "1..1.0000000000000002:100"] {
            assert!(parse_real_grid(spec).is_err(), "{spec}");
        }
        assert_eq!(parse_real_grid("1..1:1").unwrap(), vec![1.0]);
    }

    #[test]
    fn huge_grids_are_lazy_and_refused_when_materialised() {
        let g = IntGrid::parse("4..1000000000").unwrap();
        assert_eq!(g.len(), 999_999_997);
        assert_eq!(g.get(g.len() - 1), Some(1_000_000_000));
        assert_eq!(g.max(), 1_000_000_000);
        assert_eq!(g.iter().take(2).collect::<Vec<_>>(), vec![4, 5]);
        let e = parse_int_grid("4..1000000000").unwrap_err().to_string();
        assert!(e.contains("999999997 values is too many"), "{e}");
        let r = RealGrid::parse("0.1..5:100000000").unwrap();
        assert_eq!(r.len(), 100_000_000);
        assert!(parse_real_grid("0.1..5:100000000").is_err());
        // The lazy values are linspace's, bit for bit.
        let lin = linspace(0.05, 8.0, 200);
        let lazy: Vec<f64> = RealGrid::parse("0.05..8:200").unwrap().iter().collect();
        assert_eq!(lin, lazy);
    }

    #[test]
    fn overflowing_ranges_stay_finite() {
        let g = parse_real_grid("-1e308..1e308:3").unwrap();
        assert_eq!(g, vec![-1e308, 0.0, 1e308]);
        let g = parse_real_grid("-1.7e308..1.7e308:7").unwrap();
        assert!(g.iter().all(|x| x.is_finite()));
        assert!(g.windows(2).all(|w| w[0] < w[1]));
    }
}
