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
    /// Cells that no input holds but `out/results.csv` already did (an earlier merge): kept.
    pub kept: usize,
}

/// Merges the sweep directories `inputs` (shards of one sweep) into `out`: `out/config.json`
/// (the specification without a shard) and `out/results.csv` in cell order.
///
/// When `out` already holds this sweep (an earlier merge), its rows stay: a cell that no input
/// holds keeps its row there ([`MergeReport::kept`]); a cell an input holds takes the input's.
/// A merge never shrinks `out/results.csv`.
///
/// # Errors
/// No input, an input that is not a sweep directory, inputs of different sweeps, a row whose
/// cell is not in the sweep's grid (an index past its end, or `N`, `t` or the seed index not those
/// of the cell), `out` holding
/// another sweep (or a `results.csv` without its `config.json`): then `out` is left untouched;
/// or `out` not writable.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<MergeReport> {
    let first = inputs
        .first()
        .ok_or_else(|| Error::Config("merge needs at least one directory".into()))?;
    let mut spec = read_spec(first)?;
    spec.shard = None;
    let cells = spec.all_cells();
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
            check_in_grid(&r, &cells, &path)?;
            match rows.entry(r.cell) {
                std::collections::btree_map::Entry::Occupied(_) => duplicates.push(r.cell),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(r);
                }
            }
        }
    }
    refuse_another_sweep(out, &spec)?;
    let mut kept = 0;
    let existing = out.join("results.csv");
    if out.join("config.json").exists() && existing.exists() {
        for r in read_rows(&existing)?.0 {
            check_in_grid(&r, &cells, &existing)?;
            if let std::collections::btree_map::Entry::Vacant(e) = rows.entry(r.cell) {
                e.insert(r);
                kept += 1;
            }
        }
    }
    let missing = cells
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
        kept,
    })
}

/// Refuses an output directory that holds a sweep other than `spec` (as `sweep` does), so that a
/// merge never overwrites another sweep's results.
fn refuse_another_sweep(out: &Path, spec: &SweepSpec) -> Result<()> {
    if out.join("config.json").exists() {
        let old = read_spec(out)?;
        if &old != spec {
            return Err(Error::Config(format!(
                "'{}' holds a different sweep ({}); merge into another {} directory, or delete it",
                out.display(),
                super::store::differences(&old, spec).join(", "),
                crate::error::option("out")
            )));
        }
    } else if out.join("results.csv").exists() {
        return Err(Error::Config(format!(
            "'{}' holds a results.csv without its config.json; merge into another {} directory",
            out.display(),
            crate::error::option("out")
        )));
    }
    Ok(())
}

/// Checks that a row belongs to the grid: its cell index exists and its `N`, `t` and seed index
/// are that cell's.
fn check_in_grid(r: &ResultRow, cells: &[super::Cell], path: &Path) -> Result<()> {
    let fits = cells
        .get(r.cell)
        .is_some_and(|c| c.n == r.n && c.t == r.t && c.seed_index == r.seed_index);
    if fits {
        Ok(())
    } else {
        Err(Error::BadInput {
            path: path.to_path_buf(),
            reason: format!(
                "row of cell {} (N = {}, t = {}, seed {}) is not a cell of this sweep's grid ({} cells)",
                r.cell,
                r.n,
                r.t,
                r.seed_index,
                cells.len()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::LossKind;
    use crate::sweep::{Mode, RowStatus, RunOptions, Shard};
    use crate::theory::{BiasMode, Phase};

    fn spec(shard: Option<Shard>) -> SweepSpec {
        SweepSpec {
            mode: Mode::Free,
            objective: LossKind::Sigmoid,
            ns: vec![4, 5],
            ts: vec![0.5, 1.0],
            bias: BiasMode::Tied,
            seeds: 1,
            base_seed: 0,
            d_ratio: 1.0,
            ds: None,
            within_view: None,
            run: RunOptions::default(),
            shard,
        }
    }

    fn row(cell: usize, n: usize, t: f64) -> ResultRow {
        ResultRow {
            cell,
            mode: Mode::Free,
            objective: LossKind::Sigmoid,
            n,
            d: n,
            t,
            b: Some(t),
            seed_index: 0,
            seed: 1,
            status: RowStatus::Ok,
            s_pos: Some(0.5),
            s_neg: Some(-0.1),
            loss: Some(1.0),
            c_fit: Some(0.2),
            gram_distance: Some(0.0),
            c_star: Some(0.2),
            s_pos_theory: Some(0.6),
            s_neg_theory: Some(-0.1),
            phase: Some(Phase::Intermediate),
            gram_distance_to_theory: Some(0.0),
            meets_theory: Some(true),
            steps: 1,
            converged: Some(true),
            loss_clip: None,
            theory_loss: Some(1.0),
            margin: Some(0.1),
            margin_quantile: Some(0.2),
            s_neg_std: Some(0.1),
            s_neg_std_in_batch: None,
            batch: None,
            batching: None,
            within_view: None,
            s_within: None,
            s_within_theory: None,
            beats_ccem: None,
            ccem_global: None,
        }
    }

    /// Two shard directories of `spec` holding `rows0` and `rows1`.
    fn shards(dir: &Path, rows0: &[ResultRow], rows1: &[ResultRow]) -> Vec<PathBuf> {
        [rows0, rows1]
            .iter()
            .enumerate()
            .map(|(i, rows)| {
                let p = dir.join(format!("s{i}"));
                std::fs::create_dir_all(&p).unwrap();
                write_spec(&p, &spec(Some(Shard { index: i, count: 2 }))).unwrap();
                write_rows(&p.join("results.csv"), rows.iter()).unwrap();
                p
            })
            .collect()
    }

    #[test]
    fn rows_of_the_grid_merge_in_cell_order() {
        let d = tempfile::tempdir().unwrap();
        let ins = shards(
            d.path(),
            &[row(2, 5, 0.5), row(0, 4, 0.5)],
            &[row(3, 5, 1.0), row(1, 4, 1.0)],
        );
        let rep = merge(&ins, &d.path().join("m")).unwrap();
        let cells: Vec<usize> = rep.rows.iter().map(|r| r.cell).collect();
        assert_eq!(cells, vec![0, 1, 2, 3]);
        assert!(rep.missing.is_empty() && rep.duplicates.is_empty());
    }

    #[test]
    fn a_cell_past_the_grid_is_refused_and_nothing_written() {
        let d = tempfile::tempdir().unwrap();
        let ins = shards(d.path(), &[row(0, 4, 0.5)], &[row(7, 4, 0.5)]);
        let out = d.path().join("m");
        let e = merge(&ins, &out).unwrap_err().to_string();
        assert!(e.contains("cell 7") && e.contains("4 cells"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn a_cell_whose_values_are_not_the_grids_is_refused() {
        let d = tempfile::tempdir().unwrap();
        // Cell 1 is (N = 4, t = 1): a row claiming t = 3 or N = 9 there is not of this grid.
        for bad in [row(1, 4, 3.0), row(1, 9, 1.0)] {
            let sub = d.path().join(format!("c{}{}", bad.n, bad.t));
            std::fs::create_dir_all(&sub).unwrap();
            let ins = shards(&sub, &[row(0, 4, 0.5)], &[bad]);
            let e = merge(&ins, &sub.join("m")).unwrap_err().to_string();
            assert!(e.contains("not a cell of this sweep"), "{e}");
        }
    }

    #[test]
    fn missing_and_duplicate_cells_are_reported() {
        let d = tempfile::tempdir().unwrap();
        let ins = shards(
            d.path(),
            &[row(0, 4, 0.5)],
            &[row(0, 4, 0.5), row(3, 5, 1.0)],
        );
        let rep = merge(&ins, &d.path().join("m")).unwrap();
        assert_eq!(rep.missing, vec![1, 2]);
        assert_eq!(rep.duplicates, vec![0]);
    }
}
