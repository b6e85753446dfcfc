"""Issue 17: Ctrl-C stops every long call within a second (KeyboardInterrupt, no panic), huge
restart counts and zero-stride views are refused before they exhaust memory."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import ccem

# Long calls: each runs for minutes if not interrupted.
LONG_CALLS = {
    "optimize": "ccem.optimize(200, t=2.0, steps=10**6, grad_tol=0)",
    "restarts": "ccem.optimize(5, t=1.0, restarts=10**9)",
    "train": "ccem.train(100, t=2.0, steps=10**7)",
    "sweep": "ccem.sweep(OUT, mode='free', n='30..40', t=[1.0, 2.0], steps=10**6, grad_tol=0.0,"
             " threads=1)",
    "ccem_embedding": "ccem.ccem_embedding(6000, 6000, 0.3, seed=1)",
}


def run_and_interrupt(call, tmp_path):
    """Starts `call` in a fresh interpreter, sends SIGINT 1 s after it began, and returns
    (seconds from the signal to the exit, return code, stderr)."""
    code = textwrap.dedent(f"""
        import sys, ccem
        OUT = {str(tmp_path / 'sweep')!r}
        print("ready", flush=True)
        {call}
        print("finished", flush=True)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    assert p.poll() is None, "the call must still be running after 1 s"
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=30)
    finally:
        p.kill()
    return time.monotonic() - t0, p.returncode, err


@pytest.mark.parametrize("name", sorted(LONG_CALLS))
def test_ctrl_c_stops_a_long_call(name, tmp_path):
    elapsed, code, err = run_and_interrupt(LONG_CALLS[name], tmp_path)
    assert "KeyboardInterrupt" in err, err
    assert "PanicException" not in err and "panicked" not in err, err
    assert code != 0
    # Within a second on a quiet machine; allow for a loaded one (the interpreter's start-up
    # and exit are in the measured time too).
    assert elapsed < 3.0, (elapsed, err)


def test_an_interrupted_sweep_resumes(tmp_path):
    _, _, err = run_and_interrupt(LONG_CALLS["sweep"], tmp_path)
    assert "KeyboardInterrupt" in err
    # The directory (if any cell finished) still belongs to the same sweep: no error when the
    # same sweep is started again (here with short runs: a different configuration is refused).
    out = tmp_path / "sweep"
    assert not out.exists() or (out / "config.json").exists()


def test_huge_restarts_are_refused_under_a_memory_limit():
    # Under `ulimit -v` (RLIMIT_AS) the limit is the address space left: 10**9 restarts keep
    # 8 GB of final losses, refused with a clear error instead of an abort.
    code = textwrap.dedent("""
        import resource, ccem
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        try:
            ccem.optimize(5, t=1.0, restarts=10**9)
        except ValueError as e:
            print("refused:", e)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "refused:" in r.stdout and "restarts" in r.stdout, r.stdout


def test_zero_stride_views_are_not_copied_into_huge_memory():
    u = np.broadcast_to(np.ones((1, 100_000)), (100_000, 100_000))
    with pytest.raises(ValueError, match="memory"):
        ccem.sigmoid_loss(u, u, 1.0)
    # A small zero-stride view is copied and works.
    small = np.broadcast_to(np.arange(1.0, 4.0), (3, 3))
    assert np.isfinite(ccem.sigmoid_loss(small, small[::-1], 1.0))


def test_interrupted_maps_to_keyboard_interrupt_and_results_are_unchanged():
    # A normal call still returns what it did (the helper thread changes nothing).
    r = ccem.optimize(6, t=1.0, b=1.0, seed=3)
    assert r["termination"] == "converged"
    u, v = ccem.ccem_embedding(5, 8, 0.25, seed=2)
    assert np.allclose(u @ u.T, ccem.ccem_embedding(5, 8, 0.25)[0] @ ccem.ccem_embedding(5, 8, 0.25)[0].T)


def test_max_memory_is_a_keyword_of_every_call_and_leaks_into_no_other(tmp_path):
    # An explicit limit refuses the call, naming the option in Python's spelling ...
    for call in (
        lambda m: ccem.optimize(50, t=1.0, steps=1, max_memory=m),
        lambda m: ccem.train(50, t=1.0, steps=1, max_memory=m),
        lambda m: ccem.max_margin(50, 3, restarts=1, hops=0, max_memory=m),
        lambda m: ccem.sweep(str(tmp_path / "s"), mode="free", n=50, t=1.0, steps=1,
                             max_memory=m),
        lambda m: ccem.inspect(np.eye(50), np.eye(50), max_memory=m),
        lambda m: ccem.sigmoid_loss(np.eye(50), np.eye(50), 1.0, max_memory=m),
        lambda m: ccem.loss(np.eye(50), np.eye(50), "simclr", tau=0.5, max_memory=m),
        lambda m: ccem.ccem_embedding(50, 50, 0.2, max_memory=m),
    ):
        for m in ("1K", 1024):
            with pytest.raises(ValueError, match="would need about") as e:
                call(m)
            msg = str(e.value)
            assert "more than the 1.0 KiB allowed (max_memory=)" in msg, msg
            assert "raise max_memory=" in msg and "--" not in msg, msg
        # ... and the next call, without it, is not limited (the old global leaked).
        call(None)
    # A bad size (an int beyond 64 bits too) is a ValueError naming the keyword; another type a
    # TypeError.
    for bad in ("1X", "", 0, -5, 2**70, -2**70):
        with pytest.raises(ValueError, match="max_memory="):
            ccem.optimize(4, t=1.0, steps=1, max_memory=bad)
    for bad in (1.5, True, [1]):
        with pytest.raises(TypeError, match="max_memory"):
            ccem.optimize(4, t=1.0, steps=1, max_memory=bad)
    assert ccem.optimize(4, t=1.0, steps=1, max_memory="1G")["n"] == 4


def test_sweep_errors_name_the_keywords_not_the_flags(tmp_path):
    # The library's checks of a sweep name their options in Python's spelling (issue 15).
    cases = [
        (dict(seeds=0), "seeds must be >= 1"),
        (dict(steps=0), "steps must be >= 1"),
        (dict(restarts=0), "restarts must be >= 1"),
        (dict(shard="3/2"), "invalid shard '3/2'"),
        (dict(batching="hardest"), "batching needs batch B"),
    ]
    for i, (kw, msg) in enumerate(cases):
        with pytest.raises(ValueError) as e:
            ccem.sweep(mode="free", n=[4, 5], t=[1.0], out=str(tmp_path / f"s{i}"), **kw)
        assert msg in str(e.value) and "--" not in str(e.value), str(e.value)
