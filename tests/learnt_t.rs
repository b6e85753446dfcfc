//! Learnt `t` and relative bias (SPEC.md §7.1): the free optimiser heads for a maximum-margin
//! constellation, stops when the margin has converged, and `ccem optimize` reports the margin
//! keys and `log_loss_rate`; `--max-margin` refused with a pointer to `ccem max-margin`.

use assert_cmd::Command;
use ccem::geometry::{margin_bound, margins, QuantileLevel};
use ccem::loss::{BlockOptions, Loss};
use ccem::optim::{optimize, FreeConfig, Termination};

fn learnt(n: usize, d: usize, steps: usize) -> FreeConfig {
    let mut cfg = FreeConfig::new(n, d, Loss::sigmoid(10.0, 10.0).unwrap(), 7);
    cfg.learn_t = true;
    cfg.learn_b = true;
    cfg.relative_bias = true;
    cfg.steps = steps;
    cfg
}

#[test]
fn learnt_t_and_relative_bias_approach_the_etf_margin_when_d_is_at_least_n() {
    for n in [3usize, 4, 6] {
        let cfg = learnt(n, n, 60_000);
        let r = optimize(&cfg).unwrap();
        let m = margins(
            r.u.view(),
            r.v.view(),
            QuantileLevel::default(),
            BlockOptions::default(),
        )
        .unwrap();
        assert_ne!(r.termination, Termination::Diverged);
        assert!(
            (m.margin - margin_bound(n)).abs() < 2e-3,
            "N = {n}: margin {} vs {} (t = {}, {} steps)",
            m.margin,
            margin_bound(n),
            r.t,
            r.steps_run
        );
        // The learnt relative bias heads for r_b* = (N-2)/(2(N-1)), and t has grown.
        assert!(r.t > 15.0, "{}", r.t);
        assert!(m.margin <= margin_bound(n) + 1e-12);
    }
}

#[test]
fn learnt_t_stops_on_the_margin_not_at_the_step_limit() {
    let cfg = learnt(4, 4, 200_000);
    let r = optimize(&cfg).unwrap();
    assert_eq!(
        r.termination,
        Termination::Converged,
        "ran {} steps",
        r.steps_run
    );
    assert!(r.steps_run < 200_000);
    // A fixed t keeps the gradient-norm rule.
    let fixed = FreeConfig::new(4, 4, Loss::sigmoid(2.0, 2.0).unwrap(), 7);
    let rf = optimize(&fixed).unwrap();
    assert_eq!(rf.termination, Termination::Converged);
    assert!(rf.grad_norm_relative <= fixed.grad_tol);
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = Command::cargo_bin("ccem")
        .unwrap()
        .args(args)
        .args(["--format", "json"])
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
fn optimize_reports_margins_and_the_log_loss_rate() {
    let v = json(&[
        "optimize",
        "--n",
        "4",
        "--learn-t",
        "--learn-b",
        "--relative-bias",
        "--margin-quantile",
        "0.1",
    ]);
    for k in [
        "margin",
        "margin_bias",
        "margin_bound",
        "margin_quantile",
        "log_loss_rate",
    ] {
        assert!(v[k].is_f64(), "{k}: {v}");
    }
    assert_eq!(v["margin_quantile_p"], 0.1);
    let rate = v["log_loss_rate"].as_f64().unwrap();
    let m = v["margin"].as_f64().unwrap();
    // -log(L)/t is below the margin and approaches it.
    assert!(rate > 0.0 && rate < m + 1e-9, "{rate} {m}");
    let fixed = json(&["optimize", "--n", "4", "--t", "2"]);
    assert!(fixed["log_loss_rate"].is_null());
    assert!(fixed["margin"].is_f64());
}

#[test]
fn optimize_max_margin_points_to_the_max_margin_command() {
    // `optimize --max-margin` moved to `ccem max-margin` (tests/max_margin_cli.rs).
    Command::cargo_bin("ccem")
        .unwrap()
        .args(["optimize", "--n", "5", "--d", "2", "--max-margin"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("ccem max-margin --n 5 --d 2"));
    Command::cargo_bin("ccem")
        .unwrap()
        .args([
            "optimize",
            "--n",
            "5",
            "--margin-quantile",
            "0.9",
            "--t",
            "1",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("margin"));
}
