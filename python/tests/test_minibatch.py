"""Mini-batches from Python (SPEC §8): ``theory(batch=)`` and ``batch=``/``batching=``/
``neg_variance_weight=`` on ``optimize``, ``train`` and ``sweep``, against the CLI's JSON."""

import csv

import numpy as np
import pytest

import ccem
from conftest import same
from test_runs import compare_with_cli


def test_theory_batch_equals_the_cli(cli):
    py = ccem.theory(16, 2.0, 1.0, batch=4)
    js = cli("theory", "--n", 16, "--t", 2, "--b", 1, "--batch", 4)
    assert list(py) == list(js)
    for k, v in js.items():
        assert same(py[k], v), (k, py[k], v)
    assert py["batch"] == 4 and py["w"] == 0.2
    assert py["s_pos"] == pytest.approx(0.8886856368, abs=1e-9)
    # Tied bias: the weighted boundaries.
    py = ccem.theory(20, 1.5, batch=8)
    js = cli("theory", "--n", 20, "--t", 1.5, "--batch", 8)
    for k, v in js.items():
        assert same(py[k], v), (k, py[k], v)


def test_theory_batch_broadcasts_and_full_batch_is_exact():
    batches = np.array([2, 4, 8, 16])
    r = ccem.theory(16, np.array([[0.5], [2.0]]), batch=batches)
    assert r["s_pos"].shape == (2, 4) and r["batch"].tolist() == [[2, 4, 8, 16]] * 2
    for i, t in enumerate([0.5, 2.0]):
        for j, bsz in enumerate(batches):
            one = ccem.theory(16, t, batch=int(bsz))
            assert r["s_pos"][i, j] == one["s_pos"] and r["w"][i, j] == one["w"]
    # Smaller batches push the optimum toward the ETF.
    assert np.all(np.diff(r["s_pos"][1]) <= 0)
    full, b16 = ccem.theory(16, 2.0, 1.0), ccem.theory(16, 2.0, 1.0, batch=16)
    for k in full:
        assert same(b16[k], full[k]) or b16[k] == full[k], k
    assert b16["w"] == 1.0


def test_theory_batch_errors():
    with pytest.raises(ValueError, match=r"need 2 <= B <= N"):
        ccem.theory(8, 1.0, batch=9)
    with pytest.raises(ValueError, match=r"need 2 <= B <= N"):
        ccem.theory([8, 4], 1.0, batch=6)
    with pytest.raises(ValueError, match="only for the additive losses"):
        ccem.theory(8, loss="infonce", tau=0.1, batch=4)
    with pytest.raises(ValueError, match="integer"):
        ccem.theory(8, 1.0, batch=2.5)


@pytest.mark.parametrize(
    "kwargs, args",
    [
        (dict(batch=4, batching="expected"), ["--batch", 4, "--batching", "expected"]),
        (dict(batch=4, batching="fixed", steps=400), ["--batch", 4, "--batching", "fixed",
                                                        "--steps", 400]),
        (dict(batch=4, steps=300, neg_variance_weight=0.5),
         ["--batch", 4, "--steps", 300, "--neg-variance-weight", 0.5]),
        (dict(batch=3, batching="hardest", steps=200), ["--batch", 3, "--batching", "hardest",
                                                          "--steps", 200]),
    ],
)
def test_optimize_batch_equals_the_cli(cli, kwargs, args):
    py = ccem.optimize(12, t=2.0, b=1.0, **kwargs)
    compare_with_cli(py, cli("optimize", "--n", 12, "--t", 2, "--b", 1, *args))
    assert py["batch"] == kwargs["batch"]
    assert py["batching"] == kwargs.get("batching", "shuffled")


def test_optimize_expected_lands_on_the_weighted_ccem():
    r = ccem.optimize(16, t=2.0, b=1.0, batch=4, batching="expected")
    assert r["w"] == 0.2 and r["theory_s_pos"] == ccem.theory(16, 2.0, 1.0, batch=4)["s_pos"]
    assert abs(r["s_pos_mean"] - r["theory_s_pos"]) < 1e-5
    # No batches are drawn under expected: no in-batch statistics; fixed has them.
    assert "s_neg_std_in_batch" not in r
    f = ccem.optimize(16, t=2.0, b=1.0, batch=4, batching="fixed", steps=500)
    assert f["s_neg_std_in_batch"] < f["s_neg_std"]


def test_train_batch_equals_the_cli(cli):
    py = ccem.train(12, t=2.0, batch=4, batching="fixed", steps=30, seed=2)
    js = cli("train", "--n", 12, "--t", 2, "--batch", 4, "--batching", "fixed", "--steps", 30,
             "--seed", 2)
    compare_with_cli(py, js)
    assert py["batching"] == "fixed" and py["w"] == pytest.approx(3 / 11)


def test_sweep_batch_columns(tmp_path):
    r = ccem.sweep(tmp_path / "s", mode="free", n="8,12", t=[1.0, 3.0], batch=4,
                   batching="expected")
    assert r["batch"].tolist() == [4, 4, 4, 4]
    assert list(r["batching"]) == ["expected"] * 4
    assert np.all(np.abs(r["s_pos"] - r["s_pos_theory"]) < 1e-5)
    assert r["s_pos_theory"][0] == ccem.theory(8, 1.0, batch=4)["s_pos"]
    with open(tmp_path / "s" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["batching"] for row in rows] == ["expected"] * 4


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ccem.optimize(10, t=1.0, batch=4, batching="fixed"), "B must divide N"),
        (lambda: ccem.optimize(10, t=1.0, batch=11), r"need 2 <= B <= N"),
        (lambda: ccem.optimize(10, t=1.0, batching="fixed"), "needs a mini-batch size"),
        (lambda: ccem.optimize(10, t=1.0, batch=5, batching="best"), "unknown batching"),
        (lambda: ccem.optimize(8, loss="infonce", tau=0.5, batch=4, batching="expected"),
         "only the sigmoid loss"),
        (lambda: ccem.optimize(10, t=1.0, batch=5, neg_variance_weight=-1.0),
         "invalid neg_variance_weight"),
        (lambda: ccem.optimize(1100, d=4, t=1.0, batch=10, batching="hardest"), "N <= 1024"),
        (lambda: ccem.train(10, t=1.0, batch=3, batching="shuffled"), "B must divide N"),
        (lambda: ccem.sweep("unused-dir", mode="free", n="8,12", t=1.0, batch=10),
         r"B = 10"),
        (lambda: ccem.sweep("unused-dir", mode="free", n=8, t=1.0, batching="fixed"),
         "batching needs batch B"),
    ],
)
def test_bad_mini_batch_options_raise_the_library_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
