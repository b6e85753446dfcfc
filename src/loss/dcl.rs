//! `dcl`: the decoupled contrastive loss (Yeh et al. 2022): SimCLR without the positive in the denominator (SPEC §1.6).
//!
//! # Formula
//! Over the `2N` views `Z = [U; V]` with `K = Z Z^T`, every view `a` an anchor whose positive
//! is its pair's other view `a+`:
//!
//! `L = (1 / 2N) sum_a [ln sum_k w_ak e^{K_ak / tau} - K_aa+ / tau]`, where `w_ak = 1` for every `k` other than `a` and `a+` (the `2N - 2` negatives).
//!
//! This is `dcl_loss_func`'s value for `z = [U; V]` and `indexes = [0..N, 0..N]` on one process
//! (`leechungpa/embedding-similarity-cl`, `solo/losses/`), tested against a port of it. The
//! arithmetic is `loss::anchor_softmax`'s.

use super::anchor_softmax::anchor_loss;
use super::anchor_softmax::positive;

anchor_loss! {
    /// The `dcl` loss with temperature `tau` (module documentation).
    Dcl = "dcl", |a, k, pairs| f64::from(u8::from(a != k && k != positive(a, pairs)))
}
