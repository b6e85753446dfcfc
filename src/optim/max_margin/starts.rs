//! Starting points of the max-margin search (SPEC.md §7.3): structured codes that are optimal or
//! near-optimal for their `(N, d)`, seeded random starts, and perturbations of a good point
//! (basin hopping).
//!
//! Every start is a flat row-major `N x d` array of unit rows `X`; a start is used for both
//! views (`U = V = X`, a *tied* start) unless stated otherwise.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A named structured start.
#[derive(Clone, Debug)]
pub(crate) struct Start {
    /// What it is (`"polygon"`, `"cross_polytope"`, ...), for the record.
    pub name: &'static str,
    /// `N x d`, row-major, unit rows.
    pub x: Vec<f64>,
}

/// The structured starts that exist for `(n, d)`: the regular polygon (`d >= 2`), the simplex
/// (`N <= d + 1`), the cross-polytope and its subsets (`N <= 2d`), the 24-cell (`N <= 24`,
/// `d >= 4`, the shell of the `D4` root lattice), the `D_d` root shell `(±e_i ± e_j)/√2`
/// (`N <= 2 d (d-1)`) and the Fibonacci spiral (`d = 3`), each embedded in the first
/// coordinates of `R^d` and cut to its first `N` points.
pub(crate) fn structured(n: usize, d: usize) -> Vec<Start> {
    let mut out = Vec::new();
    if d >= 2 {
        let x = (0..n)
            .flat_map(|k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
                let mut row = vec![0.0; d];
                row[0] = a.cos();
                row[1] = a.sin();
                row
            })
            .collect();
        out.push(Start { name: "polygon", x });
    }
    if n <= d + 1 {
        out.push(Start {
            name: "simplex",
            x: simplex(n, d),
        });
    }
    if n <= 2 * d && n > d + 1 {
        let x = (0..n)
            .flat_map(|k| {
                let mut row = vec![0.0; d];
                row[k / 2] = if k % 2 == 0 { 1.0 } else { -1.0 };
                row
            })
            .collect();
        out.push(Start {
            name: "cross_polytope",
            x,
        });
    }
    if d >= 4 && n <= 24 && n > 2 * d {
        out.push(Start {
            name: "24_cell",
            x: root_shell(4, d, n),
        });
    }
    if d >= 3 && d != 4 && n > 2 * d && n <= 2 * d * (d - 1) {
        out.push(Start {
            name: "root_shell",
            x: root_shell(d, d, n),
        });
    }
    if d == 3 && n >= 4 {
        out.push(Start {
            name: "spiral",
            x: spiral(n),
        });
    }
    out
}

/// The regular simplex of `n <= d + 1` points: `e_k - (1/n) 1` in `R^n`, normalised, then
/// rotated into `R^{n-1}` by Gram–Schmidt so that it fits `d >= n - 1` coordinates.
fn simplex(n: usize, d: usize) -> Vec<f64> {
    // Rows e_k - c 1 span an (n-1)-dimensional subspace; express them in an orthonormal basis
    // of that subspace (Gram–Schmidt on the first n - 1 rows).
    let c = 1.0 / n as f64;
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|k| (0..n).map(|j| f64::from(j == k) - c).collect())
        .collect();
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for r in rows.iter().take(n - 1) {
        let mut v = r.clone();
        for b in &basis {
            let p: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(b).for_each(|(a, b)| *a -= p * b);
        }
        let nr = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= nr);
        basis.push(v);
    }
    let mut x = vec![0.0; n * d];
    for (k, r) in rows.iter().enumerate() {
        for (j, b) in basis.iter().enumerate() {
            x[k * d + j] = r.iter().zip(b).map(|(a, b)| a * b).sum();
        }
    }
    normalize_rows(&mut x, d);
    x
}

/// The first `n` vectors `(±e_i ± e_j)/√2`, `i < j < m`, in `R^d` (`m <= d`): for `m = 4` the
/// 24 vertices of the 24-cell.
fn root_shell(m: usize, d: usize, n: usize) -> Vec<f64> {
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let mut x = Vec::with_capacity(n * d);
    'outer: for i in 0..m {
        for j in i + 1..m {
            for (si, sj) in [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)] {
                if x.len() == n * d {
                    break 'outer;
                }
                let mut row = vec![0.0; d];
                row[i] = si * h;
                row[j] = sj * h;
                x.extend(row);
            }
        }
    }
    x
}

/// The Fibonacci spiral on `S^2`: `z_k = 1 - (2k + 1)/n`, longitude `k` times the golden angle.
fn spiral(n: usize) -> Vec<f64> {
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    (0..n)
        .flat_map(|k| {
            let z = 1.0 - (2 * k + 1) as f64 / n as f64;
            let r = (1.0 - z * z).max(0.0).sqrt();
            let a = golden * k as f64;
            [r * a.cos(), r * a.sin(), z]
        })
        .collect()
}

/// The generator of random start `stream` of `seed` (ChaCha8, one stream per start, so a start
/// does not depend on how many others run or on which thread).
pub(crate) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// `len` iid standard normal values.
pub(crate) fn gaussian(rng: &mut ChaCha8Rng, len: usize) -> Vec<f64> {
    (0..len).map(|_| StandardNormal.sample(rng)).collect()
}

/// A uniform random start: rows iid Gaussian, normalised (redrawn in the measure-zero event of a
/// zero row).
pub(crate) fn random(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Vec<f64> {
    loop {
        let mut x = gaussian(rng, n * d);
        if normalize_rows(&mut x, d) {
            return x;
        }
    }
}

/// `x` with every row moved by Gaussian noise of standard deviation `scale` per coordinate, then
/// renormalised (basin hopping).
pub(crate) fn perturb(rng: &mut ChaCha8Rng, x: &[f64], d: usize, scale: f64) -> Vec<f64> {
    loop {
        let noise = gaussian(rng, x.len());
        let mut y: Vec<f64> = x.iter().zip(&noise).map(|(a, e)| a + scale * e).collect();
        if normalize_rows(&mut y, d) {
            return y;
        }
    }
}

/// Puts every length-`d` row on the unit sphere; `false` if a row has zero or non-finite norm
/// (that row is left as it is).
pub(crate) fn normalize_rows(x: &mut [f64], d: usize) -> bool {
    let mut ok = true;
    for row in x.chunks_exact_mut(d) {
        let nr = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(nr.is_finite() && nr > 0.0) {
            ok = false;
            continue;
        }
        row.iter_mut().for_each(|v| *v /= nr);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_cos(x: &[f64], d: usize) -> f64 {
        let rows: Vec<&[f64]> = x.chunks_exact(d).collect();
        let mut m = f64::NEG_INFINITY;
        for i in 0..rows.len() {
            let nr: f64 = rows[i].iter().map(|a| a * a).sum();
            assert!((nr - 1.0).abs() < 1e-12);
            for j in 0..i {
                m = m.max(rows[i].iter().zip(rows[j]).map(|(a, b)| a * b).sum());
            }
        }
        m
    }

    #[test]
    fn structured_starts_are_the_known_codes() {
        let find = |n, d, name| {
            structured(n, d)
                .into_iter()
                .find(|s| s.name == name)
                .unwrap()
        };
        let p = find(5, 2, "polygon");
        assert!((max_cos(&p.x, 2) - (72f64).to_radians().cos()).abs() < 1e-12);
        let s = find(5, 4, "simplex");
        assert!((max_cos(&s.x, 4) + 0.25).abs() < 1e-12);
        let c = find(6, 3, "cross_polytope");
        assert!(max_cos(&c.x, 3).abs() < 1e-12);
        let c24 = find(24, 4, "24_cell");
        assert_eq!(c24.x.len(), 96);
        assert!((max_cos(&c24.x, 4) - 0.5).abs() < 1e-12);
        let sp = find(14, 3, "spiral");
        assert!(max_cos(&sp.x, 3) < 0.9);
        assert!(structured(5, 1).is_empty());
    }

    #[test]
    fn random_streams_are_independent_of_each_other() {
        let a = random(&mut rng(3, 1), 4, 3);
        let b = random(&mut rng(3, 2), 4, 3);
        assert_ne!(a, b);
        assert_eq!(a, random(&mut rng(3, 1), 4, 3));
    }
}
