"""examples/python/phase_diagram.py: its computation (ccem and numpy only) and, with
matplotlib installed, the whole script."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import ccem
from conftest import REPO

SCRIPT = REPO / "examples" / "python" / "phase_diagram.py"


def load():
    spec = importlib.util.spec_from_file_location("phase_diagram", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compute_is_the_theory_on_the_grid():
    ex = load()
    n, t = np.arange(4, 31), np.linspace(0.05, 6.0, 25)
    results = ex.compute(n, t)
    assert list(results) == list(ex.SETTINGS)
    for name, r in results.items():
        assert r["s_pos"].shape == (len(n), len(t))
        i, j = 17, 11
        one = ccem.theory(int(n[i]), float(t[j]), **ex.SETTINGS[name])
        assert r["s_pos"][i, j] == one["s_pos"] and r["phase"][i, j] == one["phase"]
    counts = ex.phase_counts(results)
    assert all(sum(c.values()) == len(n) * len(t) for c in counts.values())
    # b = t: small t is antipodal and large t the ETF for these N (SPEC §3's thresholds)
    assert {"etf", "antipodal", "intermediate"} <= set(counts["b = t (tied)"])


def test_script_draws_the_figure(tmp_path):
    pytest.importorskip("matplotlib")  # an optional extra, not a dependency of ccem
    out = tmp_path / "phase.png"
    subprocess.run([sys.executable, str(SCRIPT), str(out)], check=True, capture_output=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
