"""The CLI and Python accept the same options with the same values (issue 15, item 4; issue 17).

Each option is tried alone and with every other (pairs), for optimize, train, sweep and theory:
both front ends refuse (the CLI exits non-zero, Python raises ValueError/TypeError), or both
accept and resolve to the same run (the same keys in the record or the same config.json).
"""

import itertools
import json
import subprocess

import pytest

import ccem
from conftest import cli_path, same


def run_cli(*args, out_dir=None):
    """(exit code, parsed JSON or None, stderr) of `ccem ARGS --format json`."""
    p = subprocess.run(
        [str(cli_path()), *map(str, args), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=out_dir,
    )
    return p.returncode, (json.loads(p.stdout) if p.returncode == 0 and p.stdout else None), p.stderr


def run_py(f, *args, **kwargs):
    """(True, result) or (False, message)."""
    try:
        return True, f(*args, **kwargs)
    except (ValueError, TypeError) as e:
        return False, str(e)


def combos(atoms):
    """Each option alone, then every pair of options with different keywords."""
    for a in atoms:
        yield (a,)
    for a, b in itertools.combinations(atoms, 2):
        if not set(a[2]) & set(b[2]):
            yield (a, b)


def merged(case):
    cli_args, kwargs = [], {}
    for _, c, k in case:
        cli_args += c
        kwargs.update(k)
    return cli_args, kwargs


def agree(label, code, js, ok, py, keys):
    if code == 0:
        assert ok, f"{label}: the CLI accepts, Python raises: {py}"
        for k in keys:
            if k in js or k in py:
                assert same(py[k], js[k]), (label, k, py[k], js[k])
    else:
        assert not ok, f"{label}: the CLI refuses (exit {code}), Python accepts"


OPTIMIZE = [
    ("t", ["--t", 1], {"t": 1.0}),
    ("b", ["--b", 0.5], {"b": 0.5}),
    ("b tied", ["--b", "tied"], {"b": "tied"}),
    ("relative_bias R", ["--relative-bias", 0.5], {"relative_bias": 0.5}),
    ("relative_bias", ["--relative-bias"], {"relative_bias": True}),
    ("tau", ["--tau", 0.5], {"tau": 0.5}),
    ("infonce", ["--loss", "infonce"], {"loss": "infonce"}),
    ("simclr", ["--loss", "simclr"], {"loss": "simclr"}),
    ("spectral", ["--loss", "spectral"], {"loss": "spectral"}),
    ("within_view", ["--within-view", 0.5], {"within_view": 0.5}),
    ("within_view -1", ["--within-view", -1], {"within_view": -1.0}),
    ("learn_t", ["--learn-t"], {"learn_t": True}),
    ("learn_b", ["--learn-b"], {"learn_b": True}),
    ("init_t", ["--init-t", 2], {"init_t": 2.0}),
    ("init_b", ["--init-b", 1], {"init_b": 1.0}),
    ("lr_schedule", ["--lr-schedule", "constant"], {"lr_schedule": "constant"}),
    ("bad schedule", ["--lr-schedule", "linear"], {"lr_schedule": "linear"}),
    ("d 0", ["--d", 0], {"d": 0}),
    ("batch", ["--batch", 2], {"batch": 2}),
    ("batching", ["--batching", "fixed"], {"batching": "fixed"}),
    ("margin_quantile nan", ["--margin-quantile", "nan"], {"margin_quantile": float("nan")}),
    ("max_memory", ["--max-memory", "1G"], {"max_memory": "1G"}),
    ("max_memory 1K", ["--max-memory", "1K"], {"max_memory": "1K"}),
    ("max_memory bad", ["--max-memory", "1X"], {"max_memory": "1X"}),
]
RUN_KEYS = ["objective", "t", "b", "r_b", "tau", "learn_t", "learn_b", "lr", "lr_schedule",
            "n", "d", "batch", "batching", "margin_quantile_p"]


@pytest.mark.parametrize("case", list(combos(OPTIMIZE)), ids=lambda c: "+".join(a[0] for a in c))
def test_optimize_options_agree(case):
    cli_args, kwargs = merged(case)
    code, js, err = run_cli("optimize", "--n", 4, "--steps", 2, *cli_args)
    ok, py = run_py(ccem.optimize, 4, steps=2, **kwargs)
    agree(kwargs, code, js, ok, py, RUN_KEYS)


TRAIN = [
    ("t", ["--t", 1], {"t": 1.0}),
    ("b", ["--b", 0.5], {"b": 0.5}),
    ("b tied", ["--b", "tied"], {"b": "tied"}),
    ("tau", ["--tau", 0.5], {"tau": 0.5}),
    ("infonce", ["--loss", "infonce"], {"loss": "infonce"}),
    ("dcl", ["--loss", "dcl"], {"loss": "dcl"}),
    ("within_view", ["--within-view", 0.5], {"within_view": 0.5}),
    ("d", ["--d", 3], {"d": 3}),
    ("d 0", ["--d", 0], {"d": 0}),
    ("layers 4", ["--layers", 4], {"layers": 4}),
    ("margin_quantile", ["--margin-quantile", 0.1], {"margin_quantile": 0.1}),
    ("batch", ["--batch", 2], {"batch": 2}),
    ("max_memory", ["--max-memory", "1G"], {"max_memory": "1G"}),
    ("max_memory 1K", ["--max-memory", "1K"], {"max_memory": "1K"}),
    ("max_memory bad", ["--max-memory", "1X"], {"max_memory": "1X"}),
]


@pytest.mark.parametrize("case", list(combos(TRAIN)), ids=lambda c: "+".join(a[0] for a in c))
def test_train_options_agree(case):
    cli_args, kwargs = merged(case)
    code, js, err = run_cli("train", "--n", 4, "--steps", 1, *cli_args)
    ok, py = run_py(ccem.train, 4, steps=1, **kwargs)
    agree(kwargs, code, js, ok, py, RUN_KEYS + ["margin_quantile", "layers"])


SWEEP = [
    ("b", ["--b", 0.5], {"b": 0.5}),
    ("b tied", ["--b", "tied"], {"b": "tied"}),
    ("relative_bias", ["--relative-bias", 0.5], {"relative_bias": 0.5}),
    ("infonce", ["--loss", "infonce"], {"loss": "infonce"}),
    ("threads 0", ["--threads", 0], {"threads": 0}),
    ("d", ["--d", "2,3"], {"d": "2,3"}),
    ("d_ratio", ["--d-ratio", 1], {"d_ratio": 1.0}),
    ("batch", ["--batch", 2], {"batch": 2}),
    ("shard", ["--shard", "0/2"], {"shard": "0/2"}),
    ("max_memory", ["--max-memory", "1G"], {"max_memory": "1G"}),
    ("max_memory 1K", ["--max-memory", "1K"], {"max_memory": "1K"}),
    ("max_memory bad", ["--max-memory", "1X"], {"max_memory": "1X"}),
]


@pytest.mark.parametrize("case", list(combos(SWEEP)), ids=lambda c: "+".join(a[0] for a in c))
def test_sweep_options_agree(case, tmp_path):
    cli_args, kwargs = merged(case)
    base = ["--mode", "free", "--n", 4, "--t", 1, "--steps", 1]
    code, _, err = run_cli("sweep", *base, *cli_args, "--quiet", "--out", tmp_path / "cli")
    ok, py = run_py(ccem.sweep, str(tmp_path / "py"), mode="free", n=4, t=1.0, steps=1, **kwargs)
    if code == 0:
        assert ok, f"{kwargs}: the CLI accepts, Python raises: {py}"
        a = json.loads((tmp_path / "cli" / "config.json").read_text())
        b = json.loads((tmp_path / "py" / "config.json").read_text())
        assert a == b
    else:
        assert not ok, f"{kwargs}: the CLI refuses ({err.strip()}), Python accepts"


THEORY = [
    ("t", ["--t", 1], {"t": 1.0}),
    ("b", ["--b", 0.5], {"b": 0.5}),
    ("b tied", ["--b", "tied"], {"b": "tied"}),
    ("relative_bias", ["--relative-bias", 0.5], {"relative_bias": 0.5}),
    ("infonce", ["--loss", "infonce"], {"loss": "infonce"}),
    ("simclr", ["--loss", "simclr"], {"loss": "simclr"}),
    ("spectral", ["--loss", "spectral"], {"loss": "spectral"}),
    ("tau", ["--tau", 0.1], {"tau": 0.1}),
    ("tau 0", ["--tau", 0], {"tau": 0.0}),
    ("within_view", ["--within-view", 0.5], {"within_view": 0.5}),
    ("within_view -1", ["--within-view", -1], {"within_view": -1.0}),
    ("batch", ["--batch", 4], {"batch": 4}),
    ("d", ["--d", 5], {"d": 5}),
    ("d 0", ["--d", 0], {"d": 0}),
]


@pytest.mark.parametrize("case", list(combos(THEORY)), ids=lambda c: "+".join(a[0] for a in c))
def test_theory_options_agree(case):
    cli_args, kwargs = merged(case)
    code, js, err = run_cli("theory", "--n", 10, *cli_args)
    ok, py = run_py(ccem.theory, 10, **kwargs)
    if code == 0:
        assert ok, f"{kwargs}: the CLI accepts, Python raises: {py}"
        assert list(py) == list(js), kwargs
        for k in js:
            assert same(py[k], js[k]), (kwargs, k, py[k], js[k])
    else:
        assert not ok, f"{kwargs}: the CLI refuses ({err.strip()}), Python accepts"


def test_the_issue_17_disagreements_are_gone():
    # learn_b with a relative bias value: refused by both, naming the option in each spelling.
    ok, msg = run_py(ccem.optimize, 4, t=1.0, learn_b=True, relative_bias=0.5)
    assert not ok and "init_b" in msg and "--" not in msg
    code, _, err = run_cli("optimize", "--n", 4, "--t", 1, "--learn-b", "--relative-bias", 0.5)
    assert code == 1 and "--init-b" in err
    # train: t is InfoNCE's temperature in both (the paper's script); both t and tau: refused.
    ok, py = run_py(ccem.train, 4, loss="infonce", t=0.5, steps=1)
    code, js, _ = run_cli("train", "--n", 4, "--loss", "infonce", "--t", 0.5, "--steps", 1)
    assert ok and code == 0 and py["tau"] == js["tau"] == 0.5 and py["loss"] == js["loss"]
    ok, msg = run_py(ccem.train, 4, loss="infonce", t=0.5, tau=0.5)
    assert not ok and "tau alone" in msg
    assert run_cli("train", "--n", 4, "--loss", "infonce", "--t", 0.5, "--tau", 0.5)[0] == 1
    # threads=0 and a NaN colour range.
    ok, msg = run_py(ccem.sweep, "/nonexistent-ccem", mode="free", n=4, t=1.0, threads=0)
    assert not ok and "threads=0" in msg
    ok, msg = run_py(ccem.plot, "theory", out="/tmp/x.png", vmin=float("nan"))
    assert not ok and "vmin is not an option of plot 'theory'" in msg
    ok, msg = run_py(ccem.plot, "phase", out="/tmp/x.png", input="/nonexistent", vmin=float("nan"))
    assert not ok


def test_help_shows_defaults_and_theory_uses_none():
    for f in (ccem.inspect, ccem.optimize, ccem.train, ccem.sweep, ccem.theory, ccem.plot):
        assert "Ellipsis" not in str(f.__text_signature__), f
        assert "..." not in str(f.__text_signature__), f
    r = ccem.theory(10, 0.0, 1.0)
    assert r["phase"] == "degenerate"
    assert not any(isinstance(v, float) and v != v for v in r.values()), r
    assert r["c_star"] is None


def test_lr_schedule_default_is_step_and_constant_differs(cli):
    a = ccem.optimize(6, t=2.0, steps=1500, grad_tol=0.0)
    b = ccem.optimize(6, t=2.0, steps=1500, grad_tol=0.0, lr_schedule="step")
    c = ccem.optimize(6, t=2.0, steps=1500, grad_tol=0.0, lr_schedule="constant")
    assert a["lr_schedule"] == "step" and c["lr_schedule"] == "constant"
    assert (a["U"] == b["U"]).all() and a["loss"] == b["loss"]
    assert not (a["U"] == c["U"]).all()
    js = cli("optimize", "--n", 6, "--t", 2, "--steps", 1500, "--grad-tol", 0)
    assert js["lr_schedule"] == "step" and js["loss"] == a["loss"]


def test_python_has_what_the_cli_has(cli, tmp_path):
    js = cli("theory", "--n", 10, "--t", 1, "--d", 5)
    py = ccem.theory(10, 1.0, d=5)
    assert list(py) == list(js) and all(same(py[k], js[k]) for k in js)
    assert py["ccem_applies"] is False and py["s_pos"] is None
    r = ccem.train(6, t=1.0, steps=3, margin_quantile=0.2)
    assert r["margin_quantile_p"] == 0.2
    r = ccem.sweep(str(tmp_path / "s"), mode="free", n=4, t=1.0, d=[2, 4], steps=5)
    assert r["d"].tolist() == [2, 4]
    out = tmp_path / "m.png"
    ccem.plot("margin", out=str(out), n="3..4", d="2..3", restarts=1, steps_per_stage=5)
    assert out.stat().st_size > 0
