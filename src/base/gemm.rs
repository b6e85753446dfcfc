//! `C = A B` (or `C += A B`) for the products of one training step, by size: a packing-free
//! register-tiled kernel for the paper's small matrices, a cache-blocked multi-threaded product
//! above a crossover.
//!
//! **Small (the tiled kernel).** Every operand of the paper's products is at most `100 x 100` and
//! stays in the L1/L2 cache, so packing both operands into panels (as BLAS and `matrixmultiply`
//! do, and allocating the packing buffer on each call) costs more than it saves. Here `B` and `C`
//! are row-major with a column count padded to a multiple of 8 by the caller (the workspace keeps
//! zero padding columns, see `encoder::network`), and `A` has arbitrary strides, so a transposed
//! operand is a view, never a copy. The register tile is up to 6 rows of `C` by 2 vectors (16
//! `f32` or 8 `f64`): per step along `k`, two vector loads of a row of `B`, one broadcast of `A`
//! per row and 12 multiply-adds, 12 accumulators in registers. Written in plain Rust over
//! fixed-size arrays; the compiler turns it into AVX2 FMA code in the `avx2,fma` build chosen at
//! run time, or SSE2 code with separate multiply and add elsewhere.
//!
//! Measured at the shapes of an `N = d = 50` step (2-core AVX2 machine, f32): 68-77 GFLOP/s
//! against 52-63 for `matrixmultiply::sgemm`; 1.5-1.9x faster at `N = d = 20`.
//!
//! **Large (blocked).** Above [`BLOCKED_MIN_MACS`] multiply-adds, the rows of `C` are cut into
//! fixed blocks of [`block_rows`]`(m)` rows and each block is one single-threaded `matrixmultiply` call
//! (packed, cache-blocked), the blocks run in parallel on the rayon pool (both cores for one
//! large `ccem train`; a sweep's cells share the pool). The crossover is measured
//! (`benches/encoder.rs`, group `encoder_kernels`; docs/PERFORMANCE.md).
//!
//! Determinism: in the tiled kernel the sum over `k` runs in order `0..k` for every entry; a
//! blocked product computes each fixed block the same way whichever thread runs it. The result
//! depends only on the inputs and on the machine (FMA or not), never on the thread count.

use super::real::Real;
use ndarray::linalg::general_mat_mul;
use ndarray::{s, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Zip};
use rayon::prelude::*;

/// Products of at least this many multiply-adds (`m k n`) run blocked and multi-threaded
/// ([`GemmKernel::Blocked`]); smaller ones in the tiled kernel. Measured crossover
/// (docs/PERFORMANCE.md, `encoder_kernels`): a whole step at `N = d = s` is faster tiled up to
/// `s = 128` and blocked from `s = 192`; `4 * 144^3` keeps every product of a step up to
/// `s = 143` tiled (the largest, `(2N x 2d)(2d x d)`, has `4 s^3` multiply-adds), and every
/// product from `s = 229` blocked.
pub const BLOCKED_MIN_MACS: usize = 4 * 144 * 144 * 144;

/// The number of row blocks a blocked product aims at: one per core of the 2-core machines it
/// was measured on. Each block packs the whole right-hand operand again, so fewer blocks pack
/// less (8 blocks cost 5% more CPU at `N = d = 1024`, docs/PERFORMANCE.md); the rows of a block
/// do not change a result's bits, so any count keeps them independent of the thread count.
const BLOCKS: usize = 2;

/// The fewest rows of `C` in one block of a blocked product.
const MIN_BLOCK_ROWS: usize = 64;

/// The rows of `C` in one task of a blocked product of `m` rows: `m/8` rounded up to a multiple
/// of 16, at least 64. It depends on `m` only, never on the number of threads, so neither does
/// the result.
pub fn block_rows(m: usize) -> usize {
    m.div_ceil(BLOCKS).next_multiple_of(16).max(MIN_BLOCK_ROWS)
}

/// Which kernel runs a product of the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmKernel {
    /// The packing-free register-tiled kernel, single-threaded (small matrices).
    Tiled,
    /// Fixed row blocks ([`block_rows`]), each a `matrixmultiply` call, in parallel.
    Blocked,
    /// [`GemmKernel::Blocked`] from [`BLOCKED_MIN_MACS`] multiply-adds up, else
    /// [`GemmKernel::Tiled`]: what the encoder uses.
    Auto,
}

impl GemmKernel {
    /// The kernel that runs an `m x k` by `k x n` product.
    pub fn resolve(self, m: usize, k: usize, n: usize) -> GemmKernel {
        match self {
            GemmKernel::Auto => {
                if m.saturating_mul(k).saturating_mul(n) >= BLOCKED_MIN_MACS {
                    GemmKernel::Blocked
                } else {
                    GemmKernel::Tiled
                }
            }
            k => k,
        }
    }
}

/// `ReLU(x) = max(x, 0)`, propagating NaN (as PyTorch does) so that a divergence is never hidden.
#[inline(always)]
pub fn relu<T: Real>(x: T) -> T {
    if x < T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// What a product does with `A B` as it writes `C` (the encoder's fused passes, SPEC §5).
#[derive(Debug)]
pub enum Epilogue<'a, T> {
    /// `C = A B`.
    Store,
    /// `C += A B`.
    Accumulate,
    /// `C = ReLU(A B + 1 b^T)` (a layer's forward pass), `b` of length `n`. The same numbers
    /// as `C = 1 b^T` then `C += A B` then `ReLU` elementwise.
    BiasRelu(&'a [T]),
    /// `C = (A B) . [H > 0]` (the gradient through a ReLU whose output is `H`, `m x n` with
    /// contiguous rows), and `sums[j] += sum_i C_ij` over the rows in order `0..m` (the bias
    /// gradient), `sums` of length `n`.
    Mask(ArrayView2<'a, T>, &'a mut [T]),
}

/// The padding unit of the column count of `B` and `C` (a multiple of the vector width of both
/// `f32` and `f64` under AVX2).
pub(crate) const PAD: usize = 8;

/// `m` rounded up to a multiple of [`PAD`].
pub(crate) fn padded(m: usize) -> usize {
    m.div_ceil(PAD) * PAD
}

/// The largest number of rows of `C` in one register tile.
const MR_MAX: usize = 6;

/// One register tile: `C[0..MR, 0..NV*W] (+)= A[0..MR, 0..k] B[0..k, 0..NV*W]`.
///
/// # Safety
/// `a` is valid for reads at `r * rsa + p * csa` for `r < MR`, `p < k`; `b` for reads at
/// `p * ldb + j` for `p < k`, `j < NV * W`; `c` for reads and writes at `r * ldc + j` for
/// `r < MR`, `j < NV * W`; `c` does not overlap `a` or `b`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<T: Real, const MR: usize, const NV: usize, const W: usize, const FUSED: bool>(
    k: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    ldb: usize,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[[T::ZERO; W]; NV]; MR];
    for p in 0..k {
        let brow = b.add(p * ldb);
        let mut bv = [[T::ZERO; W]; NV];
        for (v, bvv) in bv.iter_mut().enumerate() {
            for (l, x) in bvv.iter_mut().enumerate() {
                *x = *brow.add(v * W + l);
            }
        }
        let ap = a.offset(p as isize * csa);
        for (r, accr) in acc.iter_mut().enumerate() {
            let ar = *ap.offset(r as isize * rsa);
            for (accv, bvv) in accr.iter_mut().zip(&bv) {
                for (x, &y) in accv.iter_mut().zip(bvv) {
                    *x = if FUSED {
                        ar.mul_add(y, *x)
                    } else {
                        *x + ar * y
                    };
                }
            }
        }
    }
    for (r, accr) in acc.iter().enumerate() {
        let crow = c.add(r * ldc);
        for (v, accv) in accr.iter().enumerate() {
            for (l, &x) in accv.iter().enumerate() {
                let out = crow.add(v * W + l);
                *out = if accumulate { *out + x } else { x };
            }
        }
    }
}

/// A column panel of `NV` vectors: every row tile of `C`, the `m` rows split into tiles of
/// nearly equal height (at most [`MR_MAX`]) so that no thin tile is left at the end.
///
/// # Safety
/// As [`tile`], for `m` rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn panel<T: Real, const NV: usize, const W: usize, const FUSED: bool>(
    m: usize,
    k: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    ldb: usize,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let tiles = m.div_ceil(MR_MAX);
    let (base, extra) = (m / tiles, m % tiles);
    let mut i = 0;
    for t in 0..tiles {
        let h = base + usize::from(t < extra);
        let (at, ct) = (a.offset(i as isize * rsa), c.add(i * ldc));
        macro_rules! go {
            ($mr:literal) => {
                tile::<T, $mr, NV, W, FUSED>(k, at, rsa, csa, b, ldb, ct, ldc, accumulate)
            };
        }
        match h {
            6 => go!(6),
            5 => go!(5),
            4 => go!(4),
            3 => go!(3),
            2 => go!(2),
            _ => go!(1),
        }
        i += h;
    }
}

/// The whole product, column panels of two vectors and a last one of one vector if needed.
///
/// # Safety
/// As [`tile`], for `m` rows and `n` columns; `n` is a multiple of `W`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel<T: Real, const W: usize, const FUSED: bool>(
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    ldb: usize,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    let mut j = 0;
    while j + 2 * W <= n {
        panel::<T, 2, W, FUSED>(m, k, a, rsa, csa, b.add(j), ldb, c.add(j), ldc, accumulate);
        j += 2 * W;
    }
    if j < n {
        panel::<T, 1, W, FUSED>(m, k, a, rsa, csa, b.add(j), ldb, c.add(j), ldc, accumulate);
    }
}

/// [`kernel`] compiled for AVX2 with FMA.
///
/// # Safety
/// As [`kernel`], and the CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_fma<T: Real, const W: usize>(
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    ldb: usize,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
) {
    kernel::<T, W, true>(m, k, n, a, rsa, csa, b, ldb, c, ldc, accumulate)
}

/// `C = A B` (`accumulate = false`) or `C += A B` (`accumulate = true`).
///
/// `A` (`m x k`) may have any strides (a transposed view is fine); `B` (`k x n`) and `C`
/// (`m x n`) must have contiguous rows and `n` a multiple of [`PAD`].
///
/// # Panics
/// Mismatched shapes, non-contiguous rows of `B` or `C`, `n` not a multiple of [`PAD`], or
/// negative strides.
pub(crate) fn gemm<T: Real>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
) {
    gemm_kernel(GemmKernel::Auto, a, b, c, accumulate)
}

/// The encoder's product on a chosen kernel (the benchmark compares them): `C = A B` or `C += A B`, `A` with
/// any strides, `B` and `C` with contiguous rows and a column count that is a multiple of 8.
///
/// # Panics
/// Mismatched shapes, non-contiguous rows of `B` or `C`, `n` not a multiple of 8, or negative
/// strides.
pub fn gemm_kernel<T: Real>(
    kernel: GemmKernel,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
) {
    let epi = if accumulate {
        Epilogue::Accumulate
    } else {
        Epilogue::Store
    };
    gemm_epilogue(kernel, a, b, c, epi)
}

/// [`gemm_kernel`] with an [`Epilogue`]: the elementwise pass after the product (bias and
/// ReLU, or ReLU mask and column sums) done as the product writes `C`, in registers in the tiled
/// kernel and block by block in the blocked one. The numbers are those of the product followed
/// by the separate pass.
///
/// # Panics
/// As [`gemm_kernel`]; a bias or sums not of length `n`; a mask `H` not `m x n` with contiguous
/// rows.
pub fn gemm_epilogue<T: Real>(
    kernel: GemmKernel,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    c: ArrayViewMut2<'_, T>,
    epi: Epilogue<'_, T>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    check_epilogue(m, n, &epi);
    match kernel.resolve(m, k, n) {
        GemmKernel::Blocked => blocked(a, b, c, epi),
        _ => gemm_with(a, b, c, epi, true),
    }
}

/// Checks the buffers of `epi` against a product of `m x n`.
///
/// # Panics
/// A bias or sums not of length `n`; a mask not `m x n` with contiguous rows.
fn check_epilogue<T>(m: usize, n: usize, epi: &Epilogue<'_, T>) {
    match epi {
        Epilogue::BiasRelu(bias) => assert_eq!(bias.len(), n, "gemm: the bias must have n entries"),
        Epilogue::Mask(h, sums) => {
            assert_eq!(sums.len(), n, "gemm: the sums must have n entries");
            assert!(
                h.dim() == (m, n) && h.strides()[1] == 1 && h.strides()[0] >= 0,
                "gemm: the mask must be {m} x {n} with contiguous rows"
            );
        }
        Epilogue::Store | Epilogue::Accumulate => {}
    }
}

/// The columns of one task of the blocked product's column sums (fixed: each column is summed
/// over the rows in order whatever the thread count).
const SUM_COLS: usize = 64;

/// The blocked product: fixed row blocks of `C` (and `A`), each one `matrixmultiply` call on
/// the thread that takes it, followed in the same task by the block's epilogue; then the column
/// sums of [`Epilogue::Mask`] over fixed column chunks, each column in row order.
fn blocked<T: Real>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    mut c: ArrayViewMut2<'_, T>,
    epi: Epilogue<'_, T>,
) {
    let (m, k) = a.dim();
    assert!(
        b.nrows() == k && c.dim() == (m, b.ncols()),
        "gemm: A is {m} x {k}, B is {:?}, C is {:?}",
        b.dim(),
        c.dim()
    );
    let rows = block_rows(m);
    let accumulate = matches!(epi, Epilogue::Accumulate);
    let (bias, mask, sums) = match epi {
        Epilogue::Store | Epilogue::Accumulate => (None, None, None),
        Epilogue::BiasRelu(bias) => (Some(ArrayView1::from(bias)), None, None),
        Epilogue::Mask(h, sums) => (None, Some(h), Some(sums)),
    };
    // `C = 1 b^T` then `C += A B`: the bias goes in first, as the product's `beta C` term.
    let beta = if accumulate || bias.is_some() {
        T::ONE
    } else {
        T::ZERO
    };
    let blocks: Vec<_> = c
        .axis_chunks_iter_mut(Axis(0), rows)
        .zip(a.axis_chunks_iter(Axis(0), rows))
        .enumerate()
        .collect();
    blocks.into_par_iter().for_each(|(q, (mut cb, ab))| {
        if let Some(bias) = bias {
            cb.rows_mut().into_iter().for_each(|mut r| r.assign(&bias));
        }
        general_mat_mul(T::ONE, &ab, &b, beta, &mut cb);
        if bias.is_some() {
            cb.mapv_inplace(relu);
        }
        if let Some(h) = mask {
            let hb = h.slice(s![q * rows..q * rows + cb.nrows(), ..]);
            Zip::from(&mut cb).and(hb).for_each(|dz, &y| {
                *dz = if y > T::ZERO { *dz } else { T::ZERO };
            });
        }
    });
    if let Some(sums) = sums {
        column_sums(c.view(), sums);
    }
}

/// `sums[j] += sum_i C_ij`, each column summed over the rows in order `0..m` (so the bits are
/// those of one pass row by row), in parallel over fixed chunks of [`SUM_COLS`] columns.
///
/// # Panics
/// `sums` not of length `C.ncols()`.
pub(crate) fn column_sums<T: Real>(c: ArrayView2<'_, T>, sums: &mut [T]) {
    assert_eq!(sums.len(), c.ncols(), "column sums: one sum per column");
    sums.par_chunks_mut(SUM_COLS)
        .enumerate()
        .for_each(|(q, part)| {
            let j0 = q * SUM_COLS;
            for row in c.slice(s![.., j0..j0 + part.len()]).rows() {
                part.iter_mut().zip(row).for_each(|(a, &x)| *a = *a + x);
            }
        });
}

/// [`gemm_epilogue`] on the tiled kernel, with the AVX2/FMA build allowed or not (the tests run
/// both builds).
fn gemm_with<T: Real>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    mut c: ArrayViewMut2<'_, T>,
    epi: Epilogue<'_, T>,
    allow_fma: bool,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(
        b.nrows(),
        k,
        "gemm: A is {m} x {k} but B has {} rows",
        b.nrows()
    );
    assert_eq!(c.dim(), (m, n), "gemm: C must be {m} x {n}");
    check_epilogue(m, n, &epi);
    assert!(
        n.is_multiple_of(PAD),
        "gemm: n = {n} must be a multiple of {PAD}"
    );
    assert!(
        b.strides()[1] == 1 && c.strides()[1] == 1,
        "gemm: B and C need contiguous rows"
    );
    assert!(
        a.strides()
            .iter()
            .chain(b.strides())
            .chain(c.strides())
            .all(|&s| s >= 0),
        "gemm: negative strides are not supported"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // `A B = 0`: the epilogue of a zero product (sums unchanged).
        match epi {
            Epilogue::Accumulate => {}
            Epilogue::BiasRelu(bias) => c
                .rows_mut()
                .into_iter()
                .for_each(|mut r| r.zip_mut_with(&ArrayView1::from(bias), |x, &b| *x = relu(b))),
            Epilogue::Store | Epilogue::Mask(..) => c.fill(T::ZERO),
        }
        return;
    }
    let accumulate = matches!(epi, Epilogue::Accumulate);
    let (rsa, csa) = (a.strides()[0], a.strides()[1]);
    let ldb = b.strides()[0] as usize;
    let ldc = c.strides()[0] as usize;
    let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    // SAFETY: the shapes and strides were checked above, so every offset the kernel forms is
    // inside the three views; `c` is a unique (mutable) view, so it overlaps neither `a` nor `b`.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        let done = allow_fma
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let done = false;
        #[cfg(target_arch = "x86_64")]
        if done {
            match T::LANES {
                8 => kernel_fma::<T, 8>(m, k, n, ap, rsa, csa, bp, ldb, cp, ldc, accumulate),
                _ => kernel_fma::<T, 4>(m, k, n, ap, rsa, csa, bp, ldb, cp, ldc, accumulate),
            }
        }
        if !done {
            match T::LANES {
                8 => kernel::<T, 8, false>(m, k, n, ap, rsa, csa, bp, ldb, cp, ldc, accumulate),
                _ => kernel::<T, 4, false>(m, k, n, ap, rsa, csa, bp, ldb, cp, ldc, accumulate),
            }
        }
    }
    // The epilogue in one pass over `C` (kept out of the kernel: inside its loop the compiler no
    // longer kept the accumulators in registers, and the kernel ran at half speed).
    finish(c, epi);
}

/// The epilogue of [`Epilogue::BiasRelu`] or [`Epilogue::Mask`] on `C = A B`, one pass, row by
/// row in order (so the column sums add the rows in order `0..m`).
fn finish<T: Real>(mut c: ArrayViewMut2<'_, T>, epi: Epilogue<'_, T>) {
    match epi {
        Epilogue::Store | Epilogue::Accumulate => {}
        Epilogue::BiasRelu(bias) => {
            for mut row in c.rows_mut() {
                if let Some(row) = row.as_slice_mut() {
                    row.iter_mut()
                        .zip(bias)
                        .for_each(|(x, &b)| *x = relu(b + *x));
                }
            }
        }
        Epilogue::Mask(h, sums) => {
            for (mut row, hrow) in c.rows_mut().into_iter().zip(h.rows()) {
                if let (Some(row), Some(hrow)) = (row.as_slice_mut(), hrow.as_slice()) {
                    for ((x, &y), s) in row.iter_mut().zip(hrow).zip(sums.iter_mut()) {
                        let v = if y > T::ZERO { *x } else { T::ZERO };
                        *x = v;
                        *s = *s + v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn reference(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
        a.dot(&b)
    }

    fn check<T: Real>(tol: f64) {
        for &(m, k, n) in &[
            (1, 1, 8),
            (2, 3, 8),
            (7, 5, 16),
            (13, 9, 24),
            (100, 50, 56),
            (6, 100, 8),
        ] {
            for transposed in [false, true] {
                let a64 = Array2::from_shape_fn((m, k), |(i, j)| {
                    ((i * 31 + j * 17) % 23) as f64 / 23.0 - 0.5
                });
                let b64 = Array2::from_shape_fn((k, n), |(i, j)| {
                    ((i * 13 + j * 7) % 19) as f64 / 19.0 - 0.5
                });
                let a_t: Array2<T> = a64.mapv(T::from_f64);
                let b_t: Array2<T> = b64.mapv(T::from_f64);
                // A given either directly or as the transpose of a k x m array.
                let a_store: Array2<T> = if transposed {
                    a_t.t().to_owned()
                } else {
                    a_t.clone()
                };
                let a_view = if transposed {
                    a_store.t()
                } else {
                    a_store.view()
                };
                let expected = reference(a64.view(), b64.view());
                for allow_fma in [true, false] {
                    let mut c = Array2::from_elem((m, n), T::from_f64(0.25));
                    gemm_with(a_view, b_t.view(), c.view_mut(), Epilogue::Store, allow_fma);
                    let mut c_acc = Array2::from_elem((m, n), T::from_f64(0.25));
                    gemm_with(
                        a_view,
                        b_t.view(),
                        c_acc.view_mut(),
                        Epilogue::Accumulate,
                        allow_fma,
                    );
                    for ((i, j), &e) in expected.indexed_iter() {
                        let got = c[[i, j]].to_f64();
                        assert!(
                            (got - e).abs() <= tol,
                            "{m}x{k}x{n} ({i},{j}) fma {allow_fma}"
                        );
                        assert!((c_acc[[i, j]].to_f64() - e - 0.25).abs() <= tol);
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_matches_ndarray_f64() {
        check::<f64>(1e-12);
    }

    #[test]
    fn gemm_matches_ndarray_f32() {
        check::<f32>(1e-4);
    }

    #[test]
    fn gemm_works_on_sub_views_with_padded_rows() {
        // A and C as column slices of wider, padded arrays, as in the workspace.
        let big_a = Array2::from_shape_fn((5, 16), |(i, j)| (i + 2 * j) as f64);
        let b = Array2::from_shape_fn((3, 8), |(i, j)| (i * j) as f64 - 1.0);
        let mut big_c = Array2::from_elem((5, 24), -7.0);
        gemm(
            big_a.slice(s![.., 2..5]),
            b.view(),
            big_c.slice_mut(s![.., 8..16]),
            false,
        );
        let expected = big_a.slice(s![.., 2..5]).dot(&b);
        assert_eq!(big_c.slice(s![.., 8..16]), expected);
        assert!(big_c.slice(s![.., ..8]).iter().all(|&x| x == -7.0));
        assert!(big_c.slice(s![.., 16..]).iter().all(|&x| x == -7.0));
    }

    /// The fused epilogues give bitwise the numbers of the separate passes they replace
    /// (`C = 1 b^T; C += A B; ReLU` and `C = A B; C .= [H > 0]; sums += column sums`), on both
    /// kernels, and the blocked one whatever the thread count.
    #[test]
    fn epilogues_equal_the_separate_passes_bitwise() {
        let (m, k, n) = (300, 70, 24);
        let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 17) as f32 / 17.0 - 0.5);
        let b = Array2::from_shape_fn((k, n), |(i, j)| ((i + 5 * j) % 13) as f32 / 13.0 - 0.5);
        let bias: Vec<f32> = (0..n).map(|j| (j % 5) as f32 / 5.0 - 0.4).collect();
        let h = Array2::from_shape_fn((m, n), |(i, j)| ((i + j) % 3) as f32 - 1.0);
        for kernel in [GemmKernel::Tiled, GemmKernel::Blocked] {
            // Bias and ReLU.
            let mut expected = Array2::<f32>::zeros((m, n));
            for mut row in expected.rows_mut() {
                row.assign(&ArrayView1::from(&bias[..]));
            }
            gemm_kernel(kernel, a.view(), b.view(), expected.view_mut(), true);
            expected.mapv_inplace(relu);
            let mut fused = Array2::<f32>::zeros((m, n));
            gemm_epilogue(
                kernel,
                a.view(),
                b.view(),
                fused.view_mut(),
                Epilogue::BiasRelu(&bias),
            );
            assert_eq!(fused, expected, "{kernel:?}");
            // Mask and column sums (added to what the sums hold).
            let mut expected = Array2::<f32>::zeros((m, n));
            gemm_kernel(kernel, a.view(), b.view(), expected.view_mut(), false);
            Zip::from(&mut expected).and(&h).for_each(|x, &y| {
                *x = if y > 0.0 { *x } else { 0.0 };
            });
            let mut expected_sums = vec![0.25f32; n];
            for row in expected.rows() {
                expected_sums
                    .iter_mut()
                    .zip(row)
                    .for_each(|(s, &x)| *s += x);
            }
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        let mut c = Array2::<f32>::zeros((m, n));
                        let mut sums = vec![0.25f32; n];
                        let epi = Epilogue::Mask(h.view(), &mut sums);
                        gemm_epilogue(kernel, a.view(), b.view(), c.view_mut(), epi);
                        (c, sums)
                    })
            };
            for threads in [1, 3] {
                let (c, sums) = run(threads);
                assert_eq!(c, expected, "{kernel:?} {threads}");
                assert_eq!(sums, expected_sums, "{kernel:?} {threads}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "multiple of")]
    fn gemm_rejects_unpadded_columns() {
        let a = Array2::<f32>::zeros((2, 2));
        let b = Array2::<f32>::zeros((2, 5));
        let mut c = Array2::<f32>::zeros((2, 5));
        gemm(a.view(), b.view(), c.view_mut(), false);
    }
}
