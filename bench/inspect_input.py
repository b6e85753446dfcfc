#!/usr/bin/env python3
"""Writes the float32 input of `ccem inspect`'s benchmarks: U.npy and V.npy (N x d, unit rows,
V = U + 0.8 noise so that the positives stand out; numpy seed 0), the recipe of
inspect_vs_torch.py.

Usage: inspect_input.py --n 8192 --d 768 --out DIR
Then time e.g. `ccem inspect --u DIR/U.npy --v DIR/V.npy --format json` with
`/usr/bin/time -v` or `hyperfine`.
"""
import argparse, os

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((a.n, a.d), dtype=np.float32)
    v = u + np.float32(0.8) * rng.standard_normal((a.n, a.d), dtype=np.float32)
    for name, x in (("U", u), ("V", v)):
        x /= np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True).astype(np.float32)
        np.save(os.path.join(a.out, f"{name}.npy"), x)


if __name__ == "__main__":
    main()
