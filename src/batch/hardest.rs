//! OSGD's batch choice (Cho et al., *Mini-Batch Optimization of Contrastive Loss*, TMLR 2024):
//! the batch of `B` pairs with the largest batch loss at the current embeddings.
//!
//! This crate searches all `C(N,B)` batches exactly, as the authors' synthetic experiment does
//! (`osgd_NcB_batches`: every combination, the one of largest loss), when
//! `C(N,B) <= 1e5` ([`super::MAX_EXACT_HARDEST`]). Above that the authors use a spectral
//! clustering of an affinity built from the similarities into `N/B` equal clusters; that
//! approximation is not implemented here and `hardest` is refused with a clear error instead.
//!
//! The search evaluates every batch's loss from the full `S = U V^T`: the batch loss is the
//! loss of the `B x B` sub-matrix `S[batch, batch]` (SPEC §1 with `N = B`).

use super::{binomial, next_combination, MAX_EXACT_HARDEST};
use crate::error::{Error, Result};
use crate::loss::Loss;
use ndarray::{Array2, ArrayView2};

/// Checks that the exact search is affordable.
///
/// # Errors
/// `C(n, b) > 1e5` (the spectral approximation is not implemented).
pub fn check_hardest(n: usize, b: usize) -> Result<()> {
    let c = binomial(n, b);
    if c > MAX_EXACT_HARDEST {
        return Err(Error::Config(format!(
            "--batching hardest searches all C({n},{b}) = {c:.3e} batches exactly, up to \
             {MAX_EXACT_HARDEST:.0e}; the spectral-clustering approximation of Cho et al. for \
             larger searches is not implemented: use a smaller N or B, or shuffled"
        )));
    }
    Ok(())
}

/// The batch of size `b` whose loss on `S[batch, batch]` is largest (ties: the first in
/// lexicographic order), written into `out` (sorted); returns its loss.
pub fn hardest_batch(loss: &Loss, s: ArrayView2<f64>, b: usize, out: &mut Vec<usize>) -> f64 {
    let n = s.nrows();
    let mut comb: Vec<usize> = (0..b).collect();
    let mut sub = Array2::<f64>::zeros((b, b));
    let mut best = f64::NEG_INFINITY;
    out.clear();
    out.extend_from_slice(&comb);
    loop {
        for (r, &i) in comb.iter().enumerate() {
            for (c, &j) in comb.iter().enumerate() {
                sub[[r, c]] = s[[i, j]];
            }
        }
        let value = loss.value_s(sub.view());
        if value > best {
            best = value;
            out.clear();
            out.extend_from_slice(&comb);
        }
        if !next_combination(&mut comb, n) {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_worst_batch() {
        // Pairs 1 and 3 are misaligned, so the batch holding both has the largest loss.
        let n = 5;
        let mut s = Array2::<f64>::from_elem((n, n), -0.2);
        for i in 0..n {
            s[[i, i]] = 0.9;
        }
        s[[1, 1]] = -0.5;
        s[[3, 3]] = -0.4;
        s[[1, 3]] = 0.8;
        let loss = Loss::sigmoid(3.0, 1.0).unwrap();
        let mut out = Vec::new();
        let v = hardest_batch(&loss, s.view(), 2, &mut out);
        assert_eq!(out, vec![1, 3]);
        let sub = ndarray::array![[-0.5, 0.8], [-0.2, -0.4]];
        assert_eq!(v, loss.value_s(sub.view()));
        assert!(check_hardest(30, 4).is_ok());
        assert!(check_hardest(60, 10).is_err());
    }
}
