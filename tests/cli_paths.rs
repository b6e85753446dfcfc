//! Output paths are checked before the work (issue 17, items 7, 8 and 10): the extension picks
//! the format (`.npy` or `.csv`, anything else refused), U and V go to different files, the
//! directory must exist; a refused path leaves nothing behind and a long run never starts.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

/// The files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The commands that save U and V, each as a short run.
const RUNS: [&[&str]; 3] = [
    &["optimize", "--n", "4", "--t", "1", "--steps", "5"],
    &["train", "--n", "4", "--t", "1", "--steps", "2"],
    &[
        "max-margin",
        "--n",
        "5",
        "--d",
        "2",
        "--hops",
        "0",
        "--restarts",
        "1",
        "--steps",
        "24",
    ],
];

#[test]
fn bad_save_paths_are_refused_before_the_work_and_leave_nothing() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--save-u", "M.txt"], "use .npy or .csv"),
        (&["--save-u", "U"], "use .npy or .csv"),
        (&["--save-u", "X.npy", "--save-v", "X.npy"], "same file"),
        (&["--save-u", "X.npy", "--save-v", "./X.npy"], "same file"),
        (&["--save-v", "nodir/V.npy"], "does not exist"),
    ];
    for run in RUNS {
        for (paths, want) in cases {
            ccem()
                .current_dir(d.path())
                .args(run)
                .args(paths)
                .assert()
                .code(1)
                .stdout("")
                .stderr(predicate::str::contains(want));
            assert!(names(d.path()).is_empty(), "{run:?} {paths:?}");
        }
    }
}

#[test]
fn a_bad_v_path_fails_before_a_long_run_and_u_is_not_written() {
    // 10^6 steps would take minutes: the refusal must come first.
    let d = tempfile::tempdir().unwrap();
    ccem()
        .current_dir(d.path())
        .args(["optimize", "--n", "50", "--t", "1", "--steps", "1000000"])
        .args([
            "--grad-tol",
            "0",
            "--save-u",
            "U.npy",
            "--save-v",
            "nodir/V.npy",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--save-v"));
    assert!(names(d.path()).is_empty());
}

#[test]
fn the_extension_picks_the_format_in_every_command() {
    let d = tempfile::tempdir().unwrap();
    for (i, run) in RUNS.iter().enumerate() {
        let (u, v) = (format!("U{i}.csv"), format!("V{i}.NPY"));
        ccem()
            .current_dir(d.path())
            .args(*run)
            .args(["--save-u", &u, "--save-v", &v, "--format", "json"])
            .assert()
            .success();
        let text = std::fs::read_to_string(d.path().join(&u)).unwrap();
        assert!(
            !text.starts_with("\u{93}NUMPY") && text.lines().count() >= 4,
            "{text}"
        );
        assert!(std::fs::read(d.path().join(&v))
            .unwrap()
            .starts_with(b"\x93NUMPY"));
        // Both read back (as given: the encoder may leave a dead ReLU row at 0).
        ccem()
            .current_dir(d.path())
            .args(["inspect", "--no-normalize", "--u", &u, "--v", &v])
            .assert()
            .success();
    }
    // Saving again replaces the files (atomically), as before.
    ccem()
        .current_dir(d.path())
        .args(RUNS[0])
        .args(["--save-u", "U0.csv"])
        .assert()
        .success();
}

#[test]
fn a_directory_is_not_a_save_path() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("D.npy")).unwrap();
    ccem()
        .current_dir(d.path())
        .args(RUNS[0])
        .args(["--save-u", "D.npy"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is a directory"));
}
