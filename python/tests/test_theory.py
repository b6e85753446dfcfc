import numpy as np
import pytest

import ccem
from conftest import same

SIGMOID_KEYS = [
    "n", "t", "b", "c_star", "delta_star", "s_pos", "s_neg", "loss", "phase",
    "t_etf_boundary", "t_antipodal_boundary",
]


@pytest.mark.parametrize(
    "py_args, cli_args",
    [
        ((10, 1.0), ["--n", 10, "--t", 1]),
        ((8, 3.0, 1.0), ["--n", 8, "--t", 3, "--b", 1]),
        ((32768, 117.8, 12.9), ["--n", 32768, "--t", 117.8, "--b", 12.9]),
        ((50, 0.5), ["--n", 50, "--t", 0.5]),  # antipodal: delta* = inf, JSON null
        ((10, 0.0), ["--n", 10, "--t", 0]),  # degenerate: c* = NaN, JSON null
        ((2, 4.0, -3.0), ["--n", 2, "--t", 4, "--b", -3]),
    ],
)
def test_scalar_matches_cli(cli, py_args, cli_args):
    py = ccem.theory(*py_args)
    js = cli("theory", *cli_args)
    assert list(py) == list(js) == SIGMOID_KEYS
    for k in js:
        assert same(py[k], js[k]), (k, py[k], js[k])
    assert isinstance(py["n"], int) and isinstance(py["phase"], str)
    # "No value" is None in a dict of scalars (the degenerate t = 0 has no c*).
    assert isinstance(py["c_star"], float) or (py["c_star"] is None and py["phase"] == "degenerate")


def test_relative_bias_and_infonce_match_cli(cli):
    py = ccem.theory(30, 2.0, relative_bias=0.5)
    js = cli("theory", "--n", 30, "--t", 2, "--relative-bias", 0.5)
    assert all(same(py[k], js[k]) for k in js) and list(py) == list(js)
    py = ccem.theory(10, loss="infonce", tau=0.07)
    js = cli("theory", "--loss", "infonce", "--n", 10, "--tau", 0.07)
    assert list(py) == list(js)
    assert "loss_clip" in py and py["loss_clip"] == py["loss"] / 2
    assert all(same(py[k], js[k]) for k in js)


def test_grid_matches_cli_cell_by_cell(cli):
    rows = cli("theory", "--n", "4..40", "--t", "0.05..6:13")
    ts = np.array(sorted({r["t"] for r in rows}))
    ns = np.arange(4, 41)
    py = ccem.theory(ns[:, None], ts)
    assert list(py) == SIGMOID_KEYS
    assert py["s_pos"].shape == (len(ns), len(ts))
    assert py["n"].dtype == np.int64 and py["phase"].dtype.kind == "U"
    for r in rows:
        i, j = r["n"] - 4, int(np.searchsorted(ts, r["t"]))
        for k in SIGMOID_KEYS:
            assert same(py[k][i, j].item(), r[k]), (k, r)


def test_fixed_bias_grid_matches_cli(cli):
    rows = cli("theory", "--n", "4,9,33", "--t", "0.5,1,4,9", "--b", 2)
    py = ccem.theory([4, 9, 33], [[0.5], [1.0], [4.0], [9.0]], 2.0)
    assert py["c_star"].shape == (4, 3)
    for r in rows:
        i = [0.5, 1.0, 4.0, 9.0].index(r["t"])
        j = [4, 9, 33].index(r["n"])
        for k in SIGMOID_KEYS:
            assert same(py[k][i, j].item(), r[k]), (k, r)


def test_broadcasting_and_nulls_as_nan():
    r = ccem.theory(np.array([4, 10, 50]), np.array([[0.0], [0.3], [5.0]]), b=np.array(1.0))
    assert r["c_star"].shape == (3, 3)
    assert np.isnan(r["c_star"][0]).all()  # t = 0: degenerate
    assert (r["phase"][0] == "degenerate").all()
    r = ccem.theory(np.arange(4, 8), 1.0)
    assert r["t"].shape == (4,) and np.isnan(r["t_antipodal_boundary"][0])  # N = 4: none
    # a 0-d array is a scalar input
    assert isinstance(ccem.theory(np.int64(10), np.float32(1.0))["loss"], float)


def test_optimum_against_numpy_minimisation():
    # l(c) = softplus(b - t + 2tc) + (N-1) softplus(-b - t/(N-1) - t c (N-2)/(N-1))  (SPEC §3)
    c = np.linspace(0.0, 1.0, 200001)
    for n, t, b in [(10, 1.0, 1.0), (20, 2.0, 0.5), (6, 4.0, 4.0), (40, 0.3, 0.3)]:
        l = np.logaddexp(0, b - t + 2 * t * c) + (n - 1) * np.logaddexp(
            0, -b - t / (n - 1) - t * c * (n - 2) / (n - 1)
        )
        r = ccem.theory(n, t, b)
        assert abs(r["c_star"] - c[np.argmin(l)]) <= 1e-5
        assert abs(r["loss"] - l.min()) <= 1e-9
        assert r["s_pos"] == pytest.approx(1 - 2 * r["c_star"], abs=1e-15)
        assert r["s_neg"] == pytest.approx(-(1 - r["c_star"]) / (n - 1) - r["c_star"], abs=1e-15)


def test_boundaries_can_be_skipped():
    r = ccem.theory(np.arange(4, 9), 1.0, 2.0, boundaries=False)
    assert np.isnan(r["t_etf_boundary"]).all()
    full = ccem.theory(np.arange(4, 9), 1.0, 2.0)
    assert np.array_equal(r["c_star"], full["c_star"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=1, t=1.0), "N = 1 is too small"),
        (dict(n=2.5, t=1.0), "integer"),
        (dict(n=10, t=-1.0), "invalid t = -1"),
        (dict(n=10, t=float("nan")), "invalid t"),
        (dict(n=10, t=float("inf")), "invalid t"),
        (dict(n=10, t=1.0, b=float("nan")), "invalid b"),
        (dict(n=10, t=1.0, b="x"), "tied"),
        (dict(n=10, t=1.0, b=1.0, relative_bias=0.5), "either b or relative_bias"),
        (dict(n=10, t=1.0, loss="hinge"), "unknown loss"),
        (dict(n=10, t=1.0, tau=0.1), "tau is for"),
        (dict(n=10), "t is required"),
        (dict(n=10, loss="infonce"), "tau is required"),
        (dict(n=10, loss="infonce", tau=0.0), "invalid tau"),
        (dict(n=10, loss="infonce", tau=0.1, t=1.0), "infonce loss takes tau"),
        (dict(n=np.array([10, 1]), t=1.0), "N = 1 is too small"),
        (dict(n=[10, 20], t=[1.0, 2.0, 3.0]), "broadcast"),
        (dict(n=10, t=np.array([1.0, -2.0])), "invalid t = -2"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ccem.theory(**kwargs)


def test_bad_types():
    with pytest.raises(TypeError):
        ccem.theory(np.array(["a", "b"]), 1.0)
    with pytest.raises(TypeError):
        ccem.theory(10, np.array([1j]))


ZOO_KEYS = [
    "within_view", "c_star", "delta_star", "s_pos", "s_neg", "s_within", "loss", "phase",
    "alignment_slack", "excess_separation", "thm53_condition", "global_optimum", "off_ccem_loss",
]


@pytest.mark.parametrize(
    "kwargs, cli_args",
    [
        (dict(loss="simclr", tau=0.1), ["--loss", "simclr", "--tau", 0.1]),
        (dict(loss="dcl", tau=0.5), ["--loss", "dcl", "--tau", 0.5]),
        (dict(loss="dhel", tau=2.0), ["--loss", "dhel", "--tau", 2]),
        (dict(loss="spectral", batch=4), ["--loss", "spectral", "--batch", 4]),
        (dict(loss="infonce", tau=0.5, within_view=1.0),
         ["--loss", "infonce", "--tau", 0.5, "--within-view", 1]),
        (dict(t=1.0, within_view=0.1), ["--t", 1, "--within-view", 0.1]),
        (dict(t=3.0, b=1.0, within_view=0.5, batch=4),
         ["--t", 3, "--b", 1, "--within-view", 0.5, "--batch", 4]),
        (dict(t=2.0, relative_bias=0.5, within_view=0.2, d=8),
         ["--t", 2, "--relative-bias", 0.5, "--within-view", 0.2, "--d", 8]),
    ],
)
def test_every_loss_matches_cli(cli, kwargs, cli_args):
    py = ccem.theory(16, **kwargs)
    js = cli("theory", "--n", 16, *cli_args)
    assert list(py) == list(js)
    assert all(k in js for k in ZOO_KEYS)
    for k in js:
        assert same(py[k], js[k]), (k, py[k], js[k])


def test_every_loss_broadcasts():
    r = ccem.theory(np.array([4, 8, 16])[:, None], loss="dcl", tau=np.array([0.1, 1.0]))
    assert r["s_pos"].shape == (3, 2) and (r["phase"] == "etf").all()
    one = ccem.theory(8, loss="dcl", tau=1.0)
    assert r["loss"][1, 1] == one["loss"]
    s = ccem.theory(np.arange(4, 9), t=1.0, within_view=0.3)
    assert s["s_within"].shape == (5,)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(loss="simclr", tau=0.0), ["simclr", "tau"]),
        (dict(loss="simclr", tau=0.1, within_view=1.0), ["simclr", "within_view"]),
        (dict(t=1.0, within_view=-1.0), ["sigmoid", "within_view"]),
        (dict(loss="spectral", tau=1.0), ["spectral", "tau"]),
        (dict(loss="dcl"), ["dcl", "tau"]),
        (dict(loss="dhel", tau=1.0, batch=4), ["dhel", "closed form"]),
    ],
)
def test_zoo_bad_input_names_the_loss_and_the_parameter(kwargs, words):
    with pytest.raises(ValueError) as e:
        ccem.theory(16, **kwargs)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_within_view_on_optimize_and_train():
    r = ccem.optimize(4, t=1.0, within_view=1.0, steps=200)
    assert r["loss"] > 0
    with pytest.raises(ValueError, match="within_view"):
        ccem.optimize(4, loss="simclr", tau=0.5, within_view=1.0)
    with pytest.raises(ValueError, match="infonce"):
        ccem.train(4, loss="infonce", tau=0.5, within_view=-1.0)
