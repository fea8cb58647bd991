"""Timers of an asyncio loop: call_later / call_at never fire before their
`when` (on loop.time()), due timers run by deadline, cancel works from inside
the same iteration, and the lateness on an idle loop (measured, printed,
asserted only loosely: the machine is shared).

Each test runs on asyncio's loop and on rtpy's (conftest.loop_factory).
"""

import asyncio
import random
import statistics

import pytest

from .support import stop_after


def _fire_log(loop, log, key):
    """A callback recording (key, loop.time()) when it runs."""

    def fired():
        log.append((key, loop.time()))

    return fired


def test_never_early_over_many_timers(loop):
    rng = random.Random(12)
    log = []
    handles = {}
    now = loop.time()
    # Delays from the past (call_at before now, negative call_later) to 60 ms,
    # many of them on the same or neighbouring microseconds.
    for i in range(3000):
        kind = i % 6
        if kind == 0:
            h = loop.call_at(now - rng.random(), _fire_log(loop, log, i))
        elif kind == 1:
            h = loop.call_later(-rng.random() * 0.01, _fire_log(loop, log, i))
        elif kind == 2:
            h = loop.call_later(0, _fire_log(loop, log, i))
        elif kind == 3:
            h = loop.call_at(loop.time() + rng.choice([1e-6, 2e-6, 5e-4, 0.001, 0.0015]), _fire_log(loop, log, i))
        else:
            h = loop.call_later(rng.random() * 0.06, _fire_log(loop, log, i))
        handles[i] = h
    done = loop.create_future()
    loop.call_later(0.08, lambda: done.done() or done.set_result(None))
    loop.run_until_complete(asyncio.wait_for(done, 10))

    assert sorted(k for k, _ in log) == sorted(handles), "every timer fires exactly once"
    early = [(k, handles[k].when() - t) for k, t in log if t < handles[k].when()]
    assert not early, f"{len(early)} timers fired before their when(), e.g. {early[:5]}"
    # loop.time() never goes back.
    times = [t for _, t in log]
    assert times == sorted(times)


def test_due_timers_run_by_deadline(loop):
    """Timers that come due in one iteration run in the order of their
    when(), past ones included (asyncio's heap order), whatever the order
    they were scheduled in."""
    import time as _time

    rng = random.Random(7)
    log = []
    handles = []

    def setup():
        now = loop.time()
        for i in range(2000):
            kind = i % 4
            if kind == 0:
                when = now - rng.random() * 100  # in the past
            elif kind == 1:
                when = now - rng.random() * 1e-3
            else:
                when = now + rng.random() * 0.004  # due once setup has slept
            handles.append(loop.call_at(when, log.append, i))
        _time.sleep(0.006)  # everything is due by the next iteration

    loop.call_soon(setup)
    loop.call_later(0.05, loop.stop)
    safety = stop_after(loop, 5)
    loop.run_forever()
    assert not safety
    assert sorted(log) == list(range(2000))
    whens = [handles[i].when() for i in log]
    bad = next((k for k in range(1, len(whens)) if whens[k] < whens[k - 1]), None)
    assert bad is None, (
        f"timers ran out of deadline order: #{bad} ran with when={whens[bad]:.6f} after "
        f"when={whens[bad - 1]:.6f} ({sum(1 for k in range(1, len(whens)) if whens[k] < whens[k - 1])} inversions)"
    )


def test_call_at_in_the_past_runs_on_the_next_iteration(loop):
    log = []
    loop.call_soon(log.append, "soon")
    loop.call_at(loop.time() - 3600, log.append, "past-hour")
    loop.call_at(-1e300, log.append, "far-past")
    loop.call_later(-5, log.append, "negative-delay")
    loop.call_at(loop.time() - 1, log.append, "past-second")
    loop.call_later(3600, log.append, "never")
    safety = stop_after(loop, 5)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert not safety
    # The ready callback first (it was ready before any timer came due), then
    # the past timers by deadline.
    assert log == ["soon", "far-past", "past-hour", "negative-delay", "past-second"]


def test_deadlines_before_the_clocks_zero_keep_their_order(loop):
    # loop.time() is time.monotonic(): zero at boot. Deadlines before it
    # (a fresh machine's `loop.time() - 3600`) are due, in deadline order.
    log = []
    for when in (-1.0, -5e5, -3600.5, -3600.0, -1e9):
        loop.call_at(when, log.append, when)
    loop.call_later(0.01, loop.stop)
    safety = stop_after(loop, 5)
    loop.run_forever()
    assert not safety
    assert log == [-1e9, -5e5, -3600.5, -3600.0, -1.0]


def test_ties_keep_scheduling_order(loop, loop_kind, request):
    if loop_kind == "asyncio":
        # Issue 12 asks for ties in scheduling order; the stock loop's heapq
        # compares `when` only and is not stable (3 timers at one `when` come
        # out as 0, 2, 1). Strict: if CPython fixes it, this shows.
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="asyncio's heapq does not keep equal deadlines in order")
        )
    log = []
    when = loop.time() + 0.005
    n = 500
    for i in range(n):
        loop.call_at(when, log.append, i)
    # Another group on one later deadline, scheduled interleaved with a third.
    later = when + 0.002
    for i in range(n):
        loop.call_at(later, log.append, ("b", i))
        loop.call_at(later + 1e-6, log.append, ("c", i))
    loop.call_at(later + 0.001, loop.stop)
    safety = stop_after(loop, 5)
    loop.run_forever()
    assert not safety
    assert log == list(range(n)) + [("b", i) for i in range(n)] + [("c", i) for i in range(n)]


def test_two_equal_deadlines_fire_in_scheduling_order(loop):
    # The part of the tie rule that asyncio's own loop keeps too.
    for _ in range(20):
        log = []
        when = loop.time() + 0.001
        loop.call_at(when, log.append, 1)
        loop.call_at(when, log.append, 2)
        loop.call_at(when + 0.0005, loop.stop)
        loop.run_forever()
        assert log == [1, 2]


def test_cancel_from_another_callback_of_the_same_iteration(loop):
    import time as _time

    log = []
    handles = {}

    def canceller():
        log.append("a")
        assert handles["b"].cancel() is None
        assert handles["b"].cancelled()
        handles["far"].cancel()

    def setup():
        now = loop.time()
        # a and b have different deadlines, and both are due by the next
        # iteration (this callback outsleeps them): a runs first, cancels b.
        handles["a"] = loop.call_at(now + 0.001, canceller)
        handles["b"] = loop.call_at(now + 0.002, log.append, "b")
        handles["far"] = loop.call_at(now + 0.02, log.append, "far")
        handles["c"] = loop.call_at(now + 0.03, log.append, "c")
        loop.call_at(now + 0.04, loop.stop)
        _time.sleep(0.005)

    loop.call_soon(setup)
    safety = stop_after(loop, 5)
    loop.run_forever()
    assert not safety
    assert log == ["a", "c"]
    for k in ("b", "far"):
        assert handles[k].cancelled()
    assert not handles["c"].cancelled()


def test_cancel_a_ready_handle_from_an_earlier_callback_of_the_batch(loop):
    log = []
    hs = []

    def first():
        log.append(0)
        hs[2].cancel()
        hs[3].cancel()

    hs.append(loop.call_soon(first))
    for i in range(1, 6):
        hs.append(loop.call_soon(log.append, i))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert log == [0, 1, 4, 5]
    assert hs[2].cancelled() and hs[3].cancelled()
    assert not hs[1].cancelled()


def test_a_timer_cancelling_itself_and_double_cancel(loop):
    log = []
    box = {}

    def me():
        log.append("ran")
        box["h"].cancel()  # cancel of a running (already fired) timer: no-op
        box["h"].cancel()

    box["h"] = loop.call_later(0, me)
    h2 = loop.call_later(0.001, log.append, "two")
    h2.cancel()
    h2.cancel()  # cancelling twice is harmless
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert log == ["ran"]
    assert h2.cancelled()


def test_call_later_zero_returns_a_timer_handle(loop, loop_kind):
    t0 = loop.time()
    h = loop.call_later(0, lambda: None)
    t1 = loop.time()
    soon = loop.call_soon(lambda: None)
    at = loop.call_at(t1, lambda: None)
    if loop_kind == "asyncio":
        assert isinstance(h, asyncio.TimerHandle)
    for th in (h, at):
        assert type(th).__name__ == "TimerHandle"
        assert callable(getattr(th, "when", None))
        assert isinstance(th.when(), float)
    # call_later(0) is a timer at "now", not a call_soon in disguise.
    assert t0 <= h.when() <= t1
    assert abs(at.when() - t1) <= 1e-6
    assert not hasattr(soon, "when"), "call_soon returns a plain Handle"
    assert type(soon).__name__ == "Handle"
    # TimerHandles compare by deadline as asyncio's do.
    later = loop.call_later(10, lambda: None)
    assert h < later and later > h and h <= later and later >= h
    assert h != later
    later.cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_time_is_monotonic_with_microsecond_resolution(loop):
    import time as _time

    a = loop.time()
    b = _time.monotonic()
    c = loop.time()
    # Same clock as time.monotonic() (asyncio's and the rule).
    assert a <= b + 1e-6 and b <= c + 1e-6
    seen = set()
    prev = loop.time()
    for _ in range(20000):
        t = loop.time()
        assert t >= prev
        seen.add(t)
        prev = t
    # Sub-millisecond resolution: thousands of distinct values in a busy spin.
    assert len(seen) > 100


def test_timer_far_in_the_future_does_not_fire(loop):
    log = []
    hs = [
        loop.call_later(1e6, log.append, "1e6"),
        loop.call_later(3600 * 24 * 365, log.append, "year"),
        loop.call_later(float("inf"), log.append, "inf"),
        loop.call_at(float("inf"), log.append, "at-inf"),
    ]
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert log == []
    for h in hs:
        h.cancel()
        assert h.cancelled()


def test_mean_lateness_on_an_idle_loop(loop, loop_kind):
    """N sequential call_later(1..5 ms): lateness = loop.time() at the call -
    when(). Printed; asserted loosely (shared 2-core machine): none early,
    mean under 5 ms. The issue's goal (mean <= 0.5 ms) is measured by
    benches/python/timer_lateness.py."""
    rng = random.Random(3)
    n = 150
    late = []
    done = loop.create_future()
    box = {}

    def fired():
        late.append(loop.time() - box["h"].when())
        if len(late) == n:
            done.set_result(None)
        else:
            arm()

    def arm():
        box["h"] = loop.call_later(rng.uniform(0.001, 0.005), fired)

    loop.call_soon(arm)
    loop.run_until_complete(asyncio.wait_for(done, 30))
    ms = sorted(x * 1e3 for x in late)
    mean = statistics.fmean(ms)
    p99 = ms[int(0.99 * (len(ms) - 1))]
    early = sum(1 for x in late if x < 0)
    print(
        f"\n[{loop_kind}] idle-loop timer lateness over {n} timers: "
        f"mean {mean:.3f} ms, p50 {ms[len(ms) // 2]:.3f} ms, p99 {p99:.3f} ms, max {ms[-1]:.3f} ms, early {early}"
    )
    assert early == 0
    assert mean < 5.0, f"mean lateness {mean:.3f} ms on an idle loop"
