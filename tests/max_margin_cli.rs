//! `ccem max-margin` end to end: the JSON keys, the save rules, memory refusals (exit 1, no
//! abort) and divergence (exit 3).

use assert_cmd::Command;

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = ccem()
        .args(["max-margin", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pentagon_end_to_end_with_csv_output() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("U.csv");
    let v = json(&[
        "--n",
        "5",
        "--d",
        "2",
        "--restarts",
        "3",
        "--hops",
        "1",
        "--save-u",
        up.to_str().unwrap(),
    ]);

    let want = (1.0 - 72f64.to_radians().cos()) / 2.0;
    assert!((v["margin"].as_f64().unwrap() - want).abs() < 1e-12, "{v}");
    assert_eq!(v["margin_bound"], 0.625);
    assert_eq!(v["restarts"], 3);
    assert_eq!(v["hops"], 1);
    assert_eq!(v["termination"], "converged");
    assert_eq!(v["certified"], true);
    assert_eq!(v["known_code"], "polygon");
    assert!(v["gap_to_known"].as_f64().unwrap().abs() < 1e-12);
    assert_eq!(v["contacts"], 5);
    assert_eq!(v["contact_pairs"].as_array().unwrap().len(), 5);
    assert_eq!(v["etf_possible"], false);
    assert!(v["seconds"].as_f64().unwrap() >= 0.0);
    // .csv means CSV text, not .npy bytes.
    let text = std::fs::read_to_string(&up).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert_eq!(
        ccem::io::read_matrix(&up, Default::default())
            .unwrap()
            .dim(),
        (5, 2)
    );
}

#[test]
fn bad_paths_and_options_are_refused_before_the_run() {
    ccem()
        .args(["max-margin", "--n", "5", "--d", "2", "--save-u", "M.txt"])
        .assert()
        .code(1);
    ccem()
        .args(["max-margin", "--n", "5", "--restarts", "0"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("restarts"));
    ccem()
        .args(["max-margin", "--n", "5", "--steps", "3"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("steps"));
}

#[test]
fn memory_limits_are_refused_at_once() {
    for args in [
        &["max-margin", "--n", "100000", "--d", "2"][..],
        &[
            "max-margin",
            "--n",
            "32768",
            "--d",
            "768",
            "--max-memory",
            "1G",
        ],
        &[
            "max-margin",
            "--n",
            "5000",
            "--d",
            "2",
            "--max-memory",
            "1K",
        ],
    ] {
        let t = std::time::Instant::now();
        ccem()
            .args(args)
            .assert()
            .code(1)
            .stderr(predicates::str::contains("memory"));
        assert!(t.elapsed().as_secs_f64() < 5.0, "{args:?}");
    }
}

#[test]
fn a_huge_learning_rate_diverges_with_exit_3() {
    ccem()
        .args([
            "max-margin",
            "--n",
            "5",
            "--d",
            "2",
            "--lr",
            "1e300",
            "--restarts",
            "2",
        ])
        .assert()
        .code(3)
        .stdout(predicates::str::contains("diverged"));
}
