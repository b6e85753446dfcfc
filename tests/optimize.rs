//! The free-embedding optimiser against the theory (SPEC.md §3) on a small sub-grid of the
//! paper's (N, t), with `b = t` and `b != t`; InfoNCE against the simplex ETF; reproducibility;
//! and `ccem optimize` end to end (JSON keys, saved `.npy` files, every bad input).

use assert_cmd::Command;
use ccem::geometry::measure;
use ccem::loss::{BlockOptions, Loss};
use ccem::optim::{optimize, FreeConfig, FreeResult};
use ccem::Report;
use predicates::prelude::*;
use rayon::prelude::*;

const SEQ: BlockOptions = BlockOptions {
    block: 256,
    parallel: false,
};

fn compare(cfg: &FreeConfig, r: &FreeResult) -> Report {
    let rep = Report::new(r.u.view(), r.v.view(), &r.final_loss(cfg)).unwrap();
    assert!(rep.prediction.is_some(), "d >= N");
    rep
}

/// Optimises every `(N, loss)` with the defaults and returns the cells that miss the theory.
fn misses(cells: Vec<(usize, usize, Loss, bool)>) -> Vec<String> {
    cells
        .par_iter()
        .filter_map(|&(n, d, loss, relative_bias)| {
            let mut cfg = FreeConfig::new(n, d, loss, 1000 + n as u64);
            cfg.relative_bias = relative_bias;
            let r = optimize(&cfg).unwrap();
            let cmp = compare(&cfg, &r);
            (cmp.meets_theory() != Some(true) || r.termination.is_diverged())
                .then(|| format!("N={n} d={d} {loss:?}: {cmp:?}, {} steps", r.steps_run))
        })
        .collect()
}

#[test]
fn sigmoid_optimum_meets_the_theory_with_b_equal_to_t() {
    let cells = [4, 7, 10, 16]
        .into_iter()
        .flat_map(|n| {
            [0.5, 1.5, 3.0, 5.0]
                .into_iter()
                .map(move |t| (n, n, Loss::sigmoid(t, t).unwrap(), false))
        })
        .collect();
    let bad = misses(cells);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn sigmoid_optimum_meets_the_theory_with_b_not_t() {
    let mut cells = Vec::new();
    for n in [4, 7, 10, 16] {
        for t in [0.5, 1.5, 3.0, 5.0] {
            cells.push((n, n, Loss::sigmoid(t, 1.0).unwrap(), false));
            cells.push((n, n, Loss::sigmoid(t, -1.0).unwrap(), false));
            cells.push((n, n, Loss::sigmoid_relative(t, 0.5).unwrap(), true));
        }
    }
    // d > N: the same optimum, padded.
    cells.push((7, 10, Loss::sigmoid(1.0, 1.0).unwrap(), false));
    cells.push((10, 13, Loss::sigmoid(3.0, 1.0).unwrap(), false));
    let bad = misses(cells);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn infonce_lands_on_the_simplex_etf() {
    let mut cells = Vec::new();
    for n in [4, 10, 16] {
        for tau in [0.3, 0.5, 1.0] {
            cells.push((n, n, Loss::infonce(tau).unwrap(), false));
        }
    }
    // Small tau: the loss ends near 1e-5 and is flat there (the optimiser steps on log L).
    cells.push((4, 4, Loss::infonce(0.1).unwrap(), false));
    cells.push((6, 6, Loss::infonce(0.1).unwrap(), false));
    cells.push((8, 7, Loss::infonce(0.5).unwrap(), false)); // d = N - 1 is enough for the ETF
    let bad = misses(cells);
    assert!(bad.is_empty(), "{bad:#?}");
    let cfg = FreeConfig::new(10, 10, Loss::infonce(0.5).unwrap(), 3);
    let r = optimize(&cfg).unwrap();
    let m = measure(r.u.view(), r.v.view(), SEQ);
    assert!(m.c_fit < 1e-6 && m.gram_distance < 1e-5, "{m:?}");
    assert!((m.pos.mean - 1.0).abs() < 1e-6 && (m.neg.mean + 1.0 / 9.0).abs() < 1e-6);
}

#[test]
fn same_seed_gives_identical_results_on_any_thread_count() {
    let cfgs: Vec<FreeConfig> = (0..4)
        .map(|k| {
            let mut c = FreeConfig::new(
                6 + k,
                6 + k,
                Loss::sigmoid(1.0 + k as f64, 1.0).unwrap(),
                42,
            );
            c.restarts = 2;
            c
        })
        .collect();
    let sequential: Vec<FreeResult> = cfgs.iter().map(|c| optimize(c).unwrap()).collect();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let parallel: Vec<FreeResult> =
            pool.install(|| cfgs.par_iter().map(|c| optimize(c).unwrap()).collect());
        assert_eq!(parallel, sequential, "{threads} threads");
    }
    let other = optimize(&FreeConfig {
        seed: 43,
        ..cfgs[0]
    })
    .unwrap();
    assert_ne!(other.u, sequential[0].u);
}

#[test]
fn learnt_bias_ends_on_the_theory_of_its_final_value() {
    // With `b` (or `r_b`) learnt and `t` fixed, the run converges jointly, and the embedding is
    // the optimum for the final `b`.
    for relative_bias in [false, true] {
        let mut cfg = FreeConfig::new(6, 6, Loss::sigmoid(2.0, 1.0).unwrap(), 5);
        cfg.learn_b = true;
        cfg.relative_bias = relative_bias;
        let r = optimize(&cfg).unwrap();
        assert!(!r.termination.is_diverged() && r.b.is_finite() && r.t == 2.0);
        let cmp = compare(&cfg, &r);
        assert!(
            cmp.s_pos_error().unwrap() < 1e-3,
            "{relative_bias}: {cmp:?} {r:?}"
        );
    }
}

// ---------------------------------------------------------------- command line

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = ccem()
        .arg("optimize")
        .args(args)
        .args(["--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("valid JSON")
}

#[test]
fn cli_json_has_the_measurement_and_the_theory() {
    let v = json(&["--n", "10", "--t", "1"]);
    for key in [
        "loss",
        "s_pos_mean",
        "s_neg_mean",
        "c_fit",
        "gram_distance",
        "theory_c_star",
        "theory_s_pos",
        "theory_s_neg",
        "theory_loss",
        "theory_phase",
        "t",
        "b",
        "gram_distance_to_theory",
        "meets_theory",
        "termination",
        "steps_run",
        "restarts",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}: {v}");
    }
    // SPEC.md §3 table, N = 10, t = b = 1.
    assert!((v["theory_c_star"].as_f64().unwrap() - 0.4630146707).abs() < 1e-9);
    assert!((v["s_pos_mean"].as_f64().unwrap() - 0.0739706585).abs() < 1e-3);
    assert!((v["loss"].as_f64().unwrap() - 3.0355556342).abs() < 1e-6);
    assert_eq!(v["meets_theory"], true);
    assert_eq!(v["termination"], "converged");
    // The theory's loss at N = 10, t = b = 1 is the loss the optimiser reaches.
    assert!((v["theory_loss"].as_f64().unwrap() - 3.0355556342).abs() < 1e-6);
    assert_eq!((v["t"].as_f64(), v["b"].as_f64()), (Some(1.0), Some(1.0)));
}

#[test]
fn cli_infonce_b_not_t_and_learnt_parameters() {
    let v = json(&["--n", "8", "--loss", "infonce", "--tau", "0.5"]);
    assert_eq!(v["meets_theory"], true);
    assert_eq!(v["theory_c_star"].as_f64(), Some(0.0));
    assert!(v["t"].is_null() && v["b"].is_null());
    // InfoNCE is printed in both conventions: ccem's sum and open_clip's mean.
    let (l, clip) = (
        v["loss"].as_f64().unwrap(),
        v["loss_clip"].as_f64().unwrap(),
    );
    assert_eq!(clip, l / 2.0);
    let th = v["theory_loss"].as_f64().unwrap();
    assert_eq!(v["theory_loss_clip"].as_f64(), Some(th / 2.0));
    let v = json(&["--n", "8", "--t", "3", "--relative-bias", "0.5"]);
    assert_eq!(v["b"].as_f64(), Some(1.5));
    assert_eq!(v["meets_theory"], true);
    let v = json(&[
        "--n",
        "6",
        "--learn-t",
        "--learn-b",
        "--steps",
        "200",
        "--restarts",
        "2",
    ]);
    assert_ne!(v["t"].as_f64(), Some(10.0));
    assert_ne!(v["b"].as_f64(), Some(10.0));
    assert_eq!(v["restarts"], 2);
    assert_eq!(v["restart_losses"].as_array().unwrap().len(), 2);
    // Below d = N the theory makes no prediction.
    let v = json(&["--n", "6", "--d", "3", "--t", "1"]);
    assert!(v["meets_theory"].is_null() && v["theory_c_star"].is_null());
    assert!(v["s_pos_mean"].is_number());
}

#[test]
fn cli_saves_the_embedding_as_npy() {
    let dir = tempfile::tempdir().unwrap();
    let (pu, pv) = (dir.path().join("U.npy"), dir.path().join("V.npy"));
    let v = json(&[
        "--n",
        "5",
        "--d",
        "7",
        "--t",
        "2",
        "--b",
        "1",
        "--save-u",
        pu.to_str().unwrap(),
        "--save-v",
        pv.to_str().unwrap(),
    ]);
    let u = ccem::io::read_npy(&pu, Default::default()).unwrap();
    let w = ccem::io::read_npy(&pv, Default::default()).unwrap();
    assert_eq!((u.dim(), w.dim()), ((5, 7), (5, 7)));
    let m = measure(u.view(), w.view(), SEQ);
    assert!((m.pos.mean - v["s_pos_mean"].as_f64().unwrap()).abs() < 1e-12);
}

#[test]
fn cli_rejects_bad_input_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--n", "10", "--t", "1", "--steps", "0"], "steps = 0"),
        (&["--n", "10", "--t", "1", "--lr", "0"], "lr = 0"),
        (&["--n", "10", "--t", "1", "--lr", "-0.1"], "lr = -0.1"),
        (&["--n", "10", "--t", "1", "--lr", "nan"], "lr = NaN"),
        (&["--n", "10", "--t", "1", "--lr", "inf"], "lr = inf"),
        (&["--n", "1", "--t", "1"], "N = 1"),
        (&["--n", "10", "--d", "0", "--t", "1"], "--d 0"),
        (
            &["--n", "10", "--t", "1", "--restarts", "0"],
            "restarts = 0",
        ),
        (&["--n", "10"], "--t"),
        (&["--n", "10", "--loss", "infonce"], "--tau"),
        (&["--n", "10", "--t", "1", "--learn-t"], "--init-t"),
        (&["--n", "10", "--t", "-1"], "t = -1"),
        (
            &["--n", "10", "--t", "1", "--grad-tol", "-1"],
            "grad_tol = -1",
        ),
        (&["--n", "10", "--loss", "infonce", "--tau", "0"], "tau"),
    ];
    for (args, needle) in cases {
        ccem()
            .arg("optimize")
            .args(*args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(*needle))
            .stderr(predicate::str::contains("panicked").not());
    }
}
