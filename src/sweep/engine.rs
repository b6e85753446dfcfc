//! Running the missing cells of a sweep in parallel, appending each row as it finishes.
//!
//! Workers (a rayon pool of `threads`) run cells, largest `N` first so the slow cells do not
//! finish last; each finished row goes through a channel to the calling thread, which appends it
//! to `results.csv` and tells the [`SweepObserver`]. The library never prints: progress bars
//! belong to the observer the binary passes in.

use super::store::{ResultRow, ResultStore};
use super::{Cell, SweepSpec};
use crate::error::{Error, Result};
use crate::monitor::{Monitor, Unwatched};
use crate::valid::Valid;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Told about the progress of a sweep (the binary draws a progress bar with it).
pub trait SweepObserver {
    /// Before any cell runs: cells in this shard, and how many were already done.
    fn started(&mut self, _total: usize, _already_done: usize) {}
    /// After each cell: its row, and the count of done cells so far.
    fn cell_done(&mut self, _row: &ResultRow, _done: usize, _total: usize) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl SweepObserver for Silent {}

/// What a call of [`run_sweep`] did.
#[derive(Debug)]
pub struct SweepOutcome {
    /// Every row of the directory (old and new), in cell order.
    pub rows: Vec<ResultRow>,
    /// Cells computed by this call.
    pub computed: usize,
    /// Cells found already done (resumed).
    pub resumed: usize,
    /// Wall time of this call.
    pub elapsed: Duration,
    /// Whether every cell of the shard is done (then `results.csv` is in cell order).
    pub complete: bool,
}

/// Runs the cells of `spec` missing from `dir` with `runner`, on `threads` threads (`None`: all
/// cores), appending rows to `dir/results.csv`.
///
/// `runner` is usually [`super::run_cell`]; see [`SweepSpec::check`] for an example.
///
/// # Errors
/// The directory holds another configuration or cannot be written, the thread pool cannot be
/// built, or `runner` returns an error (the sweep then stops starting new cells). A cell that
/// diverges is a row with status `diverged`, not an error.
pub fn run_sweep(
    spec: &Valid<SweepSpec>,
    dir: &Path,
    threads: Option<usize>,
    runner: &(dyn Fn(&Cell) -> Result<ResultRow> + Sync),
    observer: &mut dyn SweepObserver,
) -> Result<SweepOutcome> {
    run_sweep_with(spec, dir, threads, runner, observer, &Unwatched)
}

/// [`run_sweep`] that stops starting cells once `monitor` is cancelled
/// ([`crate::monitor::Monitor::cancelled`]); give the runner the same monitor (e.g.
/// [`super::runner::run_cell_with`] with [`crate::monitor::CancelOnly`]) to stop the cells in
/// flight too. The rows written so far stay: running the sweep again resumes it.
///
/// # Errors
/// As [`run_sweep`]; [`Error::Interrupted`] when the monitor stopped it.
pub fn run_sweep_with(
    spec: &Valid<SweepSpec>,
    dir: &Path,
    threads: Option<usize>,
    runner: &(dyn Fn(&Cell) -> Result<ResultRow> + Sync),
    observer: &mut dyn SweepObserver,
    monitor: &dyn Monitor,
) -> Result<SweepOutcome> {
    // A sweep refused before its first row leaves nothing behind: not the directory (when it
    // made it), nor `config.json` (when it wrote it), which would refuse the corrected command.
    let dir_existed = dir.exists();
    let fresh = !dir.join("config.json").exists();
    let mut computed = 0;
    let outcome = run_in(spec, dir, threads, runner, observer, monitor, &mut computed);
    if outcome.is_err() && fresh && computed == 0 {
        super::store::remove_empty(dir, !dir_existed);
    }
    outcome
}

/// [`run_sweep_with`] without the clean-up; `computed` counts the rows appended.
fn run_in(
    spec: &Valid<SweepSpec>,
    dir: &Path,
    threads: Option<usize>,
    runner: &(dyn Fn(&Cell) -> Result<ResultRow> + Sync),
    observer: &mut dyn SweepObserver,
    monitor: &dyn Monitor,
    computed: &mut usize,
) -> Result<SweepOutcome> {
    let spec: &SweepSpec = spec;
    let start = Instant::now();
    let mut store = ResultStore::open(dir, spec)?;
    let cells = spec.cells();
    let total = cells.len();
    let mut pending: Vec<Cell> = cells
        .iter()
        .filter(|c| !store.has(c.index))
        .copied()
        .collect();
    let resumed = total - pending.len();
    // Largest cells first (longest-processing-time order), ties in grid order.
    pending.sort_by_key(|c| (std::cmp::Reverse(c.n * c.n * c.d), c.index));
    observer.started(total, resumed);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Config(format!("cannot start the thread pool: {e}")))?;
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<Result<ResultRow>>();
    let mut write_error = None;
    std::thread::scope(|scope| {
        let stop = &stop;
        let pending = &pending;
        scope.spawn(move || {
            // Each worker takes the next pending cell, largest first, until none is left: the
            // greedy longest-processing-time schedule. (A parallel iterator runs a range of
            // cells on one thread without splitting it once started, which left one core idle
            // for the last 25% of the paper's sweep.)
            let next = AtomicUsize::new(0);
            pool.broadcast(|_| {
                let tx = tx.clone();
                while !stop.load(Ordering::Relaxed) && !monitor.cancelled() {
                    let Some(cell) = pending.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let _ = tx.send(runner(cell));
                }
            });
        });
        for row in rx {
            if write_error.is_some() {
                continue;
            }
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    write_error = Some(e);
                    continue;
                }
            };
            match store.append(row.clone()) {
                Ok(()) => {
                    *computed += 1;
                    observer.cell_done(&row, resumed + *computed, total);
                }
                Err(e) => {
                    // Stop starting new cells; the ones in flight are dropped.
                    stop.store(true, Ordering::Relaxed);
                    write_error = Some(e);
                }
            }
        }
    });
    if let Some(e) = write_error {
        return Err(e);
    }
    crate::monitor::check(
        monitor,
        &format!(
            "the sweep after {} of {total} cells (run it again to resume)",
            resumed + *computed
        ),
    )?;
    let complete = cells.iter().all(|c| store.has(c.index));
    if complete {
        store.finalize()?;
    }
    Ok(SweepOutcome {
        rows: store.rows().cloned().collect(),
        computed: *computed,
        resumed,
        elapsed: start.elapsed(),
        complete,
    })
}
