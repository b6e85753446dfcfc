//! The parameters of a loss as a caller gives them, and how each loss takes them.
//!
//! The command line and Python collect the loss's options (`t`, `b`, `relative_bias`, `tau`,
//! the within-view weight) into one [`LossParams`]; [`super::Loss::build`] hands it to
//! the chosen loss's [`FromParams`], which takes what it needs and refuses the rest with a
//! message naming the loss and the parameter. That is the one place where a loss's options are
//! resolved.

use crate::error::{Error, Result};

/// Loss parameters as given (`None`: not given).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossParams {
    /// The sigmoid's scale `t` (logit `t S - b`).
    pub t: Option<f64>,
    /// The sigmoid's bias `b`.
    pub b: Option<f64>,
    /// The sigmoid's relative bias `r_b` (`b = r_b t`).
    pub relative_bias: Option<f64>,
    /// A temperature `tau` (InfoNCE and its family).
    pub tau: Option<f64>,
    /// The weight `W >= 0` of within-view negatives (`sigmoid`, `infonce`).
    pub within_view: Option<f64>,
}

impl LossParams {
    /// The names of the parameters that were given.
    pub fn given(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (name, x) in [
            ("t", self.t),
            ("b", self.b),
            ("relative_bias", self.relative_bias),
            ("tau", self.tau),
            ("within_view", self.within_view),
        ] {
            if x.is_some() {
                v.push(name);
            }
        }
        v
    }

    /// Refuses every given parameter outside `allowed`, naming the loss.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first parameter `loss` does not take.
    pub fn only(&self, loss: &str, allowed: &[&str]) -> Result<()> {
        match self.given().into_iter().find(|p| !allowed.contains(p)) {
            None => Ok(()),
            Some(p) => Err(Error::Config(format!(
                "the {loss} loss takes no parameter '{p}' (it takes: {})",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            ))),
        }
    }

    /// A parameter the loss needs.
    ///
    /// # Errors
    /// [`Error::Config`] naming the loss and the parameter when it was not given.
    pub fn need(loss: &str, name: &str, x: Option<f64>) -> Result<f64> {
        x.ok_or_else(|| Error::Config(format!("the {loss} loss needs the parameter '{name}'")))
    }
}

/// How a loss type is built from [`LossParams`] (each loss's file implements it).
pub trait FromParams: Sized {
    /// The names of the parameters the loss takes (a subset of [`LossParams::given`]'s).
    const PARAMS: &'static [&'static str];
    /// Whether the loss is additive: a sum of one term per pair `(i, j)` of `S` (Lee, Lim, Lee,
    /// Sohn 2025, Definition 3.2; SPEC §9), not InfoNCE-based (a log-sum-exp per anchor,
    /// Definition 3.1). It decides which CCEM theory applies (`theory::zoo::Family`) and whether
    /// an expected mini-batch loss exists in closed form (SPEC §9.4).
    const ADDITIVE: bool = false;

    /// The loss from the given parameters.
    ///
    /// # Errors
    /// A parameter the loss does not take, a missing one, or an invalid value (each message
    /// names the loss and the parameter).
    fn from_params(p: &LossParams) -> Result<Self>;
}

/// Validates a within-view weight `W` (finite, `>= 0`), naming the loss.
///
/// # Errors
/// [`Error::Config`] for a negative or non-finite `W`.
pub fn check_within(loss: &str, w: f64) -> Result<f64> {
    if w.is_finite() && w >= 0.0 {
        Ok(w)
    } else {
        Err(Error::Config(format!(
            "the {loss} loss's within_view weight must be finite and >= 0, got {w}"
        )))
    }
}

/// Prefixes an error of a loss's constructor with the loss's name (`simclr: tau = 0 must be
/// ...`).
///
/// # Errors
/// `r`'s error, named.
pub fn named<T>(loss: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| Error::Config(format!("the {loss} loss: {e}")))
}
