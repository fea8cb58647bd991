"""Bad input raises the documented exception and never crashes or leaks a call."""

import math
import time

import pytest

import rtpy
from conftest import wait_until


@pytest.mark.parametrize("delay", [-1, -0.001, float("nan"), float("-inf")])
def test_bad_delays_are_value_errors(mt, delay):
    calls = []
    base = mt.metrics().timers
    with pytest.raises(ValueError):
        mt.call_later(delay, calls.append, 1)
    with pytest.raises(ValueError):
        mt.call_every(delay, calls.append, 1)
    time.sleep(0.01)
    assert calls == []
    assert mt.metrics().timers == base


def test_huge_delay_is_rejected_or_just_never_fires(mt):
    for delay in (float("inf"), 1e300, 2.0**64):
        try:
            t = mt.call_later(delay, lambda: None)
        except (ValueError, OverflowError):
            continue
        assert t.active
        assert t.cancel() is True


def test_call_every_zero_interval_is_rejected_or_works(mt):
    calls = []
    try:
        t = mt.call_every(0, calls.append, 1)
    except ValueError:
        return
    # Accepted: then it must repeat and stop like any other repeat.
    assert wait_until(lambda: len(calls) >= 3, 5)
    assert t.cancel() is True
    n = len(calls)
    time.sleep(0.02)
    assert len(calls) == n


@pytest.mark.parametrize("bad", ["1", None, [1], object()])
def test_delay_of_the_wrong_type_is_type_error(mt, bad):
    with pytest.raises(TypeError):
        mt.call_later(bad, lambda: None)


@pytest.mark.parametrize("fn", [None, 1, "print", b"x", [print]])
def test_non_callables_are_type_errors(mt, fn):
    base = mt.metrics().timers
    for call in (lambda: mt.spawn(fn), lambda: mt.run_blocking(fn), lambda: mt.call_later(0, fn),
                 lambda: mt.call_every(1, fn)):
        with pytest.raises(TypeError):
            call()
    assert mt.metrics().timers == base


def test_bad_runtime_arguments():
    with pytest.raises(ValueError):
        rtpy.Runtime("fast")
    with pytest.raises(ValueError):
        rtpy.Runtime("multi_thread", workers=0)
    with pytest.raises(ValueError):
        rtpy.Runtime("multi_thread", workers=100_000)
    with pytest.raises(ValueError):
        rtpy.Runtime("multi_thread", blocking_threads=0)
    with pytest.raises((ValueError, OverflowError)):
        rtpy.Runtime("multi_thread", workers=-1)
    with pytest.raises(TypeError):
        rtpy.Runtime("multi_thread", workers="2")
    with pytest.raises(TypeError):
        rtpy.Runtime(flavor=3)


def test_runtime_keyword_arguments():
    with rtpy.Runtime(flavor="multi_thread", workers=3, blocking_threads=2) as rt:
        m = rt.metrics()
        assert m.workers == 3
    with rtpy.Runtime(flavor="current_thread") as rt:
        assert rt.metrics().workers == 1
    with rtpy.Runtime() as rt:
        assert rt.flavor == "multi_thread"


def test_bad_shutdown_timeout():
    rt = rtpy.Runtime()
    try:
        with pytest.raises(ValueError):
            rt.shutdown(timeout=-1)
        with pytest.raises(ValueError):
            rt.shutdown(timeout=math.nan)
    finally:
        rt.shutdown()


def test_metrics_is_frozen_and_has_the_rt_metrics_fields(mt):
    m = mt.metrics()
    assert isinstance(m, rtpy.Metrics)
    for name in ("workers", "tasks_alive", "tasks_spawned", "polls", "steals", "overflows", "remote_schedules",
                 "parks", "blocking_threads", "blocking_idle_threads", "blocking_queue_depth", "timers",
                 "io_registrations"):
        assert isinstance(getattr(m, name), int), name
    with pytest.raises(AttributeError):
        m.workers = 7
    assert m.workers == 2


def test_metrics_move(mt):
    before = mt.metrics()
    for f in [mt.spawn(lambda: None) for _ in range(100)]:
        f.result(timeout=5)
    t = mt.call_later(60, lambda: None)
    after = mt.metrics()
    assert after.tasks_spawned >= before.tasks_spawned + 100
    assert after.timers == before.timers + 1
    t.cancel()
    assert mt.metrics().timers == before.timers
