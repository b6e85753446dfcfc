//! End-to-end tests of the mini-batch options (SPEC §8): `theory --batch`, `optimize --batch`.

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
        .stderr(predicate::str::contains("infonce loss"));
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

#[test]
fn batched_runs_compare_with_the_expected_loss_optimum() {
    // `expected` at N = 16, B = 4, t = 2, b = 1: the theory keys are those of the weighted CCEM
    // (s+ near 0.89), not of the full batch (s+ near -0.05), and the run meets them.
    let rows = json(&[
        "optimize",
        "--n",
        "16",
        "--t",
        "2",
        "--b",
        "1",
        "--batch",
        "4",
        "--batching",
        "expected",
    ]);
    let r = &rows[0];
    let c = c_star_bisect(16, 4, 2.0, 1.0);
    assert!(
        (r["theory_c_star"].as_f64().unwrap() - c).abs() < 1e-9,
        "{r}"
    );
    assert!((r["theory_s_pos"].as_f64().unwrap() - 0.89).abs() < 0.01);
    assert_eq!(r["meets_theory"], true, "{r}");
    // Full-batch runs have no in-batch keys; InfoNCE with B < N has no prediction.
    let full = json(&["optimize", "--n", "8", "--t", "1"]);
    assert!(full[0].get("s_neg_std_in_batch").is_none());
    let info = json(&[
        "optimize", "--n", "8", "--loss", "infonce", "--tau", "0.5", "--batch", "4", "--steps",
        "200",
    ]);
    assert!(info[0]["theory_c_star"].is_null());
    assert!(info[0]["s_neg_std_in_batch"].as_f64().is_some());
}

#[test]
fn sweep_results_end_with_the_batch_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    ccem()
        .args([
            "sweep",
            "--mode",
            "free",
            "--n",
            "8",
            "--t",
            "1,2",
            "--batch",
            "4",
            "--batching",
            "shuffled",
            "--steps",
            "300",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let text = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let hdr: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    // The batch columns, then the zoo's (SPEC §9.8), appended last.
    let zoo = [
        "within_view",
        "s_within",
        "s_within_theory",
        "beats_ccem",
        "ccem_global",
    ];
    assert_eq!(hdr[hdr.len() - zoo.len()..], zoo);
    let hdr = &hdr[..hdr.len() - zoo.len()];
    assert_eq!(
        hdr[hdr.len() - 4..],
        ["s_neg_std", "s_neg_std_in_batch", "batch", "batching"]
    );
    assert_eq!(hdr[10..12], ["s_pos", "s_neg"]);
    let c_star = hdr.iter().position(|h| h == "c_star").unwrap();
    let t_col = hdr.iter().position(|h| h == "t").unwrap();
    let mut rows = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let n = hdr.len();
        assert!(rec[n - 4].parse::<f64>().unwrap() >= 0.0);
        assert!(rec[n - 3].parse::<f64>().unwrap() >= 0.0);
        assert_eq!((&rec[n - 2], &rec[n - 1]), ("4", "shuffled"));
        // The theory column is the expected-loss optimum.
        let t: f64 = rec[t_col].parse().unwrap();
        let c = c_star_bisect(8, 4, t, t);
        assert!((rec[c_star].parse::<f64>().unwrap() - c).abs() < 1e-9);
        rows += 1;
    }
    assert_eq!(rows, 2);
}
