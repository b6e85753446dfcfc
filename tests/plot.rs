//! The plot module: every figure renders to PNG and SVG from a small synthetic results.csv, and
//! bad inputs give clear errors without leaving anything at the output path.

use ccem::limits::MemoryLimit;
use ccem::plot::{
    self, CurveQuantity, CurvesOptions, DiffOptions, LossCurveOptions, PanelInput, PhaseOptions,
    Quantity, TheoryMapOptions,
};
use ccem::theory::{BiasMode, Optimum};
use ccem::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const HEADER: &str =
    "cell,mode,objective,n,d,t,b,seed,status,s_pos,s_neg,loss,c_star,s_pos_theory,extra";

/// Sigmoid results over N = 4..12, t = 5 values, 2 seeds, b = t; s_pos = max(0, s+*) plus a
/// small deterministic wiggle. One cell is diverged (empty), one NaN.
fn sigmoid_csv(with_theory: bool) -> String {
    let mut s = String::new();
    if with_theory {
        s.push_str(HEADER);
    } else {
        s.push_str("n,d,t,b,seed,s_pos,s_neg,objective,mode");
    }
    s.push('\n');
    let mut cell = 0;
    for n in 4..=12usize {
        for t in [0.1, 1.325, 2.55, 3.775, 5.0] {
            for seed in 0..2u64 {
                let o = Optimum::sigmoid(n, t, t).unwrap();
                let wiggle = 0.01 * ((n * 7 + seed as usize * 3) % 5) as f64;
                let sp = if n == 6 && seed == 0 && t == 2.55 {
                    String::new()
                } else if n == 7 && t == 0.1 {
                    "NaN".to_string()
                } else {
                    format!("{}", (o.s_pos.max(0.0) + wiggle).min(1.0))
                };
                if with_theory {
                    writeln!(
                        s,
                        "{cell},encoder,sigmoid,{n},{n},{t},{t},{seed},ok,{sp},{},0.5,{},{},zzz",
                        o.s_neg, o.c_star, o.s_pos
                    )
                    .unwrap();
                } else {
                    writeln!(s, "{n},{n},{t},{t},{seed},{sp},{},sigmoid,free", o.s_neg).unwrap();
                }
                cell += 1;
            }
        }
    }
    s
}

/// InfoNCE results on the same grid (b empty).
fn infonce_csv() -> String {
    let mut s = String::from(HEADER);
    s.push('\n');
    for n in 4..=12usize {
        for t in [0.1, 1.325, 2.55, 3.775, 5.0] {
            for seed in 0..2u64 {
                let sp = 1.0 - 0.05 * f64::exp(-t) * (seed as f64 + 1.0);
                writeln!(
                    s,
                    "0,encoder,infonce,{n},{n},{t},,{seed},ok,{sp},-0.1,0.3,0,1,x"
                )
                .unwrap();
            }
        }
    }
    s
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn sigmoid_input(dir: &Path) -> PanelInput {
    PanelInput::read(
        &write(dir, "results.csv", &sigmoid_csv(true)),
        MemoryLimit::Available,
    )
    .unwrap()
}

/// Checks a PNG file: magic bytes and a plausible size.
fn assert_png(p: &Path) {
    let bytes = std::fs::read(p).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        p.display()
    );
    assert!(
        bytes.len() > 5_000,
        "{} is only {} bytes",
        p.display(),
        bytes.len()
    );
}

/// Parses an SVG file and returns the contents of its `<text>` elements.
fn svg_texts(p: &Path) -> Vec<String> {
    let src = std::fs::read_to_string(p).unwrap();
    let doc = roxmltree::Document::parse(&src)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", p.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

fn assert_has(texts: &[String], want: &str) {
    assert!(
        texts.iter().any(|t| t == want),
        "no <text> '{want}' among {texts:?}"
    );
}

/// Nothing but `keep` in `dir` (no figure, no temporary file).
fn assert_only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn phase_diagram_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let input = sigmoid_input(dir.path());
    let png = dir.path().join("phase.png");
    plot::phase_diagram(std::slice::from_ref(&input), &png, &PhaseOptions::default()).unwrap();
    assert_png(&png);
    let svg = dir.path().join("phase.svg");
    plot::phase_diagram(&[input], &svg, &PhaseOptions::default()).unwrap();
    let texts = svg_texts(&svg);
    assert_has(&texts, "batch size N");
    assert_has(&texts, "t (= b)");
    assert_has(&texts, "s (mean positive similarity)");
    assert_has(&texts, "ETF threshold t = ((N−1)/N) log(N−3)");
    assert_has(&texts, "1.0");
    // Atomic writes leave no temporary files.
    assert_only(dir.path(), &["results.csv", "phase.png", "phase.svg"]);
}

#[test]
fn phase_diagram_two_panels() {
    let dir = tempfile::tempdir().unwrap();
    let sig = sigmoid_input(dir.path());
    let info = PanelInput {
        table: plot::read_results(
            &write(dir.path(), "infonce.csv", &infonce_csv()),
            MemoryLimit::Available,
        )
        .unwrap(),
        title: Some("InfoNCE panel".into()),
    };
    assert!(info.table.is_infonce());
    let svg = dir.path().join("two.svg");
    let opts = PhaseOptions {
        vmin: -1.0,
        vmax: 1.0,
        curves: true,
    };
    plot::phase_diagram(&[sig.clone(), info.clone()], &svg, &opts).unwrap();
    let texts = svg_texts(&svg);
    assert_has(&texts, "InfoNCE panel");
    assert_has(&texts, "temperature τ");
    assert_has(&texts, "t (= b)");
    assert_eq!(texts.iter().filter(|t| *t == "batch size N").count(), 2);
    let png = dir.path().join("two.png");
    plot::phase_diagram(&[sig, info], &png, &opts).unwrap();
    assert_png(&png);
}

#[test]
fn theory_map_every_quantity_and_bias() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            Quantity::SPos,
            BiasMode::Tied,
            "s₊* = 1 − 2c* (optimal positive similarity)",
        ),
        (
            Quantity::CStar,
            BiasMode::Fixed(1.0),
            "c* = δ*² / (1 + δ*²)",
        ),
        (
            Quantity::Delta,
            BiasMode::Relative(0.5),
            "δ* (values above 3 clamped)",
        ),
    ];
    for (i, (quantity, bias, label)) in cases.into_iter().enumerate() {
        let opts = TheoryMapOptions {
            ns: (4..=20).collect(),
            ts: (0..30).map(|k| 0.1 + 0.1 * f64::from(k)).collect(),
            bias,
            quantity,
            ..Default::default()
        };
        let png = dir.path().join(format!("theory{i}.png"));
        plot::theory_map(&png, &opts).unwrap();
        assert_png(&png);
        let svg = dir.path().join(format!("theory{i}.svg"));
        plot::theory_map(&svg, &opts).unwrap();
        let texts = svg_texts(&svg);
        assert_has(&texts, "batch size N");
        assert_has(&texts, label);
    }
}

#[test]
fn batch_theory_map_draws_the_weighted_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let bs: Vec<usize> = (2..=16).collect();
    let ts: Vec<f64> = (0..30).map(|k| 0.1 + 0.1 * f64::from(k)).collect();
    let png = dir.path().join("batch.png");
    plot::batch_theory_map(&png, 16, &bs, &ts).unwrap();
    assert_png(&png);
    let svg = dir.path().join("batch.svg");
    plot::batch_theory_map(&svg, 16, &bs, &ts).unwrap();
    let texts = svg_texts(&svg);
    assert_has(&texts, "mini-batch size B");
    assert_has(&texts, "ETF threshold t = ((N−1)/N) log(w(N−2) − 1)");
    // B = 17 > N, a single B, and a bad extension are errors that write nothing.
    let bad = dir.path().join("bad.png");
    assert!(plot::batch_theory_map(&bad, 16, &[2, 17], &ts).is_err());
    assert!(plot::batch_theory_map(&bad, 16, &[4], &ts).is_err());
    assert!(plot::batch_theory_map(&dir.path().join("x.bmp"), 16, &bs, &ts).is_err());
    assert!(!bad.exists());
}

#[test]
fn diff_map_from_theory_column_or_computed() {
    let dir = tempfile::tempdir().unwrap();
    let with = sigmoid_input(dir.path());
    let without = PanelInput::read(
        &write(dir.path(), "plain.csv", &sigmoid_csv(false)),
        MemoryLimit::Available,
    )
    .unwrap();
    assert!(!without.table.has_s_pos_theory);
    for (name, input) in [("with", &with), ("without", &without)] {
        let png = dir.path().join(format!("diff-{name}.png"));
        plot::diff_map(input, &png, &DiffOptions::default()).unwrap();
        assert_png(&png);
        let svg = dir.path().join(format!("diff-{name}.svg"));
        plot::diff_map(
            input,
            &svg,
            &DiffOptions {
                limit: Some(0.5),
                ..Default::default()
            },
        )
        .unwrap();
        let texts = svg_texts(&svg);
        assert_has(&texts, "s − s₊* (measured − theory)");
        assert_has(&texts, "t (= b)");
        assert_has(&texts, "−0.50");
    }
}

#[test]
fn diff_map_default_scale_is_the_datas_range_even_for_tiny_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("n,d,t,b,seed,s_pos,s_neg,objective,mode\n");
    for (i, n) in (4..=8usize).enumerate() {
        for t in [0.5, 1.0, 2.0] {
            let o = Optimum::sigmoid(n, t, t).unwrap();
            let err = 1e-7 * (i as f64 - 2.0) / 2.0;
            writeln!(
                csv,
                "{n},{n},{t},{t},0,{},{},sigmoid,free",
                o.s_pos + err,
                o.s_neg
            )
            .unwrap();
        }
    }
    let input =
        PanelInput::read(&write(dir.path(), "tiny.csv", &csv), MemoryLimit::Available).unwrap();
    let svg = dir.path().join("tiny.svg");
    plot::diff_map(&input, &svg, &DiffOptions::default()).unwrap();
    let texts = svg_texts(&svg);
    // The colour bar spans [-1e-7, 1e-7] (not [-0.01, 0.01], which shows the map all white) and
    // its ticks are labelled (not all "0").
    let top = texts
        .iter()
        .filter_map(|t| t.replace('\u{2212}', "-").parse::<f64>().ok())
        .filter(|v| v.abs() < 1e-3)
        .fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(top > 1e-7 && top <= 2e-7, "{texts:?}");
    assert!(texts
        .iter()
        .any(|t| t.starts_with('\u{2212}') && t.ends_with("e\u{2212}7")));
    assert!(!texts.iter().any(|t| t == "0.01"), "{texts:?}");
}

#[test]
fn diff_map_needs_a_theory_or_a_bias() {
    let dir = tempfile::tempdir().unwrap();
    let csv =
        "n,t,s_pos,objective\n4,1,0.5,sigmoid\n5,1,0.5,sigmoid\n4,2,0.5,sigmoid\n5,2,0.5,sigmoid\n";
    let input = PanelInput::read(&write(dir.path(), "r.csv", csv), MemoryLimit::Available).unwrap();
    let err =
        plot::diff_map(&input, &dir.path().join("d.png"), &DiffOptions::default()).unwrap_err();
    assert!(matches!(err, Error::BadInput { .. }), "{err}");
    assert!(err.to_string().contains("'b'"), "{err}");
    assert_only(dir.path(), &["r.csv"]);
}

#[test]
fn curves_with_and_without_results() {
    let dir = tempfile::tempdir().unwrap();
    let input = sigmoid_input(dir.path());
    let png = dir.path().join("curves.png");
    let opts = CurvesOptions {
        ns: vec![4, 8, 12],
        ..Default::default()
    };
    plot::curves(Some(&input.table), &png, &opts).unwrap();
    assert_png(&png);
    let svg = dir.path().join("curves.svg");
    plot::curves(Some(&input.table), &svg, &opts).unwrap();
    let texts = svg_texts(&svg);
    assert_has(&texts, "c*");
    assert_has(&texts, "similarity");
    assert_has(&texts, "N = 8");
    assert_has(&texts, "measured s₊ (mean ± 1 std)");
    let svg = dir.path().join("theory-curves.svg");
    let opts = CurvesOptions {
        left: CurveQuantity::Delta,
        bias: Some(BiasMode::Fixed(1.0)),
        ts: Some((1..=100).map(|k| 0.05 * f64::from(k)).collect()),
        ..Default::default()
    };
    plot::curves(None, &svg, &opts).unwrap();
    let texts = svg_texts(&svg);
    assert_has(&texts, "δ*");
    assert_has(&texts, "N = 50");
    assert!(!texts.iter().any(|t| t.starts_with("measured")));
}

#[test]
fn loss_curve_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("loss.png");
    plot::loss_curve(&png, &LossCurveOptions::default()).unwrap();
    assert_png(&png);
    let svg = dir.path().join("loss.svg");
    plot::loss_curve(
        &svg,
        &LossCurveOptions {
            relative: true,
            ..Default::default()
        },
    )
    .unwrap();
    let texts = svg_texts(&svg);
    assert_has(&texts, "c = δ² / (1 + δ²)");
    assert_has(&texts, "l(c) − l(c*)");
    // SPEC §3 worked value: N = 10, t = b = 1 gives c* = 0.4630146707.
    assert_has(&texts, "t = 1, b = 1: c* = 0.463 (intermediate)");
}

#[test]
fn missing_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    for (col, csv) in [
        ("n", "t,s_pos\n1,0.5\n"),
        ("t", "n,s_pos\n4,0.5\n"),
        ("s_pos", "n,t,s_neg\n4,1,0.5\n"),
    ] {
        let p = write(dir.path(), "bad.csv", csv);
        let err = plot::read_results(&p, MemoryLimit::Available).unwrap_err();
        assert!(matches!(err, Error::BadInput { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("'{col}'")), "{msg}");
        assert!(msg.contains("bad.csv"), "{msg}");
    }
}

#[test]
fn empty_csv_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for text in ["n,t,s_pos\n", ""] {
        let p = write(dir.path(), "empty.csv", text);
        let err = plot::read_results(&p, MemoryLimit::Available).unwrap_err();
        assert!(matches!(err, Error::BadInput { .. }), "{err}");
    }
    let err = plot::read_results(
        &write(dir.path(), "empty.csv", "n,t,s_pos\n"),
        MemoryLimit::Available,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no data rows"), "{err}");
    let err =
        plot::read_results(&dir.path().join("absent.csv"), MemoryLimit::Available).unwrap_err();
    assert!(err.to_string().contains("absent.csv"), "{err}");
}

#[test]
fn unparsable_values_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "r.csv", "n,t,s_pos\n4,1,0.5\n5,x,0.5\n");
    let err = plot::read_results(&p, MemoryLimit::Available)
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3") && err.contains("'t'"), "{err}");
}

#[test]
fn one_value_of_t_or_n_cannot_make_a_map() {
    let dir = tempfile::tempdir().unwrap();
    let one_t = PanelInput::read(
        &write(
            dir.path(),
            "one_t.csv",
            "n,t,b,s_pos\n4,1,1,0.5\n5,1,1,0.4\n",
        ),
        MemoryLimit::Available,
    )
    .unwrap();
    let one_n = PanelInput::read(
        &write(
            dir.path(),
            "one_n.csv",
            "n,t,b,s_pos\n4,1,1,0.5\n4,2,2,0.4\n",
        ),
        MemoryLimit::Available,
    )
    .unwrap();
    let out = dir.path().join("fig.png");
    let err = plot::phase_diagram(std::slice::from_ref(&one_t), &out, &PhaseOptions::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("need at least two values of t to draw a map"),
        "{err}"
    );
    let err = plot::diff_map(&one_t, &out, &DiffOptions::default()).unwrap_err();
    assert!(err.to_string().contains("two values of t"), "{err}");
    let err = plot::phase_diagram(&[one_n], &out, &PhaseOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("need at least two values of N"),
        "{err}"
    );
    let opts = TheoryMapOptions {
        ts: vec![1.0],
        ..Default::default()
    };
    let err = plot::theory_map(&out, &opts).unwrap_err();
    assert!(err.to_string().contains("two values of t"), "{err}");
    assert_only(dir.path(), &["one_t.csv", "one_n.csv"]);
}

#[test]
fn unknown_extension_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = sigmoid_input(dir.path());
    let jpg = dir.path().join("fig.jpg");
    let errors = [
        plot::phase_diagram(std::slice::from_ref(&input), &jpg, &PhaseOptions::default())
            .unwrap_err(),
        plot::theory_map(&jpg, &TheoryMapOptions::default()).unwrap_err(),
        plot::diff_map(&input, &jpg, &DiffOptions::default()).unwrap_err(),
        plot::curves(None, &jpg, &CurvesOptions::default()).unwrap_err(),
        plot::loss_curve(&jpg, &LossCurveOptions::default()).unwrap_err(),
        plot::loss_curve(&dir.path().join("noext"), &LossCurveOptions::default()).unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
    let msg = plot::theory_map(&jpg, &TheoryMapOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains(".jpg"), "{msg}");
    assert_only(dir.path(), &["results.csv"]);
}

#[test]
fn a_failed_plot_leaves_an_existing_figure_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fig.png");
    std::fs::write(&out, b"old figure").unwrap();
    let bad = PanelInput::read(
        &write(dir.path(), "one_t.csv", "n,t,s_pos\n4,1,0.5\n5,1,0.4\n"),
        MemoryLimit::Available,
    )
    .unwrap();
    assert!(plot::phase_diagram(&[bad], &out, &PhaseOptions::default()).is_err());
    assert_eq!(std::fs::read(&out).unwrap(), b"old figure");
    // A missing output directory is an I/O error naming the figure, and leaves nothing behind.
    let deep = dir.path().join("no/such/dir/fig.png");
    let err = plot::loss_curve(&deep, &LossCurveOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("fig.png"), "{err}");
    assert_only(dir.path(), &["fig.png", "one_t.csv"]);
}

#[test]
fn bad_options_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = sigmoid_input(dir.path());
    let out = dir.path().join("fig.png");
    let err = plot::phase_diagram(
        std::slice::from_ref(&input),
        &out,
        &PhaseOptions {
            vmin: 1.0,
            vmax: 0.0,
            curves: true,
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(plot::phase_diagram(&[], &out, &PhaseOptions::default()).is_err());
    let err = plot::diff_map(
        &input,
        &out,
        &DiffOptions {
            limit: Some(-1.0),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let err = plot::curves(
        None,
        &out,
        &CurvesOptions {
            ns: vec![],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(plot::loss_curve(
        &out,
        &LossCurveOptions {
            n: 1,
            ..Default::default()
        }
    )
    .is_err());
    assert_only(dir.path(), &["results.csv"]);
}

#[test]
fn mixed_objectives_must_be_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = sigmoid_csv(true);
    text.extend(infonce_csv().lines().skip(1).map(|l| format!("{l}\n")));
    let table = plot::read_results(
        &write(dir.path(), "mixed.csv", &text),
        MemoryLimit::Available,
    )
    .unwrap();
    let out = dir.path().join("fig.png");
    let input = PanelInput {
        table: table.clone(),
        title: None,
    };
    let err = plot::phase_diagram(&[input], &out, &PhaseOptions::default()).unwrap_err();
    assert!(err.to_string().contains("mix objectives"), "{err}");
    let only = table.filtered(Some("infonce"), None).unwrap();
    assert!(only.is_infonce());
    assert_eq!(only.bias_mode(), None);
    let sig = table.filtered(Some("sigmoid"), Some("encoder")).unwrap();
    assert_eq!(sig.bias_mode(), Some(BiasMode::Tied));
    assert!(table.filtered(Some("sigmoid"), Some("free")).is_err());
    plot::phase_diagram(
        &[PanelInput {
            table: sig,
            title: None,
        }],
        &out,
        &PhaseOptions::default(),
    )
    .unwrap();
    assert_png(&out);
}

#[test]
fn read_results_keeps_diverged_cells_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let table = sigmoid_input(dir.path()).table;
    assert_eq!(table.rows.len(), 9 * 5 * 2);
    assert_eq!(
        table.rows.iter().filter(|r| r.s_pos.is_none()).count(),
        1 + 2
    );
    let r = &table.rows[0];
    assert_eq!((r.n, r.d, r.seed), (4, Some(4), Some(0)));
    assert_eq!(r.objective.as_deref(), Some("sigmoid"));
    assert_eq!(r.mode.as_deref(), Some("encoder"));
    assert!(r.s_pos_theory.is_some() && r.c_star.is_some());
    assert_eq!(table.bias_mode(), Some(BiasMode::Tied));
}

// ---- End-to-end through the binary: `ccem plot ...` ----

use assert_cmd::Command;
use predicates::prelude::*;

/// `ccem plot ...`; the `plot` subcommand must exist (a test fails rather than skips without it).
fn ccem_plot() -> Command {
    let mut cmd = Command::cargo_bin("ccem").expect("the ccem binary is built");
    cmd.arg("plot");
    cmd
}

#[test]
fn cli_every_subcommand_writes_its_figure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "results.csv", &sigmoid_csv(true));
    write(d, "infonce.csv", &infonce_csv());
    let runs: [&[&str]; 6] = [
        &[
            "phase",
            "--input",
            "results.csv",
            "--input2",
            "infonce.csv",
            "--out",
            "phase.png",
        ],
        &[
            "phase",
            "--input",
            ".",
            "--vmin",
            "-1",
            "--out",
            "phase.svg",
        ],
        &[
            "theory",
            "--n",
            "4..20",
            "--t",
            "0.1..5:30",
            "--quantity",
            "c_star",
            "--b",
            "1",
            "--out",
            "theory.png",
        ],
        &["diff", "--input", "results.csv", "--out", "diff.svg"],
        &[
            "curves",
            "--input",
            "results.csv",
            "--ns",
            "4,8",
            "--out",
            "curves.png",
        ],
        &[
            "loss-curve",
            "--n",
            "10",
            "--ts",
            "0.5,1,2",
            "--relative-bias",
            "1",
            "--out",
            "loss.png",
        ],
    ];
    for args in runs {
        let mut cmd = ccem_plot();
        let out = args[args.len() - 1];
        cmd.current_dir(d)
            .args(args)
            .assert()
            .success()
            .stderr(predicate::str::contains(out));
        let fig = d.join(out);
        if out.ends_with(".png") {
            assert_png(&fig);
        } else {
            assert_has(&svg_texts(&fig), "batch size N");
        }
    }
}

#[test]
fn cli_errors_are_clear_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "results.csv", &sigmoid_csv(true));
    write(d, "nos.csv", "n,t\n4,1\n");
    let cases: [(&[&str], &str); 4] = [
        (
            &["phase", "--input", "results.csv", "--out", "fig.jpg"],
            ".jpg",
        ),
        (
            &["phase", "--input", "nos.csv", "--out", "fig.png"],
            "s_pos",
        ),
        (
            &["theory", "--t", "1", "--out", "fig.png"],
            "two values of t",
        ),
        (
            &["diff", "--input", "absent.csv", "--out", "fig.png"],
            "absent.csv",
        ),
    ];
    for (args, needle) in cases {
        let mut cmd = ccem_plot();
        cmd.current_dir(d)
            .args(args)
            .assert()
            .failure()
            .stderr(predicate::str::contains(needle));
    }
    assert_only(d, &["results.csv", "nos.csv"]);
}

#[test]
fn cli_help_has_examples() {
    for sub in ["phase", "theory", "diff", "curves", "loss-curve"] {
        let mut cmd = ccem_plot();
        cmd.args([sub, "--help"]).assert().success().stdout(
            predicate::str::contains("Examples:")
                .and(predicate::str::contains(format!("ccem plot {sub}"))),
        );
    }
}
