//! The gradient `G = dL_sig/dS` of the sigmoid loss alone, vectorised, for training steps
//! ([`Loss::grad_s`](super::Loss::grad_s)).
//!
//! SPEC §1: `G_ij = -(z_ij t / N) sigmoid(-z_ij (t S_ij - b))`, `z_ii = +1`, `z_ij = -1` (i != j).
//! With `y = -z_ij (t S_ij - b)` (the argument of the softplus in the loss) and
//! `e = exp(-|y|)`: `sigmoid(y) = 1/(1+e)` for `y >= 0` and `e/(1+e)` for `y < 0`, exact and finite
//! for every finite `y` (the form of [`super::sigmoid_loss_grad`]).
//!
//! [`crate::loss::Loss::value_grad_s`] also evaluates the loss value, whose `log1p` per entry was a
//! fifth of a training step at `N = d = 50`, and calls `libm`'s scalar `exp` for each of the `N^2`
//! entries (another fifth). A step needs only `G`, so this computes `G` alone with an `exp` that
//! the compiler vectorises ([`exp_nonpos`]); the loss value is still computed by the library
//! whenever it is reported. The two gradients agree to a few ulp (a unit test checks 1e-15).
//!
//! The arithmetic uses no fused multiply-add, so the AVX2 and the baseline (SSE2) builds of the
//! loop give bitwise the same `G`: a result never depends on the machine's vector width. From
//! `2^16` entries the flat loop runs in fixed chunks on the rayon pool; each entry is computed
//! alone, so neither does it depend on the thread count.

/// `log2(e)`.
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// High part of `ln 2` with 11 trailing zero bits (so `k * LN2_HI` is exact for `|k| < 2^11`).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// `ln 2 - LN2_HI`.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// `1.5 * 2^52`: adding it rounds to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;
/// `1/k!` for `k = 2..=13`, the Taylor coefficients of `exp` on `|r| <= ln(2)/2`.
const INV_FACT: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
];

/// `exp(a)` for `a <= 0`, branch-free so that a loop over it vectorises.
///
/// # Formula
/// `a = k ln 2 + r` with `k = round(a / ln 2)` and `|r| <= ln(2)/2` (Cody-Waite: `ln 2` split in
/// two parts, exact product with the high one), `exp(r)` by its Taylor polynomial of degree 13
/// (truncation below `5e-18` relative) in Estrin form, then `exp(a) = 2^k exp(r)` by writing `k`
/// into the exponent bits. Relative error below 3 ulp (`6e-16`, tested) for `a > -708`; below,
/// where `exp(a)` is under `3.3e-308` (subnormal or zero), the result is `0` (an absolute error
/// below `3.3e-308`, far under every quantity it meets here: `1 + e`, or `e / (1 + e)` times
/// `t / N`).
#[inline(always)]
pub(crate) fn exp_nonpos(a: f64) -> f64 {
    let normal = a > -708.0;
    let a = if normal { a } else { -708.0 };
    let kd = a * LOG2_E + SHIFT;
    let k_bits = kd.to_bits().wrapping_sub(SHIFT.to_bits());
    let k = kd - SHIFT;
    let r = (a - k * LN2_HI) - k * LN2_LO;
    // Estrin's scheme: the same polynomial with a short dependency chain (depth 5, not 13).
    let c = &INV_FACT;
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let q0 = 1.0 + r;
    let q1 = c[0] + c[1] * r;
    let q2 = c[2] + c[3] * r;
    let q3 = c[4] + c[5] * r;
    let q4 = c[6] + c[7] * r;
    let q5 = c[8] + c[9] * r;
    let q6 = c[10] + c[11] * r;
    let p = (q0 + q1 * r2) + (q2 + q3 * r2) * r4 + ((q4 + q5 * r2) + q6 * r4) * r8;
    // k in [-1022, 0]: 2^k is a normal number with biased exponent k + 1023.
    let scale = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    if normal {
        p * scale
    } else {
        0.0
    }
}

/// `sigmoid(y)` from `e = exp(-|y|)`: `1/(1+e)` if `y >= 0`, else `e/(1+e)`.
#[inline(always)]
fn sigmoid_of(y: f64) -> f64 {
    let e = exp_nonpos(-y.abs());
    let r = 1.0 / (1.0 + e);
    if y >= 0.0 {
        r
    } else {
        e * r
    }
}

/// Every entry as a negative (`z = -1`, `y = t S - b`): `g = scale sigmoid(t s - b)`, one flat
/// loop that the compiler vectorises.
#[inline(always)]
fn negatives(s: &[f64], g: &mut [f64], scale: f64, t: f64, b: f64) {
    for (gij, &sij) in g.iter_mut().zip(s) {
        *gij = scale * sigmoid_of(t * sij - b);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn negatives_avx2(s: &[f64], g: &mut [f64], scale: f64, t: f64, b: f64) {
    negatives(s, g, scale, t, b)
}

/// [`negatives`] on the AVX2 build where the CPU has it (`allow_avx2`), else the baseline one.
fn negatives_on(s: &[f64], g: &mut [f64], scale: f64, t: f64, b: f64, allow_avx2: bool) {
    #[cfg(target_arch = "x86_64")]
    if allow_avx2 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { negatives_avx2(s, g, scale, t, b) };
        return;
    }
    let _ = allow_avx2;
    negatives(s, g, scale, t, b)
}

/// The fewest entries for which the entries are cut into chunks of [`CHUNK`] on the rayon pool
/// (each entry is computed alone, so the split never changes a bit).
const PAR_MIN: usize = 1 << 16;

/// The entries of one parallel task.
const CHUNK: usize = 1 << 14;

/// `G` of `n x n` row-major `s` into `g`: the negatives' form on every entry (in parallel from
/// [`PAR_MIN`] entries), then the positives on the diagonal (`z = +1`, `y = -(t S - b)`).
fn kernel(s: &[f64], g: &mut [f64], n: usize, t: f64, b: f64, allow_avx2: bool) {
    use rayon::prelude::*;
    let scale = t / n as f64;
    if s.len() >= PAR_MIN {
        g.par_chunks_mut(CHUNK)
            .zip(s.par_chunks(CHUNK))
            .for_each(|(g, s)| negatives_on(s, g, scale, t, b, allow_avx2));
    } else {
        negatives_on(s, g, scale, t, b, allow_avx2);
    }
    for i in 0..n {
        g[i * n + i] = -scale * sigmoid_of(-(t * s[i * n + i] - b));
    }
}

/// `G = dL_sig/dS` (SPEC §1) of an `n x n` row-major `S` into `g`, for finite `t >= 0` and `b`.
///
/// # Panics
/// `s` or `g` is not of length `n * n`.
pub(crate) fn sigmoid_grad_s(s: &[f64], g: &mut [f64], n: usize, t: f64, b: f64) {
    assert!(
        s.len() == n * n && g.len() == n * n,
        "S and G must be n x n"
    );
    kernel(s, g, n, t, b, true)
}

/// The baseline (non-AVX2) path, for the test that both paths agree bitwise.
#[cfg(test)]
pub(crate) fn sigmoid_grad_s_baseline(s: &[f64], g: &mut [f64], n: usize, t: f64, b: f64) {
    kernel(s, g, n, t, b, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn gradient_only_sigmoid_matches_the_library_gradient() {
        for n in [2, 7, 13, 300] {
            for (t, b) in [
                (0.1, 0.1),
                (2.0, 2.0),
                (3.0, -1.0),
                (1e4, 1e4),
                (0.0, 0.5),
                (5.0, 0.0),
            ] {
                let s = Array2::from_shape_fn((n, n), |(i, j)| {
                    ((i * 7 + j * 3) % 11) as f64 / 5.5 - 1.0
                });
                let loss = crate::loss::Loss::sigmoid(t, b).unwrap();
                let mut g_lib = Array2::zeros((n, n));
                crate::loss::ContrastiveLoss::value_grad_s(&loss, s.view(), g_lib.view_mut());
                let mut g = vec![f64::NAN; n * n];
                sigmoid_grad_s(s.as_slice().unwrap(), &mut g, n, t, b);
                let mut g_base = vec![f64::NAN; n * n];
                sigmoid_grad_s_baseline(s.as_slice().unwrap(), &mut g_base, n, t, b);
                for ((a, l), c) in g.iter().zip(&g_lib).zip(&g_base) {
                    assert!(
                        (a - l).abs() <= 1e-15 * l.abs() + 1e-300,
                        "t = {t}: {a} vs {l}"
                    );
                    assert_eq!(a.to_bits(), c.to_bits(), "vector and baseline paths differ");
                }
            }
        }
    }

    #[test]
    fn vectorisable_exp_is_accurate() {
        let mut worst: f64 = 0.0;
        let mut a = 0.0_f64;
        while a > -707.0 {
            let rel = (exp_nonpos(a) - a.exp()).abs() / a.exp();
            worst = worst.max(rel);
            a -= 0.0137;
        }
        assert!(worst < 6e-16, "worst relative error {worst}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert_eq!(exp_nonpos(-1e6), 0.0);
        assert_eq!(exp_nonpos(-f64::INFINITY), 0.0);
    }
}
