//! Running one cell: build the loss, train (free embeddings or the encoder), measure the result
//! against the theory ([`Report`]), and return its row.

use super::prediction::{as_optimum, beats_ccem, mean_within, zoo_prediction};
use super::store::{ResultRow, RowStatus};
use super::{Cell, Mode, SweepSpec};
use crate::encoder::{self, EncoderConfig};
use crate::error::Error;
use crate::error::Result;
use crate::loss::{ContrastiveLoss, Loss};
use crate::monitor::{Monitor, Unwatched};
use crate::optim::{self, FreeConfig};
use crate::report::Report;
use crate::valid::Valid;

/// The loss of a cell.
///
/// # Errors
/// Only for a cell that is not one of a valid sweep's ([`SweepSpec::cells`] of a checked spec
/// always gives a valid loss).
pub fn cell_loss(spec: &SweepSpec, cell: &Cell) -> Result<Loss> {
    spec.loss_at(cell.t)
}

/// What one training run ended with, whatever was trained.
struct Trained {
    u: ndarray::Array2<f64>,
    v: ndarray::Array2<f64>,
    loss: f64,
    steps: usize,
    converged: Option<bool>,
    diverged: bool,
    b: Option<f64>,
    /// The batches of the end of a stochastic mini-batch run (empty otherwise).
    last_batches: Vec<Vec<usize>>,
}

/// Runs one cell of `spec` and returns its row. A run that diverges gives a row with status
/// `diverged` (no measurements), not an error.
///
/// # Errors
/// Only for a `cell` that is not one of `spec`'s cells (its configuration is then checked and
/// refused); the cells of [`SweepSpec::cells`] never fail.
pub fn run_cell(spec: &Valid<SweepSpec>, cell: &Cell) -> Result<ResultRow> {
    run_cell_with(spec, cell, &Unwatched)
}

/// [`run_cell`] watched by `monitor` ([`crate::monitor`]): a cell that it stops gives no row.
///
/// # Errors
/// As [`run_cell`]; [`Error::Interrupted`] when the monitor stopped the cell's run.
pub fn run_cell_with(
    spec: &Valid<SweepSpec>,
    cell: &Cell,
    monitor: &dyn Monitor,
) -> Result<ResultRow> {
    crate::monitor::check(monitor, "the sweep")?;
    let loss = cell_loss(spec, cell)?;
    let mb = spec
        .run
        .batch
        .map(|b| crate::batch::MiniBatch::new(cell.n, b, spec.run.batching, &loss))
        .transpose()?;
    let nvw = spec.run.neg_variance_weight.unwrap_or(0.0);
    let tr = match spec.mode {
        Mode::Encoder => {
            let mut cfg = EncoderConfig::new(cell.n, cell.d, cell.seed);
            let o = &spec.run;
            cfg.steps = o.steps.unwrap_or(cfg.steps);
            cfg.lr = o.lr.unwrap_or(cfg.lr);
            cfg.layers = o.layers.unwrap_or(cfg.layers);
            cfg.batch = mb;
            cfg.neg_variance_weight = nvw;
            cfg.max_memory = o.max_memory;
            let r = encoder::train_checked_monitored(&cfg.check()?, &loss, monitor);
            if r.termination.is_stopped() {
                return Err(interrupted(cell));
            }
            Trained {
                diverged: r.termination.is_diverged(),
                u: r.u,
                v: r.v,
                loss: r.loss,
                steps: r.steps_run,
                converged: None,
                b: cell.b,
                last_batches: r.last_batches,
            }
        }
        Mode::Free => {
            let mut cfg = FreeConfig::new(cell.n, cell.d, loss, cell.seed);
            let o = &spec.run;
            cfg.steps = o.steps.unwrap_or(cfg.steps);
            cfg.lr = o.lr.unwrap_or(cfg.lr);
            cfg.restarts = o.restarts.unwrap_or(cfg.restarts);
            cfg.grad_tol = o.grad_tol.unwrap_or(cfg.grad_tol);
            if let Some(name) = &o.optimizer {
                cfg.optimizer = name.parse()?;
            }
            cfg.batch = mb;
            cfg.neg_variance_weight = nvw;
            cfg.max_memory = o.max_memory;
            let r = optim::optimize_checked_with(&cfg.check()?, monitor);
            if r.termination.is_stopped() {
                return Err(interrupted(cell));
            }
            Trained {
                b: cell.b.map(|_| r.b),
                diverged: r.termination.is_diverged(),
                converged: Some(r.termination.is_converged()),
                u: r.u,
                v: r.v,
                loss: r.loss,
                steps: r.steps_run,
                last_batches: r.last_batches,
            }
        }
    };
    let all_finite = tr.loss.is_finite() && tr.u.iter().chain(tr.v.iter()).all(|x| x.is_finite());
    // A diverged cell keeps its row (status `diverged`, no measurements): the sweep goes on.
    let report = if !tr.diverged && all_finite {
        Report::new(tr.u.view(), tr.v.view(), &loss)?.with_in_batch(
            tr.u.view(),
            tr.v.view(),
            &tr.last_batches,
        )
    } else {
        Report::unmeasured(cell.n, cell.d, &loss)
    }
    // The theory of a mini-batch run is the optimum of the expected loss (SPEC §8).
    .with_training(mb, nvw > 0.0, &loss);
    // Every loss is compared with its optimum on the CCEM (SPEC §9), through the trait.
    let batch = mb.as_ref().map(|m| m.size());
    let zoo = zoo_prediction(cell.n, cell.d, &loss, batch, nvw > 0.0);
    let report = Report {
        prediction: zoo.as_ref().map(|z| as_optimum(z, loss)),
        ..report
    };
    let mut row = row(spec, cell, &loss, &tr, &report);
    let full_batch = batch.is_none_or(|b| b >= cell.n) && nvw == 0.0;
    row.within_view = spec.within_view;
    if let (Some(z), true) = (&zoo, row.status == RowStatus::Ok) {
        row.s_within = Some(mean_within(tr.u.view(), tr.v.view()));
        row.s_within_theory = z.s_within.is_finite().then_some(z.s_within);
        row.ccem_global = Some(z.global_optimum.is_some());
        row.beats_ccem = (spec.mode == Mode::Free && full_batch && z.loss.is_finite())
            .then(|| beats_ccem(tr.loss, z.loss));
    } else if row.status == RowStatus::Ok {
        row.s_within = Some(mean_within(tr.u.view(), tr.v.view()));
    }
    Ok(row)
}

/// The error of a cell stopped by its monitor.
fn interrupted(cell: &Cell) -> Error {
    Error::Interrupted(format!(
        "the sweep, in cell {} (N = {}, d = {}, t = {})",
        cell.index, cell.n, cell.d, cell.t
    ))
}

/// The row of a cell from its run and report.
fn row(spec: &SweepSpec, cell: &Cell, loss: &Loss, tr: &Trained, report: &Report) -> ResultRow {
    let m = report.measurement;
    let o = report.prediction;
    let fin = |x: f64| x.is_finite().then_some(x);
    let value = m.map(|_| tr.loss);
    ResultRow {
        cell: cell.index,
        mode: spec.mode,
        objective: spec.objective,
        n: cell.n,
        d: cell.d,
        t: cell.t,
        b: tr.b,
        seed_index: cell.seed_index,
        seed: cell.seed,
        status: if m.is_some() {
            RowStatus::Ok
        } else {
            RowStatus::Diverged
        },
        s_pos: m.map(|m| m.pos.mean),
        s_neg: m.map(|m| m.neg.mean),
        loss: value,
        c_fit: m.map(|m| m.c_fit),
        gram_distance: m.map(|m| m.gram_distance),
        c_star: report.theory_c_star(),
        s_pos_theory: o.and_then(|o| fin(o.s_pos)),
        s_neg_theory: o.and_then(|o| fin(o.s_neg)),
        phase: o.map(|o| o.phase),
        gram_distance_to_theory: report.gram_distance_to_theory(),
        meets_theory: (spec.mode == Mode::Free)
            .then(|| report.meets_theory())
            .flatten(),
        steps: tr.steps,
        converged: tr.converged,
        loss_clip: value.and_then(|v| loss.clip_value(v)),
        theory_loss: o.and_then(|o| fin(o.loss)),
        margin: report.margins.map(|g| g.margin),
        margin_quantile: report.margins.map(|g| g.margin_quantile),
        s_neg_std: m.map(|m| m.neg.std),
        s_neg_std_in_batch: report.s_neg_in_batch.map(|x| x.1).and_then(fin),
        batch: spec.run.batch,
        batching: spec.run.batch.map(|_| {
            spec.run
                .batching
                .unwrap_or(crate::batch::Batching::Shuffled)
        }),
        within_view: None,
        s_within: None,
        s_within_theory: None,
        beats_ccem: None,
        ccem_global: None,
    }
}
