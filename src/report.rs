//! An embedding measured and compared with the theory: the one place where every command, the
//! sweeps and the examples turn `(U, V)` into the quantities they report (SPEC §3, §4).
//!
//! A [`Report`] holds the [`Measurement`] of an embedding (or none, when the run that should
//! have produced it diverged) and the theory's [`predict`]ion for its `N`, `d` and loss. It is
//! serialised flat, with the output names used by every `ccem` command:
//!
//! | key | meaning |
//! |---|---|
//! | `s_pos_mean`, `s_pos_std` | mean and standard deviation of the positive similarities `S_ii` |
//! | `s_neg_mean`, `s_neg_std` | the same for the negatives `S_ij`, `i != j` |
//! | `s_neg_mean_in_batch`, `s_neg_std_in_batch` | mini-batch runs only: the same over the negative pairs that share a batch (SPEC §8; [`Report::with_in_batch`]) |
//! | `c_fit`, `gram_distance` | the best-fitting CCEM and the distance to it (SPEC §4) |
//! | `margin`, `margin_bias`, `margin_bound`, `margin_quantile`, `margin_quantile_p` | the margins of the embedding ([`Margins`], SPEC §7) |
//! | `theory_c_star`, `theory_s_pos`, `theory_s_neg`, `theory_loss`, `theory_phase` | the prediction ([`Optimum`]'s `c_star`, `s_pos`, ... with a `theory_` prefix); for a mini-batch run, the optimum of the expected mini-batch loss ([`Report::with_training`]) |
//! | `theory_loss_clip` | InfoNCE only: `theory_loss` in open_clip's convention (half of it) |
//! | `gram_distance_to_theory` | the Gram distance to the predicted CCEM |
//! | `meets_theory` | both `|s_pos_mean - theory_s_pos| <= S_POS_TOL` and `gram_distance_to_theory <= GRAM_TOL` |
//!
//! A quantity that is not defined (no measurement, no prediction, the degenerate phase) is
//! `null` in JSON and an empty field in CSV.

use crate::batch::{in_batch_mask, masked_negative_stats, predict_trained, MiniBatch};
use crate::error::Result;
use crate::geometry::{
    margin_bound, margins_keeping, measure_with, Margins, Measurement, QuantileLevel,
};
use crate::loss::embedding::{check_all_finite, check_pair};
use crate::loss::{BlockOptions, Loss};
use crate::theory::{predict, s_pos_of_c, Optimum, Phase};
use ndarray::ArrayView2;
use serde::Serialize;

/// Tolerance on `|s_pos_mean - theory_s_pos|` for [`Report::meets_theory`].
pub const S_POS_TOL: f64 = 1e-3;
/// Tolerance on the Gram distance to the predicted CCEM for [`Report::meets_theory`].
pub const GRAM_TOL: f64 = 1e-3;

/// An embedding measured (SPEC §4) next to the theory's prediction (SPEC §3). See the module
/// documentation for its serialised keys.
///
/// # Example
/// ```
/// use ccem::{Ccem, Loss, Optimum, Report};
///
/// // The CCEM that the theory predicts is measured as exactly on the theory.
/// let o = Optimum::sigmoid(8, 1.0, 1.0)?;
/// let (u, v) = Ccem::from_c(8, 8, o.c_star)?.build();
/// let r = Report::new(u.view(), v.view(), &Loss::sigmoid(1.0, 1.0)?)?;
/// assert_eq!(r.meets_theory(), Some(true));
/// assert!(r.gram_distance_to_theory().unwrap() < 1e-7);
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    /// Batch size `N`.
    pub n: usize,
    /// Dimension `d`.
    pub d: usize,
    /// The measurement; `None` when the run diverged and produced no embedding.
    pub measurement: Option<Measurement>,
    /// The theory's prediction ([`predict`]); `None` where the theory does not cover `d`.
    pub prediction: Option<Optimum>,
    /// The margins of the embedding (SPEC §7); `None` without an embedding.
    pub margins: Option<Margins>,
    /// Mini-batch runs: `(mean, std)` of the negative similarities over the pairs that share a
    /// batch (SPEC §8); `None` otherwise.
    pub s_neg_in_batch: Option<(f64, f64)>,
}

impl Report {
    /// Measures `(U, V)`, taken as given (normalise raw rows first), and compares it with the
    /// theory's prediction for `loss` with `N = U.nrows()`, `d = U.ncols()`.
    ///
    /// # Errors
    /// `U` and `V` differ in shape, `N < 2`, or an entry is not finite.
    ///
    /// The margins use the default quantile level (5%); [`Report::new_with`] sets it.
    pub fn new(u: ArrayView2<f64>, v: ArrayView2<f64>, loss: &Loss) -> Result<Self> {
        Self::new_with(
            u,
            v,
            loss,
            QuantileLevel::default(),
            BlockOptions::default(),
        )
    }

    /// [`Report::new`] with the quantile level of `margin_quantile` and the blocking of the
    /// passes over `U V^T`.
    ///
    /// # Errors
    /// As [`Report::new`].
    pub fn new_with(
        u: ArrayView2<f64>,
        v: ArrayView2<f64>,
        loss: &Loss,
        level: QuantileLevel,
        opts: BlockOptions,
    ) -> Result<Self> {
        check_pair(u, v)?;
        check_all_finite(u, "U")?;
        check_all_finite(v, "V")?;
        // The margins first: their exact pass may keep `S = U V^T`, which the measurement then
        // reads instead of computing it again (the same numbers).
        let (margins, kept) = margins_keeping(u, v, level, opts)?;
        let uv = kept.as_ref().map(|s| s.view());
        let mut r = Self::from_measurement(measure_with(u, v, opts, uv), loss);
        r.margins = Some(margins);
        Ok(r)
    }

    /// Compares a measurement with the theory's prediction for `loss`.
    pub fn from_measurement(m: Measurement, loss: &Loss) -> Self {
        Report {
            n: m.n,
            d: m.d,
            measurement: Some(m),
            prediction: predict(m.n, m.d, loss),
            margins: None,
            s_neg_in_batch: None,
        }
    }

    /// The report of a run of `n` pairs in `R^d` that produced no embedding (it diverged): the
    /// prediction alone.
    pub fn unmeasured(n: usize, d: usize, loss: &Loss) -> Self {
        Report {
            n,
            d,
            measurement: None,
            prediction: predict(n, d, loss),
            margins: None,
            s_neg_in_batch: None,
        }
    }

    /// The report of a run trained on `batch` (`None`: the full batch), with the
    /// negative-variance penalty when `penalised` (SPEC §8): the prediction becomes
    /// [`crate::batch::predict_trained`], the optimum of the expected mini-batch loss (none for
    /// InfoNCE with `B < N` or with the penalty). `batch = None` and `B = N` leave it unchanged.
    ///
    /// ```
    /// use ccem::batch::{Batching, MiniBatch};
    /// use ccem::{Loss, Optimum, Report};
    /// let loss = Loss::sigmoid(2.0, 1.0)?;
    /// let mb = MiniBatch::new(16, 4, Some(Batching::Expected), &loss)?;
    /// let r = Report::unmeasured(16, 16, &loss).with_training(Some(mb), false, &loss);
    /// assert_eq!(r.prediction, Some(Optimum::sigmoid_batch(16, 4, 2.0, 1.0)?));
    /// # Ok::<(), ccem::Error>(())
    /// ```
    pub fn with_training(mut self, batch: Option<MiniBatch>, penalised: bool, loss: &Loss) -> Self {
        self.prediction = predict_trained(self.n, self.d, loss, batch.as_ref(), penalised);
        self
    }

    /// Records the spread of the negatives of `(U, V)` over the pairs that share one of
    /// `batches` (`s_neg_mean_in_batch`, `s_neg_std_in_batch`; SPEC §8). No batches (the full
    /// batch, `expected`) leave the report unchanged. `(U, V)` must be the measured pair.
    pub fn with_in_batch(
        mut self,
        u: ArrayView2<f64>,
        v: ArrayView2<f64>,
        batches: &[Vec<usize>],
    ) -> Self {
        if !batches.is_empty() && u.nrows() == self.n && v.nrows() == self.n {
            let s = u.dot(&v.t());
            self.s_neg_in_batch = Some(masked_negative_stats(
                s.view(),
                &in_batch_mask(self.n, batches),
            ));
        }
        self
    }

    /// The predicted `c*`, when it is a number (not in the degenerate phase).
    pub fn theory_c_star(&self) -> Option<f64> {
        self.prediction.map(|o| o.c_star).filter(|c| c.is_finite())
    }

    /// `||G - G_CCEM(c*)||_F / (2N)`: the Gram distance to the predicted CCEM (SPEC §4).
    pub fn gram_distance_to_theory(&self) -> Option<f64> {
        Some(self.measurement?.gram_distance_to(self.theory_c_star()?))
    }

    /// `|s_pos_mean - s_+*|`.
    pub fn s_pos_error(&self) -> Option<f64> {
        Some((self.measurement?.pos.mean - s_pos_of_c(self.theory_c_star()?)).abs())
    }

    /// Whether the embedding is the predicted one: `|s_pos_mean - s_+*| <= S_POS_TOL` and
    /// `gram_distance_to_theory <= GRAM_TOL`. `None` without a prediction; `Some(false)` without
    /// a measurement; `Some(true)` in the degenerate phase `t = 0`, where every embedding is
    /// optimal.
    pub fn meets_theory(&self) -> Option<bool> {
        let o = self.prediction?;
        Some(match self.measurement {
            None => false,
            Some(_) if o.phase == Phase::Degenerate => true,
            Some(_) => {
                self.s_pos_error().is_some_and(|e| e <= S_POS_TOL)
                    && self
                        .gram_distance_to_theory()
                        .is_some_and(|g| g <= GRAM_TOL)
            }
        })
    }
}

/// The flat serialised form of a [`Report`] (module documentation).
#[derive(Serialize)]
struct Flat {
    s_pos_mean: Option<f64>,
    s_pos_std: Option<f64>,
    s_neg_mean: Option<f64>,
    s_neg_std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s_neg_mean_in_batch: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s_neg_std_in_batch: Option<f64>,
    c_fit: Option<f64>,
    gram_distance: Option<f64>,
    margin: Option<f64>,
    margin_bias: Option<f64>,
    margin_bound: f64,
    margin_quantile: Option<f64>,
    margin_quantile_p: Option<f64>,
    theory_c_star: Option<f64>,
    theory_s_pos: Option<f64>,
    theory_s_neg: Option<f64>,
    theory_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    theory_loss_clip: Option<f64>,
    theory_phase: Option<Phase>,
    gram_distance_to_theory: Option<f64>,
    meets_theory: Option<bool>,
}

impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        let m = self.measurement;
        let o = self.prediction;
        let fin = |x: f64| x.is_finite().then_some(x);
        Flat {
            s_pos_mean: m.map(|m| m.pos.mean),
            s_pos_std: m.map(|m| m.pos.std),
            s_neg_mean: m.map(|m| m.neg.mean),
            s_neg_std: m.map(|m| m.neg.std),
            s_neg_mean_in_batch: self.s_neg_in_batch.map(|x| x.0),
            s_neg_std_in_batch: self.s_neg_in_batch.map(|x| x.1),
            c_fit: m.map(|m| m.c_fit),
            gram_distance: m.map(|m| m.gram_distance),
            margin: self.margins.map(|g| g.margin),
            margin_bias: self.margins.map(|g| g.margin_bias),
            margin_bound: margin_bound(self.n),
            margin_quantile: self.margins.map(|g| g.margin_quantile),
            margin_quantile_p: self.margins.map(|g| g.margin_quantile_p),
            theory_c_star: o.and_then(|o| fin(o.c_star)),
            theory_s_pos: o.and_then(|o| fin(o.s_pos)),
            theory_s_neg: o.and_then(|o| fin(o.s_neg)),
            theory_loss: o.and_then(|o| fin(o.loss)),
            theory_loss_clip: o.and_then(|o| o.loss_clip()),
            theory_phase: o.map(|o| o.phase),
            gram_distance_to_theory: self.gram_distance_to_theory(),
            meets_theory: self.meets_theory(),
        }
        .serialize(ser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Ccem;

    #[test]
    fn keys_are_in_the_documented_order() {
        let (u, v) = Ccem::from_c(6, 6, 0.2).unwrap().build();
        let r = Report::new(u.view(), v.view(), &Loss::infonce(0.5).unwrap()).unwrap();
        let json = serde_json::to_value(r).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "s_pos_mean",
                "s_pos_std",
                "s_neg_mean",
                "s_neg_std",
                "c_fit",
                "gram_distance",
                "margin",
                "margin_bias",
                "margin_bound",
                "margin_quantile",
                "margin_quantile_p",
                "theory_c_star",
                "theory_s_pos",
                "theory_s_neg",
                "theory_loss",
                "theory_loss_clip",
                "theory_phase",
                "gram_distance_to_theory",
                "meets_theory"
            ]
        );
        // The CCEM's margin is (1 - c) N / (2 (N - 1)) (SPEC §7).
        assert!((r.margins.unwrap().margin - 0.8 * 0.6).abs() < 1e-12);
        assert_eq!(json["margin_bound"], 0.6);
        // c = 0.2 is not the ETF that InfoNCE predicts.
        assert_eq!(r.meets_theory(), Some(false));
        assert!((r.measurement.unwrap().c_fit - 0.2).abs() < 1e-12);
    }

    #[test]
    fn no_prediction_below_the_dimension_and_no_measurement_after_divergence() {
        let loss = Loss::sigmoid(2.0, 2.0).unwrap();
        let r = Report::unmeasured(10, 9, &loss);
        assert_eq!((r.prediction, r.meets_theory()), (None, None));
        let r = Report::unmeasured(10, 10, &loss);
        assert_eq!(r.meets_theory(), Some(false));
        assert_eq!(r.gram_distance_to_theory(), None);
        let (u, v) = Ccem::from_c(4, 4, 0.3).unwrap().build();
        let r = Report::new(u.view(), v.view(), &Loss::sigmoid(0.0, 1.0).unwrap()).unwrap();
        assert_eq!(r.prediction.unwrap().phase, Phase::Degenerate);
        assert_eq!((r.meets_theory(), r.theory_c_star()), (Some(true), None));
        assert!(Report::new(u.view(), v.slice(ndarray::s![..3, ..]), &loss).is_err());
    }
}
