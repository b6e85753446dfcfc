#!/usr/bin/env python3
"""The sigmoid loss + gradient at SigLIP's scale: PyTorch float32 dense against ccem float32 and
float64 (issue 11's benchmark), side by side, in one run.

Usage: loss_vs_torch.py [--sizes 1024,4096,16384] [--d 768] [--reps 3] [--torch PYTHON]

For each N, U and V (N x d, float32 unit rows, numpy seed 0) are written to a temporary
directory once; then each path runs in its own process, reads them, times the loss + gradient
(the fastest of --reps) and reports its value; its gradient dL/dU is saved, and every path's
loss and gradient are compared with ccem's float64 path (relative error; the gradient's in
Frobenius norm). The memory column is that process's whole peak
resident memory (ru_maxrss of the child, from os.wait4), inputs and interpreter included.

- torch: the open_clip form, logits = t U V^T - b, loss = -logsigmoid(labels * logits).sum() / N
  with labels = 2 I - 1, then backward() to U and V; float32, dense. PyTorch is not a dependency
  of ccem: give an interpreter that has it with --torch (default: this one); the row is skipped
  if it has none.
- ccem f32 / f64: through the Python package (`import ccem`, ccem.sigmoid_loss(U, V, t, b,
  grad=True)) when it is importable, else through the example binary
  `cargo run --release --example loss_scale -- N d blocked32|blocked ... --json`.

GFLOP/s counts the three products of the loss + gradient (S = U V^T, G V, G^T U): 6 N^2 d.
The last line gives the machine's float32 matrix-product rate (2048^3 on every thread) as the
ceiling. Standard library (and numpy to write the inputs) only.
"""
import argparse, json, os, subprocess, sys, tempfile, time

T, B = 10.0, 10.0  # SigLIP's initialisation in ccem's sign convention (logit t S - b; SPEC §1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                       "release", "examples", "loss_scale")


def worker_torch(u_path, v_path, reps):
    import numpy as np
    import torch
    u0 = torch.from_numpy(np.load(u_path))
    v0 = torch.from_numpy(np.load(v_path))
    n = u0.shape[0]
    best, value = float("inf"), None
    for _ in range(reps):
        u = u0.clone().requires_grad_(True)
        v = v0.clone().requires_grad_(True)
        t0 = time.perf_counter()
        logits = T * u @ v.T - B
        labels = 2 * torch.eye(n, dtype=logits.dtype) - 1
        loss = -torch.nn.functional.logsigmoid(labels * logits).sum() / n
        loss.backward()
        best = min(best, time.perf_counter() - t0)
        value = float(loss.detach())
        grad = u.grad.numpy().copy()
        del logits, labels, loss, u, v
    np.save(os.path.join(os.path.dirname(u_path), "dU_torch.npy"), grad)
    return {"seconds": best, "value": value, "threads": torch.get_num_threads()}


def worker_ccem_package(u_path, v_path, reps, precision):
    import numpy as np
    import ccem
    dtype = np.float32 if precision == "f32" else np.float64
    u = np.load(u_path).astype(dtype)
    v = np.load(v_path).astype(dtype)
    best, value = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        # The rows are already unit vectors: the loss of U, V as given, as PyTorch computes it.
        value, du, _ = ccem.sigmoid_loss(u, v, T, B, grad=True, normalize=False)
        best = min(best, time.perf_counter() - t0)
    np.save(os.path.join(os.path.dirname(u_path), f"dU_{precision}.npy"), du)
    return {"seconds": best, "value": value}


def have_package():
    try:
        import ccem  # noqa: F401
        return hasattr(ccem, "sigmoid_loss")
    except ImportError:
        return False


def measured(cmd):
    """Runs cmd in its own process; returns its JSON output with that process's peak RSS (MiB)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        os.execvp(cmd[0], cmd)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status, ru = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {status}")
    try:  # one JSON document (e.g. `ccem ... --format json`), else its last line
        res = json.loads(out)
    except json.JSONDecodeError:
        res = json.loads(out.strip().splitlines()[-1])
    if isinstance(res, list):
        res = res[0]
    res["peak_rss_mib"] = ru.ru_maxrss / 1024.0  # Linux: KiB
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1024,4096,16384")
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--torch", default=sys.executable, help="a Python interpreter with torch")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        kind, u_path, v_path, reps = a.worker[0], a.worker[1], a.worker[2], int(a.worker[3])
        res = worker_torch(u_path, v_path, reps) if kind == "torch" else \
            worker_ccem_package(u_path, v_path, reps, kind)
        print(json.dumps(res))
        return
    import numpy as np
    package = have_package()
    if not package:
        subprocess.run(["cargo", "build", "--release", "--example", "loss_scale"], cwd=ROOT,
                       check=True)
    has_torch = subprocess.run([a.torch, "-c", "import torch"], capture_output=True).returncode == 0
    print(f"ccem through {'the Python package' if package else 'the example binary ' + EXAMPLE}; "
          f"torch: {a.torch if has_torch else 'not available'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in a.sizes.split(",")]:
            rng = np.random.default_rng(0)
            for name in ("U", "V"):
                x = rng.standard_normal((n, a.d), dtype=np.float32)
                x /= np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True).astype(np.float32)
                np.save(os.path.join(tmp, f"{name}.npy"), x)
            up, vp = os.path.join(tmp, "U.npy"), os.path.join(tmp, "V.npy")
            flops = 6.0 * n * n * a.d
            paths = []
            if has_torch:
                paths.append(("torch f32 dense", [a.torch, __file__, "--worker", "torch", up, vp, str(a.reps)]))
            for prec, ex_path in (("f32", "blocked32"), ("f64", "blocked")):
                if package:
                    cmd = [sys.executable, __file__, "--worker", prec, up, vp, str(a.reps)]
                else:
                    cmd = [EXAMPLE, str(n), str(a.d), ex_path, "256", "sigmoid", "--json", "--reps",
                           str(a.reps), "--t", str(T), "--b", str(B), "--npy", up, vp]
                paths.append((f"ccem {prec} blocked", cmd))
            results = {}
            for old in ("torch", "f32", "f64"):  # no gradient of an earlier N is compared
                if os.path.exists(os.path.join(tmp, f"dU_{old}.npy")):
                    os.remove(os.path.join(tmp, f"dU_{old}.npy"))
            for label, cmd in paths:
                try:
                    res = measured(cmd)
                except Exception as e:  # noqa: BLE001 (report and go on: e.g. out of memory)
                    print(f"N={n} {label}: failed ({e})")
                    continue
                results[label] = res
                print(f"N={n:>6} {label:<17} {res['seconds']:8.3f} s {flops / res['seconds'] / 1e9:7.1f} GFLOP/s "
                      f"{res['peak_rss_mib']:8.0f} MiB  loss {res['value']:.8f}", flush=True)
            # Errors against ccem's float64 path (same float32 inputs, float64 throughout).
            ref = results.get("ccem f64 blocked")
            g64 = os.path.join(tmp, "dU_f64.npy")
            g64 = np.load(g64).astype(np.float64) if os.path.exists(g64) else None
            torch_res = results.get("torch f32 dense")
            for label, res in results.items():
                key = "torch" if label.startswith("torch") else label.split()[1]
                gp = os.path.join(tmp, f"dU_{key}.npy")
                gerr = (np.linalg.norm(np.load(gp).astype(np.float64) - g64) / np.linalg.norm(g64)
                        if g64 is not None and os.path.exists(gp) else float("nan"))
                lerr = abs(res["value"] - ref["value"]) / abs(ref["value"]) if ref else float("nan")
                vs_t = (res["seconds"] / torch_res["seconds"], res["peak_rss_mib"] / torch_res["peak_rss_mib"]) \
                    if torch_res else (float("nan"), float("nan"))
                rows.append((n, label, res["seconds"], flops / res["seconds"] / 1e9, res["peak_rss_mib"],
                             res["value"], lerr, gerr, *vs_t))
    peak = json.loads(subprocess.run([EXAMPLE, "0", "0", "peak32", "--json"], capture_output=True,
                                     text=True).stdout) if os.path.exists(EXAMPLE) else None
    print()
    print("| N | path | time (s) | GFLOP/s | peak RSS (MiB) | time / torch | memory / torch | loss | "
          "loss error vs f64 | gradient error vs f64 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, label, s, g, m, v, le, ge, tt, tm in rows:
        print(f"| {n} | {label} | {s:.3f} | {g:.1f} | {m:.0f} | {tt:.2f} | {100 * tm:.0f}% | {v:.8f} | "
              f"{le:.1e} | {ge:.1e} |")
    if peak:
        print(f"\nceiling: float32 matrix product 2048^3 on {peak['threads']} threads: {peak['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
