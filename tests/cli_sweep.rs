//! End-to-end tests of `ccem sweep`, `merge`, `train` and `reproduce --quick`: reproducible and
//! resumable results, shards, divergence reported and survived, bad input refused.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

const GRID: [&str; 8] = [
    "--mode", "encoder", "--loss", "sigmoid", "--n", "4..9", "--t", "0.5..3:3",
];

fn sweep(out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    ccem()
        .arg("sweep")
        .args(GRID)
        .args(["--seeds", "2", "--quiet", "--out", out.to_str().unwrap()])
        .args(extra)
        .assert()
}

#[test]
fn same_command_twice_gives_identical_results_and_a_summary() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    sweep(&a, &["--threads", "1"]).success();
    sweep(&b, &["--threads", "2"]).success();
    let ra = std::fs::read_to_string(a.join("results.csv")).unwrap();
    assert_eq!(ra, std::fs::read_to_string(b.join("results.csv")).unwrap());
    assert_eq!(ra.lines().count(), 1 + 6 * 3 * 2);
    let header = ra.lines().next().unwrap();
    for col in [
        "n",
        "d",
        "t",
        "b",
        "seed",
        "s_pos",
        "s_neg",
        "loss",
        "c_star",
        "s_pos_theory",
    ] {
        assert!(header.split(',').any(|h| h == col), "missing column {col}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["cells_done"], 36);
    assert!(a.join("summary.md").exists());
    // A second run in the same directory computes nothing and changes nothing.
    sweep(&a, &[]).success();
    assert_eq!(ra, std::fs::read_to_string(a.join("results.csv")).unwrap());
}

#[test]
fn killed_sweep_resumes_to_the_same_file() {
    let d = tempfile::tempdir().unwrap();
    let (full, killed) = (d.path().join("full"), d.path().join("killed"));
    let args = ["--steps", "3000", "--threads", "2"];
    sweep(&full, &args).success();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ccem"))
        .arg("sweep")
        .args(GRID)
        .args(["--seeds", "2", "--quiet", "--out", killed.to_str().unwrap()])
        .args(args)
        .spawn()
        .unwrap();
    // Kill it once some, but not all, cells are written.
    let rows = || {
        std::fs::read_to_string(killed.join("results.csv"))
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while rows() < 2 && start.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = rows();
    assert!(
        (1..36).contains(&done),
        "the run was not interrupted mid-way: {done} of 36 rows before the resume"
    );
    sweep(&killed, &args)
        .success()
        .stderr(predicate::str::is_empty());
    assert!(rows() == 36);
    assert_eq!(
        std::fs::read_to_string(full.join("results.csv")).unwrap(),
        std::fs::read_to_string(killed.join("results.csv")).unwrap()
    );
}

#[test]
fn a_changed_configuration_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("s");
    sweep(&out, &[]).success();
    sweep(&out, &["--steps", "50"])
        .failure()
        .stderr(predicate::str::contains("different configuration"));
}

#[test]
fn shards_merge_into_the_full_sweep() {
    let d = tempfile::tempdir().unwrap();
    let full = d.path().join("full");
    sweep(&full, &[]).success();
    let shards: Vec<_> = (0..3).map(|i| d.path().join(format!("s{i}"))).collect();
    for (i, s) in shards.iter().enumerate() {
        sweep(s, &["--shard", &format!("{i}/3")]).success();
    }
    let merged = d.path().join("merged");
    ccem()
        .arg("merge")
        .args(shards.iter().map(|p| p.to_str().unwrap()))
        .args(["--out", merged.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("36 of 36 cells"));
    assert_eq!(
        std::fs::read_to_string(full.join("results.csv")).unwrap(),
        std::fs::read_to_string(merged.join("results.csv")).unwrap()
    );
    // A missing shard is reported, with exit code 2.
    ccem()
        .arg("merge")
        .args(shards[..2].iter().map(|p| p.to_str().unwrap()))
        .args(["--out", d.path().join("m2").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cells missing"));
}

#[test]
fn divergence_is_reported_per_cell_and_the_sweep_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("nan");
    sweep(&out, &["--lr", "1e300"]).success();
    let text = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(text.lines().count(), 37);
    assert!(text.lines().skip(1).all(|l| l.contains(",diverged,")));
}

#[test]
fn bad_sweep_input_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = d.path().join("o");
    let o = out.to_str().unwrap();
    let under_file = file.join("sub");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--steps", "0", "--out", o], "--steps"),
        (vec!["--lr", "0", "--out", o], "lr"),
        (vec!["--lr", "-1", "--out", o], "lr"),
        (vec!["--lr", "nan", "--out", o], "lr"),
        (vec!["--layers", "4", "--out", o], "layers"),
        (vec!["--shard", "3/2", "--out", o], "3/2"),
        (vec!["--seeds", "0", "--out", o], "--seeds"),
        (vec!["--out", under_file.to_str().unwrap()], "file/sub"),
    ];
    for (extra, msg) in cases {
        ccem()
            .arg("sweep")
            .args(GRID)
            .arg("--quiet")
            .args(&extra)
            .assert()
            .failure()
            .stderr(predicate::str::contains(msg))
            .stderr(predicate::str::contains("panicked").not());
    }
    ccem()
        .args([
            "sweep", "--mode", "encoder", "--n", "5..4", "--t", "1", "--out", o,
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("5..4"));
    ccem()
        .args([
            "sweep",
            "--mode",
            "free",
            "--n",
            "4..6",
            "--t",
            "1",
            "--d-ratio",
            "0.5",
            "--out",
            o,
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("d >= N"));
}

#[test]
fn train_reports_json_and_refuses_bad_input() {
    let out = ccem()
        .args([
            "train", "--n", "8", "--loss", "sigmoid", "--t", "5", "--steps", "300", "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    for k in ["loss", "s_pos_mean", "s_neg_mean"] {
        assert!(v[k].is_number(), "missing {k}");
    }
    assert!(
        v["s_pos_mean"].as_f64().unwrap() > 0.7,
        "ETF phase: s_pos high"
    );
    for (args, msg) in [
        (vec!["--n", "8", "--t", "1", "--steps", "0"], "steps"),
        (vec!["--n", "8", "--t", "1", "--lr", "-0.5"], "lr"),
        (vec!["--n", "8", "--t", "1", "--lr", "inf"], "lr"),
        (vec!["--n", "8", "--t", "1", "--layers", "4"], "layers"),
        (vec!["--n", "1", "--t", "1"], "N = 1"),
        (vec!["--n", "8"], "--t"),
    ] {
        ccem()
            .arg("train")
            .args(&args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(msg))
            .stderr(predicate::str::contains("panicked").not());
    }
    ccem()
        .args(["train", "--n", "8", "--t", "1", "--lr", "1e300"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("diverged"));
}

#[test]
fn reproduce_quick_writes_the_report_and_every_figure() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r");
    ccem()
        .args([
            "reproduce",
            "--quick",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("REPORT.md"));
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(report.contains("on the predicted CCEM"));
    assert!(report.contains("| etf |") && report.contains("| antipodal |"));
    assert!(report.contains("## Mini-batches") && report.contains("| 4 | shuffled |"));
    assert!(report.contains("| 4 | hardest |") && report.contains("| 8 | all |"));
    assert!(report.contains("| expected | 180 |") && report.contains("| shuffled | 24 |"));
    let figures = [
        "phase_encoder.png",
        "phase_free.png",
        "theory_map.png",
        "theory_batch.png",
        "batch_spread.png",
        "phase_batch.png",
        "diff_free.png",
        "diff_encoder.png",
        "curves.png",
        "loss_curve.png",
    ];
    for f in figures {
        let bytes = std::fs::read(out.join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{f}");
        assert!(report.contains(&format!("]({f})")), "{f} not inlined");
    }
    for dir in [
        "free-sigmoid",
        "free-infonce",
        "encoder-sigmoid",
        "encoder-infonce",
    ] {
        assert!(out.join(dir).join("results.csv").exists());
    }
    assert!(out.join("theory.csv").exists());
    // Running it again resumes: nothing is computed twice.
    ccem()
        .args([
            "reproduce",
            "--quick",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    let again = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(again.contains("| `free-sigmoid/` | 72 | 0 | 72 |"));
    // After a resume the report still tells what the cells cost to compute (not 0.00 s).
    let row = again
        .lines()
        .find(|l| l.starts_with("| `encoder-sigmoid/` |"))
        .unwrap();
    let compute: f64 = row.split('|').nth(6).unwrap().trim().parse().unwrap();
    assert!(compute > 0.0, "{row}");
    assert!(again.contains("compute time of all cells"));
    // Timings never go into results.csv.
    let header = std::fs::read_to_string(out.join("free-sigmoid/results.csv")).unwrap();
    assert!(!header.lines().next().unwrap().contains("second"));
}
