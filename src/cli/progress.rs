//! Progress reporting for long work: an indicatif bar with the estimated time left on a
//! terminal, plain lines (at most one every few seconds) when stderr is not a terminal.

use ccem::sweep::engine::SweepObserver;
use ccem::sweep::{ResultRow, RowStatus};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Progress of a sweep on stderr.
pub struct SweepProgress {
    label: String,
    bar: Option<ProgressBar>,
    quiet: bool,
    start: Instant,
    last_line: Instant,
    diverged: usize,
}

impl SweepProgress {
    /// A bar if stderr is a terminal (and not `quiet`), else plain lines.
    pub fn new(label: &str, quiet: bool) -> Self {
        SweepProgress {
            label: label.to_string(),
            bar: None,
            quiet,
            start: Instant::now(),
            last_line: Instant::now(),
            diverged: 0,
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl SweepObserver for SweepProgress {
    fn started(&mut self, total: usize, already_done: usize) {
        self.start = Instant::now();
        if self.quiet {
            return;
        }
        if already_done > 0 {
            eprintln!(
                "{}: resuming, {already_done} of {total} cells already done",
                self.label
            );
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} cells, {per_sec}, ETA {eta}",
                )
                .expect("valid template"),
            );
            bar.set_prefix(self.label.clone());
            bar.set_position(already_done as u64);
            bar.reset_eta();
            self.bar = Some(bar);
        } else {
            eprintln!("{}: {} cells to do", self.label, total - already_done);
        }
    }

    fn cell_done(&mut self, row: &ResultRow, done: usize, total: usize) {
        if row.status != RowStatus::Ok {
            self.diverged += 1;
        }
        if self.quiet {
            return;
        }
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
            if row.status != RowStatus::Ok {
                b.println(format!(
                    "cell N = {}, t = {}, seed {}: {}",
                    row.n, row.t, row.seed_index, row.status
                ));
            }
        } else if done == total || self.last_line.elapsed() > Duration::from_secs(5) {
            self.last_line = Instant::now();
            eprintln!(
                "{}: {done}/{total} cells, {:.1} s elapsed{}",
                self.label,
                self.start.elapsed().as_secs_f64(),
                if self.diverged > 0 {
                    format!(", {} diverged", self.diverged)
                } else {
                    String::new()
                }
            );
        }
    }
}

/// A bar for the passes of `ccem inspect` over `U V^T`, on a terminal only (the work is one
/// command's; logs stay clean): `(row blocks done, total)` from the library's hook.
pub struct BlockBar(Option<ProgressBar>);

impl BlockBar {
    /// A bar on a terminal when there are at least `min_blocks` blocks to do.
    pub fn new(label: &str, n_blocks_hint: usize, min_blocks: usize) -> Self {
        if n_blocks_hint < min_blocks || !std::io::stderr().is_terminal() {
            return BlockBar(None);
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {percent}%, ETA {eta}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(label.to_string());
        BlockBar(Some(bar))
    }

    /// The library's progress hook.
    pub fn update(&self, done: usize, total: usize) {
        if let Some(b) = &self.0 {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
