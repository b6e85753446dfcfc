//! End-to-end tests of the mini-batch options (SPEC §7): `theory --batch`, `optimize --batch`.

use assert_cmd::Command;
use predicates::prelude::*;

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

fn json(args: &[&str]) -> Vec<serde_json::Value> {
    let out = ccem()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        serde_json::Value::Array(v) => v,
        v => vec![v],
    }
}

/// `c*` of the expected loss found by bisection on the derivative written out here, shared
/// with nothing in the crate.
fn c_star_bisect(n: usize, bsz: usize, t: f64, b: f64) -> f64 {
    let w = (bsz - 1) as f64 / (n - 1) as f64;
    let (nm1, nm2) = ((n - 1) as f64, (n - 2) as f64);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let d = |c: f64| {
        2.0 * t * sig(b - t + 2.0 * t * c) - w * t * nm2 * sig(-b - t / nm1 - t * c * nm2 / nm1)
    };
    if d(0.0) >= 0.0 {
        return 0.0;
    }
    if d(1.0) <= 0.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..200 {
        let m = 0.5 * (lo + hi);
        if d(m) < 0.0 {
            lo = m;
        } else {
            hi = m;
        }
    }
    0.5 * (lo + hi)
}

#[test]
fn theory_batch_matches_an_independent_c_star() {
    for (n, bsz, t, b) in [
        (16, 4, 2.0, 1.0),
        (30, 5, 1.5, 1.5),
        (10, 2, 0.5, -1.0),
        (64, 16, 3.0, 0.5),
    ] {
        let rows = json(&[
            "theory",
            "--n",
            &n.to_string(),
            "--t",
            &t.to_string(),
            "--b",
            &b.to_string(),
            "--batch",
            &bsz.to_string(),
        ]);
        let c = rows[0]["c_star"].as_f64().unwrap();
        let expect = c_star_bisect(n, bsz, t, b);
        assert!((c - expect).abs() < 1e-9, "{n} {bsz}: {c} vs {expect}");
        assert_eq!(rows[0]["batch"].as_u64(), Some(bsz as u64));
        let w = rows[0]["w"].as_f64().unwrap();
        assert!((w - (bsz - 1) as f64 / (n - 1) as f64).abs() < 1e-15);
    }
}

#[test]
fn theory_batch_n_is_the_full_batch_exactly() {
    let args = ["theory", "--n", "4..20", "--t", "0.1..5:12", "--b", "1"];
    let full = json(&args);
    for (k, row) in full.iter().enumerate() {
        let n = row["n"].as_u64().unwrap().to_string();
        let t = row["t"].as_f64().unwrap().to_string();
        let one = json(&["theory", "--n", &n, "--t", &t, "--b", "1", "--batch", &n]);
        for key in [
            "c_star",
            "delta_star",
            "s_pos",
            "s_neg",
            "loss",
            "phase",
            "t_etf_boundary",
        ] {
            assert_eq!(one[0][key], row[key], "row {k} key {key}");
        }
        assert_eq!(one[0]["w"].as_f64(), Some(1.0));
    }
}

#[test]
fn theory_batch_errors() {
    ccem()
        .args(["theory", "--n", "4..20", "--t", "1", "--batch", "6"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("B = 6").and(predicate::str::contains("2 <= B <= N")));
    ccem()
        .args(["theory", "--n", "10", "--t", "1", "--batch", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("2 <= B <= N"));
    ccem()
        .args([
            "theory", "--loss", "infonce", "--n", "10", "--tau", "0.5", "--batch", "4",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("InfoNCE"));
}

#[test]
fn optimize_batch_reports_the_in_batch_spread() {
    let rows = json(&[
        "optimize",
        "--n",
        "8",
        "--t",
        "2",
        "--b",
        "2",
        "--batch",
        "4",
        "--batching",
        "fixed",
        "--steps",
        "3000",
    ]);
    let r = &rows[0];
    assert_eq!(r["batching"], "fixed");
    assert!(r["s_neg_std"].as_f64().unwrap() > 0.05);
    assert!(r["s_neg_std_in_batch"].as_f64().unwrap() < 0.01);
    ccem()
        .args(["optimize", "--n", "10", "--t", "1", "--batch", "4"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("B must divide N"));
    ccem()
        .args([
            "optimize",
            "--n",
            "10",
            "--loss",
            "infonce",
            "--tau",
            "0.5",
            "--batch",
            "5",
            "--batching",
            "expected",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("InfoNCE"));
    ccem()
        .args([
            "optimize",
            "--n",
            "10",
            "--t",
            "1",
            "--batch",
            "5",
            "--batching",
            "best",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown batching"));
}
