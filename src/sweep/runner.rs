//! Running one cell: build the loss, train (free embeddings or the encoder), measure the result
//! against the theory, and return its row.

use super::store::ResultRow;
use super::{Cell, Mode, Objective, SweepSpec};
use crate::encoder::{self, EncoderConfig};
use crate::geometry::measure;
use crate::loss::{BlockOptions, Loss};
use crate::optim::{self, FreeConfig};
use crate::theory::{InfoNceOptimum, Phase, SigmoidOptimum};

/// The theory of a cell: `(c*, s_+*, s_-*, phase)`.
pub fn cell_theory(
    objective: Objective,
    n: usize,
    t: f64,
    b: Option<f64>,
) -> (f64, f64, f64, Phase) {
    match objective {
        Objective::Sigmoid => {
            let o = SigmoidOptimum::solve_unchecked(n, t, b.unwrap_or(t));
            (o.c_star, o.s_pos, o.s_neg, o.phase)
        }
        Objective::Infonce => {
            let o = InfoNceOptimum::solve(n, t).expect("tau validated by the spec");
            (o.c_star, o.s_pos, o.s_neg, o.phase)
        }
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The loss of a cell.
pub fn cell_loss(spec: &SweepSpec, cell: &Cell) -> Loss {
    match spec.objective {
        Objective::Sigmoid => Loss::sigmoid(cell.t, cell.b.unwrap_or(cell.t)),
        Objective::Infonce => Loss::infonce(cell.t),
    }
    .expect("parameters validated by the spec")
}

/// Runs one cell of `spec` and returns its row. Never panics on divergence: a non-finite value
/// gives a row with status `diverged`.
pub fn run_cell(spec: &SweepSpec, cell: &Cell) -> ResultRow {
    let loss = cell_loss(spec, cell);
    let mb = spec.run.batch.map(|b| {
        crate::batch::MiniBatch::new(cell.n, b, spec.run.batching, &loss)
            .expect("mini-batch validated by the spec")
    });
    let (c_star, s_pos_th, s_neg_th, phase) = match (mb, loss) {
        // The optimum of the expected mini-batch loss (SPEC §7).
        (Some(mb), Loss::Sigmoid { t, b }) => {
            let o = SigmoidOptimum::solve_weighted_unchecked(cell.n, t, b, mb.weight());
            (o.c_star, o.s_pos, o.s_neg, o.phase)
        }
        _ => cell_theory(spec.objective, cell.n, cell.t, cell.b),
    };
    let nvw = spec.run.neg_variance_weight.unwrap_or(0.0);
    let (u, v, value, steps, converged, diverged, b_final) = match spec.mode {
        Mode::Encoder => {
            let mut cfg = EncoderConfig::new(cell.n, cell.d, cell.seed);
            if let Some(s) = spec.run.steps {
                cfg.steps = s;
            }
            if let Some(lr) = spec.run.lr {
                cfg.lr = lr;
            }
            if let Some(l) = spec.run.layers {
                cfg.layers = l;
            }
            cfg.batch = mb;
            cfg.neg_variance_weight = nvw;
            let r = encoder::train(&cfg, &loss).expect("configuration validated by the spec");
            (r.u, r.v, r.loss, r.steps_run, None, r.diverged, cell.b)
        }
        Mode::Free => {
            let mut cfg = FreeConfig::new(cell.n, cell.d, loss, cell.seed);
            if let Some(s) = spec.run.steps {
                cfg.steps = s;
            }
            if let Some(lr) = spec.run.lr {
                cfg.lr = lr;
            }
            if let Some(r) = spec.run.restarts {
                cfg.restarts = r;
            }
            if let Some(g) = spec.run.grad_tol {
                cfg.grad_tol = g;
            }
            if let Some(o) = &spec.run.optimizer {
                cfg.optimizer = o.parse().expect("optimizer validated by the CLI");
            }
            cfg.batch = mb;
            cfg.neg_variance_weight = nvw;
            let r = optim::optimize(&cfg).expect("configuration validated by the spec");
            let b = match loss {
                Loss::Sigmoid { .. } => Some(r.b),
                Loss::InfoNce { .. } => None,
            };
            (
                r.u,
                r.v,
                r.loss,
                r.steps_run,
                Some(r.converged),
                r.diverged,
                b,
            )
        }
    };
    let all_finite = value.is_finite() && u.iter().chain(v.iter()).all(|x| x.is_finite());
    // A diverged cell keeps its row (status `diverged`, no measurements): the sweep goes on.
    let m = (!diverged && all_finite).then(|| {
        measure(
            u.view(),
            v.view(),
            BlockOptions {
                block: 256,
                parallel: false,
            },
        )
    });
    let gd_theory = m.and_then(|m| finite(c_star).map(|c| m.gram_distance_to(c)));
    let meets = (spec.mode == Mode::Free).then(|| match (m, gd_theory) {
        (None, _) => false,
        (Some(m), Some(gd)) => optim::meets_theory(m.pos.mean, s_pos_th, gd),
        (Some(_), None) => true,
    });
    ResultRow {
        cell: cell.index,
        mode: spec.mode.as_str().into(),
        objective: spec.objective.as_str().into(),
        n: cell.n,
        d: cell.d,
        t: cell.t,
        b: b_final,
        seed_index: cell.seed_index,
        seed: cell.seed,
        status: if m.is_some() { "ok" } else { "diverged" }.into(),
        s_pos: m.map(|m| m.pos.mean),
        s_neg: m.map(|m| m.neg.mean),
        loss: m.map(|_| value),
        c_fit: m.map(|m| m.c_fit),
        gram_distance: m.map(|m| m.gram_distance),
        c_star: finite(c_star),
        s_pos_theory: finite(s_pos_th),
        s_neg_theory: finite(s_neg_th),
        phase,
        gram_distance_to_theory: gd_theory,
        meets_theory: meets,
        steps,
        converged,
    }
}
