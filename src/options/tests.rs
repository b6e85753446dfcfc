//! The resolver: each rule once, in both spellings.

use super::*;
use crate::loss::ContrastiveLoss;
use crate::optim::DEFAULT_SCHEDULE;

fn sigmoid(t: f64) -> LossOptions {
    let mut l = LossOptions::new(LossKind::Sigmoid);
    l.t = Some(t);
    l
}

fn refused<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.expect_err("refused").to_string()
}

#[test]
fn a_bias_is_parsed_once() {
    let sp = Spelling::Flag;
    assert_eq!(parse_bias(None, None, sp).unwrap(), BiasMode::Tied);
    assert_eq!(
        parse_bias(Some(&"TIED".into()), None, sp).unwrap(),
        BiasMode::Tied
    );
    assert_eq!(
        parse_bias(Some(&" -1.5".into()), None, sp).unwrap(),
        BiasMode::Fixed(-1.5)
    );
    assert_eq!(
        parse_bias(Some(&2.0.into()), None, sp).unwrap(),
        BiasMode::Fixed(2.0)
    );
    assert_eq!(
        parse_bias(None, Some(0.5), sp).unwrap(),
        BiasMode::Relative(0.5)
    );
    assert!(refused(parse_bias(Some(&"x".into()), None, sp)).contains("invalid --b 'x'"));
    assert!(refused(parse_bias(Some(&"nan".into()), None, sp)).contains("finite"));
    assert!(refused(parse_bias(Some(&f64::INFINITY.into()), None, sp)).contains("finite"));
    assert!(refused(parse_bias(None, Some(f64::NAN), sp)).contains("relative_bias"));
    let e = refused(parse_bias(Some(&1.0.into()), Some(0.5), Spelling::Keyword));
    assert!(e.contains("either b or relative_bias"), "{e}");
}

#[test]
fn a_learnt_bias_starts_from_init_b_and_a_fixed_one_is_refused_with_it() {
    for sp in [Spelling::Flag, Spelling::Keyword] {
        // learn_b with a relative bias value: refused in both front ends.
        let mut l = sigmoid(2.0);
        l.learn_b = true;
        l.relative_bias = Some(Some(0.5));
        let e = refused(OptimizeOptions::new(4, l.clone()).resolve(sp));
        assert!(e.contains(&sp.name("init_b")), "{e}");
        l.relative_bias = None;
        l.b = Some(1.0.into());
        refused(OptimizeOptions::new(4, l.clone()).resolve(sp));
        // learn_b with the relative parametrisation alone: r_b learnt from b = init_b.
        l.b = None;
        l.relative_bias = Some(None);
        l.init_b = Some(1.0);
        let r = OptimizeOptions::new(4, l).resolve(sp).unwrap();
        assert!(r.config.learn_b && r.config.relative_bias);
        assert_eq!(r.config.loss, Loss::sigmoid(2.0, 1.0).unwrap());
    }
}

#[test]
fn t_and_tau_belong_to_their_loss_in_every_command() {
    let mut l = LossOptions::new(LossKind::InfoNce);
    l.t = Some(0.5);
    for sp in [Spelling::Flag, Spelling::Keyword] {
        // optimize: t is the sigmoid scale only.
        let e = refused(OptimizeOptions::new(4, l.clone()).resolve(sp));
        assert!(
            e.contains("the infonce loss takes") && e.contains(&sp.name("tau")),
            "{e}"
        );
        // train: t is InfoNCE's temperature (the paper's script), in both front ends.
        let r = TrainOptions::new(4, l.clone()).resolve(sp).unwrap();
        assert_eq!(r.loss, Loss::infonce(0.5).unwrap());
        let mut both = l.clone();
        both.tau = Some(0.5);
        let e = refused(TrainOptions::new(4, both).resolve(sp));
        assert!(e.contains(&format!("give {} alone", sp.name("tau"))), "{e}");
    }
    let e = refused(OptimizeOptions::new(4, l.clone()).resolve(Spelling::Flag));
    assert!(e.contains("--t/--b/--relative-bias"), "{e}");
    let mut l = LossOptions::new(LossKind::InfoNce);
    l.tau = Some(0.5);
    let r = TrainOptions::new(4, l.clone())
        .resolve(Spelling::Flag)
        .unwrap();
    assert_eq!(r.loss, Loss::infonce(0.5).unwrap());
    let mut s = sigmoid(1.0);
    s.tau = Some(0.5);
    let e = refused(TrainOptions::new(4, s).resolve(Spelling::Keyword));
    assert!(e.contains("tau is for the losses that take it"), "{e}");
    // train learns nothing.
    let mut s = sigmoid(1.0);
    s.learn_t = true;
    s.t = None;
    refused(TrainOptions::new(4, s).resolve(Spelling::Flag));
}

#[test]
fn zero_threads_zero_dimension_and_both_d_options_are_refused() {
    let sweep = || {
        SweepOptions::new(
            Mode::Free,
            LossKind::Sigmoid,
            GridArg::Text("4,5".into()),
            GridArg::Values(vec![1.0]),
        )
    };
    let mut s = sweep();
    s.threads = Some(0);
    assert!(refused(s.resolve(Spelling::Keyword)).contains("threads=0"));
    let mut s = sweep();
    s.d = Some(GridArg::Values(vec![2, 3]));
    s.d_ratio = Some(1.0);
    assert!(refused(s.resolve(Spelling::Flag)).contains("--d or --d-ratio"));
    let mut s = sweep();
    s.d = Some(GridArg::Values(vec![2, 3]));
    assert_eq!(s.resolve(Spelling::Flag).unwrap().spec.ds, Some(vec![2, 3]));
    let mut s = sweep();
    s.t = Some(GridArg::Values(vec![f64::NAN]));
    assert!(refused(s.resolve(Spelling::Keyword)).contains("t: NaN"));
    let mut s = sweep();
    s.loss = LossKind::InfoNce;
    s.b = Some("tied".into());
    refused(s.resolve(Spelling::Flag));
    let mut o = OptimizeOptions::new(4, sigmoid(1.0));
    o.d = Some(0);
    assert!(refused(o.resolve(Spelling::Flag)).contains("--d 0"));
    let th = TheoryOptions {
        t: true,
        d: Some(0),
        ..TheoryOptions::new(LossKind::Sigmoid)
    };
    assert!(refused(th.resolve(None, Spelling::Keyword)).contains("d=0"));
    let th = TheoryOptions {
        loss: LossKind::InfoNce,
        t: false,
        tau: true,
        batch: true,
        d: None,
        ..th
    };
    assert!(refused(th.resolve(None, Spelling::Flag)).contains("closed form"));
}

#[test]
fn the_schedule_defaults_to_step_and_takes_constant_and_cosine() {
    let o = OptimizeOptions::new(4, sigmoid(1.0));
    let r = o.resolve(Spelling::Flag).unwrap();
    assert_eq!(r.config.schedule, DEFAULT_SCHEDULE);
    assert_eq!(r.config.schedule.name(), "step");
    let mut o = OptimizeOptions::new(4, sigmoid(1.0));
    o.lr_schedule = Some("constant".into());
    assert_eq!(
        o.resolve(Spelling::Flag).unwrap().config.schedule,
        Schedule::Constant
    );
    o.lr_schedule = Some("cosine".into());
    o.steps = Some(100);
    let s = o.resolve(Spelling::Flag).unwrap().config.schedule;
    assert_eq!(s, Schedule::Cosine { steps: 100 });
    assert_eq!(s.factor(0), 1.0);
    assert!((s.factor(50) - 0.5).abs() < 1e-15);
    assert!(s.factor(100).abs() < 1e-15 && s.factor(500).abs() < 1e-15);
    o.lr_schedule = Some("linear".into());
    assert!(refused(o.resolve(Spelling::Flag)).contains("step, constant or cosine"));
}

#[test]
fn inspect_options_are_checked_before_the_files() {
    let cfg = InspectOptions::default().resolve(Spelling::Flag).unwrap();
    assert_eq!((cfg.t, cfg.b, cfg.tau), (10.0, None, 0.07));
    let o = InspectOptions {
        b: Some("tied".into()),
        t: 2.0,
        ..Default::default()
    };
    assert_eq!(o.resolve(Spelling::Flag).unwrap().b, None);
    let o = InspectOptions {
        loss: Some("dcl".into()),
        tau: 0.3,
        ..Default::default()
    };
    assert_eq!(
        o.resolve(Spelling::Flag).unwrap().loss.map(|l| l.kind()),
        Some(crate::loss::LossKind::Dcl)
    );
    for bad in [
        InspectOptions {
            tau: 0.0,
            ..Default::default()
        },
        InspectOptions {
            margin_quantile: f64::NAN,
            ..Default::default()
        },
        InspectOptions {
            block: 0,
            ..Default::default()
        },
        InspectOptions {
            precision: Some("f16".into()),
            ..Default::default()
        },
        InspectOptions {
            loss: Some("nope".into()),
            ..Default::default()
        },
        InspectOptions {
            within_view: Some(0.5),
            ..Default::default()
        },
        InspectOptions {
            loss: Some("spectral".into()),
            within_view: Some(0.5),
            ..Default::default()
        },
    ] {
        refused(bad.resolve(Spelling::Keyword));
    }
}

#[test]
fn output_paths_are_checked_before_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| Some(dir.path().join(name));
    let ok = OutputPaths {
        save_u: p("U.npy"),
        save_v: p("V.CSV"),
    };
    ok.check(Spelling::Flag).unwrap();
    let cases = [
        (p("U.txt"), None, "use .npy or .csv"),
        (p("X.npy"), p("X.npy"), "the same file"),
        (p("X.npy"), p("./X.npy"), "the same file"),
        (p("nodir/U.npy"), None, "does not exist"),
        (None, p("nodir/V.npy"), "--save-v"),
    ];
    for (u, v, want) in cases {
        let e = refused(
            OutputPaths {
                save_u: u,
                save_v: v,
            }
            .check(Spelling::Flag),
        );
        assert!(e.contains(want), "{e}");
    }
    std::fs::create_dir(dir.path().join("D.npy")).unwrap();
    let e = refused(
        OutputPaths {
            save_u: p("D.npy"),
            save_v: None,
        }
        .check(Spelling::Keyword),
    );
    assert!(e.contains("save_u") && e.contains("directory"), "{e}");
    // Nothing was left behind by the checks.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("D.npy")]);
}

/// `tau` and `within_view` for every registered loss, by the registry's rule: given to a loss
/// that takes them, they reach its constructor; given to one that does not, or with a bad value,
/// the message names the loss and the parameter, in both spellings.
#[test]
fn tau_and_within_view_follow_the_registry_for_every_loss() {
    for sp in [Spelling::Flag, Spelling::Keyword] {
        for &kind in LossKind::ALL {
            let base = || {
                let mut l = LossOptions::new(kind);
                if kind.takes("t") {
                    l.t = Some(1.0);
                }
                if kind.takes("tau") {
                    l.tau = Some(0.5);
                }
                l
            };
            let loss = base().resolve(sp).unwrap();
            assert_eq!(loss.kind(), kind);
            // within_view
            let mut l = base();
            l.within_view = Some(0.5);
            let r = l.resolve(sp);
            if kind.takes("within_view") {
                let loss = r.unwrap();
                assert!(loss.params().contains(&("within_view", 0.5)), "{kind}");
                l.within_view = Some(-1.0);
                let e = refused(l.resolve(sp));
                assert!(
                    e.contains(kind.as_str()) && e.contains("within_view"),
                    "{e}"
                );
            } else {
                let e = refused(r);
                assert!(
                    e.contains(&format!("the {kind} loss takes"))
                        && e.contains(&sp.name("within_view")),
                    "{e}"
                );
            }
            // tau
            let mut l = base();
            l.tau = Some(0.0);
            let e = refused(l.resolve(sp));
            assert!(e.contains(kind.as_str()) && e.contains("tau"), "{e}");
            if kind.takes("tau") {
                l.tau = None;
                let e = refused(l.resolve(sp));
                assert!(e.contains(&sp.name("tau")) && e.contains("required"), "{e}");
                // train: t is the temperature.
                let mut l = base();
                l.t = l.tau.take();
                let r = TrainOptions::new(4, l).resolve(sp).unwrap();
                assert_eq!(r.loss, loss);
            }
        }
    }
}

#[test]
fn max_memory_is_one_option_of_every_run_and_named_in_each_spelling() {
    // Parsed once: a size, bytes, or the memory available when absent.
    let p = |a: Option<MemoryArg>, sp| parse_max_memory(a.as_ref(), sp);
    assert_eq!(p(None, Spelling::Flag).unwrap(), MemoryLimit::Available);
    assert_eq!(
        p(Some("1K".into()), Spelling::Flag).unwrap(),
        MemoryLimit::Bytes(1024)
    );
    assert_eq!(
        p(Some(2048.into()), Spelling::Keyword).unwrap(),
        MemoryLimit::Bytes(2048)
    );
    let e = refused(p(Some("1X".into()), Spelling::Flag));
    assert!(e.contains("invalid --max-memory '1X'"), "{e}");
    let e = refused(p(Some("1X".into()), Spelling::Keyword));
    assert!(e.contains("invalid max_memory='1X'"), "{e}");
    for bad in [0, -1] {
        let e = refused(p(Some(bad.into()), Spelling::Keyword));
        assert!(e.contains(&format!("invalid max_memory={bad}")), "{e}");
    }
    // Each command's configuration carries it, and refuses a run over it.
    let mut o = OptimizeOptions::new(50, sigmoid(1.0));
    o.max_memory = Some("1K".into());
    let e = refused(o.resolve(Spelling::Flag));
    assert!(
        e.contains("would need about") && e.contains("max_memory"),
        "{e}"
    );
    o.max_memory = Some("1G".into());
    let r = o.resolve(Spelling::Flag).unwrap();
    assert_eq!(r.config.max_memory, MemoryLimit::Bytes(1 << 30));
    let mut t = TrainOptions::new(50, sigmoid(1.0));
    t.max_memory = Some("1K".into());
    assert!(refused(t.resolve(Spelling::Keyword)).contains("would need about"));
    let mut s = SweepOptions::new(
        Mode::Free,
        LossKind::Sigmoid,
        GridArg::Text("50".into()),
        GridArg::Values(vec![1.0]),
    );
    s.max_memory = Some("1K".into());
    assert!(refused(s.resolve(Spelling::Flag)).contains("would need about"));
    s.max_memory = Some("1G".into());
    assert_eq!(
        s.resolve(Spelling::Flag).unwrap().spec.run.max_memory,
        MemoryLimit::Bytes(1 << 30)
    );
    let i = InspectOptions {
        max_memory: Some("1K".into()),
        ..InspectOptions::default()
    };
    assert_eq!(
        i.resolve(Spelling::Flag).unwrap().max_memory,
        MemoryLimit::Bytes(1024)
    );
    // A limit given to one resolution does not reach the next.
    let o = OptimizeOptions::new(50, sigmoid(1.0));
    assert_eq!(
        o.resolve(Spelling::Flag).unwrap().config.max_memory,
        MemoryLimit::Available
    );
}

#[test]
fn too_large_names_max_memory_in_the_callers_spelling() {
    let e = || MemoryLimit::Bytes(1024).check("x", 1e6).unwrap_err();
    assert!(e().to_string().ends_with(
        "more than the 1.0 KiB allowed (max_memory); use a smaller problem or raise max_memory"
    ));
    assert!(Spelling::Flag.respell(e()).to_string().ends_with(
        "more than the 1.0 KiB allowed (--max-memory); use a smaller problem or raise --max-memory"
    ));
    assert!(Spelling::Keyword
        .respell(e())
        .to_string()
        .ends_with("allowed (max_memory=); use a smaller problem or raise max_memory="));
    let e = MemoryLimit::Available
        .check("x", f64::INFINITY)
        .unwrap_err();
    let msg = Spelling::Flag.respell(e).to_string();
    assert!(
        msg.ends_with("(or set a limit with --max-memory if you know better)"),
        "{msg}"
    );
    // Other errors pass unchanged.
    let other = Spelling::Flag.respell(Error::Config("as is".into()));
    assert_eq!(other.to_string(), "as is");
}

#[test]
fn a_config_error_names_its_options_in_the_callers_spelling() {
    let e = || {
        Error::Config(format!(
            "{} needs {} B",
            crate::error::option("batching"),
            crate::error::option("within_view")
        ))
    };
    assert_eq!(e().to_string(), "batching needs within_view B");
    assert_eq!(
        Spelling::Flag.respell(e()).to_string(),
        "--batching needs --within-view B"
    );
    assert_eq!(
        Spelling::Keyword.respell(e()).to_string(),
        "batching needs within_view B"
    );
    // An unclosed marker loses only itself.
    let odd = Error::Config(format!("x {}", &crate::error::option("seeds")[..6]));
    assert_eq!(odd.to_string(), "x seeds");
}
