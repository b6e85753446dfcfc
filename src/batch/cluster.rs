//! Steps 4 and 5 of the spectral clustering of `hardest` batches ([`super::spectral`], SPEC §8):
//! k-means with k-means++ seeding, and the balanced assignment of points to centres that each
//! take exactly `b` points (the Hungarian algorithm). Plain algorithms on points in `R^k`: they
//! know nothing of losses or embeddings.

use ndarray::Array2;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// The number of k-means++ seedings of the spectral clustering (the best inertia is kept).
pub const KMEANS_SEEDINGS: usize = 10;
/// The largest number of Lloyd iterations of one k-means run.
pub const KMEANS_MAX_ITER: usize = 300;

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Step 4: k-means of the rows of `x` with `k` centres (`k x dim`), the best inertia of
/// [`KMEANS_SEEDINGS`] k-means++ seedings.
pub(crate) fn kmeans(x: &Array2<f64>, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let (n, dim) = x.dim();
    let row = |i: usize| x.row(i).to_slice().expect("standard layout").to_vec();
    let rows: Vec<Vec<f64>> = (0..n).map(row).collect();
    let mut best: Option<(f64, Vec<Vec<f64>>)> = None;
    for _ in 0..KMEANS_SEEDINGS {
        // k-means++ seeding.
        let mut centres: Vec<Vec<f64>> = vec![rows[rng.random_range(0..n)].clone()];
        let mut d2: Vec<f64> = rows.iter().map(|r| sq_dist(r, &centres[0])).collect();
        while centres.len() < k {
            let total: f64 = d2.iter().sum();
            let pick = if total > 0.0 {
                let mut u = rng.random::<f64>() * total;
                let mut pick = n - 1;
                for (i, &d) in d2.iter().enumerate() {
                    if u < d {
                        pick = i;
                        break;
                    }
                    u -= d;
                }
                pick
            } else {
                rng.random_range(0..n)
            };
            centres.push(rows[pick].clone());
            for (i, r) in rows.iter().enumerate() {
                d2[i] = d2[i].min(sq_dist(r, &centres[centres.len() - 1]));
            }
        }
        // Lloyd.
        let mut labels = vec![usize::MAX; n];
        let mut inertia = f64::INFINITY;
        for _ in 0..KMEANS_MAX_ITER {
            let mut changed = false;
            inertia = 0.0;
            for (i, r) in rows.iter().enumerate() {
                let (mut bc, mut bd) = (0, f64::INFINITY);
                for (c, ctr) in centres.iter().enumerate() {
                    let d = sq_dist(r, ctr);
                    if d < bd {
                        (bc, bd) = (c, d);
                    }
                }
                inertia += bd;
                if labels[i] != bc {
                    labels[i] = bc;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
            let mut sums = vec![vec![0.0; dim]; k];
            let mut counts = vec![0usize; k];
            for (i, r) in rows.iter().enumerate() {
                counts[labels[i]] += 1;
                for (s, v) in sums[labels[i]].iter_mut().zip(r) {
                    *s += v;
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    for (z, s) in centres[c].iter_mut().zip(&sums[c]) {
                        *z = s / counts[c] as f64;
                    }
                }
            }
        }
        if best.as_ref().is_none_or(|(bi, _)| inertia < *bi) {
            best = Some((inertia, centres));
        }
    }
    let centres = best.expect("at least one seeding").1;
    Array2::from_shape_fn((k, dim), |(c, j)| centres[c][j])
}

/// Step 5: the cluster of each row of `x` when every centre takes exactly `b` rows, minimising
/// the total Euclidean distance (the Hungarian algorithm on the `N x N` cost of rows against the
/// centres repeated `b` times, `O(N^3)`).
pub(crate) fn balanced_assignment(x: &Array2<f64>, centres: &Array2<f64>, b: usize) -> Vec<usize> {
    let n = x.nrows();
    let k = centres.nrows();
    let dist: Vec<f64> = (0..n)
        .flat_map(|i| {
            (0..k).map(move |c| {
                x.row(i)
                    .iter()
                    .zip(centres.row(c).iter())
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum::<f64>()
                    .sqrt()
            })
        })
        .collect();
    let slot = hungarian(n, |i, j| dist[i * k + j / b]);
    slot.iter().map(|&j| j / b).collect()
}

/// The minimum-cost perfect matching of `n` rows to `n` columns (`cost(row, column)`), as the
/// column of each row (the shortest-augmenting-path Hungarian algorithm with potentials,
/// `O(n^3)`).
pub(crate) fn hungarian(n: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    // 1-based arrays; p[j] = row matched to column j (0: none).
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut p = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut col = vec![0; n];
    for j in 1..=n {
        col[p[j] - 1] = j - 1;
    }
    col
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn hungarian_is_optimal_on_small_cases() {
        // Brute force over all permutations of 6.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20 {
            let n = 6;
            let c: Vec<f64> = (0..n * n).map(|_| rng.random::<f64>()).collect();
            let col = hungarian(n, |i, j| c[i * n + j]);
            let total: f64 = (0..n).map(|i| c[i * n + col[i]]).sum();
            let mut perm: Vec<usize> = (0..n).collect();
            let mut best = f64::INFINITY;
            permute(&mut perm, 0, &mut |p| {
                best = best.min((0..n).map(|i| c[i * n + p[i]]).sum());
            });
            assert!((total - best).abs() < 1e-12, "{total} vs {best}");
            let mut sorted = col.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        }
    }

    fn permute(p: &mut Vec<usize>, k: usize, f: &mut impl FnMut(&[usize])) {
        if k == p.len() {
            f(p);
            return;
        }
        for i in k..p.len() {
            p.swap(k, i);
            permute(p, k + 1, f);
            p.swap(k, i);
        }
    }
}
