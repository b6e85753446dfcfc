//! Measuring a given embedding against the CCEM (SPEC.md §4).
//!
//! One blocked pass over the Gram matrix `[U; V][U; V]^T` gathers, per category of entries
//! (positives `S_ii`, negatives `S_ij`, within-modality `u_i.u_j` and `v_i.v_j`, the norms
//! `u_i.u_i`, `v_i.v_i`), the count, mean, sum of squared deviations, minimum and maximum
//! (merged with Chan's parallel formula, so the result is exact in floating point to rounding and
//! independent of the thread count). On the CCEM every entry of a category is the same affine
//! function `alpha + beta c` (SPEC §2), so:
//!
//! - the least-squares fit `c_fit = argmin_{c in [0,1]} ||G - G_CCEM(c)||_F^2` has the closed form
//!   `c = sum_k w_k beta_k n_k (m_k - alpha_k) / sum_k w_k n_k beta_k^2`, clamped to `[0, 1]`;
//! - the Gram distance is `||G - G_CCEM(c_fit)||_F / (2N)`, with
//!   `sum_{entries of k} (G - a)^2 = M2_k + n_k (m_k - a)^2`.
//!
//! Categories and their `(alpha, beta)` (entries counted `w` times in the `2N x 2N` Gram matrix):
//! norms `(1, 0)`, `w = 1` each side; within off-diagonal `(-1/(N-1), N/(N-1))`, `w = 1` each
//! side; positives `(1, -2)` and negatives `(-1/(N-1), -(N-2)/(N-1))`, `w = 2` (`UV^T` and `VU^T`).

use crate::base::Real;
use crate::loss::driver::{block_product, map_blocks};
use crate::loss::BlockOptions;
use ndarray::{s, Array2, ArrayView1, ArrayView2};
use serde::Serialize;

/// Count, mean, spread and range of a set of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// How many.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation `sqrt(M2 / count)`.
    pub std: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Sum of squared deviations from the mean.
    #[serde(skip)]
    pub m2: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            count: 0,
            mean: 0.0,
            std: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            m2: 0.0,
        }
    }
}

impl Stats {
    /// Adds one value (Welford's update).
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Merges another set (Chan et al.'s pairwise formula).
    pub fn merge(&mut self, o: &Stats) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        let n = (self.count + o.count) as f64;
        let delta = o.mean - self.mean;
        self.mean += delta * o.count as f64 / n;
        self.m2 += o.m2 + delta * delta * self.count as f64 * o.count as f64 / n;
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Fills in `std` from `m2`.
    pub(crate) fn finish(mut self) -> Self {
        self.std = if self.count > 0 {
            (self.m2 / self.count as f64).sqrt()
        } else {
            f64::NAN
        };
        if self.count == 0 {
            self.mean = f64::NAN;
        }
        self
    }

    /// `sum (x - a)^2` over the set: `M2 + count (mean - a)^2`.
    fn sq_dist_to(&self, a: f64) -> f64 {
        self.m2 + self.count as f64 * (self.mean - a) * (self.mean - a)
    }
}

/// What SPEC §4 reports about an embedding.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// Batch size.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Positive similarities `S_ii`.
    pub pos: Stats,
    /// Negative similarities `S_ij`, `i != j`.
    pub neg: Stats,
    /// `u_i . u_j`, `i != j`.
    pub within_u: Stats,
    /// `v_i . v_j`, `i != j`.
    pub within_v: Stats,
    /// Squared norms `u_i . u_i` and `v_i . v_i` (all 1 for normalised rows).
    pub norms: Stats,
    /// Least-squares CCEM parameter over the whole Gram matrix, in `[0, 1]`.
    pub c_fit: f64,
    /// `c` read off the positives alone: `(1 - mean S_ii) / 2`, clamped to `[0, 1]`.
    pub c_from_s_pos: f64,
    /// `||G - G_CCEM(c_fit)||_F / (2N)`.
    pub gram_distance: f64,
}

impl Measurement {
    /// The Gram distance to the CCEM with a given `c` (e.g. the theory's `c*`).
    pub fn gram_distance_to(&self, c: f64) -> f64 {
        let cats = self.categories();
        let ss: f64 = cats
            .iter()
            .map(|(st, w, a, b)| w * st.sq_dist_to(a + b * c))
            .sum();
        ss.max(0.0).sqrt() / (2.0 * self.n as f64)
    }

    /// `(stats, weight, alpha, beta)` per category (module documentation).
    fn categories(&self) -> [(Stats, f64, f64, f64); 5] {
        let nm1 = self.n as f64 - 1.0;
        [
            (self.norms, 1.0, 1.0, 0.0),
            (self.within_u, 1.0, -1.0 / nm1, self.n as f64 / nm1),
            (self.within_v, 1.0, -1.0 / nm1, self.n as f64 / nm1),
            (self.pos, 2.0, 1.0, -2.0),
            (self.neg, 2.0, -1.0 / nm1, -(self.n as f64 - 2.0) / nm1),
        ]
    }
}

/// Measures `(U, V)` (taken as given: normalise first if they are raw), SPEC §4.
/// [`crate::Report::new`] checks its input, measures and compares with the theory.
///
/// # Panics
/// Shapes must match and `N >= 2` (checked at the boundary, e.g. by
/// [`crate::loss::embedding::check_pair`]); otherwise it may panic on an index.
///
/// # Example
/// ```
/// use ccem::{measure, BlockOptions};
/// use ndarray::array;
///
/// let u = array![[1.0, 0.0], [0.0, 1.0]];
/// let m = measure(u.view(), u.view(), BlockOptions::default());
/// assert_eq!((m.pos.mean, m.neg.mean), (1.0, 0.0));
/// ```
pub fn measure(u: ArrayView2<f64>, v: ArrayView2<f64>, opts: BlockOptions) -> Measurement {
    measure_with(u, v, opts, None)
}

/// [`measure`], reading `U V^T` from `uv` (`N x N`) when it is given, already computed: the
/// numbers [`block_product`] gives for any block of rows (the exact margins' pass keeps them,
/// `geometry::scan`). Bitwise the same as [`measure`].
pub(crate) fn measure_with(
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    opts: BlockOptions,
    uv: Option<ArrayView2<f64>>,
) -> Measurement {
    let (n, d) = u.dim();
    measure_rows(u, v, opts, uv, UpperGram::worth(n, d, opts))
}

/// [`measure_with`], with `U U^T` and `V V^T` computed once as their upper block triangles
/// ([`UpperGram`]) when `symmetric`, else row block by row block.
fn measure_rows(
    u: ArrayView2<f64>,
    v: ArrayView2<f64>,
    opts: BlockOptions,
    uv: Option<ArrayView2<f64>>,
    symmetric: bool,
) -> Measurement {
    let (n, d) = u.dim();
    let upper = symmetric.then(|| (UpperGram::of(u, opts), UpperGram::of(v, opts)));
    let parts = map_blocks(n, opts, |r0, r1| {
        let mut acc = Acc::default();
        let owned;
        let uv = match uv {
            Some(s) => s.slice_move(s![r0..r1, ..]),
            None => {
                owned = block_product(u, v, r0, r1);
                owned.view()
            }
        };
        if let Some((gu, gv)) = &upper {
            let (mut row_u, mut row_v) = (vec![0.0; n], vec![0.0; n]);
            for i in 0..r1 - r0 {
                gu.row_into(r0 + i, &mut row_u);
                gv.row_into(r0 + i, &mut row_v);
                acc.push_row(r0 + i, uv.row(i), &row_u, &row_v);
            }
        } else {
            let uu = block_product(u, u, r0, r1);
            let vv = block_product(v, v, r0, r1);
            for i in 0..r1 - r0 {
                let (ru, rv) = (uu.row(i), vv.row(i));
                let rows = "a fresh array's rows are contiguous";
                acc.push_row(
                    r0 + i,
                    uv.row(i),
                    ru.as_slice().expect(rows),
                    rv.as_slice().expect(rows),
                );
            }
        }
        acc
    });
    let mut acc = Acc::default();
    for p in &parts {
        acc.pos.merge(&p.pos);
        acc.neg.merge(&p.neg);
        acc.wu.merge(&p.wu);
        acc.wv.merge(&p.wv);
        acc.norms.merge(&p.norms);
    }
    Measurement::from_stats(n, d, [acc.pos, acc.neg, acc.wu, acc.wv, acc.norms])
}

/// What one block of rows of [`measure_with`] gathers.
#[derive(Default, Clone, Copy)]
struct Acc {
    pos: Stats,
    neg: Stats,
    wu: Stats,
    wv: Stats,
    norms: Stats,
}

impl Acc {
    /// Row `gi` of `U V^T`, `U U^T` and `V V^T`, in column order: the positive and the norms on
    /// the diagonal, the negatives and the within-view entries elsewhere.
    fn push_row(&mut self, gi: usize, uv: ArrayView1<f64>, uu: &[f64], vv: &[f64]) {
        for (j, ((&s, &a), &b)) in uv.iter().zip(uu).zip(vv).enumerate() {
            if j == gi {
                self.pos.push(s);
                self.norms.push(a);
                self.norms.push(b);
            } else {
                self.neg.push(s);
                self.wu.push(a);
                self.wv.push(b);
            }
        }
    }
}

/// The upper block triangle of a symmetric `X X^T`: for each block of rows `r0..r1`, those rows
/// from column `r0` on. Entry `(i, j)` with `j` in an earlier block is entry `(j, i)` of that
/// block's rows, the same number: `x_i . x_j` and `x_j . x_i` are the same products summed in
/// the same order (a test checks [`measure`] against the row-block path bitwise).
struct UpperGram {
    block: usize,
    rows: Vec<Array2<f64>>,
}

impl UpperGram {
    /// The largest `X X^T` (`8 N^2` bytes, for each of `U` and `V`) computed this way.
    const MAX_BYTES: usize = 32 << 20;

    /// Whether it pays: more than one block (else there is no lower triangle to skip), `d`
    /// large enough that the products outweigh the gathering (`d >= 64`), and at most
    /// [`Self::MAX_BYTES`].
    fn worth(n: usize, d: usize, opts: BlockOptions) -> bool {
        n > opts.block.max(1) && d >= 64 && n.saturating_mul(n).saturating_mul(8) <= Self::MAX_BYTES
    }

    fn of(x: ArrayView2<f64>, opts: BlockOptions) -> Self {
        let n = x.nrows();
        let rows = map_blocks(n, opts, |r0, r1| {
            let mut out = Array2::<f64>::zeros((r1 - r0, n - r0));
            f64::gemm(
                x.slice(s![r0..r1, ..]),
                x.slice(s![r0.., ..]).t(),
                out.view_mut(),
                false,
            );
            out
        });
        UpperGram {
            block: opts.block.max(1),
            rows,
        }
    }

    /// Row `i` of `X X^T` into `out` (`N` entries).
    fn row_into(&self, i: usize, out: &mut [f64]) {
        let b = self.block;
        let q = i / b;
        // The columns of earlier blocks: column `i` of their rows.
        for (c, rows) in self.rows[..q].iter().enumerate() {
            let c0 = c * b;
            out[c0..c0 + b]
                .iter_mut()
                .zip(rows.column(i - c0))
                .for_each(|(o, &x)| *o = x);
        }
        // From column `q b` on: the row itself.
        let own = self.rows[q].row(i - q * b);
        out[q * b..].copy_from_slice(own.as_slice().expect("a fresh array's rows are contiguous"));
    }
}

impl Measurement {
    /// The measurement from the statistics of its five categories `[positives, negatives,
    /// within U, within V, norms]` (each finished here): fits the CCEM (`c_fit`,
    /// `gram_distance`, `c_from_s_pos`; module documentation).
    pub(crate) fn from_stats(n: usize, d: usize, cats: [Stats; 5]) -> Measurement {
        let [pos, neg, wu, wv, norms] = cats;
        let mut m = Measurement {
            n,
            d,
            pos: pos.finish(),
            neg: neg.finish(),
            within_u: wu.finish(),
            within_v: wv.finish(),
            norms: norms.finish(),
            c_fit: 0.0,
            c_from_s_pos: ((1.0 - pos.mean) / 2.0).clamp(0.0, 1.0),
            gram_distance: 0.0,
        };
        let (num, den) = m
            .categories()
            .iter()
            .fold((0.0, 0.0), |(num, den), (st, w, a, b)| {
                let k = st.count as f64;
                (num + w * b * k * (st.mean - a), den + w * k * b * b)
            });
        m.c_fit = (num / den).clamp(0.0, 1.0);
        m.gram_distance = m.gram_distance_to(m.c_fit);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::ccem_embedding;
    use crate::loss::normalize_rows;
    use ndarray::{concatenate, Array2, Axis};
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// Two `n x d` matrices of random unit rows, and blocks of `block` rows in parallel.
    fn unit_pairs(
        rng: &mut rand_chacha::ChaCha8Rng,
        n: usize,
        d: usize,
        block: usize,
    ) -> (Array2<f64>, Array2<f64>, BlockOptions) {
        let mut draw = || {
            let x = Array2::<f64>::from_shape_fn((n, d), |_| StandardNormal.sample(&mut *rng));
            normalize_rows(x.view(), "U").unwrap().u
        };
        let (u, v) = (draw(), draw());
        let opts = BlockOptions {
            block,
            parallel: true,
        };
        (u, v, opts)
    }

    #[test]
    fn the_upper_block_triangle_measures_as_the_row_blocks_bitwise() {
        // U U^T and V V^T from their upper block triangles (each entry below it read from its
        // mirror) give the same statistics, bit for bit, as the row blocks' full products: at
        // block sizes that do and do not divide N, odd N and d, and 1 or 3 threads.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for (n, d, block) in [(130, 64, 16), (257, 70, 64), (300, 301, 256), (61, 65, 7)] {
            let (u, v, opts) = unit_pairs(&mut rng, n, d, block);
            assert!(UpperGram::worth(n, d, opts));
            let run = |symmetric: bool, threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| measure_rows(u.view(), v.view(), opts, None, symmetric))
            };
            let (rows, upper) = (run(false, 1), run(true, 3));
            assert_eq!(
                format!("{rows:?}"),
                format!("{upper:?}"),
                "N = {n}, d = {d}, block {block}"
            );
            assert_eq!(rows.within_u.m2.to_bits(), upper.within_u.m2.to_bits());
            assert_eq!(rows.within_v.m2.to_bits(), upper.within_v.m2.to_bits());
            assert_eq!(rows.gram_distance.to_bits(), upper.gram_distance.to_bits());
        }
        // One block, a small d or a large N: the row blocks.
        let opts = BlockOptions::default();
        assert!(!UpperGram::worth(256, 300, opts));
        assert!(!UpperGram::worth(1000, 32, opts));
        assert!(!UpperGram::worth(3000, 300, opts));
    }

    #[test]
    fn the_s_kept_by_the_margins_measures_as_its_own_product() {
        // The exact margins keep S = U V^T (d >= 256 in f64); the measurement reads it instead
        // of computing it again, and gets the same bits, whatever the blocks.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        for (n, d, block) in [
            (300, 300, 256),
            (257, 256, 64),
            (40, 300, 7),
            (33, 260, 1000),
        ] {
            let (u, v, opts) = unit_pairs(&mut rng, n, d, block);
            let level = crate::geometry::QuantileLevel::default();
            let (_, kept) =
                crate::geometry::margins_keeping(u.view(), v.view(), level, opts).unwrap();
            let kept = kept.expect("the exact margins keep S at d >= 256 in f64");
            let read = measure_with(u.view(), v.view(), opts, Some(kept.view()));
            let computed = measure(u.view(), v.view(), opts);
            assert_eq!(
                format!("{read:?}"),
                format!("{computed:?}"),
                "N = {n}, block {block}"
            );
        }
    }

    #[test]
    fn ccem_is_measured_exactly() {
        for &delta in &[0.0, 0.5, 2.0, f64::INFINITY] {
            let (u, v) = ccem_embedding(8, 11, delta, Some(5)).unwrap();
            let m = measure(
                u.view(),
                v.view(),
                BlockOptions {
                    block: 3,
                    parallel: true,
                },
            );
            let c = crate::theory::c_of_delta(delta);
            assert!((m.c_fit - c).abs() < 1e-12, "{} vs {c}", m.c_fit);
            assert!(m.gram_distance < 1e-7, "{}", m.gram_distance);
            assert!((m.pos.mean - (1.0 - 2.0 * c)).abs() < 1e-13);
            assert!(m.pos.std < 1e-7);
        }
    }

    #[test]
    fn gram_distance_matches_a_direct_computation() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let x = Array2::<f64>::from_shape_fn((6, 5), |_| StandardNormal.sample(&mut rng));
        let y = Array2::<f64>::from_shape_fn((6, 5), |_| StandardNormal.sample(&mut rng));
        let u = normalize_rows(x.view(), "U").unwrap().u;
        let v = normalize_rows(y.view(), "V").unwrap().u;
        let m = measure(
            u.view(),
            v.view(),
            BlockOptions {
                block: 4,
                parallel: false,
            },
        );
        let w = concatenate(Axis(0), &[u.view(), v.view()]).unwrap();
        let g = w.dot(&w.t());
        for &c in &[0.0, 0.37, m.c_fit, 1.0] {
            let (uc, vc) = crate::geometry::Ccem::from_c(6, 6, c).unwrap().build();
            let wc = concatenate(Axis(0), &[uc.view(), vc.view()]).unwrap();
            let gc = wc.dot(&wc.t());
            let direct = (&g - &gc).mapv(|e| e * e).sum().sqrt() / 12.0;
            assert!((direct - m.gram_distance_to(c)).abs() < 1e-12);
            // c_fit is the minimiser.
            assert!(m.gram_distance <= direct + 1e-12);
        }
        assert!(
            (m.neg.mean - crate::loss::embedding::mean_similarities(u.view(), v.view()).1).abs()
                < 1e-12
        );
    }
}
