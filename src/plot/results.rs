//! Reading a sweep's `results.csv` and averaging it over seeds on the (N, t) grid.

use crate::chart::heatmap::Grid;
use crate::error::{Error, Result};
use crate::limits::MemoryLimit;
use crate::theory::BiasMode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One row of `results.csv` (the columns the plots use; unknown columns are ignored).
#[derive(Clone, Debug, PartialEq)]
pub struct PlotRow {
    /// Batch size `N` (column `n`).
    pub n: usize,
    /// Embedding dimension (column `d`), if present.
    pub d: Option<usize>,
    /// Scale `t` of the sigmoid loss, or the temperature `tau` of InfoNCE (column `t`).
    pub t: f64,
    /// Bias `b` (column `b`); `None` when empty (InfoNCE) or absent.
    pub b: Option<f64>,
    /// Seed (column `seed`), if present.
    pub seed: Option<u64>,
    /// Measured mean positive similarity (column `s_pos`); `None` when empty or `NaN` (diverged).
    pub s_pos: Option<f64>,
    /// Measured mean negative similarity (column `s_neg`); `None` when empty, absent or `NaN`.
    pub s_neg: Option<f64>,
    /// Theory `s_+*` (column `s_pos_theory`), when present and finite.
    pub s_pos_theory: Option<f64>,
    /// Theory `c*` (column `c_star`), when present and finite.
    pub c_star: Option<f64>,
    /// `sigmoid` or `infonce` (column `objective`), if present.
    pub objective: Option<String>,
    /// `free` or `encoder` (column `mode`), if present.
    pub mode: Option<String>,
}

/// The rows of one `results.csv`, with the file they came from (for error messages).
#[derive(Clone, Debug, PartialEq)]
pub struct ResultsTable {
    /// The file read.
    pub path: PathBuf,
    /// Its rows, in file order (at least one).
    pub rows: Vec<PlotRow>,
    /// Whether the file has an `s_pos_theory` column.
    pub has_s_pos_theory: bool,
    /// Whether the file has a `b` column.
    pub has_b: bool,
}

/// Reads `results.csv`: a header row, then one row per sweep cell and seed.
///
/// Required columns: `n`, `t`, `s_pos`. Optional: `d`, `b`, `seed`, `s_neg`, `s_pos_theory`,
/// `c_star`, `objective`, `mode`; other columns are ignored. Empty or `NaN` measurements are kept
/// as `None` (a diverged cell) and skipped by the plots.
///
/// # Errors
/// [`Error::BadInput`] naming the file when it cannot be read, a required column is missing, it
/// has no data rows, or a value cannot be parsed (with its row and column); [`Error::TooLarge`]
/// when the file is larger than `max_memory`.
pub fn read_results(path: &Path, max_memory: MemoryLimit) -> Result<ResultsTable> {
    let bad = |reason: String| Error::BadInput {
        path: path.to_path_buf(),
        reason,
    };
    let len = crate::io::regular_file(path)?;
    max_memory.check(&format!("reading {}", path.display()), len as f64)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(e.to_string()))?;
    let headers = rdr.headers().map_err(|e| bad(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| {
        col(name).ok_or_else(|| {
            bad(format!(
                "missing required column '{name}' (columns found: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (ci_n, ci_t, ci_s) = (need("n")?, need("t")?, need("s_pos")?);
    let (ci_d, ci_b, ci_seed) = (col("d"), col("b"), col("seed"));
    let (ci_sneg, ci_th, ci_c) = (col("s_neg"), col("s_pos_theory"), col("c_star"));
    let (ci_obj, ci_mode) = (col("objective"), col("mode"));
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| bad(format!("line {line}: {e}")))?;
        let field = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("");
        let num = |c: Option<usize>, name: &str| -> Result<Option<f64>> {
            let s = field(c);
            if s.is_empty() {
                return Ok(None);
            }
            let v: f64 = s.parse().map_err(|_| {
                bad(format!(
                    "line {line}, column '{name}': '{s}' is not a number"
                ))
            })?;
            Ok(v.is_finite().then_some(v))
        };
        let int = |c: Option<usize>, name: &str| -> Result<Option<u64>> {
            let s = field(c);
            if s.is_empty() {
                return Ok(None);
            }
            s.parse().map(Some).map_err(|_| {
                bad(format!(
                    "line {line}, column '{name}': '{s}' is not a non-negative integer"
                ))
            })
        };
        let n = int(Some(ci_n), "n")?
            .ok_or_else(|| bad(format!("line {line}: column 'n' is empty")))?;
        let t = num(Some(ci_t), "t")?
            .ok_or_else(|| bad(format!("line {line}: column 't' is empty or not finite")))?;
        let text = |c: Option<usize>| Some(field(c).to_ascii_lowercase()).filter(|s| !s.is_empty());
        rows.push(PlotRow {
            n: n as usize,
            d: int(ci_d, "d")?.map(|d| d as usize),
            t,
            b: num(ci_b, "b")?,
            seed: int(ci_seed, "seed")?,
            s_pos: num(Some(ci_s), "s_pos")?,
            s_neg: num(ci_sneg, "s_neg")?,
            s_pos_theory: num(ci_th, "s_pos_theory")?,
            c_star: num(ci_c, "c_star")?,
            objective: text(ci_obj),
            mode: text(ci_mode),
        });
    }
    if rows.is_empty() {
        return Err(bad(
            "no data rows (the file has only a header or is empty)".into()
        ));
    }
    Ok(ResultsTable {
        path: path.to_path_buf(),
        rows,
        has_s_pos_theory: ci_th.is_some(),
        has_b: ci_b.is_some(),
    })
}

impl ResultsTable {
    /// The rows whose `objective` and `mode` match the given values (`None`: any).
    ///
    /// # Errors
    /// [`Error::BadInput`] when no row is left.
    pub fn filtered(&self, objective: Option<&str>, mode: Option<&str>) -> Result<ResultsTable> {
        let keep = |v: &Option<String>, want: Option<&str>| {
            want.is_none_or(|w| v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(w)))
        };
        let rows: Vec<PlotRow> = self
            .rows
            .iter()
            .filter(|r| keep(&r.objective, objective) && keep(&r.mode, mode))
            .cloned()
            .collect();
        if rows.is_empty() {
            return Err(Error::BadInput {
                path: self.path.clone(),
                reason: format!(
                    "no rows with objective = {} and mode = {}",
                    objective.unwrap_or("any"),
                    mode.unwrap_or("any")
                ),
            });
        }
        Ok(ResultsTable {
            rows,
            ..self.clone()
        })
    }

    /// `Some("sigmoid")` or `Some("infonce")` when every row has that objective.
    pub fn objective(&self) -> Option<&str> {
        let first = self.rows[0].objective.as_deref()?;
        self.rows
            .iter()
            .all(|r| r.objective.as_deref() == Some(first))
            .then_some(first)
    }

    /// Whether the rows are InfoNCE runs (`t` is the temperature `tau`).
    pub fn is_infonce(&self) -> bool {
        self.objective() == Some("infonce")
    }

    /// Checks that the rows do not mix objectives or modes (a map averages rows of one kind).
    pub(crate) fn check_uniform(&self) -> Result<()> {
        for (name, get) in [
            (
                "objective",
                (|r: &PlotRow| r.objective.clone()) as fn(&PlotRow) -> Option<String>,
            ),
            ("mode", |r: &PlotRow| r.mode.clone()),
        ] {
            let mut seen: Vec<String> = self.rows.iter().filter_map(get).collect();
            seen.sort();
            seen.dedup();
            if seen.len() > 1 {
                return Err(Error::BadInput {
                    path: self.path.clone(),
                    reason: format!(
                        "the rows mix {name}s ({}); select one (e.g. --{name} {})",
                        seen.join(", "),
                        seen[0]
                    ),
                });
            }
        }
        // A map has one value per (N, t): rows of one N with different d would be averaged.
        let mut dims: BTreeMap<usize, usize> = BTreeMap::new();
        for r in &self.rows {
            if let Some(d) = r.d {
                if let Some(&d0) = dims.get(&r.n) {
                    if d0 != d {
                        return Err(Error::BadInput {
                            path: self.path.clone(),
                            reason: format!(
                                "the rows of N = {} have several dimensions (d = {d0} and d = {d}): \
                                 one map would mix them; plot a sweep with one d per N",
                                r.n
                            ),
                        });
                    }
                } else {
                    dims.insert(r.n, d);
                }
            }
        }
        Ok(())
    }

    /// The bias setting shared by every sigmoid row, if there is one: `b = t` for all rows
    /// ([`BiasMode::Tied`]), one constant `b` ([`BiasMode::Fixed`]), or one ratio `b / t`
    /// ([`BiasMode::Relative`]). `None` for InfoNCE, missing `b`, or no common pattern.
    pub fn bias_mode(&self) -> Option<BiasMode> {
        if self.is_infonce() {
            return None;
        }
        let pairs: Option<Vec<(f64, f64)>> =
            self.rows.iter().map(|r| r.b.map(|b| (r.t, b))).collect();
        let pairs = pairs?;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
        if pairs.iter().all(|&(t, b)| close(t, b)) {
            return Some(BiasMode::Tied);
        }
        let b0 = pairs[0].1;
        if pairs.iter().all(|&(_, b)| close(b, b0)) {
            return Some(BiasMode::Fixed(b0));
        }
        if pairs.iter().all(|&(t, _)| t > 0.0) {
            let r0 = pairs[0].1 / pairs[0].0;
            if pairs.iter().all(|&(t, b)| close(b / t, r0)) {
                return Some(BiasMode::Relative(r0));
            }
        }
        None
    }
}

/// Mean and spread of the values in one (N, t) cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CellStats {
    pub mean: f64,
    /// Sample standard deviation (`0` for one value).
    pub std: f64,
    pub count: usize,
}

/// Two `t` values closer than this (relative) are the same grid value.
fn same_t(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// Sorted distinct values of `t` (merging values equal up to rounding).
pub(crate) fn distinct_ts(ts: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = ts.collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| same_t(*a, *b));
    v
}

/// Index of `t` in the sorted distinct list.
fn t_index(ts: &[f64], t: f64) -> usize {
    let i = ts.partition_point(|&x| x < t && !same_t(x, t));
    i.min(ts.len() - 1)
}

/// Groups `(n, t, value)` triples by cell (skipping `None` values) and returns the statistics.
pub(crate) fn cell_stats(
    items: impl Iterator<Item = (usize, f64, Option<f64>)>,
) -> BTreeMap<(usize, usize), CellStats> {
    let items: Vec<(usize, f64, Option<f64>)> = items.collect();
    let ts = distinct_ts(items.iter().map(|x| x.1));
    let mut acc: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for &(n, t, v) in &items {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            acc.entry((n, t_index(&ts, t))).or_default().push(v);
        }
    }
    acc.into_iter()
        .map(|(k, v)| {
            let m = v.len() as f64;
            let mean = v.iter().sum::<f64>() / m;
            let var = if v.len() > 1 {
                v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1.0)
            } else {
                0.0
            };
            (
                k,
                CellStats {
                    mean,
                    std: var.sqrt(),
                    count: v.len(),
                },
            )
        })
        .collect()
}

/// Averages `value(row)` over seeds on the table's (N, t) grid (`N` the columns, `t` the rows).
///
/// # Errors
/// [`Error::BadInput`] when the grid has fewer than two values of `t` or of `N`, or no cell has a
/// finite value.
pub(crate) fn grid_of(
    table: &ResultsTable,
    value: impl Fn(&PlotRow) -> Result<Option<f64>>,
) -> Result<Grid> {
    let bad = |reason: String| Error::BadInput {
        path: table.path.clone(),
        reason,
    };
    let mut ns: Vec<usize> = table.rows.iter().map(|r| r.n).collect();
    ns.sort_unstable();
    ns.dedup();
    let ts = distinct_ts(table.rows.iter().map(|r| r.t));
    if ts.len() < 2 {
        return Err(bad(format!(
            "need at least two values of t to draw a map (found only t = {})",
            ts[0]
        )));
    }
    if ns.len() < 2 {
        return Err(bad(format!(
            "need at least two values of N to draw a map (found only N = {})",
            ns[0]
        )));
    }
    let mut items = Vec::with_capacity(table.rows.len());
    for r in &table.rows {
        items.push((r.n, r.t, value(r)?));
    }
    let stats = cell_stats(items.into_iter());
    if stats.is_empty() {
        return Err(bad(
            "no cell has a finite measurement (every s_pos is empty or NaN)".into(),
        ));
    }
    let mut values = vec![vec![f64::NAN; ns.len()]; ts.len()];
    for ((n, it), s) in stats {
        let i_n = ns.binary_search(&n).expect("n is in the grid");
        values[it][i_n] = s.mean;
    }
    Ok(Grid {
        xs: ns,
        ys: ts,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_average_over_seeds() {
        let s = cell_stats(
            vec![
                (4, 0.5, Some(1.0)),
                (4, 0.5 + 1e-15, Some(3.0)),
                (4, 1.0, None),
                (5, 1.0, Some(2.0)),
            ]
            .into_iter(),
        );
        assert_eq!(s.len(), 2);
        let c = s[&(4, 0)];
        assert_eq!((c.mean, c.count), (2.0, 2));
        assert!((c.std - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s[&(5, 1)].mean, 2.0);
    }
}
