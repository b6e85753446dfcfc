//! Issue 17's robustness cases: the monitor hook (progress and cancel) of the optimiser, the
//! encoder, sweeps and the CCEM's rotation; huge `--restarts`; non-regular and oversized input
//! files; merges that never shrink; refused sweeps that leave nothing behind; tiny rows; sweeps
//! with `d < N` cells. The abort cases run under a memory `ulimit -v`.

use assert_cmd::Command;
use ccem::encoder::{self, EncoderConfig};
use ccem::monitor::{Cancel, Monitor, StepProgress, Unwatched};
use ccem::optim::{optimize, optimize_with, FreeConfig, Termination};
use ccem::sweep::{run_sweep_with, RunOptions, Silent, SweepSpec};
use ccem::{BiasMode, Error, Loss, LossKind, Mode};
use predicates::prelude::*;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Mutex;

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

/// `ccem ARGS` in a shell under `ulimit -v` of `kib` KiB (an allocation past it fails: without
/// the checks the process would abort with 134).
fn ccem_limited(kib: u64, args: &str) -> assert_cmd::assert::Assert {
    let bin = assert_cmd::cargo::cargo_bin("ccem");
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec {} {args}", bin.display()))
        .assert()
}

/// Records every step it sees; stops at `stop_at` when set.
struct Recorder {
    every: usize,
    stop_at: Option<usize>,
    seen: Mutex<Vec<StepProgress>>,
}

impl Recorder {
    fn new(every: usize, stop_at: Option<usize>) -> Self {
        Recorder {
            every,
            stop_at,
            seen: Mutex::new(Vec::new()),
        }
    }
    fn steps(&self) -> Vec<(usize, usize)> {
        let seen = self.seen.lock().unwrap();
        seen.iter().map(|p| (p.restart, p.step)).collect()
    }
}

impl Monitor for Recorder {
    fn on_step(&self, p: &StepProgress) -> ControlFlow<()> {
        self.seen.lock().unwrap().push(*p);
        if self.stop_at.is_some_and(|s| p.step >= s) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
    fn every(&self) -> usize {
        self.every
    }
}

fn free_cfg() -> FreeConfig {
    let mut cfg = FreeConfig::new(6, 6, Loss::sigmoid(2.0, 1.0).unwrap(), 3);
    cfg.steps = 60;
    cfg.grad_tol = 0.0;
    cfg
}

#[test]
fn watching_an_optimisation_never_changes_it() {
    let mut cfg = free_cfg();
    cfg.restarts = 2;
    let plain = optimize(&cfg).unwrap();
    assert_eq!(optimize_with(&cfg, &Unwatched).unwrap(), plain);
    let rec = Recorder::new(25, None);
    assert_eq!(optimize_with(&cfg, &rec).unwrap(), plain);
    // Every 25 steps and at the last one, in each restart.
    let want: Vec<(usize, usize)> = (0..2)
        .flat_map(|r| [0, 25, 50, 60].map(|s| (r, s)))
        .collect();
    assert_eq!(rec.steps(), want);
    let seen = rec.seen.lock().unwrap();
    let last = seen.last().unwrap();
    assert_eq!((last.steps, last.t, last.b), (60, Some(2.0), Some(1.0)));
    assert!(last.loss.is_finite() && last.grad_norm.is_finite());
    assert!(last.margin.is_some() && last.s_pos.unwrap() > last.s_neg.unwrap());
    // The final report is the run's own final loss.
    assert_eq!(last.loss, plain.restart_losses[1]);
}

#[test]
fn a_monitor_stops_an_optimisation_and_keeps_the_partial_result() {
    let mut cfg = free_cfg();
    cfg.restarts = 3;
    let rec = Recorder::new(10, Some(20));
    let r = optimize_with(&cfg, &rec).unwrap();
    assert_eq!(r.termination, Termination::Stopped);
    assert_eq!((r.steps_run, r.restart_losses.len()), (20, 1));
    assert!(r.loss.is_finite());
    assert_eq!(r.termination.as_str(), "stopped");
    // Cancelled before the first step: nothing run, still a result.
    let cancel = Cancel::new();
    cancel.cancel();
    let r = optimize_with(&cfg, &cancel).unwrap();
    assert_eq!((r.termination, r.steps_run), (Termination::Stopped, 0));
}

#[test]
fn a_mini_batch_run_is_watched_and_stopped_too() {
    let mut cfg = free_cfg();
    cfg.batch = Some(ccem::batch::MiniBatch::new(6, 3, None, &cfg.loss).unwrap());
    let plain = optimize(&cfg).unwrap();
    let rec = Recorder::new(20, None);
    assert_eq!(optimize_with(&cfg, &rec).unwrap(), plain);
    assert_eq!(rec.steps(), [(0, 0), (0, 20), (0, 40), (0, 60)]);
    let r = optimize_with(&cfg, &Recorder::new(5, Some(5))).unwrap();
    assert_eq!((r.termination, r.steps_run), (Termination::Stopped, 5));
}

#[test]
fn watching_the_encoder_never_changes_it_and_a_monitor_stops_it() {
    let mut cfg = EncoderConfig::new(6, 6, 2);
    cfg.steps = 30;
    let loss = Loss::sigmoid(2.0, 2.0).unwrap();
    let plain = encoder::train(&cfg, &loss).unwrap();
    let rec = Recorder::new(10, None);
    assert_eq!(encoder::train_monitored(&cfg, &loss, &rec).unwrap(), plain);
    assert_eq!(rec.steps(), [(0, 0), (0, 10), (0, 20), (0, 30)]);
    {
        let seen = rec.seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last.loss, plain.loss);
        assert_eq!(last.s_pos, Some(plain.s_pos));
        assert!(last.grad_norm > 0.0 && last.grad_norm.is_finite());
    }
    let r = encoder::train_monitored(&cfg, &loss, &Recorder::new(1, Some(7))).unwrap();
    assert_eq!((r.termination, r.steps_run), (Termination::Stopped, 7));
    // The mini-batch encoder too.
    cfg.batch = Some(ccem::batch::MiniBatch::new(6, 3, None, &loss).unwrap());
    let plain = encoder::train(&cfg, &loss).unwrap();
    assert_eq!(
        encoder::train_monitored(&cfg, &loss, &Recorder::new(7, None)).unwrap(),
        plain
    );
    let cancel = Cancel::new();
    cancel.cancel();
    let r = encoder::train_monitored(&cfg, &loss, &cancel).unwrap();
    assert_eq!((r.termination, r.steps_run), (Termination::Stopped, 0));
}

fn small_spec() -> ccem::Valid<SweepSpec> {
    SweepSpec {
        mode: Mode::Free,
        objective: LossKind::Sigmoid,
        ns: vec![4, 5],
        ts: vec![1.0, 2.0],
        bias: BiasMode::Tied,
        seeds: 1,
        base_seed: 0,
        d_ratio: 1.0,
        ds: None,
        within_view: None,
        run: RunOptions::default(),
        shard: None,
    }
    .check()
    .unwrap()
}

#[test]
fn a_cancelled_sweep_is_interrupted_and_leaves_nothing_behind() {
    let spec = small_spec();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    let cancel = Cancel::new();
    cancel.cancel();
    let runner = |c: &ccem::sweep::Cell| ccem::sweep::run_cell_with(&spec, c, &cancel);
    let e = run_sweep_with(&spec, &dir, Some(1), &runner, &mut Silent, &cancel).unwrap_err();
    assert!(matches!(e, Error::Interrupted(_)), "{e}");
    assert!(
        !dir.exists(),
        "a sweep that wrote nothing leaves no directory"
    );
    // A runner that refuses its cells: no config.json left to refuse the corrected command.
    std::fs::create_dir(&dir).unwrap();
    let refuse = |_: &ccem::sweep::Cell| Err(Error::Config("refused".into()));
    assert!(run_sweep_with(&spec, &dir, Some(1), &refuse, &mut Silent, &Unwatched).is_err());
    assert!(dir.exists() && std::fs::read_dir(&dir).unwrap().next().is_none());
    // Then the sweep runs.
    let ok = |c: &ccem::sweep::Cell| ccem::sweep::run_cell(&spec, c);
    let out = run_sweep_with(&spec, &dir, Some(1), &ok, &mut Silent, &Unwatched).unwrap();
    assert!(out.complete);
}

#[test]
fn the_rotated_ccem_is_exact_and_cancellable() {
    let (u, v) = ccem::geometry::ccem_embedding(7, 150, 0.5, Some(4)).unwrap();
    let (u0, v0) = ccem::geometry::ccem_embedding(7, 150, 0.5, None).unwrap();
    // A rotation keeps every similarity.
    for (a, b) in [(&u, &u0), (&v, &v0)] {
        let (g, g0) = (a.dot(&v.t()), b.dot(&v0.t()));
        assert!(g.iter().zip(&g0).all(|(x, y)| (x - y).abs() < 1e-12));
    }
    let q = ccem::geometry::random_orthogonal(150, 4);
    let eye = q.dot(&q.t());
    for ((i, j), x) in eye.indexed_iter() {
        assert!((x - f64::from(u8::from(i == j))).abs() < 1e-12);
    }
    let cancel = Cancel::new();
    cancel.cancel();
    let e = ccem::geometry::ccem_embedding_with(7, 150, 0.5, Some(4), Default::default(), &cancel)
        .unwrap_err();
    assert!(matches!(e, Error::Interrupted(_)), "{e}");
}

#[test]
fn a_billion_restarts_are_refused_not_an_abort() {
    let billion = "--n 5 --t 1 --restarts 1000000000";
    ccem()
        .arg("optimize")
        .args(billion.split(' '))
        .args(["--max-memory", "1G"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1000000000 restarts"));
    // Under `ulimit -v` the limit is the address space left.
    ccem_limited(2_000_000, &format!("optimize {billion}"))
        .code(1)
        .stderr(predicate::str::contains("ulimit -v"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sw");
    ccem_limited(
        2_000_000,
        &format!(
            "sweep --mode free --n 4..5 --t 1,2 --restarts 1000000000 --quiet --out {}",
            out.display()
        ),
    )
    .code(1)
    .stderr(predicate::str::contains("restarts"));
    assert!(!out.join("config.json").exists());
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn readers_refuse_devices_and_oversized_csv_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let z = tmp.path().join("z.csv");
    std::os::unix::fs::symlink("/dev/zero", &z).unwrap();
    let v = tmp.path().join("v.csv");
    write(&v, "1,0\n0,1\n");
    ccem_limited(
        1_000_000,
        &format!("inspect --u {} --v {} --t 1", z.display(), v.display()),
    )
    .code(1)
    .stderr(predicate::str::contains("not a regular file"));
    // 2 MB of CSV under --max-memory 1M: refused by its size, before it is read.
    let big = tmp.path().join("big.csv");
    let row = "0.25,0.5,0.75,1.0\n".repeat(120_000);
    write(&big, &row);
    ccem_limited(
        1_000_000,
        &format!(
            "inspect --u {} --v {} --t 1 --max-memory 1M",
            big.display(),
            big.display()
        ),
    )
    .code(1)
    .stderr(predicate::str::contains("reading").and(predicate::str::contains("memory")));
    // The library's readers too (a directory, a device).
    assert!(ccem::io::read_matrix(tmp.path(), Default::default()).is_err());
    let e = ccem::io::read_matrix(&z, Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn a_smaller_merge_never_shrinks_the_merged_results() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    for (i, m) in ["m0", "m1"].iter().enumerate() {
        ccem()
            .args(["sweep", "--mode", "encoder", "--n", "4..5", "--t", "1,2"])
            .args(["--steps", "5", "--quiet", "--shard", &format!("{i}/2")])
            .args(["--out", &p(m)])
            .assert()
            .success();
    }
    ccem()
        .args(["merge", &p("m0"), &p("m1"), "--out", &p("all")])
        .assert()
        .success();
    let full = std::fs::read_to_string(tmp.path().join("all/results.csv")).unwrap();
    assert_eq!(full.lines().count(), 1 + 4);
    ccem()
        .args(["merge", &p("m0"), "--out", &p("all"), "--allow-missing"])
        .assert()
        .success()
        .stderr(predicate::str::contains("kept 2 cells"));
    let after = std::fs::read_to_string(tmp.path().join("all/results.csv")).unwrap();
    assert_eq!(after, full);
}

#[test]
fn tiny_rows_normalise_to_full_precision() {
    let u = ndarray::array![[0.3, -0.4, 1.2], [1.0, 0.5, -0.25], [0.1, 0.2, 0.3]];
    let v = ndarray::array![[0.2, -0.5, 1.0], [0.9, 0.4, -0.2], [-0.3, 0.2, 0.35]];
    let reference = ccem::loss::embedding::normalize_rows(u.view(), "U").unwrap();
    for scale in [1e-160, 1e-200, 1e200] {
        let scaled = u.mapv(|x| x * scale);
        let n = ccem::loss::embedding::normalize_rows(scaled.view(), "U").unwrap();
        for (a, b) in n.u.iter().zip(&reference.u) {
            assert!((a - b).abs() < 1e-15, "scale {scale}: {a} vs {b}");
        }
    }
    // `inspect` of the scaled pair measures what the unscaled one does.
    let cfg = ccem::inspect::InspectConfig::default();
    let pos = |a: &ndarray::Array2<f64>, b: &ndarray::Array2<f64>| {
        let r = ccem::inspect::inspect(
            ccem::matrix::Matrix::F64(a.clone()),
            ccem::matrix::Matrix::F64(b.clone()),
            &cfg,
        )
        .unwrap();
        r.report.measurement.unwrap().pos.mean
    };
    let tiny = |a: &ndarray::Array2<f64>| a.mapv(|x| x * 1e-160);
    assert!((pos(&tiny(&u), &tiny(&v)) - pos(&u, &v)).abs() < 1e-14);
}

#[test]
fn cells_without_a_theory_are_not_misses() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dgrid");
    ccem()
        .args([
            "sweep", "--mode", "free", "--n", "4,5", "--d", "2..5", "--t", "1,2", "--steps", "300",
            "--quiet",
        ])
        .args(["--out", out.to_str().unwrap()])
        .assert()
        .success();
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    // N = 4: d = 4, 5 and N = 5: d = 5 have a theory (6 cells), and so have d = N - 1 (4
    // cells), where the optimum at these t is the simplex ETF, which fits in N - 1 dimensions
    // (SPEC §9.8); the other 6 have d < N - 1.
    assert!(md.contains("of 10 cells"), "{md}");
    assert!(md.contains("6 cells have d < N"), "{md}");
    // A map of several d per N is refused, not averaged.
    ccem()
        .args(["plot", "phase", "--input", out.to_str().unwrap()])
        .args(["--out", tmp.path().join("p.png").to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("several dimensions"));
}
