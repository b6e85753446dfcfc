//! `ccem reproduce`: the paper's experiment and its agreement with the theory, end to end.
//!
//! On the paper's grid (SPEC §5: `N = 4..50`, `t = linspace(0.1, 5, 10)`, `d = N`, `b = t`) it
//! runs, each stage into its own sweep directory under `out` (so an interrupted run resumes):
//!
//! 1. the theory grid (`theory.csv`: the exact optimum of every cell, SPEC §3);
//! 2. free embeddings optimised to convergence, sigmoid and InfoNCE (`free-sigmoid/`,
//!    `free-infonce/`): the theory's claim that the optimum is the predicted CCEM;
//! 3. the paper's encoder, 100 SGD steps, over several seeds, sigmoid and InfoNCE
//!    (`encoder-sigmoid/`, `encoder-infonce/`): the paper's figure;
//!
//! 4. the loss zoo ([`zoo`], SPEC §9.8): free embeddings of every registered loss against its
//!    optimum on the CCEM (`zoo-NAME/`), and the sigmoid loss with within-view negatives over
//!    `(W, t)` (`zoo-sigmoid-within-W/`);
//!
//! then draws the figures and writes `REPORT.md` (what was run, the agreement figures, the
//! figures inlined). The library writes files but never prints; progress goes to the observers
//! the caller supplies.

use crate::error::{Error, Result};
use crate::grid::linspace;
use crate::limits::MemoryLimit;
use crate::loss::LossKind;
use crate::plot::{self, PanelInput};
use crate::sweep::engine::{run_sweep, SweepObserver};
use crate::sweep::runner::run_cell;
use crate::sweep::store::{ResultRow, TimingLog};
use crate::sweep::summary::{summarize, Summary};
use crate::sweep::{Cell, Mode, RunOptions, SweepSpec};
use crate::theory::{BiasMode, Optimum};
use crate::valid::Valid;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub mod zoo;

/// What `reproduce` runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ReproduceConfig {
    /// Output directory.
    pub out: PathBuf,
    /// Batch sizes.
    pub ns: Vec<usize>,
    /// Values of `t` (sigmoid, `b = t`) and of `tau` (InfoNCE).
    pub ts: Vec<f64>,
    /// Encoder seeds per cell.
    pub seeds: usize,
    /// Free-embedding seeds per cell.
    pub free_seeds: usize,
    /// Encoder SGD steps.
    pub steps: usize,
    /// Base seed.
    pub seed: u64,
    /// Worker threads (`None`: all cores).
    pub threads: Option<usize>,
    /// Whether this is the coarse `--quick` grid (for the report).
    pub quick: bool,
    /// The most memory each sweep and figure may use (default: the memory available).
    pub max_memory: MemoryLimit,
}

impl ReproduceConfig {
    /// The paper's grid (SPEC §5), 5 encoder seeds, 100 steps.
    pub fn paper(out: PathBuf) -> Self {
        ReproduceConfig {
            out,
            ns: (4..=50).collect(),
            ts: linspace(0.1, 5.0, 10),
            seeds: 5,
            free_seeds: 1,
            steps: 100,
            seed: 0,
            threads: None,
            quick: false,
            max_memory: MemoryLimit::Available,
        }
    }

    /// A coarser grid for a first look: `N = 4, 8, ..., 48`, 6 values of `t`, 2 encoder seeds.
    pub fn quick(out: PathBuf) -> Self {
        ReproduceConfig {
            ns: (4..=48).step_by(4).collect(),
            ts: linspace(0.1, 5.0, 6),
            seeds: 2,
            quick: true,
            ..Self::paper(out)
        }
    }

    fn spec(&self, mode: Mode, objective: LossKind) -> SweepSpec {
        SweepSpec {
            mode,
            objective,
            ns: self.ns.clone(),
            ts: self.ts.clone(),
            bias: BiasMode::Tied,
            seeds: match mode {
                Mode::Free => self.free_seeds,
                Mode::Encoder => self.seeds,
            },
            base_seed: self.seed,
            d_ratio: 1.0,
            ds: None,
            within_view: None,
            run: RunOptions {
                steps: (mode == Mode::Encoder).then_some(self.steps),
                max_memory: self.max_memory,
                ..RunOptions::default()
            },
            shard: None,
        }
    }
}

/// One stage of the run.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Directory name (`free-sigmoid`, ...).
    pub name: String,
    /// Its specification.
    pub spec: SweepSpec,
    /// Its summary.
    pub summary: Summary,
    /// Wall time of this call (seconds).
    pub seconds: f64,
    /// Compute time of all the stage's cells, summed over cells (seconds), including those
    /// computed by earlier, interrupted calls (from `timings.csv`).
    pub compute_seconds: f64,
    /// Cells computed now / found done.
    pub computed: usize,
    /// Cells found done from an earlier, interrupted run.
    pub resumed: usize,
}

/// What `reproduce` did.
#[derive(Clone, Debug)]
pub struct ReproduceReport {
    /// The sweeps.
    pub stages: Vec<Stage>,
    /// Figures written (relative to `out`).
    pub figures: Vec<(String, String)>,
    /// Total wall time (seconds).
    pub seconds: f64,
    /// Path of `REPORT.md`.
    pub report: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the theory of the grid to `path` (CSV: `n, t, b, c_star, delta_star, s_pos, s_neg,
/// loss, phase`).
fn write_theory(path: &Path, ns: &[usize], ts: &[f64]) -> Result<()> {
    crate::io::write_atomic(path, |w| {
        let mut c = csv::Writer::from_writer(w);
        let e = |e: csv::Error| Error::Config(format!("cannot write {}: {e}", path.display()));
        c.write_record([
            "n",
            "t",
            "b",
            "c_star",
            "delta_star",
            "s_pos",
            "s_neg",
            "loss",
            "phase",
        ])
        .map_err(e)?;
        for &n in ns {
            for &t in ts {
                let o = Optimum::sigmoid_unchecked(n, t, t);
                let f = |x: f64| {
                    if x.is_finite() {
                        x.to_string()
                    } else {
                        String::new()
                    }
                };
                c.write_record([
                    n.to_string(),
                    t.to_string(),
                    t.to_string(),
                    f(o.c_star),
                    f(o.delta_star),
                    f(o.s_pos),
                    f(o.s_neg),
                    f(o.loss),
                    o.phase.to_string(),
                ])
                .map_err(e)?;
            }
        }
        c.flush().map_err(io(path))
    })
}

/// Runs everything; `observer(label)` gives the progress observer of each sweep.
///
/// # Errors
/// An output directory that cannot be written, or one that holds a run of another
/// configuration (use another `out`).
pub fn reproduce(
    cfg: &ReproduceConfig,
    observer: &mut dyn FnMut(&str) -> Box<dyn SweepObserver>,
) -> Result<ReproduceReport> {
    let start = Instant::now();
    std::fs::create_dir_all(&cfg.out).map_err(io(&cfg.out))?;
    write_theory(&cfg.out.join("theory.csv"), &cfg.ns, &cfg.ts)?;
    let plan = [
        ("free-sigmoid", Mode::Free, LossKind::Sigmoid),
        ("free-infonce", Mode::Free, LossKind::InfoNce),
        ("encoder-sigmoid", Mode::Encoder, LossKind::Sigmoid),
        ("encoder-infonce", Mode::Encoder, LossKind::InfoNce),
    ];
    let mut stages = Vec::new();
    for (name, mode, objective) in plan {
        let spec = cfg.spec(mode, objective).check()?;
        let (stage, _) = run_stage(&cfg.out, name, spec, cfg.threads, observer)?;
        stages.push(stage);
    }
    let mut figures = draw_figures(cfg)?;
    let (minibatch, batch_figures) = minibatch_section(cfg)?;
    figures.extend(batch_figures);
    let grid = zoo::ZooGrid {
        max_memory: cfg.max_memory,
        ..if cfg.quick {
            zoo::ZooGrid::quick()
        } else {
            zoo::ZooGrid::full()
        }
    };
    let (zoo_text, zoo_figures, zoo_stages) =
        zoo::zoo_section(&cfg.out, &grid, cfg.seed, cfg.threads, observer)?;
    figures.extend(zoo_figures);
    let seconds = start.elapsed().as_secs_f64();
    let report = cfg.out.join("REPORT.md");
    let mut text = report_markdown(cfg, &stages, &figures, seconds);
    text.push_str(&minibatch);
    text.push_str(&zoo_text);
    stages.extend(zoo_stages);
    crate::io::write_bytes(&report, text.as_bytes())?;
    Ok(ReproduceReport {
        stages,
        figures,
        seconds,
        report,
    })
}

/// One free-embedding run of the mini-batch section.
struct BatchRun {
    batching: crate::batch::Batching,
    batch: usize,
    t: f64,
    s_pos: f64,
    theory_s_pos: f64,
    s_neg_std: f64,
    s_neg_std_in_batch: f64,
}

/// Free embeddings, `N = d = n`, `b = t`-free setting `(t, bias)`, seed 0, the default steps and
/// schedule, trained with `batching` and batches of `batch`, measured against the optimum of
/// the expected mini-batch loss.
fn batch_run(
    n: usize,
    batch: usize,
    batching: crate::batch::Batching,
    t: f64,
    bias: f64,
    max_memory: MemoryLimit,
) -> Result<BatchRun> {
    use crate::batch::MiniBatch;
    use crate::loss::Loss;
    use crate::optim::{optimize, FreeConfig};
    use crate::report::Report;
    let loss = Loss::sigmoid(t, bias)?;
    let mut cfg = FreeConfig::new(n, n, loss, 0);
    cfg.batch = Some(MiniBatch::new(n, batch, Some(batching), &loss)?);
    cfg.max_memory = max_memory;
    let r = optimize(&cfg)?;
    let rep = Report::new(r.u.view(), r.v.view(), &loss)?
        .with_in_batch(r.u.view(), r.v.view(), &r.last_batches)
        .with_training(cfg.batch, false, &loss);
    let m = rep.measurement;
    Ok(BatchRun {
        batching,
        batch,
        t,
        s_pos: m.map_or(f64::NAN, |m| m.pos.mean),
        theory_s_pos: rep.prediction.map_or(f64::NAN, |o| o.s_pos),
        s_neg_std: m.map_or(f64::NAN, |m| m.neg.std),
        s_neg_std_in_batch: rep.s_neg_in_batch.map_or(f64::NAN, |x| x.1),
    })
}

/// The mini-batch section of `REPORT.md` and its two figures (SPEC §8).
///
/// - The spread of the negatives against `B` (`batch_spread.png`) and the table: free
///   embeddings at `N = 16`, `t = 2`, `b = 1` (the example), `B = 2, 4, 8` under
///   `expected`, `shuffled`, `fixed`, `all` and `hardest` (`hardest` at `B = 8`, 11 s, only
///   outside `--quick`), and the full batch `B = 16`.
/// - The measured `(B, t)` phase diagram at `N = 16`, `b = t` (`phase_batch.png`): the theory on
///   the experiment's grid, `expected` (`B = 2..=16`, 12 values of `t` spanning the run's, 25
///   outside `--quick`) and `shuffled` (`B = 2, 4, 8, 16`, the run's own `t` for `--quick`, else
///   the same 25).
///
/// Runs are independent and deterministic (seed 0), computed in parallel.
fn minibatch_section(cfg: &ReproduceConfig) -> Result<(String, Vec<(String, String)>)> {
    use crate::batch::Batching;
    use rayon::prelude::*;
    let (n, t, bias) = (16usize, 2.0, 1.0);
    // 1. The spread runs.
    let mut plan: Vec<(usize, Batching)> = Vec::new();
    for bsz in [2usize, 4, 8] {
        for batching in [
            Batching::Expected,
            Batching::Shuffled,
            Batching::Fixed,
            Batching::All,
            Batching::Hardest,
        ] {
            if batching == Batching::Hardest && bsz == 8 && cfg.quick {
                continue;
            }
            plan.push((bsz, batching));
        }
    }
    plan.push((n, Batching::Expected));
    let runs: Vec<BatchRun> = plan
        .par_iter()
        .map(|&(bsz, batching)| batch_run(n, bsz, batching, t, bias, cfg.max_memory))
        .collect::<Result<_>>()?;
    // 2. The phase runs.
    let ts = &linspace(
        cfg.ts[0],
        cfg.ts[cfg.ts.len() - 1],
        if cfg.quick { 12 } else { 25 },
    );
    let exp_bs: Vec<usize> = (2..=16).collect();
    // `shuffled` takes 10000 steps a cell: the run's own t values for --quick.
    let shuffled_ts = if cfg.quick { &cfg.ts } else { ts };
    let mut phase_plan: Vec<(usize, Batching, f64)> = Vec::new();
    for &tt in ts {
        for &bsz in &exp_bs {
            phase_plan.push((bsz, Batching::Expected, tt));
        }
    }
    for &tt in shuffled_ts {
        for bsz in [2usize, 4, 8, 16] {
            phase_plan.push((bsz, Batching::Shuffled, tt));
        }
    }
    let phase: Vec<BatchRun> = phase_plan
        .par_iter()
        .map(|&(bsz, batching, tt)| batch_run(n, bsz, batching, tt, tt, cfg.max_memory))
        .collect::<Result<_>>()?;

    // Figures.
    let spread: Vec<plot::SpreadPoint> = runs
        .iter()
        .map(|r| plot::SpreadPoint {
            batching: r.batching,
            batch: r.batch,
            s_neg_std: r.s_neg_std,
            s_neg_std_in_batch: r.s_neg_std_in_batch,
        })
        .collect();
    plot::batch_spread(
        &cfg.out.join("batch_spread.png"),
        n,
        &format!("Spread of the negatives, free embeddings, N = d = {n}, t = {t}, b = {bias}"),
        &spread,
    )?;
    let cells = |batching: Option<Batching>| -> Vec<plot::BatchCell> {
        phase
            .iter()
            .filter(|r| match batching {
                Some(b) => r.batching == b,
                None => r.batching == Batching::Expected,
            })
            .map(|r| plot::BatchCell {
                batch: r.batch,
                t: r.t,
                s_pos: if batching.is_some() {
                    r.s_pos
                } else {
                    r.theory_s_pos
                },
            })
            .collect()
    };
    plot::batch_phase_map(
        &cfg.out.join("phase_batch.png"),
        n,
        &[
            plot::BatchPanel {
                title: "Theory: s₊* of the expected-loss optimum".into(),
                cells: cells(None),
            },
            plot::BatchPanel {
                title: "Free embeddings, --batching expected".into(),
                cells: cells(Some(Batching::Expected)),
            },
            plot::BatchPanel {
                title: "Free embeddings, --batching shuffled".into(),
                cells: cells(Some(Batching::Shuffled)),
            },
        ],
    )?;
    let figures = vec![
        (
            "batch_spread.png".to_string(),
            format!("Mini-batches (SPEC §8): the standard deviation of the negative similarities of free embeddings (N = d = {n}, t = {t}, b = {bias}, default steps) against the batch size B, over all pairs (solid) and over the pairs that shared a batch at the end (dashed; the last epoch's partition for shuffled and fixed, the last N/B batches for all and hardest). The expected-loss optimum is the CCEM, whose negatives are all equal (std 0, dotted)."),
        ),
        (
            "phase_batch.png".to_string(),
            format!("Mini-batches (SPEC §8): the (B, t) phase diagram at N = {n}, b = t, measured. Left the theory (s₊* of the expected-loss optimum) on the experiment's grid, middle free embeddings trained on the exact expected loss, right with shuffled batches (B must divide N); the weighted ETF (red) and antipodal (blue) thresholds dashed. The fine theory map is theory_batch.png."),
        ),
    ];

    // The section.
    let mut s = String::new();
    let _ = writeln!(s, "\n## Mini-batches (SPEC §8)\n");
    let _ = writeln!(
        s,
        "Free embeddings, N = d = {n}, t = {t}, b = {bias}, seed 0, default steps (10000 batch steps for the stochastic strategies). The theory is the optimum of the expected loss over uniformly drawn batches (negatives weighted by w = (B-1)/(N-1)); `expected`, `shuffled` and `all` minimise that loss (exactly, or in expectation); `fixed` instead solves each batch of its partition as a full batch of size B, and `hardest` (OSGD) steps on the batch of largest loss, so neither is expected to meet it. Figures: `batch_spread.png`, `phase_batch.png`, `theory_batch.png`.\n"
    );
    let _ = writeln!(
        s,
        "| B | batching | s_pos_mean | theory_s_pos | abs. error | s_neg_std | s_neg_std_in_batch |\n|---|---|---|---|---|---|---|"
    );
    let f = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            "–".to_string()
        }
    };
    for r in &runs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.batch,
            if r.batch == n {
                "full batch"
            } else {
                r.batching.as_str()
            },
            f(r.s_pos),
            f(r.theory_s_pos),
            f((r.s_pos - r.theory_s_pos).abs()),
            f(r.s_neg_std),
            f(r.s_neg_std_in_batch),
        );
    }
    let _ = writeln!(
        s,
        "\nHow well each strategy meets the expected-loss theory, over B = 2, 4, 8 of the table (largest |s_pos - s+*|; largest s_neg_std, which the theory puts at 0):\n"
    );
    let _ = writeln!(
        s,
        "| batching | max abs. error of s_pos | max s_neg_std |\n|---|---|---|"
    );
    for batching in [
        Batching::Expected,
        Batching::Shuffled,
        Batching::All,
        Batching::Hardest,
        Batching::Fixed,
    ] {
        let sel: Vec<&BatchRun> = runs
            .iter()
            .filter(|r| r.batching == batching && r.batch < n)
            .collect();
        let err = sel
            .iter()
            .map(|r| (r.s_pos - r.theory_s_pos).abs())
            .fold(0.0, f64::max);
        let sd = sel.iter().map(|r| r.s_neg_std).fold(0.0, f64::max);
        let bs: Vec<String> = sel.iter().map(|r| r.batch.to_string()).collect();
        let _ = writeln!(
            s,
            "| {batching} (B = {}) | {} | {} |",
            bs.join(", "),
            f(err),
            f(sd)
        );
    }
    let _ = writeln!(
        s,
        "\nThe (B, t) phase diagram (`phase_batch.png`, b = t, t = {}..{}: {} values for expected, {} for shuffled), measured s_pos against the theory's s+* on the same cells:\n",
        ts[0],
        ts[ts.len() - 1],
        ts.len(),
        shuffled_ts.len()
    );
    let _ = writeln!(
        s,
        "| batching | cells | mean abs. error | max abs. error | cells within 0.02 |\n|---|---|---|---|---|"
    );
    for batching in [Batching::Expected, Batching::Shuffled] {
        let errs: Vec<f64> = phase
            .iter()
            .filter(|r| r.batching == batching)
            .map(|r| (r.s_pos - r.theory_s_pos).abs())
            .collect();
        let within = errs.iter().filter(|e| **e <= 0.02).count();
        let _ = writeln!(
            s,
            "| {batching} | {} | {} | {} | {within} |",
            errs.len(),
            f(errs.iter().sum::<f64>() / errs.len() as f64),
            f(errs.iter().cloned().fold(0.0, f64::max)),
        );
    }
    let _ = writeln!(
        s,
        "\n`all` steps through the C(N,B) batches in lexicographic order, so a run shorter than one cycle (C(16,8) = 12870 > 10000 steps) sees a biased selection of them. Smaller batches push the optimum toward the ETF (s+* rises as B falls). `fixed` reaches the full-batch optimum of size B within each batch (the ETF, s_pos = 1, where that optimum is the ETF) and spreads the negatives over all pairs far more than within its batches.\n"
    );
    Ok((s, figures))
}

/// Draws the figures; returns `(file, caption)` pairs.
fn draw_figures(cfg: &ReproduceConfig) -> Result<Vec<(String, String)>> {
    let out = &cfg.out;
    let panel = |dir: &str, title: &str| -> Result<PanelInput> {
        Ok(PanelInput {
            table: plot::read_results(&out.join(dir).join("results.csv"), cfg.max_memory)?,
            title: Some(title.to_string()),
        })
    };
    let mut figs = Vec::new();
    let enc_info = panel("encoder-infonce", "InfoNCE loss (encoder)")?;
    let enc_sig = panel("encoder-sigmoid", "Sigmoid loss, b = t (encoder)")?;
    plot::phase_diagram(
        &[enc_info.clone(), enc_sig.clone()],
        &out.join("phase_encoder.png"),
        &plot::PhaseOptions::default(),
    )?;
    figs.push((
        "phase_encoder.png".into(),
        format!(
            "The paper's figure: mean positive similarity of the trained encoder ({} SGD steps, mean of {} seeds) over (N, t), InfoNCE (left, t is the temperature) and sigmoid with b = t (right), with the ETF (upper) and antipodal (lower) thresholds of the theory dashed.",
            cfg.steps, cfg.seeds
        ),
    ));
    let free_sig = panel("free-sigmoid", "Sigmoid loss, b = t (free embeddings)")?;
    let free_info = panel("free-infonce", "InfoNCE loss (free embeddings)")?;
    plot::phase_diagram(
        &[free_info, free_sig.clone()],
        &out.join("phase_free.png"),
        &plot::PhaseOptions {
            vmin: -1.0,
            vmax: 1.0,
            curves: true,
        },
    )?;
    figs.push((
        "phase_free.png".into(),
        "Free embeddings optimised on the sphere to convergence (d = N): mean positive similarity, colour scale -1..1. The sigmoid optimum moves from the ETF (s = 1) through the CCEM to the antipodal structure (s = -1) exactly at the dashed thresholds; InfoNCE stays at the ETF.".into(),
    ));
    plot::theory_map(
        &out.join("theory_map.png"),
        &plot::TheoryMapOptions {
            ns: cfg.ns.clone(),
            ts: linspace(cfg.ts[0], cfg.ts[cfg.ts.len() - 1], 200),
            bias: BiasMode::Tied,
            ..Default::default()
        },
    )?;
    figs.push((
        "theory_map.png".into(),
        "The theory: s+* of the exact optimum of the sigmoid loss over (N, t), b = t (SPEC §3)."
            .into(),
    ));
    plot::diff_map(
        &free_sig,
        &out.join("diff_free.png"),
        &plot::DiffOptions::default(),
    )?;
    figs.push((
        "diff_free.png".into(),
        "Free embeddings minus theory: s_pos - s+* (sigmoid, b = t).".into(),
    ));
    plot::diff_map(
        &enc_sig,
        &out.join("diff_encoder.png"),
        &plot::DiffOptions::default(),
    )?;
    figs.push((
        "diff_encoder.png".into(),
        "Encoder minus theory: s_pos - s+* (sigmoid, b = t). Below the antipodal threshold the encoder's final ReLU keeps every cosine >= 0, so it cannot reach s = -1.".into(),
    ));
    plot::curves(
        Some(&free_sig.table),
        &out.join("curves.png"),
        &plot::CurvesOptions {
            ns: curve_ns(&cfg.ns),
            ..Default::default()
        },
    )?;
    figs.push((
        "curves.png".into(),
        "The optimum against t for a few N (lines: theory c*, s+*, s-*; points: free embeddings)."
            .into(),
    ));
    // Mini-batches (SPEC §8): the optimum of the expected loss over (B, t) at N = 16.
    let batches: Vec<usize> = (2..=16).collect();
    plot::batch_theory_map(
        &out.join("theory_batch.png"),
        16,
        &batches,
        &linspace(cfg.ts[0], cfg.ts[cfg.ts.len() - 1], 100),
    )?;
    figs.push((
        "theory_batch.png".into(),
        "Mini-batches (SPEC §8): s+* of the optimum of the expected sigmoid loss over uniformly drawn batches of B of N = 16 pairs, b = t; negatives weighted by w = (B-1)/(N-1), with the weighted ETF and antipodal thresholds dashed. Smaller batches push the optimum toward the ETF; for B <= 3 there is no antipodal phase.".into(),
    ));
    plot::loss_curve(
        &out.join("loss_curve.png"),
        &plot::LossCurveOptions::default(),
    )?;
    figs.push((
        "loss_curve.png".into(),
        "The CCEM loss l(c) for N = 10 and a few t = b, its minimum c* marked: ETF (c* = 0), intermediate, antipodal (c* = 1).".into(),
    ));
    figs.push(margin_figure(cfg)?);
    Ok(figs)
}

/// The maximum margin over (N, d) (SPEC §7.2): `N = 3..12`, `d = 2..12` with the solver's
/// map defaults (8 random starts per cell, no basin hopping, the exact polish), or `N = 3..8`,
/// `d = 2..7` with 2 random starts and 60 steps per stage for `--quick`.
fn margin_figure(cfg: &ReproduceConfig) -> Result<(String, String)> {
    let opts = if cfg.quick {
        plot::MarginMapOptions {
            ns: (3..=8).collect(),
            ds: (2..=7).collect(),
            restarts: 2,
            hops: 0,
            steps_per_stage: 60,
            max_memory: cfg.max_memory,
            ..Default::default()
        }
    } else {
        plot::MarginMapOptions {
            max_memory: cfg.max_memory,
            ..Default::default()
        }
    };
    let cells = plot::margin_cells(&opts)?;
    plot::margin_map(&cells, &cfg.out.join("margin_map.png"), None)?;
    Ok((
        "margin_map.png".into(),
        "Where real models live, d < N: the maximum margin (min S_ii - max S_ij)/2 of N pairs in R^d, found by `ccem max-margin`, as a fraction of the bound N/(2(N-1)). Above the red line d = N - 1 the simplex ETF reaches the bound; below, the optimum is a spherical code (the square, the pentagon, the cross-polytope with margin 1/2 for d >= N/2, ...), which a sigmoid loss with learnt t and relative bias approaches.".into(),
    ))
}

/// A few batch sizes of the grid for the curves: the paper's 5, 10, 20, 50 where present,
/// otherwise four spread over the grid.
fn curve_ns(ns: &[usize]) -> Vec<usize> {
    let preferred: Vec<usize> = [5, 10, 20, 50]
        .into_iter()
        .filter(|n| ns.contains(n))
        .collect();
    if preferred.len() >= 2 {
        return preferred;
    }
    let mut picks: Vec<usize> = (0..4).map(|k| ns[k * (ns.len() - 1) / 3]).collect();
    picks.dedup();
    picks
}

/// `REPORT.md`.
fn report_markdown(
    cfg: &ReproduceConfig,
    stages: &[Stage],
    figures: &[(String, String)],
    seconds: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# ccem reproduce: the sigmoid loss's optimal embeddings, theory against experiment\n"
    );
    let _ = writeln!(
        s,
        "Reproduces C. Lee, J. Chang, J. Sohn, *Analysis of Using Sigmoid Loss for Contrastive Learning*, AISTATS 2024 (arXiv:2402.12613), with ccem {}.\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(s, "## What was run\n");
    let _ = writeln!(
        s,
        "- Grid{}: N = {} ({} values, d = N), t = {} ({} values, linspace), b = t for the sigmoid loss; for InfoNCE the same values are the temperature tau.",
        if cfg.quick { " (--quick, coarser than the paper's)" } else { " (the paper's, SPEC §5)" },
        range_text(&cfg.ns),
        cfg.ns.len(),
        format_args!("{}..{}", cfg.ts[0], cfg.ts[cfg.ts.len() - 1]),
        cfg.ts.len()
    );
    let _ = writeln!(
        s,
        "- Theory: the exact optimum of every cell (`theory.csv`)."
    );
    let _ = writeln!(
        s,
        "- Free embeddings: (U, V) optimised on the sphere to convergence (Adam, the gradient-norm stopping rule of `ccem optimize`'s defaults), {} seed(s) per cell.",
        cfg.free_seeds
    );
    let _ = writeln!(
        s,
        "- Encoder: the paper's 2-layer ReLU network on Gaussian data, PyTorch's default init, full-batch SGD with lr 0.5, {} steps, {} seeds per cell.",
        cfg.steps, cfg.seeds
    );
    let _ = writeln!(
        s,
        "- Base seed {}; threads: {}.",
        cfg.seed,
        cfg.threads
            .map_or("all cores".to_string(), |t| t.to_string())
    );
    let _ = writeln!(s, "- Total wall time of this call: {seconds:.1} s.\n");
    let _ = writeln!(
        s,
        "| stage | cells | computed now | resumed | wall time of this call (s) | compute time of all cells (s, summed over cells) |\n|---|---|---|---|---|---|"
    );
    for st in stages {
        let _ = writeln!(
            s,
            "| `{}/` | {} | {} | {} | {:.2} | {:.2} |",
            st.name,
            st.summary.cells_total,
            st.computed,
            st.resumed,
            st.seconds,
            st.compute_seconds
        );
    }
    let _ = writeln!(s, "\n## Agreement with the theory\n");
    for st in stages {
        let _ = writeln!(s, "### {}\n", st.name);
        let _ = writeln!(s, "{}", st.summary.to_markdown());
    }
    let _ = writeln!(
        s,
        "Theory regions are the phases of the exact optimum at each cell: for b = t, `etf` is above the curve t = ((N-1)/N) log(N-3), `antipodal` below t = (1/2) log((N-2)/2), `intermediate` between. The encoder ends in a ReLU, so its cosines are >= 0 and the antipodal structure (s = -1) is out of its reach: there the paper, and this run, see s near 0.\n"
    );
    let _ = writeln!(s, "## Figures\n");
    for (file, caption) in figures {
        let _ = writeln!(s, "![{file}]({file})\n\n{caption}\n");
    }
    s
}

/// `4..50` for a contiguous range, else the list.
fn range_text(ns: &[usize]) -> String {
    let contiguous = ns.windows(2).all(|w| w[1] == w[0] + 1);
    if contiguous && ns.len() > 2 {
        format!("{}..{}", ns[0], ns[ns.len() - 1])
    } else {
        ns.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
/// Runs one sweep into `out/name/`, resumably, and returns its stage and rows.
fn run_stage(
    out: &Path,
    name: &str,
    spec: Valid<SweepSpec>,
    threads: Option<usize>,
    observer: &mut dyn FnMut(&str) -> Box<dyn SweepObserver>,
) -> Result<(Stage, Vec<ResultRow>)> {
    let dir = out.join(name);
    let mut obs = observer(name);
    let timings = TimingLog::new(&dir);
    let runner = |c: &Cell| {
        let t0 = Instant::now();
        let row = run_cell(&spec, c);
        timings.record(c.index, t0.elapsed().as_secs_f64());
        row
    };
    let outcome = run_sweep(&spec, &dir, threads, &runner, obs.as_mut())?;
    let summary = summarize(&spec, &outcome.rows);
    summary.write(&dir)?;
    let compute_seconds = TimingLog::total_seconds(&dir, outcome.rows.iter().map(|r| r.cell));
    Ok((
        Stage {
            name: name.to_string(),
            spec: spec.into_inner(),
            summary,
            seconds: outcome.elapsed.as_secs_f64(),
            compute_seconds,
            computed: outcome.computed,
            resumed: outcome.resumed,
        },
        outcome.rows,
    ))
}
