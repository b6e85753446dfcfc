//! What the theory predicts for a sweep's cell, for every loss of the registry: the optimum on
//! the CCEM of [`crate::theory::zoo`] (SPEC §9), reached from any [`Loss`] through its name and
//! parameters (the [`ContrastiveLoss`] trait), never by matching on its kind (SPEC §9.8).

use crate::error::Result;
use crate::loss::{ContrastiveLoss, Loss};
use crate::theory::zoo::{optimum, ZooLoss, ZooOptimum};
use crate::theory::{Optimum, Phase};

/// The loss of the zoo theory (SPEC §9) that `loss` is: its name and parameters
/// ([`ContrastiveLoss::name`], [`ContrastiveLoss::params`]) read by [`ZooLoss::from_params`].
///
/// # Errors
/// A loss the zoo theory does not know (a loss registered after SPEC §9 was written).
pub fn zoo_loss(loss: &Loss) -> Result<ZooLoss> {
    ZooLoss::from_params(loss.name(), &loss.params())
}

/// The theory's prediction for a cell of `n` pairs in `R^d` trained on `loss`: the optimum on
/// the CCEM (SPEC §9.3), of the expected mini-batch loss when `batch = Some(B)` with `B < N`
/// (SPEC §9.4). `None` where the theory does not apply: the CCEM needs `d >= N` (`d >= N - 1`
/// when the optimum is the simplex ETF, SPEC §2), the negative-variance penalty (`penalised`),
/// an InfoNCE-based loss trained on mini-batches (no weighted form), a loss the zoo does not know.
pub fn zoo_prediction(
    n: usize,
    d: usize,
    loss: &Loss,
    batch: Option<usize>,
    penalised: bool,
) -> Option<ZooOptimum> {
    if penalised || n < 2 || d + 1 < n {
        return None;
    }
    let z = zoo_loss(loss).ok()?;
    let o = optimum(&z, n, batch.filter(|&b| b < n)).ok()?;
    (d >= n || o.phase == Phase::Etf).then_some(o)
}

/// The zoo optimum as an [`Optimum`] of `loss` (the form [`crate::report::Report`] compares a
/// measurement with): the same `c*`, `s_+*`, `s_-*`, minimal loss and phase.
pub fn as_optimum(z: &ZooOptimum, loss: Loss) -> Optimum {
    Optimum {
        n: z.n,
        objective: loss,
        c_star: z.c,
        delta_star: z.delta,
        s_pos: z.s_pos,
        s_neg: z.s_neg,
        loss: z.loss,
        phase: z.phase,
    }
}

/// Whether a run whose final loss is `free_loss` beats the CCEM's minimal loss `ccem_loss`: lower
/// by more than rounding, `1e-9 max(1, |ccem_loss|)` (SPEC §9.8). Such a run found a point off
/// the CCEM with a lower loss, which no CCEM prediction can meet: a finding, not a miss.
pub fn beats_ccem(free_loss: f64, ccem_loss: f64) -> bool {
    free_loss < ccem_loss - BEATS_TOL * ccem_loss.abs().max(1.0)
}

/// Relative margin of [`beats_ccem`].
pub const BEATS_TOL: f64 = 1e-9;

/// The mean within-view similarity of an embedding pair: the mean of `u_i . u_j` and of
/// `v_i . v_j` over `i != j`, from the row sums (`|sum_i u_i|^2 = sum_{i,j} u_i . u_j`), in
/// `O(N d)`. On the CCEM it is `s_w = -(1-c)/(N-1) + c` (SPEC §9.1).
pub fn mean_within(u: ndarray::ArrayView2<f64>, v: ndarray::ArrayView2<f64>) -> f64 {
    let n = u.nrows() as f64;
    let one = |x: ndarray::ArrayView2<f64>| {
        let sum = x.sum_axis(ndarray::Axis(0));
        let diag: f64 = x.iter().map(|a| a * a).sum();
        (sum.dot(&sum) - diag) / (n * (n - 1.0))
    };
    0.5 * (one(u) + one(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Ccem;
    use crate::loss::{LossKind, LossParams};

    fn every_loss(tau: f64, t: f64, w: f64) -> Vec<Loss> {
        LossKind::ALL
            .iter()
            .map(|&k| {
                let p = LossParams {
                    t: k.takes("t").then_some(t),
                    tau: k.takes("tau").then_some(tau),
                    within_view: k.takes("within_view").then_some(w),
                    ..Default::default()
                };
                Loss::build(k, &p).unwrap()
            })
            .collect()
    }

    /// Every loss's value at the predicted CCEM is the theory's minimal loss: the sweep's
    /// measured losses and `theory_loss` are in one convention, so `beats_ccem` compares like
    /// with like.
    #[test]
    fn theory_loss_is_the_loss_of_the_predicted_ccem() {
        for loss in every_loss(0.3, 2.0, 0.25)
            .into_iter()
            .chain(every_loss(1.0, 0.5, 0.0))
        {
            for n in [3usize, 8] {
                let z = zoo_prediction(n, n, &loss, None, false).unwrap();
                let (u, v) = Ccem::from_c(n, n, z.c).unwrap().build();
                let got = crate::loss::driver::value(
                    &loss,
                    u.view(),
                    v.view(),
                    crate::loss::BlockOptions::default(),
                );
                assert!(
                    (got - z.loss).abs() <= 1e-12 * z.loss.abs().max(1.0),
                    "{loss:?} N={n}: {got} vs {}",
                    z.loss
                );
                assert!((mean_within(u.view(), v.view()) - z.s_within).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn coverage() {
        let simclr = every_loss(0.5, 1.0, 0.0)[2];
        assert!(zoo_prediction(8, 7, &simclr, None, false).is_some()); // ETF fits in N-1
        assert!(zoo_prediction(8, 6, &simclr, None, false).is_none());
        assert!(zoo_prediction(8, 8, &simclr, Some(4), false).is_none());
        assert!(zoo_prediction(8, 8, &simclr, None, true).is_none());
        assert!(beats_ccem(-2.0, -1.99) && !beats_ccem(-2.0, -2.0 + 1e-12));
    }
}
