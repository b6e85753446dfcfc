//! [`Valid`]: a value that the library has checked, so that the functions taking it need not
//! check it again and cannot fail on it.

use std::ops::Deref;

/// A `T` that passed its `check()` (e.g. [`crate::FreeConfig::check`],
/// [`crate::EncoderConfig::check`], [`crate::SweepSpec::check`]).
///
/// It can only be made by those checks and is read-only: read its fields through `Deref`, or take
/// the value back with [`Valid::into_inner`] (to change it and check it again).
///
/// ```
/// use ccem::{FreeConfig, Loss};
///
/// let cfg = FreeConfig::new(4, 4, Loss::sigmoid(1.0, 1.0)?, 0);
/// let valid = cfg.check()?;
/// assert_eq!(valid.n, 4);
/// let mut bad = valid.into_inner();
/// bad.steps = 0;
/// assert!(bad.check().is_err());
/// # Ok::<(), ccem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Valid<T>(T);

impl<T> Valid<T> {
    /// Wraps a value that the crate has just checked (or built so that it holds).
    pub(crate) fn new_unchecked(value: T) -> Self {
        Valid(value)
    }

    /// The checked value, to be changed (and checked again).
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Valid<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> AsRef<T> for Valid<T> {
    fn as_ref(&self) -> &T {
        &self.0
    }
}
