"""The loss zoo from Python: `ccem.loss` against numpy ports of the reference code
(leechungpa/embedding-similarity-cl, solo/losses/{simclr,dcl,dhel}.py) and the dense formulas
(docs/SPEC.md §1.6-1.7), computed here by a different route."""

import numpy as np
import pytest

import ccem


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _solo(U, V, tau, which):
    n = U.shape[0]
    z = np.concatenate([_unit(U), _unit(V)])
    sim = np.exp(z @ z.T / tau)
    idx = np.concatenate([np.arange(n), np.arange(n)])
    pos_mask = idx[:, None] == idx[None, :]
    np.fill_diagonal(pos_mask, False)
    neg_mask = idx[:, None] != idx[None, :]
    if which == "dhel":
        neg_mask[:n, n:] = False
        neg_mask[n:, :n] = False
    pos = (sim * pos_mask).sum(1)
    neg = (sim * neg_mask).sum(1)
    if which == "simclr":
        return -np.mean(np.log(pos / (pos + neg)))
    return -np.mean(np.log(pos / neg))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid_within(U, V, t, b, w):
    u, v = _unit(U), _unit(V)
    n = u.shape[0]
    s = u @ v.T
    z = 2 * np.eye(n) - 1
    off = ~np.eye(n, dtype=bool)
    total = _softplus(-z * (t * s - b)).sum()
    total += w * (_softplus(t * (u @ u.T) - b)[off].sum() + _softplus(t * (v @ v.T) - b)[off].sum())
    return total / n


def _infonce_within(U, V, tau, w):
    u, v = _unit(U), _unit(V)
    n = u.shape[0]
    s = u @ v.T / tau
    off = ~np.eye(n, dtype=bool)
    row = np.exp(s).sum(1) + w * (np.exp(u @ u.T / tau) * off).sum(1)
    col = np.exp(s).sum(0) + w * (np.exp(v @ v.T / tau) * off).sum(1)
    return (np.log(row).sum() + np.log(col).sum() - 2 * np.trace(s)) / n


def _spectral(U, V):
    u, v = _unit(U), _unit(V)
    n = u.shape[0]
    s = u @ v.T
    off = ~np.eye(n, dtype=bool)
    return -2 * np.trace(s) / n + (s[off] ** 2).sum() / (n * (n - 1))


@pytest.fixture
def pair():
    rng = np.random.default_rng(5)
    return rng.normal(size=(11, 6)), rng.normal(size=(11, 6))


@pytest.mark.parametrize("name", ["simclr", "dcl", "dhel"])
@pytest.mark.parametrize("tau", [0.01, 0.1, 1.0, 10.0])
def test_reference_losses(pair, name, tau):
    U, V = pair
    want = _solo(U, V, tau, name)
    got = ccem.loss(U, V, name, tau=tau)
    assert abs(got - want) <= 1e-12 * max(1.0, abs(want))


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_within_view_and_spectral(pair, w):
    U, V = pair
    got = ccem.loss(U, V, "sigmoid", t=5.0, b=-1.0, within_view=w)
    assert got == pytest.approx(_sigmoid_within(U, V, 5.0, -1.0, w), rel=1e-12)
    got = ccem.loss(U, V, "infonce", tau=0.3, within_view=w)
    assert got == pytest.approx(_infonce_within(U, V, 0.3, w), rel=1e-12)
    assert ccem.loss(U, V, "spectral") == pytest.approx(_spectral(U, V), rel=1e-12, abs=1e-14)


def test_named_losses_agree_with_the_old_entry_points(pair):
    U, V = pair
    assert ccem.loss(U, V, "sigmoid", t=3.0, b=1.0) == ccem.sigmoid_loss(U, V, 3.0, 1.0)
    assert ccem.loss(U, V, "infonce", tau=0.2) == ccem.infonce_loss(U, V, 0.2)
    assert ccem.loss(U, V, "infonce", tau=0.2, within_view=1.0) == pytest.approx(
        2 * ccem.loss(U, V, "simclr", tau=0.2), rel=1e-13
    )


def test_gradients_and_float32(pair):
    U, V = pair
    L, dU, dV = ccem.loss(U, V, "dhel", tau=0.4, grad=True)
    h = 1e-6
    E = np.zeros_like(U)
    E[2, 3] = h
    fd = (ccem.loss(U + E, V, "dhel", tau=0.4) - ccem.loss(U - E, V, "dhel", tau=0.4)) / (2 * h)
    assert dU[2, 3] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    L32 = ccem.loss(U.astype(np.float32), V.astype(np.float32), "dhel", tau=0.4)
    assert L32 == pytest.approx(L, rel=1e-5)


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("simclr", {"tau": 0.0}, ["simclr", "tau"]),
        ("dcl", {}, ["dcl", "tau"]),
        ("dhel", {"tau": 0.5, "within_view": 1.0}, ["dhel", "within_view"]),
        ("sigmoid", {"t": 1.0, "within_view": -1.0}, ["sigmoid", "within_view"]),
        ("spectral", {"tau": 1.0}, ["spectral", "tau"]),
        ("nope", {}, ["nope", "simclr"]),
    ],
)
def test_bad_parameters(pair, name, params, words):
    U, V = pair
    with pytest.raises(ValueError) as e:
        ccem.loss(U, V, name, **params)
    for w in words:
        assert w in str(e.value)
