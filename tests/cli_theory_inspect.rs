//! End-to-end tests of `ccem theory` and `ccem inspect`: outputs, `.npy` files as numpy writes
//! them, and every bad input of the foundation issue giving a clear error and a non-zero exit.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

fn ccem() -> Command {
    Command::cargo_bin("ccem").unwrap()
}

/// Writes an `.npy` file byte for byte as `numpy.save` does (format 1.0: magic, version, header
/// length, a dict header padded with spaces to a multiple of 64 bytes and ending in '\n').
fn write_npy_raw(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let shape_s = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()
}

/// The simplex ETF for N = 3 in R^3 (rows), scaled by 2 so normalisation matters.
fn etf3() -> Vec<f64> {
    let k = (3.0f64 / 2.0).sqrt();
    let mut v = Vec::new();
    for i in 0..3 {
        for j in 0..3 {
            v.push(2.0 * k * (if i == j { 1.0 } else { 0.0 } - 1.0 / 3.0));
        }
    }
    v
}

fn json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).expect("valid JSON")
}

#[test]
fn theory_json_has_the_documented_keys_and_the_spec_values() {
    let v = json(ccem().args(["theory", "--n", "10", "--t", "1", "--format", "json"]));
    for k in [
        "n",
        "t",
        "b",
        "c_star",
        "delta_star",
        "s_pos",
        "s_neg",
        "loss",
        "phase",
    ] {
        assert!(v.get(k).is_some(), "missing key {k}");
    }
    assert!((v["c_star"].as_f64().unwrap() - 0.4630146707).abs() < 1e-9);
    assert_eq!(v["phase"], "intermediate");
    let anti = json(ccem().args(["theory", "--n", "10", "--t", "0.5", "--format", "json"]));
    assert!(anti["delta_star"].is_null(), "infinite delta* is null");
    assert_eq!(anti["phase"], "antipodal");
    let deg = json(ccem().args(["theory", "--n", "10", "--t", "0", "--format", "json"]));
    assert_eq!(deg["phase"], "degenerate");
}

#[test]
fn theory_grids_give_one_row_per_cell() {
    let v = json(ccem().args([
        "theory",
        "--n",
        "4..50",
        "--t",
        "0.1..5:10",
        "--format",
        "json",
    ]));
    assert_eq!(v.as_array().unwrap().len(), 47 * 10);
    let out = ccem()
        .args([
            "theory", "--n", "4..6", "--t", "0.1..5:3", "--format", "csv",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("n,t,b,c_star,delta_star,s_pos,s_neg,loss,phase"));
    assert_eq!(lines.count(), 9);
    ccem()
        .args(["theory", "--n", "8", "--t", "3", "--b", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("0.2307285302"));
    let inf = json(ccem().args([
        "theory", "--loss", "infonce", "--n", "10", "--tau", "0.07", "--format", "json",
    ]));
    assert_eq!(inf["phase"], "etf");
}

#[test]
fn theory_bad_input_is_a_clear_error() {
    let cases: &[(&[&str], &str)] = &[
        (&["--n", "1", "--t", "1"], "N = 1"),
        (&["--n", "5..4", "--t", "1"], "5..4"),
        (&["--n", "10", "--t", "0.1..5:0"], "0.1..5:0"),
        (&["--n", "10", "--t", "-1"], "t = -1"),
        (&["--n", "10", "--t", "nan"], "not finite"),
        (&["--n", "10", "--t", "inf"], "not finite"),
        (&["--n", "10", "--t", "1", "--b", "x"], "--b"),
        (&["--loss", "infonce", "--n", "10", "--tau", "0"], "tau"),
        (&["--loss", "infonce", "--n", "10", "--tau", "-0.5"], "tau"),
        (&["--loss", "infonce", "--n", "10"], "--tau"),
    ];
    for (args, msg) in cases {
        ccem()
            .arg("theory")
            .args(*args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(*msg))
            .stderr(predicate::str::contains("panicked").not());
    }
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_path_buf();
    (d, p)
}

#[test]
fn inspect_reads_numpy_f64_and_f32_files() {
    let (_d, dir) = tmp();
    for (name, bytes, descr) in [
        ("f64", f64_bytes(&etf3()), "<f8"),
        ("f32", f32_bytes(&etf3()), "<f4"),
    ] {
        let u = dir.join(format!("u_{name}.npy"));
        let v = dir.join(format!("v_{name}.npy"));
        write_npy_raw(&u, descr, &[3, 3], &bytes);
        write_npy_raw(&v, descr, &[3, 3], &bytes);
        let j = json(ccem().args([
            "inspect",
            "--u",
            u.to_str().unwrap(),
            "--v",
            v.to_str().unwrap(),
            "--t",
            "2",
            "--format",
            "json",
        ]));
        for k in [
            "n",
            "d",
            "s_pos_mean",
            "s_neg_mean",
            "sigmoid_loss",
            "infonce_loss",
            "c_fit",
            "gram_distance",
        ] {
            assert!(j.get(k).is_some(), "missing key {k}");
        }
        let tol = if name == "f32" { 1e-6 } else { 1e-12 };
        assert!((j["s_pos_mean"].as_f64().unwrap() - 1.0).abs() < tol);
        assert!((j["s_neg_mean"].as_f64().unwrap() + 0.5).abs() < tol);
        assert!(j["c_fit"].as_f64().unwrap().abs() < tol);
        assert!(j["gram_distance"].as_f64().unwrap() < 1e-6);
        assert_eq!(j["normalized"], true);
    }
    // Table output says that the rows were normalised; --no-normalize says otherwise.
    let u = dir.join("u_f64.npy");
    ccem()
        .args([
            "inspect",
            "--u",
            u.to_str().unwrap(),
            "--v",
            u.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("normalised"));
    ccem()
        .args([
            "inspect",
            "--u",
            u.to_str().unwrap(),
            "--v",
            u.to_str().unwrap(),
            "--no-normalize",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("--no-normalize"));
    // CSV input.
    let c = dir.join("u.csv");
    std::fs::write(&c, "1,0\n0,1\n").unwrap();
    let j = json(ccem().args([
        "inspect",
        "--u",
        c.to_str().unwrap(),
        "--v",
        c.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(j["n"], 2);
}

/// A float32 file is measured in float32 unless `--precision` says otherwise; the two agree to
/// float32's accuracy, and `--quantile histogram` stays within its stated error.
#[test]
fn inspect_precision_and_quantile_options() {
    let (_d, dir) = tmp();
    let n = 24;
    let d = 5;
    let x: Vec<f64> = (0..n * d)
        .map(|k| ((k * 37 % 101) as f64 / 101.0 - 0.5) + if k % (d + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let u = dir.join("u.npy");
    write_npy_raw(&u, "<f4", &[n, d], &f32_bytes(&x));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "inspect",
            "--u",
            u.to_str().unwrap(),
            "--v",
            u.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--t", "5", "--b", "2", "--format", "json"]);
        json(ccem().args(&args))
    };
    let own = run(&[]);
    assert_eq!(own["precision"], "f32");
    let f64_ = run(&["--precision", "f64"]);
    assert_eq!(f64_["precision"], "f64");
    for k in ["sigmoid_loss", "infonce_loss", "s_neg_mean", "within_u_std"] {
        let (a, b) = (own[k].as_f64().unwrap(), f64_[k].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{k}: {a} vs {b}");
    }
    assert_eq!(own["quantile_method"], "exact");
    assert_eq!(own["passes"], 2);
    let h = run(&["--quantile", "histogram"]);
    assert_eq!(h["quantile_method"], "histogram");
    assert_eq!(h["passes"], 1);
    let err = h["margin_quantile_error"].as_f64().unwrap();
    assert!(err > 0.0);
    let gap =
        (h["margin_quantile"].as_f64().unwrap() - own["margin_quantile"].as_f64().unwrap()).abs();
    assert!(gap <= err, "{gap} > {err}");
    // Memory is estimated before the work starts, and a run that would not fit is refused.
    ccem()
        .args([
            "inspect",
            "--u",
            u.to_str().unwrap(),
            "--v",
            u.to_str().unwrap(),
            "--max-memory",
            "100K",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("inspecting 24 pairs"));
    ccem()
        .args([
            "inspect",
            "--u",
            u.to_str().unwrap(),
            "--v",
            u.to_str().unwrap(),
            "--precision",
            "f16",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("f32, f64"));
}

#[test]
fn inspect_bad_input_is_a_clear_error() {
    let (_d, dir) = tmp();
    let good = dir.join("good.npy");
    write_npy_raw(&good, "<f8", &[3, 3], &f64_bytes(&etf3()));
    let int = dir.join("int.npy");
    write_npy_raw(&int, "<i8", &[3, 3], &[0u8; 72]);
    let one_d = dir.join("oned.npy");
    write_npy_raw(&one_d, "<f8", &[9], &f64_bytes(&etf3()));
    let trunc = dir.join("trunc.npy");
    write_npy_raw(&trunc, "<f8", &[3, 3], &f64_bytes(&etf3())[..40]);
    let other = dir.join("other.npy");
    write_npy_raw(&other, "<f8", &[3, 2], &f64_bytes(&[1.0; 6]));
    let zero = dir.join("zero.npy");
    let mut z = etf3();
    z[3..6].fill(0.0);
    write_npy_raw(&zero, "<f8", &[3, 3], &f64_bytes(&z));
    let nan = dir.join("nan.npy");
    let mut n = etf3();
    n[4] = f64::NAN;
    write_npy_raw(&nan, "<f8", &[3, 3], &f64_bytes(&n));
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"not a numpy file").unwrap();
    let single = dir.join("single.npy");
    write_npy_raw(&single, "<f8", &[1, 3], &f64_bytes(&[1.0, 0.0, 0.0]));
    let g = good.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--u", int.to_str().unwrap(), "--v", g], "<i8"),
        (vec!["--u", one_d.to_str().unwrap(), "--v", g], "ndim 1"),
        (
            vec!["--u", trunc.to_str().unwrap(), "--v", g],
            "holds only 40 bytes",
        ),
        (
            vec!["--u", garbage.to_str().unwrap(), "--v", g],
            "garbage.npy",
        ),
        (
            vec!["--u", g, "--v", other.to_str().unwrap()],
            "shape mismatch",
        ),
        (vec!["--u", zero.to_str().unwrap(), "--v", g], "row 1 of U"),
        (vec!["--u", g, "--v", nan.to_str().unwrap()], "non-finite"),
        (vec!["--u", "/nonexistent/u.npy", "--v", g], "cannot read"),
        (
            vec![
                "--u",
                single.to_str().unwrap(),
                "--v",
                single.to_str().unwrap(),
            ],
            "N = 1",
        ),
        (vec!["--u", g, "--v", g, "--tau", "0"], "tau"),
        (vec!["--u", g, "--v", g, "--t", "-2"], "t = -2"),
    ];
    for (args, msg) in cases {
        ccem()
            .arg("inspect")
            .args(&args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(msg))
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in ["theory", "inspect"] {
        ccem()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"));
    }
}
