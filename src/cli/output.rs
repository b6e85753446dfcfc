//! Writing records as a table (for people), JSON or CSV (for programs).
//!
//! Every command turns its result into serde-serialisable records; this module is the one place
//! that formats them. Non-finite numbers become JSON `null` / an empty CSV field / `inf` or `-` in
//! tables.

use anyhow::Result;
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;

/// Output format of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// Aligned text for people (the default).
    #[default]
    Table,
    /// One JSON object for one record, an array of objects for several.
    Json,
    /// A header row and one row per record.
    Csv,
}

/// Flattens a record into an ordered map of column name to value (nested objects become
/// `outer_inner` columns).
fn flatten(v: Value) -> Map<String, Value> {
    fn go(prefix: &str, v: Value, out: &mut Map<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, val) in m {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}_{k}")
                    };
                    go(&key, val, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other);
            }
        }
    }
    let mut out = Map::new();
    go("", v, &mut out);
    out
}

/// A value as text: numbers rounded for people (`for_people`), or in full (shortest round-trip
/// form) for programs.
fn cell_text(v: &Value, for_people: bool) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && for_people => format_number(x),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn cell(v: &Value) -> String {
    cell_text(v, true)
}

/// A number for a table: up to 10 significant digits, no trailing noise.
pub fn format_number(x: f64) -> String {
    if x == 0.0 || (x.abs() >= 1e-4 && x.abs() < 1e9) {
        let s = format!("{x:.10}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".to_string()
        } else {
            s.to_string()
        }
    } else {
        format!("{x:.6e}")
    }
}

/// Writes `records` to `out` in `format`. `nulls_as` is what a table shows for a `null`
/// (e.g. `inf` for an infinite `delta*`).
pub fn write_records<T: Serialize>(
    out: &mut impl Write,
    format: Format,
    records: &[T],
) -> Result<()> {
    let values: Vec<Value> = records
        .iter()
        .map(serde_json::to_value)
        .collect::<std::result::Result<_, _>>()?;
    match format {
        Format::Json => {
            if values.len() == 1 {
                serde_json::to_writer_pretty(&mut *out, &values[0])?;
            } else {
                serde_json::to_writer_pretty(&mut *out, &values)?;
            }
            writeln!(out)?;
        }
        Format::Csv => {
            let rows: Vec<Map<String, Value>> = values.into_iter().map(flatten).collect();
            let mut w = csv::Writer::from_writer(&mut *out);
            if let Some(first) = rows.first() {
                w.write_record(first.keys())?;
            }
            for r in &rows {
                w.write_record(r.values().map(|v| cell_text(v, false)))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let rows: Vec<Map<String, Value>> = values.into_iter().map(flatten).collect();
            if rows.len() == 1 {
                let width = rows[0].keys().map(|k| k.len()).max().unwrap_or(0);
                for (k, v) in &rows[0] {
                    let c = cell(v);
                    writeln!(out, "{k:<width$}  {}", if c.is_empty() { "-" } else { &c })?;
                }
            } else if let Some(first) = rows.first() {
                let keys: Vec<&String> = first.keys().collect();
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        r.values()
                            .map(|v| {
                                let c = cell(v);
                                if c.is_empty() {
                                    "-".into()
                                } else {
                                    c
                                }
                            })
                            .collect()
                    })
                    .collect();
                let widths: Vec<usize> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        cells
                            .iter()
                            .map(|r| r[i].len())
                            .max()
                            .unwrap_or(0)
                            .max(k.len())
                    })
                    .collect();
                let line = |items: Vec<&str>| -> String {
                    items
                        .iter()
                        .zip(&widths)
                        .map(|(s, w)| format!("{s:>w$}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                };
                writeln!(out, "{}", line(keys.iter().map(|k| k.as_str()).collect()))?;
                for r in &cells {
                    writeln!(out, "{}", line(r.iter().map(|s| s.as_str()).collect()))?;
                }
            }
        }
    }
    Ok(())
}

/// Writes `records` to standard output.
pub fn print_records<T: Serialize>(format: Format, records: &[T]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    write_records(&mut lock, format, records)
}

/// The most rows `--format table` shows; `csv` and `json` stream any number.
pub const MAX_TABLE_ROWS: usize = 100_000;

/// Writes `count` records produced lazily by `records`. `csv` and `json` stream them (memory
/// does not grow with `count`, and a closed pipe stops the producer), with the same text as
/// [`write_records`]; `table` needs every row for its column widths, so it refuses more than
/// [`MAX_TABLE_ROWS`].
pub fn write_record_stream<T: Serialize>(
    out: &mut impl Write,
    format: Format,
    count: usize,
    records: impl Iterator<Item = T>,
) -> Result<()> {
    use serde::Serializer as _;
    match format {
        Format::Table => {
            if count > MAX_TABLE_ROWS {
                anyhow::bail!(
                    "{count} rows are too many for --format table (at most {MAX_TABLE_ROWS}); use --format csv or json, which stream any number"
                );
            }
            let all: Vec<T> = records.collect();
            write_records(out, format, &all)
        }
        Format::Json if count == 1 => {
            let all: Vec<T> = records.collect();
            write_records(out, format, &all)
        }
        Format::Json => {
            let mut ser = serde_json::Serializer::pretty(&mut *out);
            (&mut ser).collect_seq(records.map(|r| serde_json::to_value(r).unwrap_or_default()))?;
            writeln!(out)?;
            Ok(())
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            let mut first = true;
            for r in records {
                let row = flatten(serde_json::to_value(r)?);
                if first {
                    w.write_record(row.keys())?;
                    first = false;
                }
                w.write_record(row.values().map(|v| cell_text(v, false)))?;
            }
            w.flush()?;
            Ok(())
        }
    }
}

/// `--save-u` and `--save-v`: where a command saves its final matrices (`optimize`, `train`,
/// `max-margin`), checked by the library before the work ([`ccem::options::OutputPaths`]).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SaveArgs {
    /// Save the final U (N x d): .npy (float64) or .csv (no header, full precision), by extension
    #[arg(long, value_name = "U.npy|U.csv")]
    pub save_u: Option<std::path::PathBuf>,
    /// Save the final V (N x d): .npy or .csv, by extension
    #[arg(long, value_name = "V.npy|V.csv")]
    pub save_v: Option<std::path::PathBuf>,
}

impl SaveArgs {
    /// The library's output paths.
    pub fn paths(&self) -> ccem::options::OutputPaths {
        ccem::options::OutputPaths {
            save_u: self.save_u.clone(),
            save_v: self.save_v.clone(),
        }
    }
}
