"""ccem.max_margin: the keys of `ccem max-margin --format json`, certified known codes."""

import json
import math
import subprocess
import shutil

import numpy as np
import pytest

import ccem


def test_pentagon_is_certified():
    r = ccem.max_margin(5, 2, restarts=2, hops=0)
    assert abs(r["margin"] - (1 - math.cos(math.radians(72))) / 2) < 1e-12
    assert r["termination"] == "converged" and r["certified"]
    assert r["known_code"] == "polygon"
    assert r["contacts"] == 5 and len(r["contact_pairs"]) == 5
    assert r["U"].shape == (5, 2) and r["V"].shape == (5, 2)
    assert np.allclose((r["U"] ** 2).sum(1), 1.0)


def test_same_keys_as_the_cli():
    exe = shutil.which("ccem")
    if exe is None:
        pytest.skip("the ccem binary is not on PATH")
    out = subprocess.run(
        [exe, "max-margin", "--n", "5", "--d", "2", "--restarts", "2", "--hops", "0",
         "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    cli = json.loads(out)
    cli = cli[0] if isinstance(cli, list) else cli
    py = ccem.max_margin(5, 2, restarts=2, hops=0)
    assert set(py) - {"U", "V"} == set(cli)


def test_bad_options_raise_value_error():
    with pytest.raises(ValueError, match="restarts"):
        ccem.max_margin(5, 2, restarts=0)
    with pytest.raises(ValueError):
        ccem.max_margin(1, 2)
    with pytest.raises(ValueError, match="memory"):
        ccem.max_margin(100000, 2)
