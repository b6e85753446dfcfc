"""Shared helpers: the release CLI (for the comparisons) and independent numpy references."""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def cli_path() -> pathlib.Path:
    """The release binary that `cargo test --release` / `cargo build --release` leaves."""
    if os.environ.get("CCEM_CLI"):
        return pathlib.Path(os.environ["CCEM_CLI"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "release" / "ccem"


@pytest.fixture(scope="session")
def cli():
    """Runs `ccem ARGS --format json` and returns the parsed JSON."""
    exe = cli_path()
    if not exe.exists():
        pytest.fail(f"{exe} not found: build it with `cargo build --release` (scripts/test.sh does)")

    def run(*args):
        out = subprocess.run(
            [str(exe), *map(str, args), "--format", "json"],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout)

    return run


def same(py_value, json_value):
    """A Python value equals the CLI's JSON value: exactly, with JSON null = None, NaN or inf."""
    if json_value is None:
        return py_value is None or (isinstance(py_value, float) and not np.isfinite(py_value))
    if isinstance(json_value, float) or isinstance(py_value, float):
        return float(py_value) == float(json_value)
    return py_value == json_value


# Independent references (written from SPEC §1, not from the library).


def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sigmoid_ref(u, v, t, b, normalize=True):
    if normalize:
        u, v = unit_rows(u), unit_rows(v)
    s = u @ v.T
    z = 2.0 * np.eye(len(u)) - 1.0
    return np.logaddexp(0.0, -z * (t * s - b)).sum() / len(u)


def lse(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def infonce_ref(u, v, tau, normalize=True):
    if normalize:
        u, v = unit_rows(u), unit_rows(v)
    s = (u @ v.T) / tau
    d = np.diag(s)
    return ((lse(s, 1) - d).sum() + (lse(s, 0) - d).sum()) / len(u)


def fd_grad(f, x, h=1e-6):
    """Central finite differences of the scalar f at every entry of x."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g
