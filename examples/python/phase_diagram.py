#!/usr/bin/env python3
"""The phase diagram of the sigmoid loss's optimum, from ccem.theory on numpy grids.

For each batch size N and scale t (with b = t, the paper's setting, then a fixed b = 1 and a
relative bias b = 0.5 t) the exact optimum is the simplex ETF, an intermediate CCEM or the
antipodal embedding. This draws the optimal positive similarity s+* = 1 - 2c* as a colour map with
the phase boundaries on top, one panel per bias setting.

    pip install ./python matplotlib      # matplotlib is optional for ccem, needed here
    python examples/python/phase_diagram.py [out.png]
"""

import sys

import numpy as np

import ccem

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover
    sys.exit("this example needs matplotlib: pip install matplotlib")

# %% The grid: N down the rows, t along the columns; ccem broadcasts like numpy.
n = np.arange(4, 101)
t = np.linspace(0.05, 8.0, 400)
settings = {
    "b = t (tied)": dict(),
    "b = 1": dict(b=1.0),
    "b = 0.5 t": dict(relative_bias=0.5),
}

# %% One theory call per setting: a dict of (len(n), len(t)) arrays.
results = {name: ccem.theory(n[:, None], t[None, :], **kw) for name, kw in settings.items()}
for name, r in results.items():
    phases, counts = np.unique(r["phase"], return_counts=True)
    print(f"{name:14s}", dict(zip(phases.tolist(), counts.tolist())))

# %% Draw s+* with the boundaries (t at which each N enters the ETF phase / leaves antipodal).
fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.2), sharey=True)
for ax, (name, r) in zip(axes, results.items()):
    im = ax.pcolormesh(t, n, r["s_pos"], vmin=-1, vmax=1, cmap="RdBu_r", shading="auto")
    ax.plot(r["t_etf_boundary"][:, 0], n, "k--", lw=1, label="ETF boundary")
    ax.plot(r["t_antipodal_boundary"][:, 0], n, "k:", lw=1, label="antipodal boundary")
    ax.set_title(f"optimal s+*, {name}")
    ax.set_xlabel("scale t (SigLIP's logit_scale)")
    ax.set_xlim(t[0], t[-1])
axes[0].set_ylabel("batch size N")
axes[0].legend(loc="lower right", fontsize=8)
fig.colorbar(im, ax=axes, label="s+* = 1 - 2c*")
out = sys.argv[1] if len(sys.argv) > 1 else "phase_diagram.png"
fig.savefig(out, dpi=120)
print("wrote", out)
