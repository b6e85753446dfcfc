//! `ccem optimize --max-margin`: a maximum-margin constellation of `N` pairs in `R^d`
//! (SPEC.md §7.2).

use super::optimize::{OptimizeArgs, OptimizerArg};
use super::output::{print_records, Format};
use super::theory::LossKind;
use anyhow::{bail, Result};
use ccem::geometry::{margins, QuantileLevel};
use ccem::loss::BlockOptions;
use ccem::optim::max_margin::{
    max_margin, MaxMarginConfig, DEFAULT_MM_BETA0, DEFAULT_MM_BETA_MAX, DEFAULT_MM_STAGES,
};
use ccem::options::{OutputPaths, Spelling};
use serde::Serialize;

#[derive(Serialize)]
struct MaxMarginRecord {
    n: usize,
    d: usize,
    objective: &'static str,
    seed: u64,
    restarts: usize,
    best_restart: usize,
    steps_per_start: usize,
    margin: f64,
    margin_bias: f64,
    margin_bound: f64,
    /// `margin / margin_bound`.
    margin_ratio: f64,
    margin_quantile: f64,
    margin_quantile_p: f64,
    /// `d >= N - 1`: the simplex ETF reaches the bound.
    etf_possible: bool,
    restart_margins: Vec<f64>,
}

pub fn run(a: &OptimizeArgs, level: QuantileLevel) -> Result<()> {
    let loss_flags = a.t.is_some()
        || a.b.is_some()
        || a.relative_bias.is_some()
        || a.tau.is_some()
        || a.learn_t
        || a.learn_b
        || a.init_t.is_some()
        || a.init_b.is_some()
        || a.loss != LossKind::Sigmoid
        || a.optimizer != OptimizerArg::Adam
        || a.momentum != 0.0
        || a.lr_schedule.is_some();
    if loss_flags {
        bail!(
            "--max-margin maximises the margin itself and takes no loss or optimiser settings \
             (--loss/--t/--b/--relative-bias/--tau/--learn-t/--learn-b/--init-t/--init-b/\
             --optimizer/--momentum/--lr-schedule); it takes --n, --d, --restarts, --steps, --lr, --seed, \
             --save-u/--save-v and --format"
        );
    }
    let d = a.d.unwrap_or(a.n);
    let mut cfg = MaxMarginConfig::new(a.n, d, a.seed)?;
    if let Some(r) = a.restarts {
        cfg = cfg.with_restarts(r)?;
    }
    if let Some(steps) = a.steps {
        if steps < DEFAULT_MM_STAGES {
            bail!(
                "invalid --steps {steps}: --max-margin needs at least {DEFAULT_MM_STAGES} steps \
                 (one per sharpness stage)"
            );
        }
        cfg = cfg.with_schedule(
            DEFAULT_MM_STAGES,
            steps / DEFAULT_MM_STAGES,
            DEFAULT_MM_BETA0,
            DEFAULT_MM_BETA_MAX,
        )?;
    }
    if let Some(lr) = a.lr {
        cfg = cfg.with_lr(lr)?;
    }
    // The output paths are checked before the work; the extension picks the format.
    let outputs = OutputPaths {
        save_u: a.save_u.clone(),
        save_v: a.save_v.clone(),
    };
    outputs.check(Spelling::Flag)?;
    let r = max_margin(&cfg)?;
    let m = margins(r.u.view(), r.v.view(), level, BlockOptions::default())?;
    outputs.write(&r.u, &r.v)?;
    let rec = MaxMarginRecord {
        n: cfg.n(),
        d: cfg.d(),
        objective: "max_margin",
        seed: cfg.seed(),
        restarts: cfg.restarts(),
        best_restart: r.best_restart,
        steps_per_start: r.steps_per_start,
        margin: r.margin,
        margin_bias: r.margin_bias,
        margin_bound: r.margin_bound,
        margin_ratio: r.margin / r.margin_bound,
        margin_quantile: m.margin_quantile,
        margin_quantile_p: m.margin_quantile_p,
        etf_possible: d + 1 >= cfg.n(),
        restart_margins: r.restart_margins,
    };
    if a.format == Format::Table {
        println!(
            "# maximum-margin constellation of {} pairs in R^{} ({} starts)",
            rec.n, rec.d, rec.restarts
        );
    }
    print_records(a.format, &[rec])
}
