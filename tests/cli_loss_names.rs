//! Every registered loss by name on the command line (issue 16): `--loss NAME` of `theory`,
//! `optimize` and `train` takes the registry's names, `--tau` and `--within-view` follow the
//! registry's rules, and `ccem theory --loss NAME` prints the CCEM optimum of SPEC §9.

use assert_cmd::Command;
use ccem::theory::zoo::{optimum, ZooLoss};
use ccem::LossKind;
use serde_json::Value;

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

/// Runs `ccem ARGS --format json` and parses its output.
fn json(args: &[&str]) -> Value {
    let out = ccem()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `ccem ARGS`, which must fail with exit code 1; returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = ccem().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?} should be refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The parameters of a loss at a test value, as command-line flags.
fn flags(kind: LossKind) -> Vec<&'static str> {
    let mut v = vec!["--loss", kind.as_str()];
    if kind.takes("t") {
        v.extend(["--t", "1"]);
    }
    if kind.takes("tau") {
        v.extend(["--tau", "0.5"]);
    }
    v
}

#[test]
fn help_lists_every_loss_with_its_meaning_and_unknown_names_are_refused() {
    for cmd in ["theory", "optimize", "train", "sweep", "inspect"] {
        let out = ccem().args([cmd, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        for k in LossKind::ALL {
            assert!(
                help.contains(&format!("{}:", k.as_str())) && help.contains(k.summary()),
                "{cmd} --help lacks {k}"
            );
        }
    }
    for args in [
        &["theory", "--loss", "hinge", "--n", "4"][..],
        &["inspect", "--u", "U.npy", "--v", "V.npy", "--loss", "hinge"],
    ] {
        let e = refused(args);
        assert!(e.contains("hinge"), "{e}");
        for k in LossKind::ALL {
            assert!(e.contains(k.as_str()), "{e}");
        }
    }
}

#[test]
fn theory_of_every_loss_is_the_zoo_optimum_with_its_keys() {
    let keys = [
        "n",
        "within_view",
        "c_star",
        "delta_star",
        "s_pos",
        "s_neg",
        "s_within",
        "loss",
        "phase",
        "alignment_slack",
        "excess_separation",
        "thm53_condition",
        "global_optimum",
        "off_ccem_loss",
    ];
    for &kind in LossKind::ALL {
        let mut args = vec!["theory", "--n", "12"];
        args.extend(flags(kind));
        if kind.takes("within_view") {
            args.extend(["--within-view", "0.25"]);
        }
        let r = json(&args);
        for k in keys {
            assert!(r.get(k).is_some(), "{kind}: no key {k} in {r}");
        }
        for p in ["t", "b", "tau"] {
            assert_eq!(r.get(p).is_some(), kind.takes(p), "{kind}: key {p} in {r}");
        }
        let zoo = match kind {
            LossKind::Sigmoid => ZooLoss::sigmoid(1.0, 1.0, 0.25),
            LossKind::InfoNce => ZooLoss::infonce(0.5, 0.25),
            other => ZooLoss::new(other.as_str(), Some(0.5), None, None, None)
                .or_else(|_| ZooLoss::new(other.as_str(), None, None, None, None)),
        }
        .unwrap();
        let o = optimum(&zoo, 12, None).unwrap();
        assert_eq!(r["loss"].as_f64().unwrap(), o.loss, "{kind}");
        assert_eq!(r["s_pos"].as_f64().unwrap(), o.s_pos, "{kind}");
        assert_eq!(r["phase"], o.phase.as_str(), "{kind}");
    }
}

#[test]
fn sigmoid_and_infonce_keep_their_records_without_within_view() {
    let plain = json(&["theory", "--n", "10", "--t", "1"]);
    assert!(plain.get("t_etf_boundary").is_some() && plain.get("s_within").is_none());
    assert_eq!(
        plain,
        json(&["theory", "--n", "10", "--t", "1", "--within-view", "0"])
    );
    let w = json(&["theory", "--n", "16", "--t", "1", "--within-view", "0.5"]);
    assert_eq!(
        (w["phase"].as_str(), w["within_view"].as_f64()),
        (Some("etf"), Some(0.5))
    );
    let i = json(&["theory", "--loss", "infonce", "--n", "10", "--tau", "0.5"]);
    assert!(i.get("loss_clip").is_some() && i.get("s_within").is_none());
}

#[test]
fn grids_batches_and_dimensions_of_the_zoo() {
    let r = json(&["theory", "--loss", "dcl", "--n", "4,8", "--tau", "0.1..1:3"]);
    assert_eq!(r.as_array().unwrap().len(), 6);
    let s = json(&["theory", "--loss", "spectral", "--n", "16", "--batch", "4"]);
    assert_eq!((s["batch"].as_u64(), s["w"].as_f64()), (Some(4), Some(1.0)));
    assert_eq!(s["off_ccem_loss"].as_f64(), Some(-2.0));
    assert!(s["global_optimum"].is_null());
    let e = refused(&[
        "theory", "--loss", "dhel", "--n", "8", "--tau", "1", "--batch", "4",
    ]);
    assert!(e.contains("dhel") && e.contains("closed form"), "{e}");
    // InfoNCE-based: the simplex ETF needs d >= N - 1.
    let d = json(&[
        "theory", "--loss", "simclr", "--n", "8", "--tau", "1", "--d", "7",
    ]);
    assert_eq!(d["ccem_applies"], true);
}

#[test]
fn bad_tau_within_view_and_foreign_options_name_the_loss_and_the_parameter() {
    for cmd in ["theory", "optimize"] {
        let e = refused(&[cmd, "--n", "4", "--loss", "simclr", "--tau", "0"]);
        assert!(e.contains("simclr") && e.contains("tau"), "{e}");
        let e = refused(&[
            cmd,
            "--n",
            "4",
            "--loss",
            "sigmoid",
            "--t",
            "1",
            "--within-view",
            "-1",
        ]);
        assert!(e.contains("sigmoid") && e.contains("within_view"), "{e}");
        let e = refused(&[
            cmd,
            "--n",
            "4",
            "--loss",
            "dcl",
            "--tau",
            "1",
            "--within-view",
            "1",
        ]);
        assert!(e.contains("dcl") && e.contains("--within-view"), "{e}");
        let e = refused(&[cmd, "--n", "4", "--loss", "spectral", "--tau", "1"]);
        assert!(e.contains("spectral") && e.contains("--tau"), "{e}");
        let e = refused(&[cmd, "--n", "4", "--loss", "dhel"]);
        assert!(e.contains("dhel") && e.contains("--tau"), "{e}");
    }
    let e = refused(&[
        "train",
        "--n",
        "4",
        "--loss",
        "infonce",
        "--tau",
        "1",
        "--within-view",
        "-2",
    ]);
    assert!(e.contains("infonce") && e.contains("within_view"), "{e}");
}

#[test]
fn optimize_compares_a_zoo_loss_with_its_theory() {
    let r = json(&[
        "optimize", "--n", "4", "--loss", "simclr", "--tau", "0.5", "--steps", "3000",
    ]);
    assert_eq!(r["theory_phase"], "etf", "{r}");
    assert_eq!(r["meets_theory"], true, "{r}");
}

#[test]
fn train_counts_a_joint_loss_buffers_before_the_work() {
    // N = 10000 pairs in d = 2: the network and S fit in 8 GiB (about 3 GiB), but SimCLR's
    // 2N x 2N similarities of the views add about 15 GiB; refused before anything is allocated.
    let msg = refused(&[
        "train",
        "--loss",
        "simclr",
        "--n",
        "10000",
        "--d",
        "2",
        "--tau",
        "0.5",
        "--max-memory",
        "8G",
    ]);
    assert!(msg.contains("simclr") && msg.contains("memory"), "{msg}");
}
