//! The defects of issue 7, each reproduced through the binary: resume refused for ordinary grids,
//! `merge` overwriting another sweep, aborts on huge inputs, a closed pipe reported as an error,
//! silent wrong values, and the smaller problems (option names, exit codes, messages).

use assert_cmd::Command;
use predicates::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---- 1. resume of the same command, whatever the grid ----

#[test]
fn the_same_sweep_twice_is_accepted_for_every_grid_spelling() {
    let d = tempfile::tempdir().unwrap();
    for (k, grid) in ["0.5..3:4", "0.1..5:5", "0.05..8:200", "0.3,0.7,1.1,2.9"]
        .iter()
        .enumerate()
    {
        let out = d.path().join(format!("s{k}"));
        let run = || {
            ccem()
                .args(["sweep", "--mode", "free", "--n", "4..5", "--t", grid])
                .args(["--steps", "2", "--quiet", "--format", "json", "--out"])
                .arg(&out)
                .assert()
        };
        run().success();
        let before = std::fs::read(out.join("results.csv")).unwrap();
        run()
            .success()
            .stderr(predicate::str::contains("different").not());
        assert_eq!(before, std::fs::read(out.join("results.csv")).unwrap());
    }
}

// ---- 2. merge --out DIR holding another sweep ----

#[test]
fn merge_refuses_an_out_directory_holding_another_sweep_and_leaves_it_untouched() {
    let d = tempfile::tempdir().unwrap();
    let sweep = |out: &Path, t: &str, extra: &[&str]| {
        ccem()
            .args(["sweep", "--mode", "free", "--n", "4..6", "--t", t])
            .args(["--steps", "2", "--quiet", "--out"])
            .arg(out)
            .args(extra)
            .assert()
            .success();
    };
    let other = d.path().join("other");
    sweep(&other, "0.5,1", &[]);
    let (s0, s1) = (d.path().join("s0"), d.path().join("s1"));
    sweep(&s0, "1,2", &["--shard", "0/2"]);
    sweep(&s1, "1,2", &["--shard", "1/2"]);
    let before = snapshot(&other);
    ccem()
        .arg("merge")
        .args([&s0, &s1])
        .arg("--out")
        .arg(&other)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("holds a different sweep"));
    assert_eq!(before, snapshot(&other));
    // Into a fresh directory (and again into the same one) it works.
    let merged = d.path().join("merged");
    for _ in 0..2 {
        ccem()
            .arg("merge")
            .args([&s0, &s1])
            .arg("--out")
            .arg(&merged)
            .assert()
            .success();
    }
}

// ---- 3. aborts: huge inputs are refused before anything is allocated or written ----

#[test]
fn an_npy_claiming_more_data_than_it_holds_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let mut header =
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 6), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 96]);
    std::fs::write(d.path().join("big.npy"), bytes).unwrap();
    ccem()
        .current_dir(d.path())
        .args(["inspect", "--u", "big.npy", "--v", "big.npy"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("(1000000000, 6)")
                .and(predicate::str::contains("holds only 96 bytes")),
        );
}

#[test]
fn runs_too_large_for_memory_are_refused_naming_the_size_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 9] = [
        &[
            "optimize", "--n", "1000000", "--t", "1", "--save-u", "U.npy",
        ],
        &["train", "--n", "1000000", "--t", "1", "--save-u", "U.npy"],
        &["theory", "--n", "4..1000000000", "--t", "1"],
        &["theory", "--n", "10", "--t", "0.1..5:100000000"],
        &[
            "sweep",
            "--mode",
            "free",
            "--n",
            "4..1000000000",
            "--t",
            "1",
            "--out",
            "s1",
        ],
        &[
            "sweep",
            "--mode",
            "free",
            "--n",
            "4..50",
            "--t",
            "0.1..5:100000000",
            "--out",
            "s2",
        ],
        &["plot", "theory", "--n", "4..1000000000", "--out", "a.png"],
        &[
            "plot",
            "theory",
            "--t",
            "0.1..5:100000000",
            "--out",
            "b.png",
        ],
        &[
            "plot",
            "loss-curve",
            "--ts",
            "0.1..4:100000",
            "--out",
            "c.png",
        ],
    ];
    for args in cases {
        let out = ccem()
            .current_dir(d.path())
            .timeout(std::time::Duration::from_secs(20))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(
            err.contains("TiB")
                || err.contains("values is too many")
                || err.contains("rows are too many")
                || err.contains("more curves than"),
            "{args:?}: {err}"
        );
    }
    assert!(names(d.path()).is_empty(), "{:?}", names(d.path()));
    // An explicit limit is obeyed and named.
    ccem()
        .args(["--max-memory", "1M", "optimize", "--n", "200", "--t", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "more than the 1.0 MiB allowed (--max-memory)",
        ));
}

/// Spawns `ccem args`, reads `lines` lines of its output, closes the pipe and returns the exit
/// code and stderr.
fn read_then_close(args: &[&str], lines: usize) -> (Option<i32>, String, Vec<String>) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ccem"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    {
        let mut r = BufReader::new(child.stdout.take().unwrap());
        for _ in 0..lines {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            got.push(l);
        }
    } // the reader is dropped: the pipe is closed
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        got,
    )
}

#[test]
fn theory_csv_streams_any_grid_into_a_closed_pipe() {
    for format in ["csv", "json"] {
        let (code, err, lines) = read_then_close(
            &[
                "theory",
                "--n",
                "4..1000000000",
                "--t",
                "0.1..5:10",
                "--format",
                format,
            ],
            3,
        );
        assert_eq!(code, Some(0), "{format}: {err}");
        assert!(err.is_empty(), "{format}: {err}");
        if format == "csv" {
            assert!(lines[0].starts_with("n,t,b,c_star"), "{lines:?}");
            assert!(lines[1].starts_with("4,0.1,0.1,"), "{lines:?}");
        }
    }
}

// ---- 4. a closed pipe ends quietly with exit 0 ----

#[test]
fn a_closed_pipe_is_exit_0_for_every_format() {
    for format in ["table", "csv", "json"] {
        let (code, err, _) = read_then_close(
            &[
                "theory",
                "--n",
                "4..500",
                "--t",
                "0.1..5:100",
                "--format",
                format,
            ],
            1,
        );
        assert_eq!(code, Some(0), "{format}: {err}");
        assert!(err.is_empty(), "{format}: {err}");
    }
    // The issue's own example (its output is larger than a pipe's buffer).
    let (code, err, _) = read_then_close(
        &[
            "theory",
            "--n",
            "4..50",
            "--t",
            "0.1..5:10",
            "--format",
            "json",
        ],
        1,
    );
    assert_eq!(code, Some(0), "{err}");
}

// ---- 5. silent wrong values ----

#[test]
fn huge_or_overflowing_t_is_refused_not_nan() {
    for t in ["-1e308..1e308:3", "0..1e308:3", "5e307", "1e300"] {
        ccem()
            .args(["theory", "--n", "10", &format!("--t={t}")])
            .assert()
            .code(1)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains("invalid t"));
    }
    ccem()
        .args(["theory", "--n", "10", "--t", "1", "--b=-1e260"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid b"));
    // Inside the bound, every value is finite.
    let out = ccem()
        .args([
            "theory",
            "--n",
            "10",
            "--t",
            "0..1e250:3",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.to_lowercase().contains("nan"), "{text}");
}

#[test]
fn every_run_diverged_is_exit_3_for_optimize_and_train() {
    ccem()
        .args([
            "optimize", "--n", "6", "--t", "1", "--lr", "1e300", "--steps", "20",
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("diverged"));
    ccem()
        .args([
            "train", "--n", "6", "--t", "1", "--lr", "1e300", "--steps", "5",
        ])
        .assert()
        .code(3);
}

#[test]
fn the_exit_codes_are_in_every_help() {
    let helps: [&[&str]; 6] = [
        &["--help"],
        &["theory", "--help"],
        &["optimize", "--help"],
        &["merge", "--help"],
        &["plot", "--help"],
        &["plot", "phase", "--help"],
    ];
    for args in helps {
        ccem().args(args).assert().success().stdout(
            predicate::str::contains("Exit codes")
                .and(predicate::str::contains("3  every run diverged")),
        );
    }
    // A usage error is an error (1), not clap's 2 (which means an incomplete merge).
    ccem().args(["theory", "--bogus"]).assert().code(1);
}

#[test]
fn save_u_writes_the_format_of_its_extension() {
    let d = tempfile::tempdir().unwrap();
    ccem()
        .current_dir(d.path())
        .args(["optimize", "--n", "4", "--t", "1", "--steps", "50"])
        .args(["--save-u", "U.csv", "--save-v", "V.npy"])
        .assert()
        .success();
    let u = std::fs::read_to_string(d.path().join("U.csv")).unwrap();
    assert_eq!(u.lines().count(), 4);
    assert!(u
        .lines()
        .all(|l| l.split(',').count() == 4 && l.split(',').all(|x| x.parse::<f64>().is_ok())));
    assert!(std::fs::read(d.path().join("V.npy"))
        .unwrap()
        .starts_with(b"\x93NUMPY"));
    // The file reads back through `inspect`.
    ccem()
        .current_dir(d.path())
        .args(["inspect", "--u", "U.csv", "--v", "V.npy"])
        .assert()
        .success();
    for cmd in ["optimize", "train"] {
        ccem()
            .current_dir(d.path())
            .args([cmd, "--n", "4", "--t", "1", "--save-u", "U.bin"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("use .npy or .csv"));
    }
    assert!(!d.path().join("U.bin").exists());
}

// ---- 6. smaller problems ----

#[test]
fn every_option_named_in_a_message_exists() {
    let mut known = String::new();
    let subs: [&[&str]; 16] = [
        &[],
        &["explore"],
        &["max-margin"],
        &["theory"],
        &["inspect"],
        &["optimize"],
        &["train"],
        &["sweep"],
        &["merge"],
        &["reproduce"],
        &["plot", "phase"],
        &["plot", "theory"],
        &["plot", "diff"],
        &["plot", "curves"],
        &["plot", "loss-curve"],
        &["plot", "margin"],
    ];
    for s in subs {
        let out = ccem().args(s).arg("--help").output().unwrap();
        known += &String::from_utf8_lossy(&out.stdout);
    }
    let options = |text: &str| -> Vec<String> {
        let b = text.as_bytes();
        let mut v = Vec::new();
        let mut i = 0;
        while i + 2 < b.len() {
            let starts = b[i] == b'-'
                && b[i + 1] == b'-'
                && b[i + 2].is_ascii_lowercase()
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-'));
            if starts {
                let end = (i + 2..b.len())
                    .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'-'))
                    .unwrap_or(b.len());
                v.push(text[i..end].to_string());
                i = end;
            } else {
                i += 1;
            }
        }
        v
    };
    let known = options(&known);
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut unknown = Vec::new();
    for f in files {
        for o in options(&std::fs::read_to_string(&f).unwrap()) {
            // `--array` is SLURM's, not ours.
            if !known.contains(&o) && o != "--array" {
                unknown.push(format!("{}: {o}", f.display()));
            }
        }
    }
    assert!(unknown.is_empty(), "options that do not exist: {unknown:?}");
}

#[test]
fn a_failed_png_write_is_a_plain_io_error() {
    ccem()
        .args(["plot", "loss-curve", "--out", "/nonexistent-dir/x.png"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("No such file or directory")
                .and(predicate::str::contains("ImageError").not()),
        );
}

#[test]
fn train_refuses_t_and_tau_together_for_infonce() {
    ccem()
        .args([
            "train", "--n", "4", "--loss", "infonce", "--t", "1", "--tau", "2",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--tau"));
}

#[test]
fn a_repeated_grid_value_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    ccem()
        .args(["sweep", "--mode", "free", "--n", "4,4", "--t", "1", "--out"])
        .arg(d.path().join("s"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("4 is given twice"));
    ccem()
        .args(["theory", "--n", "4", "--t", "1,2,1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1 is given twice"));
}

#[test]
fn merge_reports_missing_cells_on_stderr() {
    let d = tempfile::tempdir().unwrap();
    let s0 = d.path().join("s0");
    ccem()
        .args([
            "sweep", "--mode", "free", "--n", "4..5", "--t", "1,2", "--steps", "2",
        ])
        .args(["--shard", "0/2", "--quiet", "--out"])
        .arg(&s0)
        .assert()
        .success();
    ccem()
        .arg("merge")
        .arg(&s0)
        .arg("--out")
        .arg(d.path().join("m"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("missing").not())
        .stderr(predicate::str::contains("2 cells missing"));
    ccem()
        .arg("merge")
        .arg(&s0)
        .arg("--out")
        .arg(d.path().join("m"))
        .arg("--allow-missing")
        .assert()
        .success()
        .stderr(predicate::str::contains("2 cells missing"));
}

#[test]
fn resume_says_how_many_cells_are_left() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("s");
    let run = || {
        ccem()
            .args([
                "sweep", "--mode", "free", "--n", "4..5", "--t", "1,2", "--steps", "2",
            ])
            .arg("--out")
            .arg(&out)
            .assert()
            .success()
    };
    run().stderr(predicate::str::contains("4 cells to do"));
    run().stderr(
        predicate::str::contains("4 of 4 cells already done")
            .and(predicate::str::contains("4 cells to do").not())
            .and(predicate::str::contains("0 cells to do")),
    );
}

/// `--max-memory` is the resolver's `max_memory`, spelled as a flag in every message, and the
/// machine's, not the sweep's: a sweep resumes under another limit (not in `config.json`).
#[test]
fn max_memory_is_named_as_a_flag_and_a_sweep_resumes_under_another_limit() {
    ccem()
        .args(["--max-memory", "1X", "optimize", "--n", "4", "--t", "1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid --max-memory '1X'"));
    ccem()
        .args([
            "sweep",
            "--mode",
            "free",
            "--n",
            "50",
            "--t",
            "1",
            "--max-memory",
            "1K",
        ])
        .args(["--out", "/nonexistent-ccem-dir", "--quiet"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("raise --max-memory")
                .and(predicate::str::contains("max_memory=").not()),
        );
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("s");
    let sweep = |limit: &str| {
        ccem()
            .args([
                "sweep", "--mode", "free", "--n", "4", "--t", "1", "--steps", "5",
            ])
            .args(["--quiet", "--max-memory", limit, "--out"])
            .arg(&out)
            .assert()
            .success();
    };
    sweep("1G");
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(!config.contains("max_memory"), "{config}");
    sweep("2G");
}
