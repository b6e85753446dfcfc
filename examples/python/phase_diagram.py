#!/usr/bin/env python3
"""The phase diagram of the sigmoid loss's optimum, from ccem.theory on numpy grids.

For each batch size N and scale t (with b = t, the paper's setting, then a fixed b = 1 and a
relative bias b = 0.5 t) the exact optimum is the simplex ETF, an intermediate CCEM or the
antipodal embedding. This draws the optimal positive similarity s+* = 1 - 2c* as a colour map with
the phase boundaries on top, one panel per bias setting.

    pip install ./python matplotlib      # matplotlib is optional for ccem, needed here
    python examples/python/phase_diagram.py [out.png]

`compute()` needs only ccem and numpy (the tests import it); `draw()` needs matplotlib.
"""

import sys

import numpy as np

import ccem

# The bias settings of the three panels: keyword arguments of ccem.theory.
SETTINGS = {
    "b = t (tied)": dict(),
    "b = 1": dict(b=1.0),
    "b = 0.5 t": dict(relative_bias=0.5),
}


# %% One theory call per setting: a dict of (len(n), len(t)) arrays.
def compute(n=np.arange(4, 101), t=np.linspace(0.05, 8.0, 400), settings=SETTINGS):
    """The theory on the grid `n` (rows) x `t` (columns): {setting name: ccem.theory's dict}.

    ccem broadcasts like numpy: n[:, None] against t[None, :] gives (len(n), len(t)) arrays.
    """
    n, t = np.asarray(n), np.asarray(t)
    return {name: ccem.theory(n[:, None], t[None, :], **kw) for name, kw in settings.items()}


def phase_counts(results):
    """How many cells of each setting are in each phase: {name: {phase: count}}."""
    out = {}
    for name, r in results.items():
        phases, counts = np.unique(r["phase"], return_counts=True)
        out[name] = dict(zip(phases.tolist(), counts.tolist()))
    return out


# %% Draw s+* with the boundaries (t at which each N enters the ETF phase / leaves antipodal).
def draw(results, n, t, out):
    """Writes the figure of `compute(n, t)` to `out` (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (name, r) in zip(axes, results.items()):
        im = ax.pcolormesh(t, n, r["s_pos"], vmin=-1, vmax=1, cmap="RdBu_r", shading="auto")
        ax.plot(r["t_etf_boundary"][:, 0], n, "k--", lw=1, label="ETF boundary")
        ax.plot(r["t_antipodal_boundary"][:, 0], n, "k:", lw=1, label="antipodal boundary")
        ax.set_title(f"optimal s+*, {name}")
        ax.set_xlabel("scale t (SigLIP's logit_scale)")
        ax.set_xlim(t[0], t[-1])
    axes[0].set_ylabel("batch size N")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.colorbar(im, ax=list(axes), label="s+* = 1 - 2c*")
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("this example needs matplotlib: pip install matplotlib")
    n, t = np.arange(4, 101), np.linspace(0.05, 8.0, 400)
    results = compute(n, t)
    for name, counts in phase_counts(results).items():
        print(f"{name:14s}", counts)
    out = argv[1] if len(argv) > 1 else "phase_diagram.png"
    draw(results, n, t, out)
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv)
