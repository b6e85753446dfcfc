//! How the bias `b` is set across a grid of scales `t`, and the phase boundaries that follow
//! (SPEC §3.2): the antipodal boundary in closed form, the ETF boundary by a bracketed,
//! safeguarded Newton iteration on an explicit parametrisation of the ETF curve.

use super::{antipodal_threshold_tied_weighted, etf_threshold_tied_weighted};
use serde::{Deserialize, Serialize};

/// The bias as a function of the scale `t` (SPEC §1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum BiasMode {
    /// `b = t` (the paper's figures).
    Tied,
    /// A fixed `b`, whatever `t`.
    Fixed(f64),
    /// The relative bias `r_b = b / t` (Bangachev et al. 2025): `b = r_b t`.
    Relative(f64),
}

impl BiasMode {
    /// The bias at scale `t`.
    #[inline]
    pub fn bias(self, t: f64) -> f64 {
        match self {
            BiasMode::Tied => t,
            BiasMode::Fixed(b) => b,
            BiasMode::Relative(r) => r * t,
        }
    }

    /// A short label: `tied`, `b=1.5`, `rb=0.8`.
    pub fn label(self) -> String {
        match self {
            BiasMode::Tied => "tied (b = t)".to_string(),
            BiasMode::Fixed(b) => format!("b = {b}"),
            BiasMode::Relative(r) => format!("b = {r} t"),
        }
    }

    /// The bias as the affine function `b(t) = b0 + r t`: `(b0, r)`.
    fn affine(self) -> (f64, f64) {
        match self {
            BiasMode::Tied => (0.0, 1.0),
            BiasMode::Fixed(b) => (b, 0.0),
            BiasMode::Relative(r) => (0.0, r),
        }
    }

    /// Every scale `t in (0, inf)` at which the phase enters or leaves the ETF (`l'(0)` changes
    /// sign) for `N = n` pairs, ascending: at most two (SPEC §3.2). For [`BiasMode::Tied`] the
    /// closed form `((N-1)/N) log(N-3)`. [`BiasMode::etf_boundaries_weighted`] at `w = 1`.
    pub fn etf_boundaries(self, n: usize) -> Vec<f64> {
        self.etf_boundaries_weighted(n, 1.0)
    }

    /// The smallest of [`BiasMode::etf_boundaries`], `None` if there is none.
    pub fn etf_boundary(self, n: usize) -> Option<f64> {
        self.etf_boundary_weighted(n, 1.0)
    }

    /// The scale `t in (0, inf)` below which (or above which, for a negative slope of `t + b`)
    /// the optimum is antipodal, `None` if there is none: the root of `t + b(t) = log((N-2)/2)`
    /// (SPEC §3.2), `(1/2) log((N-2)/2)` for [`BiasMode::Tied`], `log((N-2)/2) - b` for a fixed
    /// `b`, `log((N-2)/2) / (1 + r_b)` for a relative bias.
    pub fn antipodal_boundary(self, n: usize) -> Option<f64> {
        self.antipodal_boundary_weighted(n, 1.0)
    }

    /// [`BiasMode::etf_boundaries`] for the loss whose negative pairs are weighted by `w > 0`
    /// (SPEC §8, mini-batches: `w = (B-1)/(N-1)`); the tied closed form is
    /// [`etf_threshold_tied_weighted`]. Needs `n >= 2`; empty for `n = 2` (always ETF).
    pub fn etf_boundaries_weighted(self, n: usize, w: f64) -> Vec<f64> {
        let (roots, count) = self.etf_roots(n, w);
        roots[..count].to_vec()
    }

    /// The smallest of [`BiasMode::etf_boundaries_weighted`]: the first scale at which the
    /// phase enters or leaves the ETF as `t` grows from `0`.
    pub fn etf_boundary_weighted(self, n: usize, w: f64) -> Option<f64> {
        let (roots, count) = self.etf_roots(n, w);
        (count > 0).then_some(roots[0])
    }

    /// [`BiasMode::antipodal_boundary`] under the negative weight `w` (SPEC §8, §3.2): the root
    /// `t = (log(w (N-2)/2) - b0) / (1 + r)` of `t + b(t) = log(w (N-2)/2)` for
    /// `b(t) = b0 + r t`, if it lies in `(0, inf)`; tied, [`antipodal_threshold_tied_weighted`].
    pub fn antipodal_boundary_weighted(self, n: usize, w: f64) -> Option<f64> {
        if let BiasMode::Tied = self {
            return antipodal_threshold_tied_weighted(n, w).filter(|&t| t > 0.0);
        }
        let wn = w * (n as f64 - 2.0);
        if wn <= 0.0 {
            return None; // N = 2: l'(1) > 0 at every t, never antipodal.
        }
        let (b0, r) = self.affine();
        let t = ((wn / 2.0).ln() - b0) / (1.0 + r);
        (t.is_finite() && t > 0.0).then_some(t)
    }

    /// The ETF boundaries in `(0, inf)`, ascending, and how many there are (SPEC §3.2).
    fn etf_roots(self, n: usize, w: f64) -> ([f64; 2], usize) {
        let mut out = ([f64::NAN; 2], 0);
        if let BiasMode::Tied = self {
            if let Some(t) = etf_threshold_tied_weighted(n, w).filter(|&t| t > 0.0) {
                out = ([t, f64::NAN], 1);
            }
            return out;
        }
        let (b0, r) = self.affine();
        etf_roots_affine(n, w, b0, r)
    }
}

/// The ETF boundaries in `(0, inf)` of the affine bias `b(t) = b0 + r t` under the negative
/// weight `w`, ascending, and how many there are (SPEC §3.2).
fn etf_roots_affine(n: usize, w: f64, b0: f64, r: f64) -> ([f64; 2], usize) {
    let mut out = ([f64::NAN; 2], 0);
    let wn = w * (n as f64 - 2.0);
    if !(wn > 0.0 && wn.is_finite()) {
        return out; // N = 2: l'(0) > 0 at every t, always the ETF.
    }
    let curve = EtfCurve::new(n, wn, b0, r);
    for (lo, hi) in curve.pieces() {
        if let Some(x) = curve.root(lo, hi) {
            let t = curve.t(x);
            if t > 0.0 && t.is_finite() && (out.1 == 0 || t > out.0[0]) {
                out.0[out.1] = t;
                out.1 += 1;
            }
        }
    }
    out
}

/// The ETF boundary curve of SPEC §3.2 in its parameter `x = t - b`: on it
/// `y = b + t/(N-1) = log(W/2 - 1 + (W/2) e^x)` (`W = w (N-2)`), `t(x) = (N-1)(x + y)/N`,
/// increasing, with `t(x0) = 0` at `x0 = log(2/W)`. The boundaries of `b(t) = b0 + r t` are
/// the roots on `(x0, inf)` of `H(x) = (1 - r) t(x) - x - b0`, convex or concave (the sign of
/// `(1 - r)(W - 2)`), so with at most two roots, split by the one extremum of `H`.
struct EtfCurve {
    /// `(N-1)/N`.
    q: f64,
    /// `W/2`.
    half_w: f64,
    /// `1 - 2/W`.
    kappa: f64,
    b0: f64,
    r: f64,
    /// `x0 = log(2/W)`, where `t = 0`.
    x0: f64,
}

impl EtfCurve {
    fn new(n: usize, wn: f64, b0: f64, r: f64) -> Self {
        EtfCurve {
            q: (n - 1) as f64 / n as f64,
            half_w: wn / 2.0,
            kappa: 1.0 - 2.0 / wn,
            b0,
            r,
            x0: (2.0 / wn).ln(),
        }
    }

    /// `y(x) = log(W/2 - 1 + (W/2) e^x)`, as `x + log(W/2 + (W/2 - 1) e^-x)` for `x > 0`.
    #[inline]
    fn y(&self, x: f64) -> f64 {
        if x > 0.0 {
            x + (self.half_w + (self.half_w - 1.0) * (-x).exp()).ln()
        } else {
            (self.half_w - 1.0 + self.half_w * x.exp()).ln()
        }
    }

    /// `y'(x) = 1 / (1 + kappa e^-x)`.
    #[inline]
    fn dy(&self, x: f64) -> f64 {
        1.0 / (1.0 + self.kappa * (-x).exp())
    }

    /// The scale `t(x) = (N-1)(x + y(x))/N` of the curve's point `x`.
    #[inline]
    fn t(&self, x: f64) -> f64 {
        self.q * (x + self.y(x))
    }

    /// `H(x) = (1 - r) t(x) - x - b0`; exactly `-x0 - b0` at `x0`.
    #[inline]
    fn h(&self, x: f64) -> f64 {
        if x == self.x0 {
            return -self.x0 - self.b0;
        }
        (1.0 - self.r) * self.t(x) - x - self.b0
    }

    /// `H'(x) = (1 - r)(N-1)(1 + y'(x))/N - 1`.
    #[inline]
    fn dh(&self, x: f64) -> f64 {
        (1.0 - self.r) * self.q * (1.0 + self.dy(x)) - 1.0
    }

    /// The intervals of `(x0, inf)` on which `H` is monotone: split at its extremum, where
    /// `y'(x) = k = 1/((1 - r)(N-1)/N) - 1`, i.e. `x* = log(k kappa / (1 - k))`.
    fn pieces(&self) -> [(f64, f64); 2] {
        let k = 1.0 / ((1.0 - self.r) * self.q) - 1.0;
        let xs = (k * self.kappa / (1.0 - k)).ln();
        if xs.is_finite() && xs > self.x0 {
            [(self.x0, xs), (xs, f64::INFINITY)]
        } else {
            [(self.x0, f64::INFINITY), (f64::NAN, f64::NAN)]
        }
    }

    /// The sign of `H` at `lo` (from the right: the sign of `H'` where `H(lo) = 0`).
    fn sign_at(&self, x: f64) -> f64 {
        let h = self.h(x);
        if h != 0.0 {
            h.signum()
        } else {
            let d = self.dh(x);
            if d == 0.0 {
                0.0
            } else {
                d.signum()
            }
        }
    }

    /// The sign of `H` as `x -> inf`: of its slope `m = 2 (1 - r)(N-1)/N - 1`, or if `m = 0` of
    /// its limit `c = (1 - r)(N-1) log(W/2)/N - b0` (`H - m x - c -> 0`).
    fn sign_at_infinity(&self) -> (f64, f64, f64) {
        let m = 2.0 * (1.0 - self.r) * self.q - 1.0;
        let c = (1.0 - self.r) * self.q * self.half_w.ln() - self.b0;
        let s = if m != 0.0 { m.signum() } else { c.signum() };
        (s, m, c)
    }

    /// The root of `H` on the monotone piece `(lo, hi)`, if `H` changes sign there.
    fn root(&self, lo: f64, hi: f64) -> Option<f64> {
        if lo.is_nan() {
            return None;
        }
        let s_lo = self.sign_at(lo);
        if s_lo == 0.0 {
            return None;
        }
        let (mut a, mut b) = (lo, hi);
        if hi.is_finite() {
            if self.h(hi) * s_lo >= 0.0 {
                return None;
            }
        } else {
            let (s_inf, m, c) = self.sign_at_infinity();
            if s_inf * s_lo >= 0.0 {
                return None;
            }
            // An upper end of the bracket: the root of the asymptote `m x + c` if beyond `lo`,
            // then steps that double until `H` has changed sign.
            let mut step = 1.0_f64.max(lo.abs());
            let mut x = if m != 0.0 && -c / m > lo {
                -c / m
            } else {
                lo + step
            };
            loop {
                if !x.is_finite() {
                    return None;
                }
                if self.h(x) * s_lo < 0.0 {
                    break;
                }
                a = x;
                x += step;
                step *= 2.0;
            }
            b = x;
        }
        Some(self.newton(a, b, s_lo))
    }

    /// Safeguarded Newton on `[a, b]` where `H` has the sign `s_a` at `a` and the opposite at
    /// `b`: a bisection step whenever Newton would leave the bracket; until the bracket closes.
    fn newton(&self, mut a: f64, mut b: f64, s_a: f64) -> f64 {
        let mut x = 0.5 * (a + b);
        for _ in 0..200 {
            let h = self.h(x);
            if h == 0.0 {
                return x;
            }
            if h * s_a > 0.0 {
                a = x;
            } else {
                b = x;
            }
            let step = self.dh(x);
            let newton = x - h / step;
            let next = if step != 0.0 && newton > a.min(b) && newton < a.max(b) {
                newton
            } else {
                0.5 * (a + b)
            };
            if (next - x).abs() <= 2.0 * f64::EPSILON * x.abs().max(1.0)
                || (b - a).abs() <= 4.0 * f64::EPSILON * x.abs().max(1.0)
            {
                return next;
            }
            x = next;
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory::{ccem_log_derivative_ratio_weighted, Optimum, Phase};

    /// The former search, kept as the reference: roots of `f` on `[lo, hi]` by scanning `steps`
    /// intervals and bisecting each sign change 100 times.
    fn scan(f: impl Fn(f64) -> f64, lo: f64, hi: f64, steps: usize) -> Vec<f64> {
        let mut roots = Vec::new();
        let h = (hi - lo) / steps as f64;
        let (mut a, mut fa) = (lo, f(lo));
        for k in 1..=steps {
            let b = lo + h * k as f64;
            let fb = f(b);
            if fa.is_finite() && fb.is_finite() && (fa < 0.0) != (fb < 0.0) {
                let (mut x0, mut x1, mut f0) = (a, b, fa);
                for _ in 0..100 {
                    let m = 0.5 * (x0 + x1);
                    let fm = f(m);
                    if (fm < 0.0) == (f0 < 0.0) {
                        x0 = m;
                        f0 = fm;
                    } else {
                        x1 = m;
                    }
                }
                roots.push(0.5 * (x0 + x1));
            }
            a = b;
            fa = fb;
        }
        roots
    }

    fn g(mode: BiasMode, n: usize, w: f64, c: f64) -> impl Fn(f64) -> f64 {
        move |t| ccem_log_derivative_ratio_weighted(n, t, mode.bias(t), w, c)
    }

    fn modes() -> Vec<BiasMode> {
        let mut m = vec![BiasMode::Tied];
        for b in [-5.0, -1.0, 0.0, 0.3, 1.0, 2.0, 3.5, 5.0, 7.0, 12.9] {
            m.push(BiasMode::Fixed(b));
        }
        for r in [
            -2.0, -0.5, 0.0, 0.05, 0.25, 0.3, 0.4, 0.45, 0.5, 0.8, 1.5, 3.0,
        ] {
            m.push(BiasMode::Relative(r));
        }
        m
    }

    /// Where the former scan over `(1e-9, 20]` (the CLI's range for `t <= 10`) finds a root,
    /// the new boundary is within `1e-12 max(1, t)` of it, and it finds no other in the range.
    #[test]
    fn boundaries_match_the_former_scan() {
        let (lo, hi) = (1e-9, 20.0);
        let mut compared = 0;
        for n in [3, 4, 5, 6, 8, 10, 16, 33, 100, 1000, 32768] {
            for w in [1.0, 0.5, 0.2, 0.05] {
                for mode in modes() {
                    // W = 2 with H' = 0: l'(0) vanishes at every t (no boundary; the scan
                    // only finds rounding noise).
                    if [1.0, 5.0, 10.0]
                        .iter()
                        .all(|&t| g(mode, n, w, 0.0)(t).abs() < 1e-12)
                    {
                        continue;
                    }
                    let old = scan(g(mode, n, w, 0.0), lo, hi, 2000);
                    let new: Vec<f64> = mode
                        .etf_boundaries_weighted(n, w)
                        .into_iter()
                        .filter(|&t| t > lo && t <= hi)
                        .collect();
                    assert_eq!(
                        old.len(),
                        new.len(),
                        "ETF {mode:?} n {n} w {w}: {old:?} {new:?}"
                    );
                    for (o, e) in old.iter().zip(&new) {
                        assert!(
                            (o - e).abs() <= 1e-12 * o.max(1.0),
                            "{mode:?} {n} {w} {o} {e}"
                        );
                        compared += 1;
                    }
                    let old = scan(g(mode, n, w, 1.0), lo, hi, 2000);
                    let new: Vec<f64> = mode
                        .antipodal_boundary_weighted(n, w)
                        .into_iter()
                        .filter(|&t| t > lo && t <= hi)
                        .collect();
                    assert_eq!(
                        old.len(),
                        new.len(),
                        "anti {mode:?} n {n} w {w}: {old:?} {new:?}"
                    );
                    for (o, e) in old.iter().zip(&new) {
                        assert!(
                            (o - e).abs() <= 1e-12 * o.max(1.0),
                            "{mode:?} {n} {w} {o} {e}"
                        );
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 300, "{compared}");
    }

    /// The phase of the optimum changes across every boundary, in range or not.
    fn assert_phase_changes(n: usize, mode: BiasMode, t: f64, phase: Phase) {
        let at = |t: f64| Optimum::sigmoid(n, t, mode.bias(t)).unwrap().phase == phase;
        let (below, above) = (t * (1.0 - 1e-9), t * (1.0 + 1e-9));
        assert_ne!(at(below), at(above), "{mode:?} n {n} t {t} {phase:?}");
    }

    #[test]
    fn roots_beyond_the_former_range() {
        // ETF up to t ~ 66 for a fixed b = 30 at N = 10 (the former range ended at 20).
        let te = BiasMode::Fixed(30.0).etf_boundary(10).unwrap();
        assert!(te > 60.0 && te < 70.0, "{te}");
        assert_phase_changes(10, BiasMode::Fixed(30.0), te, Phase::Etf);
        assert_eq!(BiasMode::Fixed(30.0).antipodal_boundary(10), None);
        // Antipodal up to t = log(4) + 100.
        let ta = BiasMode::Fixed(-100.0).antipodal_boundary(10).unwrap();
        assert!((ta - (4.0_f64.ln() + 100.0)).abs() < 1e-12 * ta);
        assert_phase_changes(10, BiasMode::Fixed(-100.0), ta, Phase::Antipodal);
        // A relative bias near -1: t = log(4)/0.01.
        let ta = BiasMode::Relative(-0.99).antipodal_boundary(10).unwrap();
        assert!((ta - 4.0_f64.ln() / 0.01).abs() < 1e-10 * ta, "{ta}");
        assert_phase_changes(10, BiasMode::Relative(-0.99), ta, Phase::Antipodal);
        // Large t and N: SigLIP's N with b = 500.
        let te = BiasMode::Fixed(500.0).etf_boundary(32768).unwrap();
        assert!(te > 900.0, "{te}");
        assert_phase_changes(32768, BiasMode::Fixed(500.0), te, Phase::Etf);
        // Roots near 0 (below the former 1e-9 is not reachable, but 1e-6 is).
        let b = (8.0_f64 / 2.0).ln() + 1e-6;
        let te = BiasMode::Fixed(b).etf_boundary(10).unwrap();
        assert!(te > 0.0 && te < 1e-4, "{te}");
        assert_phase_changes(10, BiasMode::Fixed(b), te, Phase::Etf);
    }

    #[test]
    fn two_etf_boundaries_bound_an_interval() {
        // b = -1 + 0.45 t at N = 10, w = 0.05 (H concave): ETF at small t, not between the two
        // roots, ETF again beyond.
        let (n, w, b0, r) = (10, 0.05, -1.0, 0.45);
        let (roots, count) = etf_roots_affine(n, w, b0, r);
        assert_eq!(count, 2, "{roots:?}");
        assert!(roots[0] < roots[1]);
        let etf = |t: f64| ccem_log_derivative_ratio_weighted(n, t, b0 + r * t, w, 0.0) >= 0.0;
        assert!(etf(0.5 * roots[0]));
        assert!(!etf(0.5 * (roots[0] + roots[1])));
        assert!(etf(2.0 * roots[1]));
        for t in roots {
            assert_ne!(etf(t * (1.0 - 1e-9)), etf(t * (1.0 + 1e-9)), "{t}");
        }
        // The former scan over a range holding both finds the same two.
        let old = scan(
            |t| ccem_log_derivative_ratio_weighted(n, t, b0 + r * t, w, 0.0),
            1e-9,
            50.0,
            2000,
        );
        assert_eq!(old.len(), 2);
        for (o, e) in old.iter().zip(roots) {
            assert!((o - e).abs() <= 1e-12 * o.max(1.0), "{o} {e}");
        }
    }

    #[test]
    fn closed_forms_and_no_boundary() {
        let l = (8.0_f64 / 2.0).ln(); // N = 10
        assert_eq!(BiasMode::Fixed(1.0).antipodal_boundary(10), Some(l - 1.0));
        assert_eq!(
            BiasMode::Relative(0.5).antipodal_boundary(10),
            Some(l / 1.5)
        );
        let w = 0.5;
        assert_eq!(
            BiasMode::Fixed(0.1).antipodal_boundary_weighted(10, w),
            Some((w * 8.0 / 2.0_f64).ln() - 0.1)
        );
        assert_eq!(BiasMode::Tied.antipodal_boundary(10), Some(0.5 * l));
        // None: N = 2, a root at t <= 0, r_b = -1 (t + b constant).
        for mode in modes() {
            assert!(mode.etf_boundaries(2).is_empty());
            assert_eq!(mode.antipodal_boundary(2), None);
        }
        assert_eq!(BiasMode::Fixed(2.0).antipodal_boundary(10), None);
        assert_eq!(BiasMode::Relative(-1.0).antipodal_boundary(10), None);
        assert_eq!(BiasMode::Tied.etf_boundary(4), None); // t = 0: ETF at every t > 0
        assert_eq!(BiasMode::Fixed(0.0).etf_boundary(10), None);
    }
}
