//! Combining the outputs of shards (`ccem merge DIR...`).

use super::store::{read_rows, read_spec, write_rows, write_spec, ResultRow};
use super::SweepSpec;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a merge found.
#[derive(Debug)]
pub struct MergeReport {
    /// The common specification (without a shard).
    pub spec: SweepSpec,
    /// Rows kept, in cell order.
    pub rows: Vec<ResultRow>,
    /// Cells of the grid that no input holds.
    pub missing: Vec<usize>,
    /// Cells held by more than one input (the first is kept).
    pub duplicates: Vec<usize>,
}

/// Merges the sweep directories `inputs` (shards of one sweep) into `out`: `out/config.json`
/// (the specification without a shard) and `out/results.csv` in cell order.
///
/// # Errors
/// No input, an input that is not a sweep directory, inputs of different sweeps, `out` holding
/// another sweep (or a `results.csv` without its `config.json`): then `out` is left untouched;
/// or `out` not writable.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<MergeReport> {
    let first = inputs
        .first()
        .ok_or_else(|| Error::Config("merge needs at least one directory".into()))?;
    let mut spec = read_spec(first)?;
    spec.shard = None;
    let mut rows: BTreeMap<usize, ResultRow> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for dir in inputs {
        let mut s = read_spec(dir)?;
        s.shard = None;
        if s != spec {
            return Err(Error::Config(format!(
                "'{}' is not a shard of the same sweep as '{}' ({})",
                dir.display(),
                first.display(),
                super::store::differences(&spec, &s).join(", ")
            )));
        }
        let path = dir.join("results.csv");
        if !path.exists() {
            continue;
        }
        for r in read_rows(&path)?.0 {
            match rows.entry(r.cell) {
                std::collections::btree_map::Entry::Occupied(_) => duplicates.push(r.cell),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(r);
                }
            }
        }
    }
    refuse_another_sweep(out, &spec)?;
    let missing = spec
        .all_cells()
        .iter()
        .map(|c| c.index)
        .filter(|k| !rows.contains_key(k))
        .collect();
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    write_spec(out, &spec)?;
    write_rows(&out.join("results.csv"), rows.values())?;
    duplicates.sort_unstable();
    duplicates.dedup();
    Ok(MergeReport {
        spec,
        rows: rows.into_values().collect(),
        missing,
        duplicates,
    })
}

/// Refuses an output directory that holds a sweep other than `spec` (as `sweep` does), so that a
/// merge never overwrites another sweep's results.
fn refuse_another_sweep(out: &Path, spec: &SweepSpec) -> Result<()> {
    if out.join("config.json").exists() {
        let old = read_spec(out)?;
        if &old != spec {
            return Err(Error::Config(format!(
                "'{}' holds a different sweep ({}); merge into another --out directory, or delete it",
                out.display(),
                super::store::differences(&old, spec).join(", ")
            )));
        }
    } else if out.join("results.csv").exists() {
        return Err(Error::Config(format!(
            "'{}' holds a results.csv without its config.json; merge into another --out directory",
            out.display()
        )));
    }
    Ok(())
}
