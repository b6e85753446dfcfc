//! The zoo section of `REPORT.md` (SPEC §9.8): for every registered loss, free embeddings over
//! a grid of `N` and `tau` (or `t = b`) against the loss's optimum on the CCEM, and the sigmoid
//! loss with within-view negatives of weight `W` over `(W, t)`, where Lee et al.'s remedy acts.

use super::{run_stage, Stage};
use crate::error::Result;
use crate::grid::linspace;
use crate::loss::{LossKind, LossParams};
use crate::plot::{self, WithinPoint, ZooPanel, ZooSeries};
use crate::sweep::engine::SweepObserver;
use crate::sweep::prediction::{zoo_loss, zoo_prediction};
use crate::sweep::store::{ResultRow, RowStatus};
use crate::sweep::{Mode, RunOptions, SweepSpec};
use crate::theory::BiasMode;
use std::fmt::Write as _;
use std::path::Path;

/// The step limit of the zoo's free embeddings: at small `tau` (large `t`) the loss is flat
/// near the simplex ETF (its gradient `~ e^{-1/tau}`), and Adam with the default schedule needs
/// up to about 20,000 steps to meet the gradient tolerance at `N = 4, tau = 0.1` (the default
/// 10,000 leave a Gram distance of `~1e-2`); converged cells stop early.
pub const ZOO_STEPS: usize = 40_000;

/// The grids of the zoo section.
#[derive(Clone, Debug, PartialEq)]
pub struct ZooGrid {
    /// Batch sizes (`d = N`).
    pub ns: Vec<usize>,
    /// Temperatures `tau` of the losses that have one.
    pub taus: Vec<f64>,
    /// Scales `t = b` of the sigmoid loss.
    pub ts: Vec<f64>,
    /// Seeds per cell.
    pub seeds: usize,
    /// `N` of the within-view phase map.
    pub phase_n: usize,
    /// Within-view weights `W` of the measured points of the phase map.
    pub ws: Vec<f64>,
    /// Scales `t` of the measured points of the phase map.
    pub phase_ts: Vec<f64>,
    /// The fixed bias `b` of the phase map: at `b = 0` the ETF needs `W > (N-2)/(2N)` as
    /// `t -> inf`, so the line `W = (N-2)/(2N)` is the boundary's asymptote (SPEC §9.6).
    pub phase_b: f64,
    /// The most memory each sweep may use (default: the memory available).
    pub max_memory: crate::limits::MemoryLimit,
}

impl ZooGrid {
    /// The grid of `reproduce --quick` (and of the agreement test, `tests/zoo_sweep.rs`):
    /// `N = 4, 8`, `tau = 0.1, 0.5, 2`, `t = b = 0.5, 2, 8`, 2 seeds; the phase map at `N = 8`,
    /// `b = 0`, measured at `W = 0, 0.2, 0.3, 0.4, 0.5` and `t = 0.5, 2, 8`.
    pub fn quick() -> Self {
        ZooGrid {
            ns: vec![4, 8],
            taus: vec![0.1, 0.5, 2.0],
            ts: vec![0.5, 2.0, 8.0],
            seeds: 2,
            phase_n: 8,
            ws: vec![0.0, 0.2, 0.3, 0.4, 0.5],
            phase_ts: vec![0.5, 2.0, 8.0],
            phase_b: 0.0,
            max_memory: crate::limits::MemoryLimit::Available,
        }
    }

    /// The full grid: `N = 4, 8, 12, 16`, 6 values of `tau` in `[0.05, 2]` and of `t` in
    /// `[0.5, 10]`, 2 seeds; the phase map at `N = 16`, `b = 0`, measured at
    /// `W = 0, 0.05, ..., 0.5` and `t = 0.5, 1, 2, 4, 8`.
    pub fn full() -> Self {
        ZooGrid {
            ns: vec![4, 8, 12, 16],
            taus: vec![0.05, 0.1, 0.2, 0.5, 1.0, 2.0],
            ts: linspace(0.5, 10.0, 6),
            seeds: 2,
            phase_n: 16,
            ws: linspace(0.0, 0.5, 11),
            phase_ts: vec![0.5, 1.0, 2.0, 4.0, 8.0],
            phase_b: 0.0,
            max_memory: crate::limits::MemoryLimit::Available,
        }
    }

    /// The swept values of loss `kind`: `tau`, `t`, or the single `0` of a loss without
    /// parameters.
    fn swept(&self, kind: LossKind) -> Vec<f64> {
        if kind.takes("tau") {
            self.taus.clone()
        } else if kind.takes("t") {
            self.ts.clone()
        } else {
            vec![0.0]
        }
    }

    /// The free-embedding sweep of loss `kind` (`d = N`, `b = t`), within-view weight `w`.
    pub fn spec(&self, kind: LossKind, seed: u64) -> SweepSpec {
        SweepSpec {
            mode: Mode::Free,
            objective: kind,
            ns: self.ns.clone(),
            ts: self.swept(kind),
            bias: BiasMode::Tied,
            seeds: self.seeds,
            base_seed: seed,
            d_ratio: 1.0,
            ds: None,
            within_view: None,
            run: RunOptions {
                steps: Some(ZOO_STEPS),
                max_memory: self.max_memory,
                ..RunOptions::default()
            },
            shard: None,
        }
    }

    /// The sweep of one measured column `W` of the phase map (sigmoid, `N = phase_n`,
    /// `b = phase_b`).
    pub fn within_spec(&self, w: f64, seed: u64) -> SweepSpec {
        SweepSpec {
            ns: vec![self.phase_n],
            ts: self.phase_ts.clone(),
            bias: BiasMode::Fixed(self.phase_b),
            within_view: Some(w),
            ..self.spec(LossKind::Sigmoid, seed)
        }
    }
}

/// Mean and sample standard deviation.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// One loss's panel: per `N`, the theory's `s_+*` over a fine grid of the swept value and the
/// measured mean `s_pos` (over seeds) per cell; a loss without parameters is drawn against `N`.
fn panel(spec: &SweepSpec, rows: &[ResultRow]) -> Result<ZooPanel> {
    let kind = spec.objective;
    let ok: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.status == RowStatus::Ok && r.s_pos.is_some())
        .collect();
    let measured_at = |n: usize, t: f64| -> Option<(f64, f64)> {
        let v: Vec<f64> = ok
            .iter()
            .filter(|r| r.n == n && (r.t - t).abs() <= 1e-12 * t.abs().max(1.0))
            .filter_map(|r| r.s_pos)
            .collect();
        (!v.is_empty()).then(|| mean_std(&v))
    };
    let theory = |n: usize, t: f64| -> Result<f64> {
        let loss = spec.loss_at(t)?;
        Ok(zoo_prediction(n, n, &loss, None, false).map_or(f64::NAN, |z| z.s_pos))
    };
    let mut series = Vec::new();
    let x_title;
    if spec.ts.len() == 1 && !kind.takes("t") && !kind.takes("tau") {
        x_title = "N".to_string();
        let t = spec.ts[0];
        let mut th = Vec::new();
        let mut me = Vec::new();
        for &n in &spec.ns {
            th.push((n as f64, theory(n, t)?));
            if let Some((m, sd)) = measured_at(n, t) {
                me.push((n as f64, m, sd));
            }
        }
        series.push(ZooSeries {
            label: "all N".into(),
            theory: th,
            measured: me,
        });
    } else {
        x_title = if kind.takes("t") {
            "t (b = t)".to_string()
        } else {
            "tau".to_string()
        };
        let (lo, hi) = (spec.ts[0], spec.ts[spec.ts.len() - 1]);
        // A fine grid, geometric (the temperatures span decades).
        let fine: Vec<f64> = (0..=60)
            .map(|k| lo * (hi / lo).powf(k as f64 / 60.0))
            .collect();
        for &n in &spec.ns {
            let th = fine
                .iter()
                .map(|&t| Ok((t, theory(n, t)?)))
                .collect::<Result<Vec<_>>>()?;
            let me = spec
                .ts
                .iter()
                .filter_map(|&t| measured_at(n, t).map(|(m, sd)| (t, m, sd)))
                .collect();
            series.push(ZooSeries {
                label: format!("N = {n}"),
                theory: th,
                measured: me,
            });
        }
    }
    Ok(ZooPanel {
        title: format!("{kind}: free embeddings (d = N) vs. CCEM optimum"),
        x_title,
        series,
    })
}

/// What [`zoo_section`] returns: the section's Markdown, its figures (file, caption) and its
/// stages.
pub type ZooSection = (String, Vec<(String, String)>, Vec<Stage>);

/// The zoo section: runs its sweeps into `out/zoo-*/`, draws `zoo_agreement.png` and
/// `zoo_within_view.png`, and returns the section's Markdown, its figures and its stages.
///
/// # Errors
/// A directory that cannot be written or holds another configuration; a failed figure.
pub fn zoo_section(
    out: &Path,
    grid: &ZooGrid,
    seed: u64,
    threads: Option<usize>,
    observer: &mut dyn FnMut(&str) -> Box<dyn SweepObserver>,
) -> Result<ZooSection> {
    let mut stages = Vec::new();
    let mut panels = Vec::new();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## The loss zoo: does training reach each loss's optimum? (SPEC §9)\n"
    );
    let _ = writeln!(
        s,
        "Free embeddings (d = N, {} seeds per cell, `ccem optimize`'s defaults but at most {} steps) for every loss, over N = {:?} and tau = {:?} (sigmoid: t = b = {:?}), compared with the loss's optimum on the CCEM (`theory::zoo::optimum`). A cell meets the theory when |s_pos - s+*| <= 1e-3 and the Gram distance to the predicted CCEM is <= 1e-3. A cell whose free optimum has a *lower* loss than the CCEM's minimum (off the CCEM) is a finding, listed with both losses, never a miss. `theorem` says whether a theorem makes the CCEM optimum the optimum over all embeddings for d >= N (SPEC §9.5).\n",
        grid.seeds, ZOO_STEPS, grid.ns, grid.taus, grid.ts
    );
    let _ = writeln!(
        s,
        "| loss | theorem | cells | on the CCEM | max abs. error of s_pos | max Gram distance | beat the CCEM (findings) | misses |\n|---|---|---|---|---|---|---|---|"
    );
    let mut details = String::new();
    for &kind in LossKind::ALL {
        let spec = grid.spec(kind, seed).check()?;
        let name = format!("zoo-{kind}");
        let (stage, rows) = run_stage(out, &name, spec, threads, observer)?;
        panels.push(panel(&stage.spec, &rows)?);
        let theorem = rows.iter().any(|r| r.ccem_global == Some(true));
        if let Some(f) = &stage.summary.free {
            let _ = writeln!(
                s,
                "| {kind} | {} | {} | {} | {:.2e} | {:.2e} | {} | {} |",
                if theorem { "yes" } else { "CCEM family only" },
                f.cells + f.beats_ccem,
                f.meets,
                f.max_s_pos_error,
                f.max_gram_distance,
                f.beats_ccem,
                f.misses.len()
            );
            if f.beats_ccem > 0 || !f.misses.is_empty() {
                let _ = writeln!(details, "#### {kind}\n\n{}", stage.summary.to_markdown());
            }
        }
        stages.push(stage);
    }
    if !details.is_empty() {
        let _ = writeln!(s, "\nThe cells that beat the CCEM or miss it:\n\n{details}");
    }
    let mut figures = Vec::new();
    plot::zoo_agreement(&out.join("zoo_agreement.png"), &panels)?;
    figures.push((
        "zoo_agreement.png".to_string(),
        "Every loss of the zoo: the measured s_pos of free embeddings (circles, with the spread over seeds) against the theory's s+* of the CCEM optimum (lines), per N.".to_string(),
    ));
    // The within-view phase map.
    let n = grid.phase_n;
    let mut points = Vec::new();
    let mut wtable = String::new();
    for &w in &grid.ws {
        let spec = grid.within_spec(w, seed).check()?;
        let name = format!("zoo-sigmoid-within-{w}");
        let (stage, rows) = run_stage(out, &name, spec, threads, observer)?;
        for r in rows.iter().filter(|r| r.status == RowStatus::Ok) {
            points.push(WithinPoint {
                w,
                t: r.t,
                meets: r.meets_theory == Some(true),
            });
            let _ = writeln!(
                wtable,
                "| {w:.2} | {:.2} | {} | {:.4} | {:.4} | {} |",
                r.t,
                r.seed_index,
                r.s_pos.unwrap_or(f64::NAN),
                r.s_pos_theory.unwrap_or(f64::NAN),
                r.phase.map_or("-".to_string(), |p| p.to_string())
            );
        }
        stages.push(stage);
    }
    let b = grid.phase_b;
    let map_ws = linspace(0.0, 0.5, 26);
    let t_hi = grid.phase_ts.iter().copied().fold(1.0, f64::max) * 1.25;
    let map_ts = linspace(0.1, t_hi, 40);
    plot::within_view_phase_map(
        &out.join("zoo_within_view.png"),
        n,
        b,
        &map_ws,
        &map_ts,
        &points,
    )?;
    figures.push((
        "zoo_within_view.png".to_string(),
        format!("The sigmoid loss with within-view negatives of weight W at N = {n}, b = {b}: the theory's s+* over (W, t) (1 = the simplex ETF), the line W = (N-2)/(2N) past which the optimum is the ETF at every t, and the free embeddings (white: on the predicted CCEM; red: off it)."),
    ));
    let w_line = (n as f64 - 2.0) / (2.0 * n as f64);
    // Where, along the map's t, the optimum is the ETF at weight W (theory), for the text.
    let etf_range = |w: f64| -> Result<String> {
        let mut etf = Vec::new();
        for &t in &map_ts {
            let loss = crate::loss::Loss::build(
                LossKind::Sigmoid,
                &LossParams {
                    t: Some(t),
                    b: Some(b),
                    within_view: Some(w),
                    ..Default::default()
                },
            )?;
            let z = crate::theory::zoo::optimum(&zoo_loss(&loss)?, n, None)?;
            if z.phase == crate::theory::Phase::Etf {
                etf.push(t);
            }
        }
        Ok(match (etf.first(), etf.last()) {
            (Some(lo), Some(hi)) if etf.len() == map_ts.len() => {
                format!("all ({lo:.2} to {hi:.2})")
            }
            (Some(lo), Some(hi)) => format!(
                "{lo:.2} to {hi:.2} ({} of {} values)",
                etf.len(),
                map_ts.len()
            ),
            _ => "none".to_string(),
        })
    };
    let _ = writeln!(
        s,
        "\n### Within-view negatives: Lee et al.'s remedy (sigmoid, N = {n}, b = {b})\n\nOn the CCEM, the within-view similarity is s_w = -(1-c)/(N-1) + c. At c = 0 the loss's slope is 2t sigmoid(b - t) + t sigmoid(beta) (2WN - (N-2)), beta = -t/(N-1) - b, so for W >= (N-2)/(2N) = {w_line:.3} the optimum is the simplex ETF at every t and b (SPEC §9.6). At b = 0 and W < (N-2)/(2N) the ETF holds only while 2 sigmoid(-t) >= sigmoid(-t/(N-1)) ((N-2) - 2WN), which fails for t large: the line is the asymptote of the boundary. On the map's grid of t, the ETF holds for:\n"
    );
    let _ = writeln!(s, "| W | ETF for t in the grid |\n|---|---|");
    for &w in &grid.ws {
        let _ = writeln!(s, "| {w:.2} | {} |", etf_range(w)?);
    }
    let _ = writeln!(
        s,
        "\nMeasured free embeddings (d = N = {n}):\n\n| W | t | seed | s_pos | theory s+* | theory phase |\n|---|---|---|---|---|---|\n{wtable}"
    );
    Ok((s, figures, stages))
}
