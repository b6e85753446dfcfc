//! `dhel`: the decoupled hyperspherical energy loss (Koromilas et al. 2024): within-view negatives only (SPEC §1.6).
//!
//! # Formula
//! Over the `2N` views `Z = [U; V]` with `K = Z Z^T`, every view `a` an anchor whose positive
//! is its pair's other view `a+`:
//!
//! `L = (1 / 2N) sum_a [ln sum_k w_ak e^{K_ak / tau} - K_aa+ / tau]`, where `w_ak = 1` for the `N - 1` other views of the anchor's own modality (`k != a`, same side of `Z`).
//!
//! This is `dhel_loss_func`'s value for `z = [U; V]` and `indexes = [0..N, 0..N]` on one process
//! (`leechungpa/embedding-similarity-cl`, `solo/losses/`), tested against a port of it. The
//! arithmetic is `loss::anchor_softmax`'s.

use super::anchor_softmax::anchor_loss;
use super::anchor_softmax::same_view;

anchor_loss! {
    /// The `dhel` loss with temperature `tau` (module documentation).
    Dhel = "dhel", |a, k, pairs| f64::from(u8::from(a != k && same_view(a, k, pairs)))
}
