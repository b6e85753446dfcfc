//! The agreement of a sweep with the theory, from its rows.
//!
//! - Free embeddings: the fraction of cells whose optimum meets the theory (`meets_theory`), the
//!   largest errors, and the cells that miss (flagged, never hidden).
//! - Every sweep: per theory region (the phase of the exact optimum at the cell's `(N, t, b)`:
//!   ETF, intermediate, antipodal; for the paper's `t = b` these are "above the ETF curve",
//!   "between", "below the antipodal curve"), the mean measured `s_pos` next to the theory's
//!   `s_+*`, with the spread over seeds (the region mean per seed, then mean and standard
//!   deviation over seeds).

use super::store::{ResultRow, RowStatus};
use super::{Mode, SweepSpec};
use crate::loss::LossKind;
use crate::theory::Phase;
use serde::Serialize;

/// Agreement of the free-embedding optimum with the theory.
#[derive(Clone, Debug, Serialize)]
pub struct FreeAgreement {
    /// Cells that finished (not diverged) and have a theory to meet (`d >= N`).
    pub cells: usize,
    /// Cells that finished without a theory to meet (`d < N`, SPEC §3): neither hits nor
    /// misses.
    pub without_theory: usize,
    /// Cells on the predicted CCEM.
    pub meets: usize,
    /// `meets / cells`.
    pub fraction: f64,
    /// Largest `|s_pos - s_+*|`.
    pub max_s_pos_error: f64,
    /// Largest Gram distance to the theory's CCEM.
    pub max_gram_distance: f64,
    /// The cells that miss, as `(n, t, seed_index)` (at most 50). A cell that beats the CCEM
    /// (`beats_ccem`) is a finding, not a miss.
    pub misses: Vec<(usize, f64, usize)>,
    /// Cells whose free optimum has a lower loss than the CCEM's minimal loss (off the CCEM,
    /// SPEC §9.8): findings about the theory, counted in neither `cells` nor `misses`.
    pub beats_ccem: usize,
    /// Those cells (at most 50), with both losses.
    pub findings: Vec<Finding>,
}

/// A cell whose free optimum beats the CCEM prediction: a lower loss off the CCEM.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Batch size.
    pub n: usize,
    /// The swept value (`t` or `tau`).
    pub t: f64,
    /// Which seed.
    pub seed_index: usize,
    /// The free optimum's loss.
    pub loss: f64,
    /// The CCEM's minimal loss.
    pub theory_loss: f64,
    /// Its measured `s_pos` and `s_neg`.
    pub s_pos: f64,
    /// Measured mean negative similarity.
    pub s_neg: f64,
}

/// The measured `s_pos` over the cells of one theory region.
#[derive(Clone, Debug, Serialize)]
pub struct RegionStat {
    /// The theory's phase in this region.
    pub region: Phase,
    /// Cells (all seeds).
    pub cells: usize,
    /// Mean of the theory's `s_+*` over the region's grid points.
    pub s_pos_theory: f64,
    /// Mean measured `s_pos` over the region (all seeds).
    pub s_pos_mean: f64,
    /// Standard deviation over seeds of the per-seed region mean (0 with one seed).
    pub s_pos_seed_std: f64,
    /// Mean measured `s_neg`.
    pub s_neg_mean: f64,
}

/// Summary of a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `free` or `encoder`.
    pub mode: Mode,
    /// The loss's name.
    pub objective: LossKind,
    /// Cells in this directory's shard.
    pub cells_total: usize,
    /// Rows present.
    pub cells_done: usize,
    /// Rows with status `diverged`.
    pub diverged: usize,
    /// Free embeddings only.
    pub free: Option<FreeAgreement>,
    /// Per theory region.
    pub regions: Vec<RegionStat>,
}

/// Mean and population standard deviation.
fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64;
    (m, v.sqrt())
}

/// Summarises the rows of a sweep.
pub fn summarize(spec: &SweepSpec, rows: &[ResultRow]) -> Summary {
    let ok: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.status == RowStatus::Ok && r.s_pos.is_some())
        .collect();
    let free = (spec.mode == Mode::Free).then(|| {
        // Only cells with a theory (`meets_theory` set) count; `d < N` cells have none. Cells
        // that beat the CCEM are findings, neither hits nor misses.
        let beats: Vec<&&ResultRow> = ok.iter().filter(|r| r.beats_ccem == Some(true)).collect();
        let judged: Vec<&&ResultRow> = ok
            .iter()
            .filter(|r| r.meets_theory.is_some() && r.beats_ccem != Some(true))
            .collect();
        let meets = judged
            .iter()
            .filter(|r| r.meets_theory == Some(true))
            .count();
        let max_err = judged
            .iter()
            .filter_map(|r| Some((r.s_pos? - r.s_pos_theory?).abs()))
            .fold(0.0, f64::max);
        let max_gd = judged
            .iter()
            .filter_map(|r| r.gram_distance_to_theory)
            .fold(0.0, f64::max);
        FreeAgreement {
            cells: judged.len(),
            without_theory: ok.len() - judged.len() - beats.len(),
            meets,
            fraction: if judged.is_empty() {
                f64::NAN
            } else {
                meets as f64 / judged.len() as f64
            },
            max_s_pos_error: max_err,
            max_gram_distance: max_gd,
            misses: judged
                .iter()
                .filter(|r| r.meets_theory == Some(false))
                .take(50)
                .map(|r| (r.n, r.t, r.seed_index))
                .collect(),
            beats_ccem: beats.len(),
            findings: beats
                .iter()
                .take(50)
                .map(|r| Finding {
                    n: r.n,
                    t: r.t,
                    seed_index: r.seed_index,
                    loss: r.loss.unwrap_or(f64::NAN),
                    theory_loss: r.theory_loss.unwrap_or(f64::NAN),
                    s_pos: r.s_pos.unwrap_or(f64::NAN),
                    s_neg: r.s_neg.unwrap_or(f64::NAN),
                })
                .collect(),
        }
    });
    let mut regions = Vec::new();
    for phase in [
        Phase::Etf,
        Phase::Intermediate,
        Phase::Antipodal,
        Phase::Degenerate,
    ] {
        let in_region: Vec<&&ResultRow> = ok.iter().filter(|r| r.phase == Some(phase)).collect();
        if in_region.is_empty() {
            continue;
        }
        let per_seed: Vec<f64> = (0..spec.seeds)
            .filter_map(|s| {
                let v: Vec<f64> = in_region
                    .iter()
                    .filter(|r| r.seed_index == s)
                    .filter_map(|r| r.s_pos)
                    .collect();
                (!v.is_empty()).then(|| mean_std(&v).0)
            })
            .collect();
        let all: Vec<f64> = in_region.iter().filter_map(|r| r.s_pos).collect();
        let negs: Vec<f64> = in_region.iter().filter_map(|r| r.s_neg).collect();
        let theory: Vec<f64> = in_region.iter().filter_map(|r| r.s_pos_theory).collect();
        regions.push(RegionStat {
            region: phase,
            cells: in_region.len(),
            s_pos_theory: mean_std(&theory).0,
            s_pos_mean: mean_std(&all).0,
            s_pos_seed_std: mean_std(&per_seed).1,
            s_neg_mean: mean_std(&negs).0,
        });
    }
    Summary {
        mode: spec.mode,
        objective: spec.objective,
        cells_total: spec.cells().len(),
        cells_done: rows.len(),
        diverged: rows
            .iter()
            .filter(|r| r.status == RowStatus::Diverged)
            .count(),
        free,
        regions,
    }
}

impl Summary {
    /// Writes `dir/summary.json` and `dir/summary.md`, each atomically.
    ///
    /// # Errors
    /// A file cannot be written.
    pub fn write(&self, dir: &std::path::Path) -> crate::error::Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a summary serialises");
        crate::io::write_bytes(&dir.join("summary.json"), json.as_bytes())?;
        let md = format!("# Sweep summary\n\n{}", self.to_markdown());
        crate::io::write_bytes(&dir.join("summary.md"), md.as_bytes())
    }

    /// The summary as Markdown (a few lines and a table), for `summary.md` and `REPORT.md`.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "{} / {} cells done ({} mode, {} loss), {} diverged.\n\n",
            self.cells_done, self.cells_total, self.mode, self.objective, self.diverged
        );
        if let Some(f) = self.free.as_ref().filter(|f| f.cells > 0) {
            s += &format!(
                "Free embeddings on the predicted CCEM (|s_pos - s+*| <= 1e-3 and Gram distance <= 1e-3): **{} of {} cells ({:.1}%)**; largest |s_pos - s+*| = {:.2e}, largest Gram distance = {:.2e}.\n\n",
                f.meets, f.cells, 100.0 * f.fraction, f.max_s_pos_error, f.max_gram_distance
            );

            if !f.misses.is_empty() {
                s += "Cells that miss (N, t, seed): ";
                s += &f
                    .misses
                    .iter()
                    .map(|(n, t, k)| format!("({n}, {t:.3}, {k})"))
                    .collect::<Vec<_>>()
                    .join(", ");
                s += "\n\n";
            }
        }
        if let Some(f) = self.free.as_ref().filter(|f| f.beats_ccem > 0) {
            s += &format!(
                "**Findings: {} cells where free embeddings beat the CCEM prediction** (a lower loss off the CCEM, SPEC §9.8; not misses):\n\n| N | t | seed | free loss | CCEM loss | s_pos | s_neg |\n|---|---|---|---|---|---|---|\n",
                f.beats_ccem
            );
            for c in &f.findings {
                s += &format!(
                    "| {} | {:.4} | {} | {:.6} | {:.6} | {:.4} | {:.4} |\n",
                    c.n, c.t, c.seed_index, c.loss, c.theory_loss, c.s_pos, c.s_neg
                );
            }
            s += "\n";
        }
        if let Some(f) = self.free.as_ref().filter(|f| f.without_theory > 0) {
            s += &format!(
                "{} cells have d < N (and not the simplex ETF in d = N - 1), where the theory does not apply: they are neither hits nor misses.\n\n",
                f.without_theory
            );
        }
        s += "| theory region | cells | theory s+* (mean) | measured s_pos (mean) | spread over seeds (std) | measured s_neg (mean) |\n|---|---|---|---|---|---|\n";
        for r in &self.regions {
            s += &format!(
                "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
                r.region, r.cells, r.s_pos_theory, r.s_pos_mean, r.s_pos_seed_std, r.s_neg_mean
            );
        }
        s
    }
}
