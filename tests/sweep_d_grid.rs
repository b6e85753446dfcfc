//! Sweeps over `(N, d)` pairs with `d < N` (SPEC.md §7): the cells, the margin columns of
//! `results.csv`, older files without them (read and merged, not resumed), and the CLI.

use assert_cmd::Command;
use ccem::sweep::store::read_rows;
use ccem::sweep::{run_cell, run_sweep, RunOptions, Silent, SweepSpec};
use ccem::{BiasMode, LossKind, Mode};

fn spec(ds: Option<Vec<usize>>) -> SweepSpec {
    SweepSpec {
        mode: Mode::Free,
        objective: LossKind::Sigmoid,
        ns: vec![4, 6],
        ts: vec![2.0],
        bias: BiasMode::Tied,
        seeds: 1,
        base_seed: 3,
        d_ratio: 1.0,
        ds,
        within_view: None,
        run: RunOptions {
            steps: Some(3000),
            ..RunOptions::default()
        },
        shard: None,
    }
}

#[test]
fn the_cells_are_every_n_d_pair_and_rows_carry_margins() {
    let s = spec(Some(vec![2, 3, 6])).check().unwrap();
    let cells = s.all_cells();
    let pairs: Vec<(usize, usize)> = cells.iter().map(|c| (c.n, c.d)).collect();
    assert_eq!(pairs, [(4, 2), (4, 3), (4, 6), (6, 2), (6, 3), (6, 6)]);
    assert_eq!(s.total_cells(), 6);
    let dir = tempfile::tempdir().unwrap();
    let out = run_sweep(&s, dir.path(), Some(2), &|c| run_cell(&s, c), &mut Silent).unwrap();
    assert!(out.complete);
    for r in &out.rows {
        let m = r.margin.expect("a margin");
        let mq = r.margin_quantile.expect("a quantile margin");
        assert!(m <= r.n as f64 / (2.0 * (r.n as f64 - 1.0)) + 1e-12);
        assert!(mq >= m - 1e-15);
        // The CCEM theory is there for d >= N, and for d = N - 1 at the simplex ETF (which fits
        // in N - 1 dimensions; SPEC §9.8), never below.
        let etf_fits = r.d + 1 == r.n && r.phase == Some(ccem::Phase::Etf);
        assert_eq!(r.phase.is_some(), r.d >= r.n || etf_fits, "{r:?}");
    }
    let (rows, _) = read_rows(&dir.path().join("results.csv")).unwrap();
    assert_eq!(rows, out.rows);
    // A spec without ds keeps the old config.json (no "ds" key).
    let old = spec(None).check().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    run_sweep(
        &old,
        dir2.path(),
        Some(1),
        &|c| run_cell(&old, c),
        &mut Silent,
    )
    .unwrap();
    let cfg = std::fs::read_to_string(dir2.path().join("config.json")).unwrap();
    assert!(!cfg.contains("\"ds\""), "{cfg}");
}

#[test]
fn empty_or_zero_dimension_grids_are_refused() {
    assert!(spec(Some(vec![])).check().is_err());
    assert!(spec(Some(vec![0, 3])).check().is_err());
    // Without a grid, free sigmoid cells with d < N are still refused.
    let mut s = spec(None);
    s.d_ratio = 0.5;
    assert!(s.check().is_err());
}

#[test]
fn an_older_results_csv_is_read_and_merged_but_not_resumed() {
    let s = spec(None).check().unwrap();
    let dir = tempfile::tempdir().unwrap();
    run_sweep(&s, dir.path(), Some(1), &|c| run_cell(&s, c), &mut Silent).unwrap();
    // Strip the columns added after theory_loss (margins, mini-batch statistics, the zoo's), as
    // an older ccem wrote the file.
    let path = dir.path().join("results.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let old: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f[..f.len() - 11].join(",") + "\n"
        })
        .collect();
    assert!(old.lines().next().unwrap().ends_with("theory_loss"));
    std::fs::write(&path, &old).unwrap();
    let (rows, _) = read_rows(&path).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.margin.is_none() && r.s_pos.is_some()));
    let err = run_sweep(&s, dir.path(), Some(1), &|c| run_cell(&s, c), &mut Silent).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("older ccem") && msg.contains("margin"),
        "{msg}"
    );
    // The file is left as it was.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), old);
    // merge and plot still read it.
    let merged = dir.path().join("merged");
    Command::cargo_bin("ccem")
        .unwrap()
        .args(["merge", "--out", merged.to_str().unwrap()])
        .arg(dir.path())
        .assert()
        .success();
    let (rows, _) = read_rows(&merged.join("results.csv")).unwrap();
    assert_eq!(rows.len(), 2);
}

#[test]
fn cli_sweep_takes_a_grid_of_d_and_refuses_it_with_d_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sw");
    Command::cargo_bin("ccem")
        .unwrap()
        .args([
            "sweep", "--mode", "free", "--n", "4,5", "--d", "2..3", "--t", "2", "--steps", "2000",
            "--quiet", "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let (rows, _) = read_rows(&out.join("results.csv")).unwrap();
    let pairs: Vec<(usize, usize)> = rows.iter().map(|r| (r.n, r.d)).collect();
    assert_eq!(pairs, [(4, 2), (4, 3), (5, 2), (5, 3)]);
    assert!(rows.iter().all(|r| r.margin.is_some()));
    Command::cargo_bin("ccem")
        .unwrap()
        .args([
            "sweep",
            "--mode",
            "free",
            "--n",
            "4",
            "--d",
            "2",
            "--d-ratio",
            "2",
            "--t",
            "2",
            "--out",
        ])
        .arg(dir.path().join("x"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("--d-ratio"));
}

#[test]
fn theory_with_d_below_n_says_the_ccem_does_not_apply() {
    let out = Command::cargo_bin("ccem")
        .unwrap()
        .args([
            "theory", "--n", "4,8", "--t", "2", "--d", "6", "--format", "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["ccem_applies"], true);
    assert_eq!(v[0]["phase"], "etf");
    assert_eq!(v[1]["ccem_applies"], false);
    assert!(v[1]["c_star"].is_null() && v[1]["phase"].is_null());
    assert!((v[1]["margin_bound"].as_f64().unwrap() - 8.0 / 14.0).abs() < 1e-15);
    assert_eq!(v[1]["max_margin"], "ccem max-margin --n 8 --d 6");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not apply"));
    // Without --d the output is unchanged.
    let plain = Command::cargo_bin("ccem")
        .unwrap()
        .args(["theory", "--n", "8", "--t", "2", "--format", "json"])
        .output()
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert!(p.get("ccem_applies").is_none() && p["c_star"].is_f64());
}
