//! Numerically stable scalar helpers: softplus, log-sigmoid, sigmoid, log-sum-exp.
//!
//! SPEC.md §1 ("Numerics"): `log(1 + exp(x))` is never evaluated literally, since `exp` overflows
//! for `x > 709`; these forms are exact in floating point for every finite `x`.

/// `softplus(x) = log(1 + e^x)`, computed as `max(x, 0) + log1p(e^{-|x|})` (SPEC §1).
///
/// Finite for every finite `x`; `softplus(x) = x` to machine precision for `x > 37`.
#[inline]
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `log sigmoid(x) = -softplus(-x)`.
#[inline]
pub fn log_sigmoid(x: f64) -> f64 {
    -softplus(-x)
}

/// `log softplus(x) = log log(1 + e^x)`, finite for every finite `x` (where `softplus(x)`
/// underflows, `x < -30`, it is `x + log1p(-e^x / 2)`, exact to `O(e^{2x})`).
#[inline]
pub fn log_softplus(x: f64) -> f64 {
    if x < -30.0 {
        x + (-0.5 * x.exp()).ln_1p()
    } else {
        softplus(x).ln()
    }
}

/// `sigmoid(x) = 1 / (1 + e^{-x})`, evaluated without overflow on either side.
///
/// The derivative of [`softplus`]: `softplus'(x) = sigmoid(x)`.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `log sum_k e^{x_k}`, shifted by the maximum so it never overflows.
///
/// Returns `-inf` for an empty iterator.
pub fn log_sum_exp<I: IntoIterator<Item = f64> + Clone>(xs: I) -> f64 {
    let m = xs.clone().into_iter().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + xs.into_iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Sums of squares in `[NORM_SAFE_MIN, NORM_SAFE_MAX]` give a norm to full precision:
/// below it some squares may be subnormal (or zero), above it the sum may overflow.
pub const NORM_SAFE_MIN: f64 = 1e-280;
/// See [`NORM_SAFE_MIN`].
pub const NORM_SAFE_MAX: f64 = 1e280;

/// The Euclidean norm `||x||` of the values `xs`, given their plain sum of squares `sumsq`
/// (computed by the caller in its own order): `sqrt(sumsq)` when that sum is in the safe range
/// ([`NORM_SAFE_MIN`], [`NORM_SAFE_MAX`]), else recomputed scaled by the largest magnitude
/// `m`, `||x|| = m sqrt(sum (x_k / m)^2)`, so that rows of tiny or huge finite entries (`1e-160`,
/// `1e200`) keep every digit (SPEC §1, "Numerics"). `0` for an all-zero `xs`; `NaN` if an
/// entry is `NaN`; `inf` only if an entry is infinite.
pub fn norm_from<I: IntoIterator<Item = f64> + Clone>(sumsq: f64, xs: I) -> f64 {
    if (NORM_SAFE_MIN..=NORM_SAFE_MAX).contains(&sumsq) {
        return sumsq.sqrt();
    }
    let m = xs.clone().into_iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    if m.is_nan() || xs.clone().into_iter().any(f64::is_nan) {
        return f64::NAN;
    }
    if m == 0.0 || m.is_infinite() {
        return m;
    }
    // A subnormal `m` has no finite inverse: scale by a power of two first (exact).
    let k = if m < f64::MIN_POSITIVE {
        2f64.powi(600)
    } else {
        1.0
    };
    let inv = 1.0 / (m * k);
    m * xs
        .into_iter()
        .map(|x| {
            let y = x * k * inv;
            y * y
        })
        .sum::<f64>()
        .sqrt()
}

/// The Euclidean norm of `xs`, to full precision for any finite entries ([`norm_from`]).
pub fn norm<I: IntoIterator<Item = f64> + Clone>(xs: I) -> f64 {
    norm_from(xs.clone().into_iter().map(|x| x * x).sum(), xs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_keep_their_digits_for_tiny_and_huge_rows() {
        let x = [0.3, -0.4, 1.2];
        let exact = 1.3;
        for scale in [1.0, 1e-160, 1e-300, 1e160, 1e300] {
            let got = norm(x.iter().map(|v| v * scale));
            let rel = (got / scale - exact).abs() / exact;
            assert!(rel < 1e-15, "scale {scale}: {got} ({rel})");
        }
        let sub = norm([3e-320, 4e-320]);
        assert!((sub / 5e-320 - 1.0).abs() < 1e-3, "{sub}");
        assert_eq!(norm([0.0, 0.0]), 0.0);
        assert!(norm([1.0, f64::NAN]).is_nan());
        assert_eq!(norm([1.0, f64::INFINITY]), f64::INFINITY);
        // In the safe range it is the plain formula, bitwise.
        assert_eq!(norm(x), (0.3f64 * 0.3 + 0.4 * 0.4 + 1.2 * 1.2).sqrt());
    }

    #[test]
    fn softplus_matches_literal_form_where_that_is_exact() {
        for &x in &[-30.0, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0] {
            let literal = (1.0 + f64::exp(x)).ln();
            assert!((softplus(x) - literal).abs() < 1e-12 * (1.0 + literal.abs()));
        }
    }

    #[test]
    fn softplus_and_sigmoid_are_finite_at_extremes() {
        for &x in &[-1e6, -800.0, 800.0, 1e6] {
            assert!(softplus(x).is_finite());
            assert!(sigmoid(x).is_finite());
        }
        assert_eq!(softplus(1e6), 1e6);
        assert_eq!(sigmoid(-1e6), 0.0);
        assert_eq!(sigmoid(1e6), 1.0);
    }

    #[test]
    fn sigmoid_is_derivative_of_softplus() {
        for &x in &[-5.0, -1.0, 0.0, 0.3, 4.0] {
            let h = 1e-6;
            let fd = (softplus(x + h) - softplus(x - h)) / (2.0 * h);
            assert!((fd - sigmoid(x)).abs() < 1e-8);
        }
    }

    #[test]
    fn log_softplus_is_continuous_and_finite() {
        let at = |x: f64| (log_softplus(x), softplus(x).ln());
        let (a, b) = at(-29.999_999);
        assert!((a - b).abs() < 1e-12);
        let (a, _) = at(-30.000_001);
        assert!((a - softplus(-30.000_001).ln()).abs() < 1e-12);
        assert!((log_softplus(-1e4) + 1e4).abs() < 1e-12);
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let v = [1000.0, 1000.0];
        assert!((log_sum_exp(v.iter().copied()) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_sum_exp(std::iter::empty::<f64>()), f64::NEG_INFINITY);
    }
}
