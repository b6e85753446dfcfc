//! `ccem max-margin`: a maximum-margin constellation of `N` pairs in `R^d` (SPEC.md §7.2, the
//! search §7.3).

use super::output::{print_records, Format, SaveArgs};
use anyhow::{Context, Result};
use ccem::geometry::QuantileLevel;
use ccem::optim::max_margin::{max_margin, MaxMarginConfig, MaxMarginRecord};
use ccem::options::MemoryArg;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  ccem max-margin --n 5 --d 2                 # the pentagon: margin (1 - cos 72 deg)/2
  ccem max-margin --n 14 --d 3                # Tammes N = 14: 0.218025 (certified)
  ccem max-margin --n 24 --d 4                # the 24-cell: 0.25
  ccem max-margin --n 20 --d 3 --restarts 64 --hops 32 --seed 1 --save-u U.npy --format json

Maximises m(U, V) = (min S_ii - max_{i!=j} S_ij)/2 over unit rows (SPEC §7.2). The search
(SPEC §7.3): structured starts (polygon, simplex, cross-polytope, 24-cell, root shell, spiral),
random starts (three in four with U = V), a smooth max-min ascent with growing sharpness,
basin hopping from the best point, then Newton on the KKT system of the active constraints
(certified to 1e-10). Defaults: 32 random starts and 16 hopping rounds of 4 perturbations while
the run stays within about 2e10 multiply-adds (fewer for large N d, at least 2 starts); runs of
more than 2e13 are refused, and so are runs over the memory limit (--max-memory).
Output: margin, margin_bias, margin_bound, known_best (the best known spherical code: simplex,
cross-polytope, polygon, Tammes d = 3 N <= 24, 24-cell) and gap_to_known, termination
(converged: certified; step_limit: not certified; diverged: a non-finite value, exit 3),
contacts (pairs at the margin; contact_pairs lists them), rattlers, seconds.
`ccem optimize --max-margin` is gone: use this command.")]
pub struct MaxMarginArgs {
    /// Number of pairs N (>= 2)
    #[arg(long)]
    pub n: usize,
    /// Dimension d (>= 1) [default: N]
    #[arg(long)]
    pub d: Option<usize>,
    /// Random starts [default: 32, fewer for large N d]
    #[arg(long)]
    pub restarts: Option<usize>,
    /// Basin-hopping rounds of 4 perturbations each [default: 16, fewer for large N d]
    #[arg(long)]
    pub hops: Option<usize>,
    /// Adam steps per start, over 12 sharpness stages [default: 3600]
    #[arg(long)]
    pub steps: Option<usize>,
    /// Learning rate of the first stage [default: 0.05]
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// Skip the exact polish (the result is then never certified)
    #[arg(long)]
    pub no_polish: bool,
    /// Seed of the random starts
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Quantile level p of margin_quantile = (q_p(S_ii) - q_{1-p}(S_ij)) / 2
    #[arg(long, value_name = "P", default_value_t = ccem::geometry::DEFAULT_MARGIN_QUANTILE, allow_hyphen_values = true)]
    pub margin_quantile: f64,
    #[command(flatten)]
    pub save: SaveArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The configuration of the arguments (checked by the library).
fn config(a: &MaxMarginArgs, max_memory: Option<MemoryArg>) -> Result<MaxMarginConfig> {
    let mut cfg = MaxMarginConfig::new(a.n, a.d.unwrap_or(a.n), a.seed)?
        .with_max_memory(super::memory_limit(max_memory)?);
    if let Some(r) = a.restarts {
        cfg = cfg.with_restarts(r)?;
    }
    if let Some(h) = a.hops {
        cfg = cfg.with_hops(h);
    }
    if let Some(steps) = a.steps {
        cfg = cfg.with_steps(steps)?;
    }
    if let Some(lr) = a.lr {
        cfg = cfg.with_lr(lr)?;
    }
    Ok(cfg.with_polish(!a.no_polish))
}

pub fn run(a: &MaxMarginArgs, max_memory: Option<MemoryArg>) -> Result<()> {
    let level = QuantileLevel::new(a.margin_quantile).context("invalid --margin-quantile")?;
    let cfg = config(a, max_memory)?;
    // The output paths are checked before the work, as in `optimize` and `train`.
    let outputs = a.save.paths();
    outputs.check(ccem::options::Spelling::Flag)?;
    let clock = std::time::Instant::now();
    let r = max_margin(&cfg)?;
    let seconds = clock.elapsed().as_secs_f64();
    let diverged = r.termination.is_diverged();
    let rec = MaxMarginRecord::new(&cfg, &r, level, seconds)?;
    outputs.write(&r.u, &r.v)?;
    if a.format == Format::Table {
        println!(
            "# maximum-margin constellation of {} pairs in R^{} ({} random starts, {} hopping rounds)",
            rec.n, rec.d, rec.restarts, rec.hops
        );
    }
    print_records(a.format, &[rec])?;
    if diverged {
        return Err(super::ExitStatus {
            code: super::ExitStatus::DIVERGED,
            message: "every start diverged (a non-finite value appeared); try a smaller --lr"
                .into(),
        }
        .into());
    }
    Ok(())
}
