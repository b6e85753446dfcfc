//! The files of a sweep directory: `config.json`, `results.csv` (one row per cell and seed,
//! appended whole as cells finish) and the summary.
//!
//! Crash safety: each row is one `write` of a complete line followed by a flush, so a killed
//! process leaves at most a partial last line; [`ResultStore::open`] drops such a line, reads the
//! complete rows, and the engine then runs only the missing cells.

use super::{Mode, SweepSpec};
use crate::error::{Error, Result};
use crate::limits::MemoryLimit;
use crate::loss::LossKind;
use crate::theory::Phase;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Whether a cell finished with finite values. Written `ok` or `diverged`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    /// The run finished with finite values; the row holds its measurements.
    Ok,
    /// A non-finite value appeared; the row has no measurements.
    Diverged,
}

impl RowStatus {
    /// `ok` or `diverged`.
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Ok => "ok",
            RowStatus::Diverged => "diverged",
        }
    }
}

impl std::fmt::Display for RowStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `results.csv`: a cell, what was measured and what the theory predicts.
///
/// Its column names predate the `theory_` naming of the other outputs and are kept for the files
/// already written: `s_pos`, `s_neg` are the measured means (`s_pos_mean`, `s_neg_mean`
/// elsewhere), `c_star`, `s_pos_theory`, `s_neg_theory`, `phase` the prediction
/// (`theory_c_star`, ...). Columns added since then use the new names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Index of the cell in the full grid.
    pub cell: usize,
    /// `free` or `encoder`.
    pub mode: Mode,
    /// The loss's name (`sigmoid`, `infonce`, `simclr`, ...).
    pub objective: LossKind,
    /// Batch size.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Sigmoid scale `t`, or the temperature `tau` of a loss that has one (`0` for `spectral`).
    pub t: f64,
    /// Sigmoid bias (final value if learnt); empty for a loss without a bias.
    pub b: Option<f64>,
    /// Which of the sweep's seeds.
    pub seed_index: usize,
    /// The cell's seed.
    pub seed: u64,
    /// `ok` or `diverged` (a non-finite value appeared).
    pub status: RowStatus,
    /// Mean positive similarity `mean_i S_ii` (empty if diverged).
    pub s_pos: Option<f64>,
    /// Mean negative similarity.
    pub s_neg: Option<f64>,
    /// Final loss (InfoNCE: ccem's convention, the sum of the two cross-entropies; see
    /// `loss_clip`).
    pub loss: Option<f64>,
    /// Least-squares CCEM parameter of the result (SPEC §4).
    pub c_fit: Option<f64>,
    /// Gram distance to the best-fitting CCEM.
    pub gram_distance: Option<f64>,
    /// Theory: optimal `c*` (empty in the degenerate phase).
    pub c_star: Option<f64>,
    /// Theory: `s_+*`.
    pub s_pos_theory: Option<f64>,
    /// Theory: `s_-*`.
    pub s_neg_theory: Option<f64>,
    /// Theory: the phase (empty where the theory makes no prediction, `d < N`).
    pub phase: Option<Phase>,
    /// Gram distance to the theory's CCEM (`c*`).
    pub gram_distance_to_theory: Option<f64>,
    /// Free embeddings: whether the result meets the theory (`|s_pos - s_+*| <= 1e-3` and Gram
    /// distance to the CCEM(`c*`) `<= 1e-3`); empty for the encoder.
    pub meets_theory: Option<bool>,
    /// Steps taken.
    pub steps: usize,
    /// Free embeddings: whether the gradient-norm stopping rule was met.
    pub converged: Option<bool>,
    /// InfoNCE: the final loss in open_clip's `ClipLoss` convention, `loss / 2` (empty for the
    /// sigmoid loss).
    pub loss_clip: Option<f64>,
    /// Theory: the optimal loss (InfoNCE: ccem's convention).
    pub theory_loss: Option<f64>,
    /// The margin `(min S_ii - max S_ij) / 2` (SPEC §7); empty if diverged, and in files written
    /// before this column existed.
    #[serde(default)]
    pub margin: Option<f64>,
    /// The 5% quantile margin (SPEC §7); empty as `margin`.
    #[serde(default)]
    pub margin_quantile: Option<f64>,
    /// Standard deviation of the negative similarities over all pairs (empty if diverged).
    pub s_neg_std: Option<f64>,
    /// Mini-batch runs that sample batches: the same over the negative pairs that share a batch
    /// (for `shuffled`, in the last epoch's partition; SPEC §8).
    pub s_neg_std_in_batch: Option<f64>,
    /// Mini-batch size `B` (empty: the full batch).
    pub batch: Option<usize>,
    /// Mini-batch strategy (empty: the full batch).
    pub batching: Option<crate::batch::Batching>,
    /// The weight `W` of within-view negatives (empty: none given; SPEC §9.1).
    #[serde(default)]
    pub within_view: Option<f64>,
    /// Measured mean within-view similarity, of `u_i . u_j` and `v_i . v_j`, `i != j`.
    #[serde(default)]
    pub s_within: Option<f64>,
    /// Theory: the within-view similarity of the predicted CCEM, `-(1-c*)/(N-1) + c*`.
    #[serde(default)]
    pub s_within_theory: Option<f64>,
    /// Free embeddings, full batch: whether the run's loss is below the CCEM's minimal loss
    /// `theory_loss` (beyond rounding, SPEC §9.8): it found a better point off the CCEM, a
    /// finding rather than a miss. Both losses are in the row (`loss`, `theory_loss`).
    #[serde(default)]
    pub beats_ccem: Option<bool>,
    /// Whether a theorem makes the predicted CCEM the optimum over all embeddings for `d >= N`
    /// (SPEC §9.5); `false` where only the CCEM family is covered.
    #[serde(default)]
    pub ccem_global: Option<bool>,
}

/// The CSV header of [`ResultRow`].
pub fn header() -> Vec<&'static str> {
    vec![
        "cell",
        "mode",
        "objective",
        "n",
        "d",
        "t",
        "b",
        "seed_index",
        "seed",
        "status",
        "s_pos",
        "s_neg",
        "loss",
        "c_fit",
        "gram_distance",
        "c_star",
        "s_pos_theory",
        "s_neg_theory",
        "phase",
        "gram_distance_to_theory",
        "meets_theory",
        "steps",
        "converged",
        "loss_clip",
        "theory_loss",
        "margin",
        "margin_quantile",
        "s_neg_std",
        "s_neg_std_in_batch",
        "batch",
        "batching",
        "within_view",
        "s_within",
        "s_within_theory",
        "beats_ccem",
        "ccem_global",
    ]
}

/// Columns appended since the first layout (margin, margin_quantile, s_neg_std,
/// s_neg_std_in_batch, batch, batching, within_view, s_within, s_within_theory, beats_ccem,
/// ccem_global), newest last; a file may lack a suffix of them (it was
/// written by an older ccem): it is still read (the missing values are empty) but not resumed.
const APPENDED_COLUMNS: usize = 11;

/// The results file of a sweep directory.
#[derive(Debug)]
pub struct ResultStore {
    path: PathBuf,
    file: File,
    rows: BTreeMap<usize, ResultRow>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the complete rows of a `results.csv` (a partial last line is ignored). Returns the
/// rows and the byte length of the complete part. A file written before the `margin` and
/// `margin_quantile` columns existed is read with those values empty. The file must fit the
/// memory available ([`MemoryLimit::Available`]).
pub fn read_rows(path: &Path) -> Result<(Vec<ResultRow>, u64)> {
    read_rows_layout(path, MemoryLimit::Available).map(|(rows, len, _)| (rows, len))
}

/// [`read_rows`], also telling whether the file has an older layout (lacks appended columns).
fn read_rows_layout(path: &Path, max_memory: MemoryLimit) -> Result<(Vec<ResultRow>, u64, bool)> {
    let text = crate::io::read_text(path, max_memory)?;
    let complete = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let body = &text[..complete];
    let mut rdr = csv::ReaderBuilder::new().from_reader(body.as_bytes());
    let bad = |reason: String| Error::BadInput {
        path: path.to_path_buf(),
        reason,
    };
    let mut legacy = false;
    if complete > 0 {
        let hdr = rdr.headers().map_err(|e| bad(e.to_string()))?;
        let got: Vec<&str> = hdr.iter().collect();
        let want = header();
        let older = (1..=APPENDED_COLUMNS).any(|k| got == want[..want.len() - k]);
        if got != want && !older {
            return Err(bad(
                "its header is not that of a ccem results.csv (written by another version?)".into(),
            ));
        }
        legacy = older;
    }
    let mut rows = Vec::new();
    for r in rdr.deserialize() {
        rows.push(r.map_err(|e: csv::Error| bad(e.to_string()))?);
    }
    Ok((rows, complete as u64, legacy))
}

impl ResultStore {
    /// Opens (or creates) `dir/results.csv` for the sweep `spec`: writes `dir/config.json` the
    /// first time, and refuses a directory that holds a different configuration.
    ///
    /// # Errors
    /// The directory cannot be created or written; it holds another configuration; its
    /// `results.csv` is not one of ours.
    pub fn open(dir: &Path, spec: &SweepSpec) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        if dir.join("config.json").exists() {
            let mut old = read_spec(dir)?;
            // The memory limit is the machine's, not the sweep's (not saved).
            old.run.max_memory = spec.run.max_memory;
            if &old != spec {
                return Err(Error::Config(format!(
                    "'{}' holds a sweep with a different configuration ({}); use another {} directory, or delete it to start over",
                    dir.display(),
                    differences(&old, spec).join(", "),
                    crate::error::option("out")
                )));
            }
        } else {
            write_spec(dir, spec)?;
        }
        let path = dir.join("results.csv");
        let mut rows = BTreeMap::new();
        if path.exists() {
            let (old, complete, legacy) = read_rows_layout(&path, spec.run.max_memory)?;
            if legacy {
                return Err(Error::Config(format!(
                    "'{}' was written by an older ccem, without the margin and margin_quantile \
                     columns: it can still be plotted and merged, but not resumed (rows with and \
                     without margins would mix); use another --out directory, or delete it to \
                     start over",
                    path.display()
                )));
            }
            for r in old {
                rows.insert(r.cell, r);
            }
            // Drop a partial last line left by a crash.
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            f.set_len(complete).map_err(io_err(&path))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if file.seek(SeekFrom::End(0)).map_err(io_err(&path))? == 0 {
            let mut line = header().join(",");
            line.push('\n');
            file.write_all(line.as_bytes()).map_err(io_err(&path))?;
        }
        Ok(ResultStore { path, file, rows })
    }

    /// Whether cell `k` has a row.
    pub fn has(&self, k: usize) -> bool {
        self.rows.contains_key(&k)
    }

    /// The rows so far, in cell order.
    pub fn rows(&self) -> impl Iterator<Item = &ResultRow> {
        self.rows.values()
    }

    /// Appends one row as a single complete line, flushed to the OS.
    pub fn append(&mut self, row: ResultRow) -> Result<()> {
        let line = row_line(&row)?;
        self.file.write_all(&line).map_err(io_err(&self.path))?;
        self.file.flush().map_err(io_err(&self.path))?;
        self.rows.insert(row.cell, row);
        Ok(())
    }

    /// Rewrites the file in cell order (atomically), so that the same sweep always gives the
    /// same file.
    pub fn finalize(&mut self) -> Result<()> {
        self.file.sync_all().map_err(io_err(&self.path))?;
        write_rows(&self.path, self.rows.values())
    }

    /// The path of `results.csv`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One CSV line (with newline) for a row.
fn row_line(row: &ResultRow) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.serialize(row)
        .map_err(|e| Error::Config(format!("cannot format a result row: {e}")))?;
    w.into_inner().map_err(|e| Error::Config(e.to_string()))
}

/// Writes rows with the header to `path`, atomically.
pub fn write_rows<'a>(path: &Path, rows: impl Iterator<Item = &'a ResultRow>) -> Result<()> {
    crate::io::write_atomic(path, |w| {
        let mut line = header().join(",");
        line.push('\n');
        w.write_all(line.as_bytes()).map_err(io_err(path))?;
        for r in rows {
            w.write_all(&row_line(r)?).map_err(io_err(path))?;
        }
        Ok(())
    })
}

/// Reads a sweep directory's `config.json`.
///
/// # Errors
/// Missing or unreadable, or not a sweep specification.
pub fn read_spec(dir: &Path) -> Result<SweepSpec> {
    let p = dir.join("config.json");
    if !p.exists() {
        return Err(Error::BadInput {
            path: p,
            reason: format!(
                "it does not exist (is '{}' a ccem sweep directory?)",
                dir.display()
            ),
        });
    }
    let text = crate::io::read_text(&p, MemoryLimit::Available)?;
    serde_json::from_str(&text).map_err(|e| Error::BadInput {
        path: p,
        reason: format!("not a ccem sweep configuration: {e}"),
    })
}

/// Undoes [`ResultStore::open`] on a directory that holds no row yet: removes `config.json`,
/// a `results.csv` holding only its header, the timings, and (when `dir_too`) the directory if it is then
/// empty. Best effort: a file that cannot be removed stays.
pub fn remove_empty(dir: &Path, dir_too: bool) {
    let csv = dir.join("results.csv");
    let small = std::fs::metadata(&csv).is_ok_and(|m| m.is_file() && m.len() < 1 << 16);
    let only_header = small
        && std::fs::read(&csv).is_ok_and(|b| {
            let mut line = header().join(",").into_bytes();
            line.push(b'\n');
            b.is_empty() || b == line
        });
    if only_header || !csv.exists() {
        let _ = std::fs::remove_file(&csv);
        let _ = std::fs::remove_file(dir.join("config.json"));
        let _ = std::fs::remove_file(dir.join(TIMINGS_FILE));
        if dir_too {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Writes `dir/config.json`, atomically.
pub fn write_spec(dir: &Path, spec: &SweepSpec) -> Result<()> {
    let json = serde_json::to_string_pretty(spec).expect("a spec serialises");
    crate::io::write_bytes(&dir.join("config.json"), json.as_bytes())
}

/// Names of the fields that differ between two specifications.
pub fn differences(a: &SweepSpec, b: &SweepSpec) -> Vec<String> {
    let (va, vb) = (
        serde_json::to_value(a).expect("serialises"),
        serde_json::to_value(b).expect("serialises"),
    );
    let mut out = Vec::new();
    if let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) {
        for (k, x) in ma {
            if mb.get(k) != Some(x) {
                out.push(format!(
                    "{k}: {x} before, {} now",
                    mb.get(k).unwrap_or(&serde_json::Value::Null)
                ));
            }
        }
    }
    out
}

/// `DIR/timings.csv`: the compute time of every cell (`cell,seconds`), appended as cells finish,
/// so that a resumed sweep still knows what its earlier runs cost. Timings never go into
/// `results.csv`, which stays the same for the same sweep.
#[derive(Debug)]
pub struct TimingLog {
    path: PathBuf,
    file: std::sync::Mutex<Option<File>>,
}

/// The name of the timings file in a sweep directory.
pub const TIMINGS_FILE: &str = "timings.csv";

impl TimingLog {
    /// The log of `dir` (the file is created at the first [`TimingLog::record`]).
    pub fn new(dir: &Path) -> Self {
        TimingLog {
            path: dir.join(TIMINGS_FILE),
            file: std::sync::Mutex::new(None),
        }
    }

    /// Appends one line `cell,seconds`. Best effort: timings are informative, so a failure to
    /// write them never stops a sweep.
    pub fn record(&self, cell: usize, seconds: f64) {
        let Ok(mut guard) = self.file.lock() else {
            return;
        };
        if guard.is_none() {
            let new = !self.path.exists();
            *guard = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
            if let (true, Some(f)) = (new, guard.as_mut()) {
                let _ = f.write_all(b"cell,seconds\n");
            }
        }
        if let Some(f) = guard.as_mut() {
            let _ = f.write_all(format!("{cell},{seconds}\n").as_bytes());
        }
    }

    /// The compute time of the cells `cells` (the last time recorded for each; cells without a
    /// record count 0), in seconds.
    pub fn total_seconds(dir: &Path, cells: impl Iterator<Item = usize>) -> f64 {
        let text = crate::io::read_text(&dir.join(TIMINGS_FILE), MemoryLimit::Available)
            .unwrap_or_default();
        let mut last = BTreeMap::new();
        for line in text.lines().skip(1) {
            if let Some((c, s)) = line.split_once(',') {
                if let (Ok(c), Ok(s)) = (c.parse::<usize>(), s.parse::<f64>()) {
                    last.insert(c, s);
                }
            }
        }
        cells.filter_map(|c| last.get(&c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::parse_real_grid;
    use crate::loss::LossKind;
    use crate::sweep::{Mode, RunOptions};
    use crate::theory::BiasMode;

    /// `config.json` reads back exactly (serde_json's `float_roundtrip`): without it about half
    /// of the ordinary grids came back one bit off and a resume was refused.
    #[test]
    fn config_reads_back_bit_for_bit_for_every_grid() {
        let d = tempfile::tempdir().unwrap();
        for grid in [
            "0.5..3:4",
            "0.1..5:5",
            "0.05..8:200",
            "0.1..5:10",
            "0.001..1000:997",
            "0.3,0.7,1.1,2.9",
        ] {
            let spec = SweepSpec {
                mode: Mode::Free,
                objective: LossKind::Sigmoid,
                ns: vec![4, 5],
                ts: parse_real_grid(grid).unwrap(),
                bias: BiasMode::Relative(0.1 + 0.2),
                seeds: 1,
                base_seed: 0,
                d_ratio: 1.1,
                ds: None,
                within_view: None,
                run: RunOptions {
                    lr: Some(0.05 / 3.0),
                    ..RunOptions::default()
                },
                shard: None,
            };
            write_spec(d.path(), &spec).unwrap();
            let back = read_spec(d.path()).unwrap();
            for (a, b) in spec.ts.iter().zip(&back.ts) {
                assert_eq!(a.to_bits(), b.to_bits(), "{grid}: {a} read back as {b}");
            }
            assert_eq!(back, spec, "{grid}");
            // And the store accepts the same specification again.
            ResultStore::open(d.path(), &spec).unwrap();
            std::fs::remove_file(d.path().join("config.json")).unwrap();
        }
    }

    #[test]
    fn timings_sum_the_last_record_of_each_cell() {
        let d = tempfile::tempdir().unwrap();
        let log = TimingLog::new(d.path());
        log.record(0, 1.5);
        log.record(1, 2.0);
        log.record(0, 0.5); // computed again after a crash: the last one counts
        let log2 = TimingLog::new(d.path());
        log2.record(2, 4.0);
        assert_eq!(TimingLog::total_seconds(d.path(), 0..3), 6.5);
        assert_eq!(TimingLog::total_seconds(d.path(), 1..2), 2.0);
        assert_eq!(TimingLog::total_seconds(&d.path().join("none"), 0..3), 0.0);
    }
}
