#!/usr/bin/env python3
"""Speed of ccem from Python: one million theory cells from numpy arrays, and the per-call
overhead of the binding against the CLI doing the same work.

Usage (after `pip install ./python`, with target/release/ccem built):

    python bench/python_theory_cells.py [--cli target/release/ccem]

Prints, for each case, the best wall time of REPEAT runs and the CPU time of that run (all
threads): on a machine shared with other jobs the wall time grows, the CPU time does not.
"""

import argparse
import os
import pathlib
import subprocess
import time

import numpy as np

import ccem

REPEAT = 3


def best(f, repeat=REPEAT):
    runs = []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        f()
        runs.append((time.perf_counter() - w0, time.process_time() - c0))
    return min(runs)


def main():
    here = pathlib.Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", default=str(here / "target" / "release" / "ccem"))
    args = ap.parse_args()
    print(f"ccem {ccem.__version__}, numpy {np.__version__}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")

    n = np.arange(4, 1004)[:, None]  # 1000 batch sizes
    t = np.linspace(0.01, 5.0, 1000)  # x 1000 scales = 1e6 cells
    for label, kw in [("tied b = t", {}), ("fixed b = 1", dict(b=1.0)),
                      ("fixed b = 1, boundaries=False", dict(b=1.0, boundaries=False))]:
        wall, cpu = best(lambda: ccem.theory(n, t, **kw))
        print(f"theory, 1e6 cells from numpy, {label:30s} wall {wall:6.3f} s   cpu {cpu:6.3f} s")

    # 1e6 random cells, each with its own fixed b: every cell has its own phase boundaries
    # (issue 18's target: <= 2 s with boundaries).
    rng = np.random.default_rng(1)
    rn = rng.integers(3, 100_000, 1_000_000)
    rt = rng.uniform(0.01, 20.0, 1_000_000)
    rb = rng.uniform(-5.0, 20.0, 1_000_000)
    for label, kw in [("random (N, t, b), boundaries", {}),
                      ("random (N, t, b), boundaries=False", dict(boundaries=False)),
                      ("random (N, t, r_b), boundaries", "relative")]:
        if kw == "relative":
            f = lambda: ccem.theory(rn, rt, relative_bias=rb / 20.0)
        else:
            f = lambda kw=kw: ccem.theory(rn, rt, rb, **kw)
        wall, cpu = best(f)
        print(f"theory, 1e6 cells, {label:41s} wall {wall:6.3f} s   cpu {cpu:6.3f} s")

    calls = 20000
    wall, cpu = best(lambda: [ccem.theory(10, 1.0) for _ in range(calls)])
    per_call_py = wall / calls
    print(f"theory, one cell per call (Python):             {per_call_py * 1e6:8.1f} us/call")

    if pathlib.Path(args.cli).exists():
        cmd = [args.cli, "theory", "--n", "10", "--t", "1", "--format", "json"]
        k = 50
        wall, _ = best(lambda: [subprocess.run(cmd, check=True, capture_output=True)
                                for _ in range(k)], repeat=2)
        per_call_cli = wall / k
        print(f"theory, one cell per call (CLI process + JSON): {per_call_cli * 1e6:8.1f} us/call"
              f"   ({per_call_cli / per_call_py:.0f}x the Python call)")
        grid = [args.cli, "theory", "--n", "4..1003", "--t", "0.01..5:1000", "--format", "csv"]
        wall, _ = best(lambda: subprocess.run(grid, check=True, stdout=subprocess.DEVNULL),
                       repeat=2)
        print(f"theory, 1e6 cells, CLI to CSV (tied):           wall {wall:6.3f} s")
    else:
        print(f"(no CLI at {args.cli}: build it with cargo build --release)")

    rng = np.random.default_rng(0)
    for size in [(8, 8), (256, 64), (2048, 128)]:
        u, v = rng.normal(size=size), rng.normal(size=size)
        k = max(1, 2000 // size[0])
        wall, _ = best(lambda: [ccem.sigmoid_loss(u, v, 10.0, grad=True) for _ in range(k)])
        print(f"sigmoid_loss + grad, N x d = {size[0]:4d} x {size[1]:3d}:        "
              f"{wall / k * 1e3:9.3f} ms/call")


if __name__ == "__main__":
    main()
