import csv
import os

import numpy as np
import pytest

import ccem
from conftest import same

def compare_with_cli(py, js):
    """The dict of the binding is the CLI's JSON (same keys in the same order) plus U and V."""
    assert list(py) == list(js) + ["U", "V"]
    for k, val in js.items():
        if isinstance(val, list):
            assert len(py[k]) == len(val) and all(same(a, b) for a, b in zip(py[k], val))
        else:
            assert same(py[k], val), (k, py[k], val)


def test_optimize_meets_theory_and_matches_cli(cli):
    py = ccem.optimize(10, t=1.0, seed=3)
    compare_with_cli(py, cli("optimize", "--n", 10, "--t", 1, "--seed", 3))
    assert py["meets_theory"] is True and py["objective"] == "sigmoid"
    u, v = py["U"], py["V"]
    assert u.shape == v.shape == (10, 10) and u.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1, atol=1e-12)
    assert np.diag(u @ v.T).mean() == pytest.approx(py["s_pos_mean"], abs=1e-12)
    assert abs(py["s_pos_mean"] - py["theory_s_pos"]) < 1e-3


def test_optimize_infonce_and_learnt_scalars(cli):
    py = ccem.optimize(8, loss="infonce", tau=0.5)
    compare_with_cli(py, cli("optimize", "--n", 8, "--loss", "infonce", "--tau", 0.5))
    assert py["theory_phase"] == "etf" and py["t"] is None
    assert py["loss_clip"] == py["loss"] / 2 and py["theory_loss_clip"] == py["theory_loss"] / 2
    py = ccem.optimize(8, learn_t=True, learn_b=True, steps=300, grad_tol=0.0)
    compare_with_cli(py, cli("optimize", "--n", 8, "--learn-t", "--learn-b", "--steps", 300,
                             "--grad-tol", 0))
    assert py["t"] != 10.0 and py["steps_run"] == 300


def test_optimize_relative_bias():
    fixed = ccem.optimize(8, t=2.0, relative_bias=0.5, steps=200)
    assert fixed["b"] == 1.0 and fixed["r_b"] == 0.5
    # A learnt r_b starts from init_b / t (relative_bias=True is the CLI's --relative-bias).
    learnt = ccem.optimize(8, t=2.0, relative_bias=True, learn_b=True, init_b=1.0, steps=200,
                           grad_tol=0.0)
    assert learnt["r_b"] != 0.5 and learnt["b"] == pytest.approx(2.0 * learnt["r_b"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n=1, t=1.0), "too small"),
        (dict(n=-3, t=1.0), "invalid n = -3"),
        (dict(n=4, t=1.0, d=-1), "invalid d = -1"),
        (dict(n=4, t=1.0, steps=-5), "invalid steps"),
        (dict(n=4, t=-1.0), "invalid t"),
        (dict(n=4), "t is required"),
        (dict(n=4, t=1.0, loss="x"), "unknown loss"),
        (dict(n=4, loss="infonce", tau=0.1, t=1.0), "infonce loss takes tau"),
        (dict(n=4, loss="infonce"), "tau is required"),
        (dict(n=4, t=1.0, tau=0.1), "tau is for"),
        (dict(n=4, t=1.0, learn_t=True), "init_t"),
        (dict(n=4, t=1.0, init_t=2.0), "learn_t=True"),
        (dict(n=4, t=1.0, b=1.0, relative_bias=1.0), "either b or relative_bias"),
        (dict(n=4, t=1.0, steps=0), "steps"),
        (dict(n=4, t=1.0, restarts=0), "restarts"),
        (dict(n=4, t=1.0, lr=0.0), "invalid lr"),
        (dict(n=4, t=1.0, optimizer="lbfgs"), "unknown optimizer"),
        (dict(n=4, t=1.0, d=0), "dimension"),
        (dict(n=4, t=1.0, momentum=1.0), "momentum"),
    ],
)
def test_optimize_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ccem.optimize(**kwargs)


def test_train_matches_cli(cli):
    py = ccem.train(12, t=2.0, seed=1)
    compare_with_cli(py, cli("train", "--n", 12, "--t", 2, "--seed", 1))
    assert py["U"].shape == (12, 12) and py["termination"] != "diverged"
    norms = np.linalg.norm(py["U"], axis=1)  # unit rows (a dead ReLU output stays 0)
    assert np.all((np.abs(norms - 1) < 1e-6) | (norms == 0)) and (norms > 0).sum() >= 6
    py = ccem.train(6, loss="infonce", tau=0.5, steps=20, layers=3, d=8)
    compare_with_cli(py, cli("train", "--n", 6, "--loss", "infonce", "--tau", 0.5,
                             "--steps", 20, "--layers", 3, "--d", 8))


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(n=1, t=1.0), "too small"), (dict(n=4, t=1.0, layers=4), "layers"),
     (dict(n=-1, t=1.0), "invalid n = -1"), (dict(n=4, t=1.0, layers=-2), "invalid layers"),
     (dict(n=4, t=1.0, lr=-1.0), "invalid lr"), (dict(n=4, loss="infonce", t=1.0, tau=1.0), "tau alone"),
     (dict(n=4, t=1.0, steps=0), "steps"), (dict(n=4), "t is required")],
)
def test_train_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ccem.train(**kwargs)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_sweep_writes_resumes_and_refuses(tmp_path):
    out = tmp_path / "sweep"
    r = ccem.sweep(out, mode="free", n="4..6", t=[0.5, 2.0], seeds=1)
    rows = read_csv(out / "results.csv")
    assert {"config.json", "results.csv", "summary.json", "summary.md"} <= set(os.listdir(out))
    assert r["n"].tolist() == [int(x["n"]) for x in rows] == [4, 4, 5, 5, 6, 6]
    assert r["t"].tolist() == [float(x["t"]) for x in rows]
    assert r["s_pos"].tolist() == [float(x["s_pos"]) for x in rows]
    assert r["phase"].tolist() == [x["phase"] for x in rows]
    assert r["meets_theory"].dtype == bool and r["meets_theory"].all()
    before = (out / "results.csv").read_bytes()
    again = ccem.sweep(out, mode="free", n="4..6", t=[0.5, 2.0])  # resumed: nothing to do
    assert (out / "results.csv").read_bytes() == before
    assert all(np.array_equal(again[k], r[k]) for k in r if r[k].dtype.kind != "f") and all(
        np.array_equal(again[k], r[k], equal_nan=True) for k in r if r[k].dtype.kind == "f")
    with pytest.raises(ValueError, match="different configuration|another|differ"):
        ccem.sweep(out, mode="free", n="4..6", t=[0.5, 3.0])
    assert (out / "results.csv").read_bytes() == before


def test_sweep_encoder_infonce_and_bad_input(tmp_path):
    r = ccem.sweep(tmp_path / "e", mode="encoder", loss="infonce", n=[4, 5], t=0.5, steps=5)
    assert r["objective"].tolist() == ["infonce", "infonce"]
    assert np.isnan(r["b"]).all()
    for kwargs, message in [
        (dict(mode="x", n=4, t=1.0), "unknown mode"),
        (dict(mode="free", n=4, t=1.0, loss="x"), "unknown loss"),
        (dict(mode="free", n="4..x", t=1.0), "invalid grid"),
        (dict(mode="free", n=1, t=1.0), "too small"),
        (dict(mode="free", n=4, t=-1.0), "invalid t"),
        (dict(mode="free", n=4, t=1.0, d_ratio=0.5), "needs d >= N"),
        (dict(mode="free", n=4, t=1.0, loss="infonce", b=1.0), "sigmoid loss"),
        (dict(mode="free", n=4, t=1.0, optimizer="x"), "optimizer"),
        (dict(mode="free", n=4, t=1.0, shard="3/2"), "shard"),
        (dict(mode="free", n=[4.5], t=1.0), "integer"),
    ]:
        with pytest.raises(ValueError, match=message):
            ccem.sweep(tmp_path / "bad", **kwargs)


def test_plots(tmp_path):
    ccem.sweep(tmp_path / "s", mode="free", n="4..7", t=[0.5, 1.0, 2.0])
    for kind, kwargs in [
        ("theory", dict(n="4..20", t="0.1..5:20")),
        ("theory", dict(n=[4, 8, 12], t=np.linspace(0.1, 3, 5), quantity="delta", b=1.0)),
        ("phase", dict(input=tmp_path / "s")),
        ("diff", dict(input=tmp_path / "s" / "results.csv", curves=False)),
        ("curves", dict(input=tmp_path / "s", n=[4, 6])),
        ("loss-curve", dict(n=10, t="0.5,1,2", relative=True)),
    ]:
        for ext in ["png", "svg"]:
            out = tmp_path / f"{kind}-{len(kwargs)}.{ext}"
            assert ccem.plot(kind, out=out, **kwargs) is None
            assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="invalid kind"):
        ccem.plot("pie", out=tmp_path / "x.png")
    with pytest.raises(ValueError):
        ccem.plot("theory", out=tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="needs input"):
        ccem.plot("phase", out=tmp_path / "x.png")
    with pytest.raises(ValueError, match="quantity"):
        ccem.plot("theory", out=tmp_path / "x.png", quantity="q")
    with pytest.raises(ValueError, match="cannot read"):
        ccem.plot("phase", out=tmp_path / "x.png", input=tmp_path / "missing.csv")
