"""call_later / call_every: order, never early, cancel guarantees, `when`."""

import random
import threading
import time

import pytest

import rtpy
from conftest import drive, join_threads, start_threads, wait_until

# time.monotonic() and Timer.when are floats of the same clock: allow only
# the rounding of a double, nothing a real early fire could hide in.
EPS = 1e-6


def test_call_later_fires_once_with_its_args(mt):
    calls = []
    t = mt.call_later(0.01, lambda *a: calls.append(a), 1, "x")
    assert isinstance(t, rtpy.Timer)
    assert wait_until(lambda: calls, 5)
    time.sleep(0.05)
    assert calls == [(1, "x")]
    assert not t.active
    assert t.cancel() is False  # already fired


def test_when_is_the_deadline_on_the_monotonic_clock(mt):
    t0 = time.monotonic()
    t = mt.call_later(0.5, lambda: None)
    t1 = time.monotonic()
    assert t.active
    # Never earlier than asked; rounded up by at most the 1 ms tick (plus the call's own time).
    assert t.when >= t0 + 0.5 - EPS
    assert t.when <= t1 + 0.5 + 0.01
    assert t.cancel() is True
    assert not t.active
    assert t.cancel() is False


@pytest.mark.parametrize("flavor", ["multi_thread", "current_thread"])
def test_timers_never_fire_early(flavor):
    rng = random.Random(11)
    n = 300
    fired = {}
    with rtpy.Runtime(flavor) as rt:
        timers = {}
        starts = {}
        for i in range(n):
            delay = rng.choice([0.0, 0.001, 0.002, 0.005, 0.013, 0.03, 0.07, 0.1])
            starts[i] = (time.monotonic(), delay)
            timers[i] = rt.call_later(delay, lambda i=i: fired.setdefault(i, time.monotonic()))
        whens = {i: t.when for i, t in timers.items()}
        assert drive(rt, lambda: len(fired) == n, timeout=10)
    for i in range(n):
        start, delay = starts[i]
        assert fired[i] >= start + delay - EPS, f"timer {i} fired {start + delay - fired[i]:.6f}s early"
        assert fired[i] >= whens[i] - EPS, f"timer {i} fired {whens[i] - fired[i]:.6f}s before its `when`"


def test_current_thread_timers_fire_in_deadline_order_ties_in_start_order(ct):
    order = []
    delays = [0.05, 0.01, 0.03, 0.02, 0.04, 0.01, 0.03, 0.0, 0.02]
    for i, d in enumerate(delays):
        ct.call_later(d, order.append, i)
    n = ct.run("default")
    assert n == len(delays)
    expected = [i for i, _ in sorted(enumerate(delays), key=lambda p: (p[1], p[0]))]
    assert order == expected


def test_multi_thread_timers_far_apart_fire_in_order(mt):
    order = []
    lock = threading.Lock()

    def hit(i):
        with lock:
            order.append(i)

    idx = list(range(8))
    random.Random(5).shuffle(idx)
    for i in idx:
        mt.call_later(0.03 * (i + 1), hit, i)
    assert wait_until(lambda: len(order) == 8, 5)
    assert order == list(range(8))


def test_call_every_repeats_never_early_and_when_moves(mt):
    interval = 0.02
    times = []
    t0 = time.monotonic()
    t = mt.call_every(interval, lambda: times.append(time.monotonic()))
    assert t.when >= t0 + interval - EPS
    assert wait_until(lambda: len(times) >= 6, 5)
    assert t.active
    assert t.when >= times[4] - EPS  # the next deadline, not the first one
    assert t.cancel() is True
    n = len(times)
    time.sleep(5 * interval)
    assert len(times) == n, "a cancelled call_every kept firing"
    assert not t.active
    for k, at in enumerate(times, start=1):
        assert at >= t0 + k * interval - EPS, f"call {k} early by {t0 + k * interval - at:.6f}s"


def test_cancel_from_inside_its_own_callback_returns_at_once(mt):
    calls = []
    results = []
    box = {}

    def cb():
        calls.append(1)
        if len(calls) == 3:
            t0 = time.monotonic()
            results.append(box["t"].cancel())
            results.append(time.monotonic() - t0)

    box["t"] = mt.call_every(0.005, cb)
    assert wait_until(lambda: len(results) == 2, 5)
    time.sleep(0.05)
    assert len(calls) == 3, "called again after cancelling itself"
    assert results[0] is True
    assert results[1] < 0.5, "cancel from inside its own callback waited"
    assert not box["t"].active


def test_cancel_one_shot_from_inside_its_callback(ct):
    out = []
    box = {}
    box["t"] = ct.call_later(0.0, lambda: out.append(box["t"].cancel()))
    ct.run("default")
    # Its (only) call is the one running: nothing left to stop.
    assert out == [False]


def test_cancel_from_another_thread_while_it_fires_repeating(mt):
    """After cancel() returns, the callback is not running and never runs again."""
    for _ in range(15):
        running = threading.Event()
        inside = [0]
        calls = [0]
        violations = []

        def cb():
            inside[0] += 1
            calls[0] += 1
            running.set()
            time.sleep(0.003)  # releases the GIL: the canceller runs meanwhile
            inside[0] -= 1

        t = mt.call_every(0.001, cb)
        assert running.wait(5)
        assert t.cancel() is True
        if inside[0] != 0:
            violations.append("callback still running after cancel returned")
        n = calls[0]
        time.sleep(0.02)
        if calls[0] != n:
            violations.append(f"{calls[0] - n} calls after cancel returned")
        assert not violations, violations


def test_cancel_storm_from_several_threads(mt):
    """Many threads cancel many timers at once: each timer is cancelled by
    exactly one True, and a timer whose cancel won never ran."""
    n = 2000
    fired = set()
    timers = [mt.call_later(random.Random(i).uniform(0, 0.02), fired.add, i) for i in range(n)]
    results = [[None] * n for _ in range(3)]

    def canceller(k):
        order = list(range(n))
        random.Random(k).shuffle(order)
        for i in order:
            results[k][i] = timers[i].cancel()

    join_threads(start_threads(3, canceller, indexed=True), 20)
    time.sleep(0.05)
    for i in range(n):
        wins = sum(results[k][i] for k in range(3))
        assert wins <= 1, f"timer {i} cancelled {wins} times"
        if wins == 1:
            assert i not in fired, f"timer {i}: cancel returned True but it fired"
        else:
            assert i in fired, f"timer {i}: no cancel won but it never fired"


def test_many_timers_all_fire_exactly_once(mt):
    n = 10_000
    fired = []
    rng = random.Random(3)
    for i in range(n):
        mt.call_later(rng.uniform(0, 0.1), fired.append, i)
    assert wait_until(lambda: len(fired) >= n, 10)
    time.sleep(0.05)
    assert sorted(fired) == list(range(n))


def test_call_later_zero_and_tiny_delays(mt):
    out = []
    mt.call_later(0, out.append, "zero")
    mt.call_later(1e-9, out.append, "tiny")
    assert wait_until(lambda: len(out) == 2, 5)


def test_timer_repr_and_attributes_do_not_crash(mt):
    t = mt.call_later(10, lambda: None)
    repr(t)
    assert isinstance(t.when, float)
    assert t.active is True
    t.cancel()


def test_call_every_on_current_thread_with_run_once(ct):
    times = []
    t0 = time.monotonic()
    t = ct.call_every(0.01, lambda: times.append(time.monotonic()))
    for _ in range(5):
        assert ct.run("once") >= 1
    assert len(times) == 5
    assert t.cancel() is True
    for k, at in enumerate(times, start=1):
        assert at >= t0 + k * 0.01 - EPS
    assert ct.run("nowait") == 0


def test_call_every_that_falls_behind_skips_instead_of_bursting(mt):
    times = []

    def cb():
        times.append(time.monotonic())
        if len(times) == 2:
            time.sleep(0.055)  # misses ~5 periods

    t = mt.call_every(0.01, cb)
    assert wait_until(lambda: len(times) >= 6, 5)
    t.cancel()
    gaps = [b - a for a, b in zip(times[2:], times[3:])]
    burst = [g for g in gaps if g < 0.003]
    assert len(burst) <= 1, f"missed periods fired in a burst: gaps {[round(g * 1e3, 2) for g in gaps]} ms"
    assert times[2] - times[1] >= 0.055
