"""Long calls release the GIL: a pure-Python thread keeps running while ccem works."""

import threading
import time

import numpy as np

import ccem


def ticks_during(call):
    """How many times a pure-Python loop in another thread ran while `call()` ran."""
    stop = threading.Event()
    count = [0]

    def spin():
        while not stop.is_set():
            count[0] += 1

    th = threading.Thread(target=spin)
    th.start()
    time.sleep(0.05)  # let it start
    before = count[0]
    t0 = time.perf_counter()
    call()
    elapsed = time.perf_counter() - t0
    during = count[0] - before
    stop.set()
    th.join()
    return during, elapsed


def test_thread_runs_during_optimize():
    # One call of 20,000 steps (about 2 s here; 1,500 steps took only 0.15 s on a quiet machine,
    # too short to tell), with no Python between its start and its end.
    during, elapsed = ticks_during(
        lambda: ccem.optimize(48, t=1.0, steps=20000, grad_tol=0.0))
    assert elapsed > 0.2, "the call must be long enough to tell"
    # Holding the GIL, the other thread would get no time slice at all during the call (the
    # interpreter switches threads only between bytecodes of the thread holding it).
    assert during > 10_000, (during, elapsed)


def test_thread_runs_during_loss_and_theory():
    u = np.random.default_rng(0).normal(size=(3000, 64))
    during, elapsed = ticks_during(
        lambda: [ccem.sigmoid_loss(u, u[::-1], 10.0, grad=True) for _ in range(3)])
    assert during > 1000, (during, elapsed)
    n = np.arange(4, 1004)[:, None]
    during, elapsed = ticks_during(lambda: ccem.theory(n, np.linspace(0.01, 5, 1000), 1.0))
    assert during > 1000, (during, elapsed)
