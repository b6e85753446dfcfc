//! The sweep engine with a deterministic stand-in runner: cells, seeds, resumption after a
//! crash, refusal of a changed configuration, shards and their merge, thread-count independence.

use super::engine::{run_sweep, Silent, SweepObserver};
use super::store::{read_rows, ResultRow, RowStatus};
use super::*;
use crate::theory::Phase;

fn valid(s: &SweepSpec) -> Valid<SweepSpec> {
    s.clone().check().unwrap()
}

fn fake_ok(cell: &Cell) -> Result<ResultRow> {
    Ok(fake(cell))
}

fn spec(mode: Mode) -> SweepSpec {
    SweepSpec {
        mode,
        objective: LossKind::Sigmoid,
        ns: vec![4, 5, 6],
        ts: vec![0.5, 1.0, 2.0],
        bias: BiasMode::Tied,
        seeds: 2,
        base_seed: 7,
        d_ratio: 1.0,
        ds: None,
        within_view: None,
        run: RunOptions::default(),
        shard: None,
    }
}

/// A stand-in for training: a row that depends only on the cell.
fn fake(cell: &Cell) -> ResultRow {
    let x = (cell.seed % 1000) as f64 / 1000.0;
    ResultRow {
        cell: cell.index,
        mode: Mode::Free,
        objective: LossKind::Sigmoid,
        n: cell.n,
        d: cell.d,
        t: cell.t,
        b: cell.b,
        seed_index: cell.seed_index,
        seed: cell.seed,
        status: RowStatus::Ok,
        s_pos: Some(x * cell.t),
        s_neg: Some(-x),
        loss: Some(1.0 / 3.0 + cell.n as f64),
        c_fit: Some(0.1),
        gram_distance: Some(1e-9),
        c_star: Some(0.1),
        s_pos_theory: Some(0.8),
        s_neg_theory: Some(-0.3),
        phase: Some(Phase::Intermediate),
        gram_distance_to_theory: Some(2e-9),
        meets_theory: Some(cell.n != 5),
        steps: 10,
        converged: Some(true),
        loss_clip: None,
        theory_loss: Some(1.25),
        margin: Some(0.125),
        margin_quantile: Some(0.25),
        s_neg_std: Some(0.25),
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

#[test]
fn cells_and_seeds() {
    let s = spec(Mode::Free);
    let cells = s.all_cells();
    assert_eq!(cells.len(), 18);
    assert!(cells.iter().enumerate().all(|(k, c)| c.index == k));
    // Seeds depend on (base, N, seed index) only.
    assert_eq!(cells[0].seed, cells[2].seed);
    assert_ne!(cells[0].seed, cells[1].seed);
    assert_ne!(cells[0].seed, cells[6].seed);
    let mut other = s.clone();
    other.base_seed = 8;
    assert_ne!(other.all_cells()[0].seed, cells[0].seed);
    assert_eq!(cells[0].b, Some(0.5));
}

#[test]
fn shards_partition_the_grid() {
    assert!(Shard::parse("3/2").is_err());
    assert!(Shard::parse("2/2").is_err());
    assert!(Shard::parse("0/0").is_err());
    assert!(Shard::parse("x").is_err());
    let mut seen = [0; 18];
    for i in 0..4 {
        let mut s = spec(Mode::Free);
        s.shard = Some(Shard::parse(&format!("{i}/4")).unwrap());
        for c in s.cells() {
            seen[c.index] += 1;
        }
    }
    assert!(seen.iter().all(|&k| k == 1));
}

struct Count(usize, usize);
impl SweepObserver for Count {
    fn started(&mut self, total: usize, done: usize) {
        self.0 = total;
        self.1 = done;
    }
}

#[test]
fn resumes_after_a_crash_and_gives_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(Mode::Free);
    let full = dir.path().join("full");
    let out = run_sweep(&valid(&s), &full, Some(2), &fake_ok, &mut Silent).unwrap();
    assert_eq!(out.computed, 18);
    assert!(out.complete);
    let reference = std::fs::read(full.join("results.csv")).unwrap();

    // Simulate a crash: keep the header, 5 rows and half of a sixth line.
    let crashed = dir.path().join("crashed");
    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::copy(full.join("config.json"), crashed.join("config.json")).unwrap();
    let text = String::from_utf8(reference.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut partial = lines[..6].join("\n");
    partial.push('\n');
    partial.push_str(&lines[6][..lines[6].len() / 2]);
    std::fs::write(crashed.join("results.csv"), partial).unwrap();
    let mut count = Count(0, 0);
    let out = run_sweep(&valid(&s), &crashed, Some(1), &fake_ok, &mut count).unwrap();
    assert_eq!((count.0, count.1), (18, 5));
    assert_eq!(out.computed, 13);
    assert_eq!(
        std::fs::read(crashed.join("results.csv")).unwrap(),
        reference
    );

    // Running again computes nothing.
    let out = run_sweep(&valid(&s), &full, Some(2), &fake_ok, &mut Silent).unwrap();
    assert_eq!(out.computed, 0);
    assert_eq!(std::fs::read(full.join("results.csv")).unwrap(), reference);
}

#[test]
fn refuses_a_changed_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(Mode::Free);
    run_sweep(&valid(&s), dir.path(), Some(1), &fake_ok, &mut Silent).unwrap();
    let mut changed = s.clone();
    changed.ts = vec![0.5, 1.0];
    let err = run_sweep(&valid(&changed), dir.path(), Some(1), &fake_ok, &mut Silent).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("different configuration") && msg.contains("ts"),
        "{msg}"
    );
}

#[test]
fn shards_merge_into_the_full_sweep_and_report_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(Mode::Free);
    run_sweep(
        &valid(&s),
        &dir.path().join("full"),
        Some(2),
        &fake_ok,
        &mut Silent,
    )
    .unwrap();
    let mut shard_dirs = Vec::new();
    for i in 0..3 {
        let mut sh = s.clone();
        sh.shard = Some(Shard { index: i, count: 3 });
        let d = dir.path().join(format!("shard{i}"));
        run_sweep(&valid(&sh), &d, Some(1), &fake_ok, &mut Silent).unwrap();
        shard_dirs.push(d);
    }
    let rep = merge::merge(&shard_dirs, &dir.path().join("merged")).unwrap();
    assert!(rep.missing.is_empty() && rep.duplicates.is_empty());
    assert_eq!(
        std::fs::read(dir.path().join("merged/results.csv")).unwrap(),
        std::fs::read(dir.path().join("full/results.csv")).unwrap()
    );
    // Two shards only: the third's cells are missing; a shard twice: duplicates.
    let rep = merge::merge(&shard_dirs[..2], &dir.path().join("m2")).unwrap();
    assert_eq!(rep.missing.len(), 6);
    let twice = vec![shard_dirs[0].clone(), shard_dirs[0].clone()];
    let rep = merge::merge(&twice, &dir.path().join("m3")).unwrap();
    assert_eq!(rep.duplicates.len(), 6);
    // A directory of another sweep is refused.
    let mut other = s.clone();
    other.seeds = 1;
    run_sweep(
        &valid(&other),
        &dir.path().join("other"),
        Some(1),
        &fake_ok,
        &mut Silent,
    )
    .unwrap();
    let mixed = vec![shard_dirs[0].clone(), dir.path().join("other")];
    assert!(merge::merge(&mixed, &dir.path().join("m4")).is_err());
}

#[test]
fn thread_count_does_not_change_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(Mode::Free);
    run_sweep(
        &valid(&s),
        &dir.path().join("a"),
        Some(1),
        &fake_ok,
        &mut Silent,
    )
    .unwrap();
    run_sweep(
        &valid(&s),
        &dir.path().join("b"),
        Some(3),
        &fake_ok,
        &mut Silent,
    )
    .unwrap();
    assert_eq!(
        read_rows(&dir.path().join("a/results.csv")).unwrap().0,
        read_rows(&dir.path().join("b/results.csv")).unwrap().0
    );
}

#[test]
fn every_cell_runs_once_largest_first_and_cells_read_memory_once() {
    use std::sync::Mutex;
    let mut s = spec(Mode::Free);
    s.ns = vec![4, 9, 5, 8, 6];
    let v = valid(&s);
    // The checked sweep carries one reading of the memory available for its cells.
    assert!(matches!(
        v.run.max_memory,
        crate::limits::MemoryLimit::Measured { .. }
    ));
    let dir = tempfile::tempdir().unwrap();
    let started = Mutex::new(Vec::new());
    let runner = |c: &Cell| {
        started.lock().unwrap().push(c.n);
        fake_ok(c)
    };
    let out = run_sweep(&v, dir.path(), Some(1), &runner, &mut Silent).unwrap();
    assert!(out.complete && out.computed == s.cells().len());
    // One worker takes the cells in order of size, largest first.
    let order = started.into_inner().unwrap();
    assert_eq!(order.len(), s.cells().len());
    assert!(order.windows(2).all(|w| w[0] >= w[1]), "{order:?}");
    // Two workers still run each cell exactly once.
    let started = Mutex::new(Vec::new());
    let runner = |c: &Cell| {
        started.lock().unwrap().push(c.index);
        fake_ok(c)
    };
    let two = tempfile::tempdir().unwrap();
    run_sweep(&v, two.path(), Some(2), &runner, &mut Silent).unwrap();
    let mut ran = started.into_inner().unwrap();
    ran.sort_unstable();
    assert_eq!(ran, (0..s.cells().len()).collect::<Vec<_>>());
}

#[test]
fn summary_counts_agreement_and_regions() {
    let s = spec(Mode::Free);
    let rows: Vec<ResultRow> = s.all_cells().iter().map(fake).collect();
    let sm = summary::summarize(&s, &rows);
    let f = sm.free.unwrap();
    assert_eq!((f.cells, f.meets), (18, 12));
    assert_eq!(f.misses.len(), 6);
    assert_eq!(sm.regions.len(), 1);
    assert!(summary::summarize(&s, &rows)
        .to_markdown()
        .contains("12 of 18"));
}

#[test]
fn bad_specs_are_errors() {
    let mut s = spec(Mode::Encoder);
    s.run.steps = Some(0);
    assert!(s.validate().is_err());
    let mut s = spec(Mode::Encoder);
    s.run.lr = Some(-1.0);
    assert!(s.validate().is_err());
    let mut s = spec(Mode::Encoder);
    s.run.layers = Some(4);
    assert!(s.validate().is_err());
    let mut s = spec(Mode::Encoder);
    s.ns = vec![1, 4];
    assert!(s.validate().is_err());
    let mut s = spec(Mode::Free);
    s.objective = LossKind::InfoNce;
    s.ts = vec![0.0];
    assert!(s.validate().is_err());
}

#[test]
fn unwritable_out_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    assert!(run_sweep(
        &valid(&spec(Mode::Free)),
        &file.join("sub"),
        Some(1),
        &fake_ok,
        &mut Silent
    )
    .is_err());
}

#[test]
fn free_sigmoid_with_d_below_n_is_refused() {
    let mut s = spec(Mode::Free);
    s.d_ratio = 0.5;
    assert!(matches!(
        s.validate(),
        Err(Error::DimensionTooSmall { n: 4, d: 2 })
    ));
    s.mode = Mode::Encoder;
    assert!(s.validate().is_ok());
    let mut s = spec(Mode::Free);
    s.run.optimizer = Some("lbfgs".into());
    assert!(s.validate().is_err());
    s.run.optimizer = None;
    s.run.grad_tol = Some(-1.0);
    assert!(s.validate().is_err());
}

fn one_cell(mode: Mode, objective: LossKind, t: f64, run: RunOptions) -> (Cell, ResultRow) {
    let s = SweepSpec {
        mode,
        objective,
        ns: vec![5],
        ts: vec![t],
        seeds: 1,
        run,
        ..spec(mode)
    }
    .check()
    .unwrap();
    let cell = s.cells()[0];
    (cell, run_cell(&s, &cell).unwrap())
}

#[test]
fn run_cell_meets_the_theory_on_a_free_cell() {
    let (cell, r) = one_cell(Mode::Free, LossKind::Sigmoid, 1.0, RunOptions::default());
    assert_eq!(
        (r.cell, r.n, r.d, r.status),
        (cell.index, 5, 5, RowStatus::Ok)
    );
    assert_eq!(r.meets_theory, Some(true));
    assert_eq!(r.converged, Some(true));
    assert!((r.s_pos.unwrap() - r.s_pos_theory.unwrap()).abs() < 1e-3);
    assert!(r.loss_clip.is_none() && r.theory_loss.is_some());
    let (_, r) = one_cell(Mode::Free, LossKind::InfoNce, 0.5, RunOptions::default());
    assert_eq!(
        (r.phase, r.c_star, r.b),
        (Some(Phase::Etf), Some(0.0), None)
    );
    assert_eq!(r.loss_clip, Some(r.loss.unwrap() / 2.0));
}

#[test]
fn run_cell_at_t_zero_is_degenerate_and_meets_the_theory() {
    let (_, r) = one_cell(Mode::Free, LossKind::Sigmoid, 0.0, RunOptions::default());
    assert_eq!(r.status, RowStatus::Ok);
    assert_eq!(r.phase, Some(Phase::Degenerate));
    assert_eq!(
        (r.c_star, r.s_pos_theory, r.gram_distance_to_theory),
        (None, None, None)
    );
    // At t = 0 the loss does not depend on the embedding: every result is optimal.
    assert_eq!(r.meets_theory, Some(true));
    assert!((r.loss.unwrap() - r.theory_loss.unwrap()).abs() < 1e-12);
}

#[test]
fn run_cell_reports_divergence_as_a_row() {
    let run = RunOptions {
        lr: Some(1e300),
        steps: Some(20),
        ..RunOptions::default()
    };
    for mode in [Mode::Encoder, Mode::Free] {
        let (_, r) = one_cell(mode, LossKind::Sigmoid, 5.0, run.clone());
        assert_eq!(r.status, RowStatus::Diverged, "{mode}");
        assert_eq!((r.s_pos, r.loss, r.c_fit), (None, None, None), "{mode}");
        // The prediction is still there; a diverged free run does not meet it.
        assert!(r.c_star.is_some() && r.phase.is_some());
        let expected = (mode == Mode::Free).then_some(false);
        assert_eq!(r.meets_theory, expected, "{mode}");
    }
}
