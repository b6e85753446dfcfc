//! The exact polish of a max-margin candidate: Newton's method on the KKT system of its active
//! constraints (SPEC.md §7.3, "polish").
//!
//! The problem, for points `z_k` on the unit sphere:
//! - *tied* (`U = V = X`, the spherical code): minimise `q` subject to `<x_a, x_b> - q <= 0`
//!   for `a < b`; the margin is `(1 - q) / 2`;
//! - *untied*: minimise `q - p` subject to `p - <u_i, v_i> <= 0` and `<u_i, v_j> - q <= 0`
//!   (`i != j`); the margin is `(p - q) / 2`;
//!
//! and `|z_k|^2 = 1` for every point. The *active set* `A` is the constraints within `delta` of
//! equality at the candidate. With the Lagrangian `L = f + sum_{e in A} lambda_e g_e +
//! sum_k mu_k (|z_k|^2 - 1)`, the KKT system of `A` is the square system
//! `grad_z L = 0`, `grad_s L = 0`, `g_e = 0 (e in A)`, `|z_k|^2 = 1` in the unknowns
//! `(z, s, lambda, mu)` (`s = q`, or `(p, q)`). It is solved by Newton's method with a
//! Levenberg–Marquardt damping (`(J^T J + eps I) step = -J^T F`: the rotations of the whole code
//! and the free directions of a *rattler*, a point without contact, make `J` singular; the damped
//! step has no component along them) and a backtracking line search on `|F|`.
//!
//! A result is **certified** when `|F|_inf <= 1e-10` (every active constraint holds with equality
//! and the Lagrangian is stationary), every multiplier is `>= -1e-10` (a KKT point: no active
//! constraint would rather be released) and no inactive constraint is violated. A negative
//! multiplier releases its constraint; the most violated inactive one joins the set (and the
//! constraints of zero multiplier leave it), and Newton runs
//! again; the tolerance `delta` runs down a ladder (`1e-3` to `1e-7`) until a set certifies.
//! A certified point is a first-order optimum (KKT point) of the margin, not a proof of global
//! optimality.

use super::smooth::extremes;
use super::starts::normalize_rows;

/// The largest KKT system (unknowns) the polish solves densely; larger problems are not
/// polished (`(J^T J)` takes `8 M^2` bytes and `M^3` operations per Newton step).
pub(crate) const MAX_KKT_UNKNOWNS: usize = 1500;

/// `|F|_inf` below which Newton stops, and the certification tolerance.
const CERTIFY_TOL: f64 = 1e-10;

/// One inequality constraint on a pair of points `(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Con {
    /// `<z_a, z_b> - q <= 0` (a negative pair).
    Neg(usize, usize),
    /// `p - <z_a, z_b> <= 0` (a positive pair, untied only).
    Pos(usize, usize),
}

impl Con {
    fn pair(self) -> (usize, usize, f64) {
        match self {
            Con::Neg(a, b) => (a, b, 1.0),
            Con::Pos(a, b) => (a, b, -1.0),
        }
    }
}

/// The result of a certified polish.
#[derive(Clone, Debug)]
pub(crate) struct Polished {
    /// `[U | V]`, unit rows.
    pub uv: Vec<f64>,
    /// Newton steps taken in total.
    pub newton_steps: usize,
    /// `|F|_inf` at the end.
    pub kkt_residual: f64,
}

/// The number of unknowns of the KKT system for `(n, d)` with `contacts` active constraints.
pub(crate) fn kkt_unknowns(n: usize, d: usize, tied: bool, contacts: usize) -> usize {
    let k = if tied { n } else { 2 * n };
    k * d + if tied { 1 } else { 2 } + contacts + k
}

/// Polishes the candidate `uv` (`[U | V]`, unit rows). Tied when `U` and `V` agree to `1e-6`.
/// Returns `None` when no active set certifies (or the system would be too large), and never a
/// point with a smaller margin than the candidate's.
pub(crate) fn polish(uv: &[f64], n: usize, d: usize) -> Option<Polished> {
    let (u, v) = uv.split_at(n * d);
    let tied = u.iter().zip(v).all(|(a, b)| (a - b).abs() <= 1e-6);
    let mut z: Vec<f64> = if tied {
        u.iter().zip(v).map(|(a, b)| a + b).collect()
    } else {
        uv.to_vec()
    };
    if !normalize_rows(&mut z, d) {
        return None;
    }
    let sys = System { n, d, tied };
    let base = extremes(&sys.uv(&z), n, d).margin();
    let mut total_steps = 0;
    let mut last_set: Vec<Con> = Vec::new();
    for delta in [1e-3, 1e-4, 1e-5, 1e-6, 1e-7] {
        let mut set = sys.active(&z, delta);
        if set == last_set || set.is_empty() {
            continue;
        }
        last_set = set.clone();
        for _round in 0..16 {
            if kkt_unknowns(n, d, tied, set.len()) > MAX_KKT_UNKNOWNS {
                return None;
            }
            let Some((w, steps, res)) = sys.newton(&z, &set) else {
                break;
            };
            total_steps += steps;
            let mut znew = w[..sys.points() * d].to_vec();
            if !normalize_rows(&mut znew, d) {
                break;
            }
            let lambda = &w[sys.points() * d + sys.scalars()..][..set.len()];
            if res > CERTIFY_TOL {
                // No solution with this set: release its most negative multiplier, if any.
                let (imin, &lmin) = lambda
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(b.1))
                    .expect("a non-empty set");
                if lmin < 0.0 && set.len() > 1 {
                    set.remove(imin);
                    continue;
                }
                break;
            }
            // A negative multiplier: release the most negative constraint.
            let (imin, &lmin) = lambda
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .expect("a non-empty set");
            if lmin < -CERTIFY_TOL {
                set.remove(imin);
                continue;
            }
            let s = &w[sys.points() * d..][..sys.scalars()];
            if let Some(worst) = sys.most_violated(&znew, s, &set) {
                // Swap: the constraints of zero multiplier leave (a degenerate vertex would
                // otherwise cycle), the most violated one joins.
                let keep: Vec<Con> = set
                    .iter()
                    .zip(lambda)
                    .filter(|(_, &l)| l > 1e-9)
                    .map(|(c, _)| *c)
                    .collect();
                set = keep;
                set.push(worst);
                continue;
            }
            let uvn = sys.uv(&znew);
            if extremes(&uvn, n, d).margin() < base - 1e-12 {
                break;
            }
            return Some(Polished {
                uv: uvn,
                newton_steps: total_steps,
                kkt_residual: res,
            });
        }
    }
    None
}

/// The KKT system of one `(n, d)`, tied or not.
struct System {
    n: usize,
    d: usize,
    tied: bool,
}

impl System {
    fn points(&self) -> usize {
        if self.tied {
            self.n
        } else {
            2 * self.n
        }
    }

    fn scalars(&self) -> usize {
        if self.tied {
            1
        } else {
            2
        }
    }

    /// `[U | V]` from the points.
    fn uv(&self, z: &[f64]) -> Vec<f64> {
        if self.tied {
            [z, z].concat()
        } else {
            z.to_vec()
        }
    }

    fn dot(&self, z: &[f64], a: usize, b: usize) -> f64 {
        let d = self.d;
        z[a * d..(a + 1) * d]
            .iter()
            .zip(&z[b * d..(b + 1) * d])
            .map(|(x, y)| x * y)
            .sum()
    }

    /// Every constraint, with its inner product.
    fn all(&self, z: &[f64]) -> Vec<(Con, f64)> {
        let n = self.n;
        let mut out = Vec::new();
        if self.tied {
            for a in 0..n {
                for b in a + 1..n {
                    out.push((Con::Neg(a, b), self.dot(z, a, b)));
                }
            }
        } else {
            for i in 0..n {
                for j in 0..n {
                    let c = if i == j {
                        Con::Pos(i, n + j)
                    } else {
                        Con::Neg(i, n + j)
                    };
                    out.push((c, self.dot(z, i, n + j)));
                }
            }
        }
        out
    }

    /// `(p, q)` of the current points (`p = 1` when tied).
    fn extremes(&self, all: &[(Con, f64)]) -> (f64, f64) {
        let mut p = if self.tied { 1.0 } else { f64::INFINITY };
        let mut q = f64::NEG_INFINITY;
        for &(c, s) in all {
            match c {
                Con::Neg(..) => q = q.max(s),
                Con::Pos(..) => p = p.min(s),
            }
        }
        (p, q)
    }

    /// The constraints within `delta` of equality.
    fn active(&self, z: &[f64], delta: f64) -> Vec<Con> {
        let all = self.all(z);
        let (p, q) = self.extremes(&all);
        all.into_iter()
            .filter(|&(c, s)| match c {
                Con::Neg(..) => s >= q - delta,
                Con::Pos(..) => s <= p + delta,
            })
            .map(|(c, _)| c)
            .collect()
    }

    /// The constraint outside `set` that the point `(z, s)` violates most, by more than `1e-12`.
    fn most_violated(&self, z: &[f64], s: &[f64], set: &[Con]) -> Option<Con> {
        let (p, q) = if self.tied { (1.0, s[0]) } else { (s[0], s[1]) };
        self.all(z)
            .into_iter()
            .filter(|(c, _)| !set.contains(c))
            .map(|(c, v)| {
                let excess = match c {
                    Con::Neg(..) => v - q,
                    Con::Pos(..) => p - v,
                };
                (c, excess)
            })
            .filter(|&(_, e)| e > 1e-12)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c)
    }

    /// Newton (damped, with backtracking) on the KKT system of `set` from the points `z`;
    /// returns the unknowns `(z, s, lambda, mu)`, the steps and `|F|_inf`, or `None` if a value
    /// is not finite or the factorisation fails.
    fn newton(&self, z: &[f64], set: &[Con]) -> Option<(Vec<f64>, usize, f64)> {
        let (kd, ns, ne, k) = (
            self.points() * self.d,
            self.scalars(),
            set.len(),
            self.points(),
        );
        let m = kd + ns + ne + k;
        let mut w = vec![0.0; m];
        w[..kd].copy_from_slice(z);
        let all = self.all(z);
        let (p, q) = self.extremes(&all);
        if self.tied {
            w[kd] = q;
        } else {
            w[kd] = p;
            w[kd + 1] = q;
        }
        // Multipliers: least squares on the stationarity rows with z and s fixed.
        let (f, jac) = self.residual(&w, set);
        let cols: Vec<usize> = (kd + ns..m).collect();
        let rows: Vec<usize> = (0..kd + ns).collect();
        let x = lstsq(&jac, m, &rows, &cols, &f)?;
        for (c, dx) in cols.iter().zip(&x) {
            w[*c] -= dx;
        }
        let mut steps = 0;
        let (mut f, mut jac) = self.residual(&w, set);
        let mut norm = inf_norm(&f);
        let all_rows: Vec<usize> = (0..m).collect();
        while norm > 1e-15 && steps < 40 {
            let dx = lstsq(&jac, m, &all_rows, &all_rows, &f)?;
            let mut t = 1.0;
            let mut accepted = false;
            for _ in 0..12 {
                let trial: Vec<f64> = w.iter().zip(&dx).map(|(a, b)| a - t * b).collect();
                let (f2, j2) = self.residual(&trial, set);
                let n2 = inf_norm(&f2);
                if n2.is_finite() && n2 < norm {
                    w = trial;
                    f = f2;
                    jac = j2;
                    norm = n2;
                    accepted = true;
                    break;
                }
                t *= 0.5;
            }
            steps += 1;
            if !accepted {
                break;
            }
        }
        norm.is_finite().then_some((w, steps, norm))
    }

    /// `F(w)` and its (symmetric) Jacobian, dense row-major `m x m`.
    fn residual(&self, w: &[f64], set: &[Con]) -> (Vec<f64>, Vec<f64>) {
        let d = self.d;
        let (kd, ns, ne, k) = (self.points() * d, self.scalars(), set.len(), self.points());
        let m = kd + ns + ne + k;
        let (z, rest) = w.split_at(kd);
        let (s, rest) = rest.split_at(ns);
        let (lambda, mu) = rest.split_at(ne);
        let mut f = vec![0.0; m];
        let mut jac = vec![0.0; m * m];
        let (row_s, row_g, row_h) = (kd, kd + ns, kd + ns + ne);
        // The objective's gradient in s: tied f = q; untied f = q - p.
        if self.tied {
            f[row_s] = 1.0;
        } else {
            f[row_s] = -1.0;
            f[row_s + 1] = 1.0;
        }
        for (e, (&c, &l)) in set.iter().zip(lambda).enumerate() {
            let (a, b, sigma) = c.pair();
            let le = row_g + e;
            // The scalar this constraint involves, and its coefficient in g_e.
            let (si, coef) = match c {
                Con::Neg(..) => (if self.tied { 0 } else { 1 }, -1.0),
                Con::Pos(..) => (0, 1.0),
            };
            let dot: f64 = (0..d).map(|t| z[a * d + t] * z[b * d + t]).sum();
            f[le] = sigma * dot + coef * s[si];
            jac[le * m + kd + si] = coef;
            jac[(kd + si) * m + le] = coef;
            f[row_s + si] += l * coef;
            for t in 0..d {
                let (ia, ib) = (a * d + t, b * d + t);
                f[ia] += l * sigma * z[ib];
                f[ib] += l * sigma * z[ia];
                jac[ia * m + ib] += l * sigma;
                jac[ib * m + ia] += l * sigma;
                jac[ia * m + le] = sigma * z[ib];
                jac[le * m + ia] = sigma * z[ib];
                jac[ib * m + le] = sigma * z[ia];
                jac[le * m + ib] = sigma * z[ia];
            }
        }
        for (p, &mp) in mu.iter().enumerate() {
            let lh = row_h + p;
            let mut nr = -1.0;
            for t in 0..d {
                let i = p * d + t;
                nr += z[i] * z[i];
                f[i] += 2.0 * mp * z[i];
                jac[i * m + i] += 2.0 * mp;
                jac[i * m + lh] = 2.0 * z[i];
                jac[lh * m + i] = 2.0 * z[i];
            }
            f[lh] = nr;
        }
        (f, jac)
    }
}

fn inf_norm(x: &[f64]) -> f64 {
    x.iter().fold(0.0f64, |a, &b| {
        if b.is_finite() {
            a.max(b.abs())
        } else {
            f64::INFINITY
        }
    })
}

/// The damped least-squares solution `x` of `J[rows, cols] x = f[rows]`:
/// `(B^T B + eps I) x = B^T f` with `eps = 1e-13 (1 + max diag B^T B)` (the component along the
/// null space of `B` is zero); `None` if the factorisation fails.
fn lstsq(jac: &[f64], m: usize, rows: &[usize], cols: &[usize], f: &[f64]) -> Option<Vec<f64>> {
    let c = cols.len();
    let mut a = vec![0.0; c * c];
    let mut rhs = vec![0.0; c];
    // B^T B and B^T f, one row of J at a time (J is dense row-major).
    let mut brow = vec![0.0; c];
    for &r in rows {
        let jr = &jac[r * m..(r + 1) * m];
        let mut any = false;
        for (bj, &cj) in brow.iter_mut().zip(cols) {
            *bj = jr[cj];
            any |= *bj != 0.0;
        }
        if !any {
            continue;
        }
        let fr = f[r];
        for i in 0..c {
            let bi = brow[i];
            if bi == 0.0 {
                continue;
            }
            rhs[i] += bi * fr;
            let ai = &mut a[i * c..(i + 1) * c];
            for (aij, &bj) in ai.iter_mut().zip(&brow) {
                *aij += bi * bj;
            }
        }
    }
    let dmax = (0..c).map(|i| a[i * c + i]).fold(0.0f64, f64::max);
    let eps = 1e-13 * (1.0 + dmax);
    for i in 0..c {
        a[i * c + i] += eps;
    }
    cholesky_solve(&mut a, c, &mut rhs).then_some(rhs)
}

/// Solves `A x = b` in place for a symmetric positive definite `A` (`c x c`, row-major; its lower
/// triangle is overwritten by the Cholesky factor). `false` if `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], c: usize, b: &mut [f64]) -> bool {
    for j in 0..c {
        let mut djj = a[j * c + j];
        for k in 0..j {
            djj -= a[j * c + k] * a[j * c + k];
        }
        if !(djj > 0.0 && djj.is_finite()) {
            return false;
        }
        let ljj = djj.sqrt();
        a[j * c + j] = ljj;
        for i in j + 1..c {
            let mut s = a[i * c + j];
            for k in 0..j {
                s -= a[i * c + k] * a[j * c + k];
            }
            a[i * c + j] = s / ljj;
        }
    }
    for i in 0..c {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * c + k] * b[k];
        }
        b[i] = s / a[i * c + i];
    }
    for i in (0..c).rev() {
        let mut s = b[i];
        for k in i + 1..c {
            s -= a[k * c + i] * b[k];
        }
        b[i] = s / a[i * c + i];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The analytic Jacobian of the KKT residual against central finite differences.
    #[test]
    fn jacobian_matches_finite_differences() {
        for tied in [true, false] {
            let (n, d) = (3usize, 2usize);
            let sys = System { n, d, tied };
            let set = if tied {
                vec![Con::Neg(0, 1), Con::Neg(1, 2)]
            } else {
                vec![Con::Pos(0, 3), Con::Neg(0, 4), Con::Neg(2, 3)]
            };
            let m = sys.points() * d + sys.scalars() + set.len() + sys.points();
            let mut rng = super::super::starts::rng(9, 0);
            let w = super::super::starts::gaussian(&mut rng, m);
            let (_, jac) = sys.residual(&w, &set);
            let h = 1e-6;
            for col in 0..m {
                let mut wp = w.clone();
                let mut wm = w.clone();
                wp[col] += h;
                wm[col] -= h;
                let (fp, _) = sys.residual(&wp, &set);
                let (fm, _) = sys.residual(&wm, &set);
                for row in 0..m {
                    let fd = (fp[row] - fm[row]) / (2.0 * h);
                    assert!(
                        (fd - jac[row * m + col]).abs() < 1e-7,
                        "tied {tied} ({row}, {col}): fd {fd} vs {}",
                        jac[row * m + col]
                    );
                }
            }
        }
    }

    #[test]
    fn polish_reaches_the_square_exactly() {
        // A slightly perturbed square (tied): the polish lands on margin 1/2 to 1e-12.
        let d = 2;
        let mut x: Vec<f64> = (0..4)
            .flat_map(|k| {
                let a = std::f64::consts::FRAC_PI_2 * k as f64 + 1e-4 * (k as f64).sin();
                [a.cos(), a.sin()]
            })
            .collect();
        normalize_rows(&mut x, d);
        let uv = [x.clone(), x].concat();
        let p = polish(&uv, 4, d).expect("certified");
        let m = extremes(&p.uv, 4, d).margin();
        assert!((m - 0.5).abs() < 1e-12, "{m}");
        assert!(p.kkt_residual <= CERTIFY_TOL);
    }
}
