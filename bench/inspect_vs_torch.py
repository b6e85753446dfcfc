#!/usr/bin/env python3
"""`ccem inspect` at SigLIP's scale against one float32 `U @ V.T` in PyTorch (issue 11's target:
at most 2.5x its time, in at most 1.5 GB).

Usage: inspect_vs_torch.py [--n 32768] [--d 768] [--reps 2] [--torch PYTHON] [--ccem BINARY]

U and V (N x d, float32, unit rows, V = U + noise so that the positives stand out; numpy seed
0) are written to a temporary directory once. Then, each in its own process:

- torch: loads them and times `U @ V.T` alone (the fastest of --reps), float32 on every thread
  PyTorch uses; the product is the N x N matrix that inspect never holds.
- ccem: `ccem inspect --u U.npy --v V.npy --format json` (float32, one pass, histogram quantile
  above N = 4096), timed as the whole process (reading the files included), once per
  --quantile method.

Memory is each process's peak resident memory (ru_maxrss from os.wait4), interpreter and inputs
included. The last line gives PyTorch's float32 matrix-product rate (2048^3) as the ceiling.
PyTorch is not a dependency of ccem: give an interpreter that has it with --torch.
"""
import argparse, json, os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loss_vs_torch import measured  # noqa: E402  (one helper: run a child, keep its peak RSS)


def worker_torch(u_path, v_path, reps):
    import numpy as np
    import torch
    u = torch.from_numpy(np.load(u_path))
    v = torch.from_numpy(np.load(v_path))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        s = u @ v.T
        best = min(best, time.perf_counter() - t0)
        del s
    a = torch.randn(2048, 2048)
    t0 = time.perf_counter()
    for _ in range(3):
        a @ a
    peak = 3 * 2 * 2048 ** 3 / (time.perf_counter() - t0) / 1e9
    return {"seconds": best, "threads": torch.get_num_threads(), "peak_gflops": peak}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32768)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--torch", default=sys.executable, help="a Python interpreter with torch")
    ap.add_argument("--ccem", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "ccem"))
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker_torch(a.worker[0], a.worker[1], int(a.worker[2]))))
        return
    import numpy as np
    if not os.path.exists(a.ccem):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        u = rng.standard_normal((a.n, a.d), dtype=np.float32)
        v = u + np.float32(0.8) * rng.standard_normal((a.n, a.d), dtype=np.float32)
        for name, x in (("U", u), ("V", v)):
            x /= np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True).astype(np.float32)
            np.save(os.path.join(tmp, f"{name}.npy"), x)
        del u, v
        up, vp = os.path.join(tmp, "U.npy"), os.path.join(tmp, "V.npy")
        flops = 2.0 * a.n * a.n * a.d
        rows = []
        torch = measured([a.torch, __file__, "--worker", up, vp, str(a.reps)])
        rows.append(("torch f32 U @ V.T", torch["seconds"], torch["peak_rss_mib"], ""))
        print(f"torch U @ V.T: {torch['seconds']:.2f} s, {torch['peak_rss_mib']:.0f} MiB", flush=True)
        for q in ("histogram", "exact"):
            t0 = time.perf_counter()
            res = measured([a.ccem, "inspect", "--u", up, "--v", vp, "--quantile", q,
                            "--format", "json"])
            wall = time.perf_counter() - t0
            rows.append((f"ccem inspect f32 --quantile {q}", wall, res["peak_rss_mib"],
                         f"passes {res['passes']}, margin_quantile {res['margin_quantile']:.6f} "
                         f"(+- {res['margin_quantile_error']:.1e}), sigmoid {res['sigmoid_loss']:.6f}, "
                         f"infonce {res['infonce_loss']:.6f}"))
            print(f"ccem inspect ({q}): {wall:.2f} s, {res['peak_rss_mib']:.0f} MiB", flush=True)
    print(f"\nN = {a.n}, d = {a.d}; one product is {flops / 1e12:.2f} TFLOP\n")
    print("| path | time (s) | x torch U @ V.T | GFLOP/s of one product | peak RSS (MiB) | notes |")
    print("|---|---|---|---|---|---|")
    for label, s, m, note in rows:
        print(f"| {label} | {s:.2f} | {s / torch['seconds']:.2f} | {flops / s / 1e9:.1f} | {m:.0f} | {note} |")
    print(f"\nceiling: PyTorch float32 2048^3 on {torch['threads']} threads: "
          f"{torch['peak_gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
