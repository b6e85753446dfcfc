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
//! then draws the figures and writes `REPORT.md` (what was run, the agreement figures, the
//! figures inlined). The library writes files but never prints; progress goes to the observers
//! the caller supplies.

use crate::error::{Error, Result};
use crate::grid::linspace;
use crate::loss::LossKind;
use crate::plot::{self, PanelInput};
use crate::sweep::engine::{run_sweep, SweepObserver};
use crate::sweep::runner::run_cell;
use crate::sweep::store::TimingLog;
use crate::sweep::summary::{summarize, Summary};
use crate::sweep::{Cell, Mode, RunOptions, SweepSpec};
use crate::theory::{BiasMode, Optimum};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
            run: RunOptions {
                steps: (mode == Mode::Encoder).then_some(self.steps),
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
        let dir = cfg.out.join(name);
        let mut obs = observer(name);
        let timings = TimingLog::new(&dir);
        let runner = |c: &Cell| {
            let t0 = Instant::now();
            let row = run_cell(&spec, c);
            timings.record(c.index, t0.elapsed().as_secs_f64());
            row
        };
        let outcome = run_sweep(&spec, &dir, cfg.threads, &runner, obs.as_mut())?;
        let summary = summarize(&spec, &outcome.rows);
        summary.write(&dir)?;
        let compute_seconds = TimingLog::total_seconds(&dir, outcome.rows.iter().map(|r| r.cell));
        stages.push(Stage {
            name: name.to_string(),
            spec: spec.into_inner(),
            summary,
            seconds: outcome.elapsed.as_secs_f64(),
            compute_seconds,
            computed: outcome.computed,
            resumed: outcome.resumed,
        });
    }
    let figures = draw_figures(cfg)?;
    let minibatch = minibatch_section()?;
    let seconds = start.elapsed().as_secs_f64();
    let report = cfg.out.join("REPORT.md");
    let mut text = report_markdown(cfg, &stages, &figures, seconds);
    text.push_str(&minibatch);
    crate::io::write_bytes(&report, text.as_bytes())?;
    Ok(ReproduceReport {
        stages,
        figures,
        seconds,
        report,
    })
}

/// The mini-batch section of `REPORT.md` (SPEC §8): free embeddings at `N = 16`, `t = 2`,
/// `b = 1` (the example), trained with batches of `B = 4, 8, 16` under `expected`,
/// `shuffled` and `fixed` (default steps and schedule, seed 0), each compared with the optimum
/// of the expected mini-batch loss, with the spread of the negatives over all pairs and within
/// the batches.
fn minibatch_section() -> Result<String> {
    use crate::batch::{Batching, MiniBatch};
    use crate::{optimize, FreeConfig, Loss, Report};
    let (n, t, b) = (16, 2.0, 1.0);
    let loss = Loss::sigmoid(t, b)?;
    let mut s = String::new();
    let _ = writeln!(s, "\n## Mini-batches (SPEC §8)\n");
    let _ = writeln!(
        s,
        "Free embeddings, N = d = {n}, t = {t}, b = {b}, seed 0, default steps. The theory is the optimum of the expected loss over uniformly drawn batches (negatives weighted by w = (B-1)/(N-1)); `fixed` instead solves each batch of its partition as a full batch of size B, so it is not expected to meet it.\n"
    );
    let _ = writeln!(
        s,
        "| B | batching | s_pos_mean | theory_s_pos | abs. error | s_neg_std | s_neg_std_in_batch |\n|---|---|---|---|---|---|---|"
    );
    let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.4}"));
    for bsz in [4usize, 8, 16] {
        for batching in [Batching::Expected, Batching::Shuffled, Batching::Fixed] {
            if bsz == n && batching != Batching::Expected {
                continue; // B = N is the full batch under every strategy.
            }
            let mut cfg = FreeConfig::new(n, n, loss, 0);
            cfg.batch = Some(MiniBatch::new(n, bsz, Some(batching), &loss)?);
            let r = optimize(&cfg)?;
            let rep = Report::new(r.u.view(), r.v.view(), &loss)?
                .with_in_batch(r.u.view(), r.v.view(), &r.last_batches)
                .with_training(cfg.batch, false, &loss);
            let m = rep.measurement;
            let _ = writeln!(
                s,
                "| {bsz} | {} | {} | {} | {} | {} | {} |",
                if bsz == n {
                    "full batch"
                } else {
                    batching.as_str()
                },
                f(m.map(|m| m.pos.mean)),
                f(rep.prediction.map(|o| o.s_pos)),
                f(rep.s_pos_error()),
                f(m.map(|m| m.neg.std)),
                f(rep.s_neg_in_batch.map(|x| x.1)),
            );
        }
    }
    let _ = writeln!(
        s,
        "\nSmaller batches push the optimum toward the ETF (s+* rises as B falls). `expected` lands on the weighted CCEM; `shuffled` approaches it by SGD; `fixed` reaches the full-batch optimum of size B within each batch (the ETF, s_pos = 1, where that optimum is the ETF, as at B = 4 here) and spreads the negatives over all pairs far more than within its batches.\n"
    );
    Ok(s)
}

/// Draws the figures; returns `(file, caption)` pairs.
fn draw_figures(cfg: &ReproduceConfig) -> Result<Vec<(String, String)>> {
    let out = &cfg.out;
    let panel = |dir: &str, title: &str| -> Result<PanelInput> {
        Ok(PanelInput {
            table: plot::read_results(&out.join(dir).join("results.csv"))?,
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
/// defaults, or `N = 3..8`, `d = 2..7` with 2 starts and 60 steps per stage for `--quick`
/// (measured within 2e-5 of the full effort, in well under a second).
fn margin_figure(cfg: &ReproduceConfig) -> Result<(String, String)> {
    let opts = if cfg.quick {
        plot::MarginMapOptions {
            ns: (3..=8).collect(),
            ds: (2..=7).collect(),
            restarts: 2,
            steps_per_stage: 60,
            ..Default::default()
        }
    } else {
        plot::MarginMapOptions::default()
    };
    let cells = plot::margin_cells(&opts)?;
    plot::margin_map(&cells, &cfg.out.join("margin_map.png"), None)?;
    Ok((
        "margin_map.png".into(),
        "Where real models live, d < N: the maximum margin (min S_ii - max S_ij)/2 of N pairs in R^d, found by `ccem optimize --max-margin`, as a fraction of the bound N/(2(N-1)). Above the red line d = N - 1 the simplex ETF reaches the bound; below, the optimum is a spherical code (the square, the pentagon, the cross-polytope with margin 1/2 for d >= N/2, ...), which a sigmoid loss with learnt t and relative bias approaches.".into(),
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
