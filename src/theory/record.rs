//! The records of `ccem theory` (and `ccem.theory`, and `ccem explore`'s theory view): one home
//! for the keys that every front end prints or returns.
//!
//! - the sigmoid loss without within-view negatives: [`SigmoidRecord`] (SPEC §3, §8), with the
//!   phase boundaries of its `N`;
//! - InfoNCE without within-view negatives: [`super::Optimum`] itself (SPEC §3);
//! - every other loss of the registry, and those two with `within_view > 0`: [`ZooRecord`], the
//!   CCEM optimum of SPEC §9 with the quantities of Lee et al. 2025.
//!
//! ```
//! use ccem::theory::record::{SigmoidRecord, ZooRecord};
//! use ccem::theory::{zoo, BiasMode};
//!
//! let r = SigmoidRecord::new(10, 1.0, BiasMode::Tied, None, true)?;
//! assert_eq!(r.phase.as_str(), "intermediate");
//! let z = ZooRecord::new(zoo::optimum(&zoo::ZooLoss::simclr(0.1)?, 16, None)?);
//! let v = serde_json::to_value(&z).unwrap();
//! assert_eq!(v["phase"], "etf");
//! assert_eq!(v["tau"], 0.1);
//! assert!(v["global_optimum"].is_string());
//! # Ok::<(), ccem::Error>(())
//! ```

use super::zoo::{self, ZooLoss, ZooOptimum};
use super::{batch, BiasMode, Optimum, Phase};
use crate::error::{Error, Result};
use crate::loss::{ContrastiveLoss, Loss, Tuned};
use serde::ser::SerializeMap;
use serde::Serialize;

/// Which theory answers for a loss: the one the loss states through
/// [`ContrastiveLoss::tuned`], so that no loss kind is matched here (nor anywhere above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TheoryPath {
    /// SigLIP's sigmoid loss without within-view negatives ([`Tuned::Sigmoid`]): SPEC §3's
    /// records, with the phase boundaries ([`SigmoidRecord`]).
    Sigmoid,
    /// CLIP's InfoNCE without within-view negatives ([`Tuned::InfoNce`]): the simplex ETF
    /// ([`Optimum`]).
    InfoNce,
    /// Every other loss: the CCEM theory of the zoo (SPEC §9, [`ZooRecord`]).
    Zoo,
}

impl TheoryPath {
    /// The theory of `loss`: SPEC §3's exact theory for the two losses it covers (a loss that
    /// declares SigLIP's or CLIP's tuned kernel is that loss, [`Tuned`]), the zoo's (SPEC §9)
    /// for every other.
    ///
    /// ```
    /// use ccem::theory::record::TheoryPath;
    /// use ccem::loss::{Loss, LossKind, LossParams};
    /// let p = LossParams { t: Some(1.0), within_view: Some(0.5), ..Default::default() };
    /// assert_eq!(TheoryPath::of(&Loss::sigmoid(1.0, 1.0)?), TheoryPath::Sigmoid);
    /// assert_eq!(TheoryPath::of(&Loss::build(LossKind::Sigmoid, &p)?), TheoryPath::Zoo);
    /// assert_eq!(TheoryPath::of(&Loss::infonce(0.1)?), TheoryPath::InfoNce);
    /// # Ok::<(), ccem::Error>(())
    /// ```
    pub fn of<L: ContrastiveLoss + ?Sized>(loss: &L) -> Self {
        match loss.tuned() {
            Some(Tuned::Sigmoid { .. }) => TheoryPath::Sigmoid,
            Some(Tuned::InfoNce { .. }) => TheoryPath::InfoNce,
            None => TheoryPath::Zoo,
        }
    }
}

/// One cell of `ccem theory` for any registered loss: the record its theory prints
/// ([`TheoryPath`]); serialised as that record.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TheoryRecord {
    /// [`TheoryPath::Sigmoid`].
    Sigmoid(SigmoidRecord),
    /// [`TheoryPath::InfoNce`].
    InfoNce(Optimum),
    /// [`TheoryPath::Zoo`].
    Zoo(ZooRecord),
}

impl TheoryRecord {
    /// The optimum of `loss` at `N = n` (of the expected loss over mini-batches of `batch`, if
    /// given), as `ccem theory --loss` computes it: SPEC §3 with the phase boundaries in `t`
    /// under the bias setting `bias` for the sigmoid loss (whose `b` must be `bias.bias(t)`;
    /// `bias` is not read for the other losses), the simplex ETF for InfoNCE, SPEC §9 for the
    /// others.
    ///
    /// ```
    /// use ccem::theory::record::TheoryRecord;
    /// use ccem::theory::BiasMode;
    /// use ccem::loss::{Loss, LossKind, LossParams};
    /// let simclr = Loss::build(LossKind::SimClr, &LossParams { tau: Some(0.5), ..Default::default() })?;
    /// let r = TheoryRecord::new(&simclr, BiasMode::Tied, 12, None)?;
    /// assert_eq!((r.c_star(), r.needed_dimension()), (0.0, 11));
    /// let v = serde_json::to_value(&r).unwrap();
    /// assert_eq!(v["tau"], 0.5);
    /// # Ok::<(), ccem::Error>(())
    /// ```
    ///
    /// # Errors
    /// `N < 2`; `batch` outside `2..=N`, or given for an InfoNCE-based loss (no closed form,
    /// SPEC §9.4); a sigmoid `b` other than `bias.bias(t)`; the errors of the theory.
    pub fn new(loss: &Loss, bias: BiasMode, n: usize, batch: Option<usize>) -> Result<Self> {
        crate::error::check_batch(n)?;
        if let Some(b) = batch {
            batch::check_mini_batch(n, b)?;
        }
        Ok(match loss.tuned() {
            Some(Tuned::Sigmoid { t, b }) => {
                if bias.bias(t) != b {
                    return Err(Error::Config(format!(
                        "the sigmoid loss's b = {b} is not the bias setting {} at t = {t}",
                        bias.label()
                    )));
                }
                TheoryRecord::Sigmoid(SigmoidRecord::new(n, t, bias, batch, true)?)
            }
            Some(Tuned::InfoNce { tau }) => {
                if batch.is_some() {
                    return Err(zoo::no_weighted_form(loss.name()));
                }
                TheoryRecord::InfoNce(Optimum::infonce(n, tau)?)
            }
            None => TheoryRecord::Zoo(ZooRecord::new(zoo::optimum(
                &ZooLoss::from_loss(loss)?,
                n,
                batch,
            )?)),
        })
    }

    /// The optimal `c*` (`NaN` in the sigmoid's degenerate phase).
    pub fn c_star(&self) -> f64 {
        match self {
            TheoryRecord::Sigmoid(r) => r.c_star,
            TheoryRecord::InfoNce(o) => o.c_star,
            TheoryRecord::Zoo(z) => z.0.c,
        }
    }

    /// The dimension from which this optimum is the optimum over all embeddings (for `d`):
    /// `N` for the sigmoid loss, `N - 1` for InfoNCE, [`ZooRecord::needed_dimension`] for the
    /// others (SPEC §7, §9.5).
    pub fn needed_dimension(&self) -> usize {
        match self {
            TheoryRecord::Sigmoid(r) => r.n,
            TheoryRecord::InfoNce(o) => o.n.saturating_sub(1),
            TheoryRecord::Zoo(z) => z.needed_dimension(),
        }
    }
}

/// One cell of the sigmoid theory (SPEC §3; of the expected loss over mini-batches of `batch`,
/// SPEC §8): the keys `n, t, b, c_star, delta_star, s_pos, s_neg, loss, phase, t_etf_boundary,
/// t_antipodal_boundary`, then `batch` and `w` with a mini-batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SigmoidRecord {
    /// Number of pairs `N`.
    pub n: usize,
    /// The scale `t`.
    pub t: f64,
    /// The bias `b`.
    pub b: f64,
    /// The optimal `c*` (`NaN` in the degenerate phase).
    pub c_star: f64,
    /// `delta* = sqrt(c*/(1-c*))`.
    pub delta_star: f64,
    /// `s_+* = 1 - 2c*`.
    pub s_pos: f64,
    /// `s_-* = -(1-c*)/(N-1) - c*`.
    pub s_neg: f64,
    /// The minimal (weighted) loss.
    pub loss: f64,
    /// The phase.
    pub phase: Phase,
    /// The smallest scale t > 0 at which this N enters or leaves the ETF phase under this bias
    /// setting (SPEC §3.2); `None` when there is none, or when not asked for.
    pub t_etf_boundary: Option<f64>,
    /// The scale t > 0 at which this N enters or leaves the antipodal phase (SPEC §3.2).
    pub t_antipodal_boundary: Option<f64>,
    /// The mini-batch size `B` (with a mini-batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// The negative weight `w = (B-1)/(N-1)` (with a mini-batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<f64>,
}

impl SigmoidRecord {
    /// The cell `(N, t)` under the bias setting `mode`, of the expected loss over mini-batches
    /// of `batch` if given, with its phase boundaries if `boundaries`.
    ///
    /// # Errors
    /// `N < 2`, an invalid `t` or bias, `batch` outside `2..=N`.
    pub fn new(
        n: usize,
        t: f64,
        mode: BiasMode,
        batch: Option<usize>,
        boundaries: bool,
    ) -> Result<Self> {
        let b = mode.bias(t);
        Optimum::sigmoid(n, t, b)?;
        let w = batch.map(|bs| batch::negative_weight(n, bs)).transpose()?;
        let wt = w.unwrap_or(1.0);
        let bounds = if boundaries {
            (
                mode.etf_boundary_weighted(n, wt),
                mode.antipodal_boundary_weighted(n, wt),
            )
        } else {
            (None, None)
        };
        Ok(Self::from_parts(
            &Optimum::sigmoid_weighted_unchecked(n, t, b, wt),
            t,
            b,
            bounds,
            batch,
            w,
        ))
    }

    /// The record of an optimum computed already (`o` of the loss with scale `t`, bias `b`,
    /// negatives weighted by `w` when `batch` is given) and its boundaries `(etf, antipodal)`:
    /// for grids, where the boundaries depend on `N` only and are computed once per `N`.
    pub fn from_parts(
        o: &Optimum,
        t: f64,
        b: f64,
        (t_etf_boundary, t_antipodal_boundary): (Option<f64>, Option<f64>),
        batch: Option<usize>,
        w: Option<f64>,
    ) -> Self {
        SigmoidRecord {
            n: o.n,
            t,
            b,
            c_star: o.c_star,
            delta_star: o.delta_star,
            s_pos: o.s_pos,
            s_neg: o.s_neg,
            loss: o.loss,
            phase: o.phase,
            t_etf_boundary,
            t_antipodal_boundary,
            batch,
            w: batch.and(w),
        }
    }
}

/// One cell of the CCEM theory of any loss of the zoo (SPEC §9): the keys `n`, the loss's
/// parameters (`tau`; or `t`, `b`; none for `spectral`), `within_view` (the weight `W`; `null`
/// for the losses without one), `c_star`, `delta_star`, `s_pos`, `s_neg`, `s_within`, `loss`,
/// `loss_clip` (`infonce` only), `phase`, `alignment_slack`, `excess_separation` (additive
/// losses; `null` for the InfoNCE-based), `thm53_condition`, `global_optimum` (the citation,
/// or `null` when only the CCEM family is covered), `off_ccem_loss`, then `batch` and `w` with
/// a mini-batch.
#[derive(Clone, Debug, PartialEq)]
pub struct ZooRecord(pub ZooOptimum);

impl ZooRecord {
    /// The record of an optimum.
    pub fn new(o: ZooOptimum) -> Self {
        ZooRecord(o)
    }

    /// The dimension from which this optimum is the optimum over all embeddings (for `--d`):
    /// `N - 1` for the InfoNCE-based losses, `N` for the additive ones (SPEC §9.5).
    pub fn needed_dimension(&self) -> usize {
        super::zoo::needed_dimension(self.0.objective.family(), self.0.n)
    }
}

impl Serialize for ZooRecord {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        let o = &self.0;
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("n", &o.n)?;
        for (name, value) in o.objective.params() {
            m.serialize_entry(name, &value)?;
        }
        m.serialize_entry("within_view", &o.objective.within_view())?;
        m.serialize_entry("c_star", &o.c)?;
        m.serialize_entry("delta_star", &o.delta)?;
        m.serialize_entry("s_pos", &o.s_pos)?;
        m.serialize_entry("s_neg", &o.s_neg)?;
        m.serialize_entry("s_within", &o.s_within)?;
        m.serialize_entry("loss", &o.loss)?;
        if let Some(l) = o.loss_clip() {
            m.serialize_entry("loss_clip", &l)?;
        }
        m.serialize_entry("phase", &o.phase)?;
        m.serialize_entry("alignment_slack", &o.alignment_slack)?;
        m.serialize_entry("excess_separation", &o.excess_separation)?;
        m.serialize_entry("thm53_condition", &o.thm53_condition)?;
        m.serialize_entry("global_optimum", &o.global_optimum)?;
        m.serialize_entry("off_ccem_loss", &o.off_ccem_loss)?;
        if o.batch.is_some() {
            m.serialize_entry("batch", &o.batch)?;
            m.serialize_entry("w", &o.w)?;
        }
        m.end()
    }
}
