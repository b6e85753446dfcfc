#!/usr/bin/env python3
"""Region means of s_pos: ccem's encoder sweep against torch_reference.py (issue 3's statistical check).

Usage: compare_torch.py CCEM_RESULTS.csv TORCH_SEED1.csv [TORCH_SEED2.csv ...]
Regions are the phases of the exact optimum at (N, t) with b = t (SPEC §3): etf above
t = ((N-1)/N) log(N-3), antipodal below t = (1/2) log((N-2)/2), intermediate between.
Prints, per region, the mean s_pos over cells and seeds on each side, the spread (std over seeds
of the per-seed region mean) and the difference. Standard library only.
"""
import csv, math, statistics, sys


def region(n, t):
    if n >= 4 and t >= (n - 1) / n * math.log(n - 3):
        return "etf"
    if n < 4:
        return "etf"
    if n >= 5 and t <= 0.5 * math.log((n - 2) / 2):
        return "antipodal"
    return "intermediate"


def per_seed_means(rows):
    """rows: (seed, n, t, s_pos) -> {region: [mean per seed]}"""
    acc = {}
    for seed, n, t, s in rows:
        acc.setdefault(region(n, t), {}).setdefault(seed, []).append(s)
    return {r: [statistics.fmean(v) for _, v in sorted(by_seed.items())] for r, by_seed in acc.items()}


def main():
    ours_path, torch_paths = sys.argv[1], sys.argv[2:]
    ours = []
    with open(ours_path) as f:
        for r in csv.DictReader(f):
            if r["status"] == "ok":
                ours.append((int(r["seed_index"]), int(r["n"]), float(r["t"]), float(r["s_pos"])))
    theirs = []
    for k, p in enumerate(torch_paths):
        with open(p) as f:
            for r in csv.DictReader(l for l in f if not l.startswith("#")):
                theirs.append((k, int(r["n"]), float(r["t"]), float(r["s_pos"])))
    a, b = per_seed_means(ours), per_seed_means(theirs)
    print(f"{'region':<13} {'ccem s_pos':>10} {'(seeds)':>8} {'torch s_pos':>11} {'(seeds)':>8} {'diff':>8}")
    worst = 0.0
    for reg in ["etf", "intermediate", "antipodal"]:
        if reg not in a or reg not in b:
            continue
        ma, mb = statistics.fmean(a[reg]), statistics.fmean(b[reg])
        sa = statistics.pstdev(a[reg]) if len(a[reg]) > 1 else 0.0
        sb = statistics.pstdev(b[reg]) if len(b[reg]) > 1 else 0.0
        worst = max(worst, abs(ma - mb))
        print(f"{reg:<13} {ma:>10.4f} {len(a[reg]):>4}x{sa:.3f} {mb:>11.4f} {len(b[reg]):>4}x{sb:.3f} {ma - mb:>+8.4f}")
    print(f"largest |difference| = {worst:.4f} (issue 3 asks <= 0.05)")


if __name__ == "__main__":
    main()
