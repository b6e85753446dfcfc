"""`ccem.sweep(loss=NAME)` for every loss of the zoo against `ccem sweep --loss NAME` (SPEC §9.8):
the same options, the same config.json, the same rows (every column, bit for bit) and the same
summary.json."""

import csv
import json
import math

import pytest

import ccem

CASES = [
    ("simclr", dict(tau="0.5,2")),
    ("dcl", dict(tau=[0.5, 2.0])),
    ("dhel", dict(t="0.5,2")),  # t is tau's alias
    ("infonce", dict(tau=0.5, within_view=0.5)),
    ("spectral", dict()),
    ("sigmoid", dict(t="1,4", b=0.0, within_view=0.3)),
]


def cli_args(kwargs):
    args = []
    for k, v in kwargs.items():
        if isinstance(v, list):
            v = ",".join(map(str, v))
        args += [f"--{k.replace('_', '-')}", str(v)]
    return args


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def value(text):
    """A CSV field as Python's sweep returns it (empty = NaN/None)."""
    if text == "":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


@pytest.mark.parametrize("loss,kwargs", CASES, ids=[c[0] for c in CASES])
def test_python_sweep_equals_the_cli(tmp_path, loss, kwargs):
    import subprocess

    from conftest import cli_path

    py_dir, cli_dir = tmp_path / "py", tmp_path / "cli"
    r = ccem.sweep(str(py_dir), mode="free", loss=loss, n="4,5", seeds=2, **kwargs)
    p = subprocess.run(
        [str(cli_path()), "sweep", "--mode", "free", "--loss", loss, "--n", "4,5", "--seeds", "2",
         "--quiet", "--out", str(cli_dir), *cli_args(kwargs)],
        capture_output=True, text=True,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads((py_dir / "config.json").read_text()) == json.loads(
        (cli_dir / "config.json").read_text())
    rows_py, rows_cli = read_csv(py_dir / "results.csv"), read_csv(cli_dir / "results.csv")
    assert rows_py == rows_cli
    for key in ("s_pos", "s_within", "beats_ccem", "ccem_global", "within_view"):
        assert key in r
    for k, col in r.items():
        for got, text in zip(col.tolist(), (row[k] for row in rows_cli)):
            want = value(text)
            if isinstance(want, (int, float)) and not isinstance(want, bool):
                # Numeric columns come back as float64 (NaN where the CSV field is empty).
                assert float(got) == float(want) or (math.isnan(got) and math.isnan(want)), (
                    k, got, want)
            elif want is None:
                assert got is None or (isinstance(got, float) and math.isnan(got)), (k, got)
            else:
                assert got == want, (k, got, want)
    s_py = json.loads((py_dir / "summary.json").read_text())
    s_cli = json.loads((cli_dir / "summary.json").read_text())
    assert s_py == s_cli
    if loss == "spectral":
        assert s_py["free"]["beats_ccem"] == len(rows_py)  # a finding: -2 off the CCEM
    else:
        assert s_py["free"]["meets"] == len(rows_py)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(loss="simclr"), "tau"),
        (dict(loss="spectral", t=1.0), "t"),
        (dict(loss="simclr", tau=1.0, within_view=0.5), "within"),
        (dict(loss="dcl", tau=0.0), "tau"),
        (dict(loss="infonce", tau=1.0, within_view=-1.0), "within_view"),
        (dict(loss="sigmoid", tau=1.0), "tau"),
        (dict(loss="nope", t=1.0), "unknown loss"),
    ],
)
def test_bad_zoo_sweeps_name_the_loss_and_the_parameter(kwargs, message):
    with pytest.raises(ValueError) as e:
        ccem.sweep("unused-dir", mode="free", n=4, **kwargs)
    assert message in str(e.value)
