"""Exceptions raised by callbacks: routed to Runtime.exception_handler,
counted, never killing a worker."""

import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import rtpy
from conftest import drive, exceptions_count, join_threads, start_threads, wait_until


def test_timer_exception_goes_to_the_handler_and_is_counted(mt):
    seen = []
    mt.exception_handler = lambda exc, ctx: seen.append((exc, ctx))
    before = exceptions_count(mt)
    err = RuntimeError("timer boom")

    def cb():
        raise err

    mt.call_later(0, cb)
    assert wait_until(lambda: seen, 5)
    exc, ctx = seen[0]
    assert exc is err
    assert isinstance(ctx, dict)
    assert wait_until(lambda: exceptions_count(mt) == before + 1, 2)


def test_a_worker_survives_many_raising_callbacks():
    with rtpy.Runtime("multi_thread", workers=1) as rt:
        seen = []
        rt.exception_handler = lambda exc, ctx: seen.append(type(exc))
        for i in range(200):
            rt.call_later(0, lambda: 1 / 0)
        assert wait_until(lambda: len(seen) == 200, 10)
        assert set(seen) == {ZeroDivisionError}
        assert exceptions_count(rt) >= 200
        # The only worker is alive.
        assert rt.spawn(lambda: "alive").result(timeout=5) == "alive"


def test_repeating_timer_keeps_running_after_a_raise(mt):
    mt.exception_handler = lambda exc, ctx: None
    calls = []

    def cb():
        calls.append(1)
        if len(calls) % 2:
            raise ValueError("odd")

    t = mt.call_every(0.005, cb)
    assert wait_until(lambda: len(calls) >= 6, 5)
    t.cancel()


def test_watch_callback_exception_goes_to_the_handler(any_rt):
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        seen = []
        any_rt.exception_handler = lambda exc, ctx: seen.append(exc)
        box = {}

        def cb(ev):
            box["w"].close()
            raise OSError("watch boom")

        box["w"] = any_rt.watch(b, rtpy.READABLE, cb)
        a.send(b"x")
        assert drive(any_rt, lambda: seen, timeout=5)
        assert str(seen[0]) == "watch boom"
    finally:
        a.close()
        b.close()


def test_handler_that_raises_is_reported_and_does_not_kill_the_worker(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))
    with rtpy.Runtime("multi_thread", workers=1) as rt:

        def bad_handler(exc, ctx):
            raise TypeError("handler itself failed")

        rt.exception_handler = bad_handler
        rt.call_later(0, lambda: 1 / 0)
        assert wait_until(lambda: reported, 5), "the handler's own exception was swallowed"
        assert rt.spawn(lambda: 1).result(timeout=5) == 1
    assert any(isinstance(e, TypeError) and "handler itself failed" in str(e) for e in reported), reported


def test_default_handler_reports_on_stderr():
    # In a child process: pytest replaces sys.unraisablehook in this one.
    code = textwrap.dedent(
        """
        import time, rtpy
        with rtpy.Runtime("multi_thread", workers=1) as rt:
            assert rt.exception_handler is None
            def cb():
                raise LookupError("visible-on-stderr-1234")
            rt.call_later(0, cb)
            time.sleep(0.2)
            assert rt.spawn(lambda: "alive").result(timeout=5) == "alive"
        print("child done")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "child done" in p.stdout
    assert "visible-on-stderr-1234" in p.stderr
    assert "LookupError" in p.stderr


def test_exception_handler_attribute_accepts_none_and_rejects_non_callables(mt):
    mt.exception_handler = lambda exc, ctx: None
    mt.exception_handler = None
    assert mt.exception_handler is None
    with pytest.raises(TypeError):
        mt.exception_handler = 42


def test_handler_runs_for_exceptions_on_current_thread_runtime(ct):
    seen = []
    ct.exception_handler = lambda exc, ctx: seen.append(exc)
    ct.call_later(0, lambda: [][1])
    ct.call_later(0.001, lambda: seen.append("after"))
    ct.run("default")
    assert isinstance(seen[0], IndexError)
    assert seen[1] == "after"
    assert exceptions_count(ct) == 1


def test_exceptions_from_several_threads_all_counted():
    with rtpy.Runtime("multi_thread", workers=2) as rt:
        lock = threading.Lock()
        seen = [0]

        def handler(exc, ctx):
            with lock:
                seen[0] += 1

        rt.exception_handler = handler
        before = exceptions_count(rt)

        def fire():
            for _ in range(250):
                rt.call_later(0, lambda: 1 / 0)

        join_threads(start_threads(4, fire))
        assert wait_until(lambda: seen[0] == 1000, 10)
        assert exceptions_count(rt) == before + 1000


def test_exceptions_count_and_metrics_agree(mt):
    mt.exception_handler = lambda exc, ctx: None
    for _ in range(5):
        mt.call_later(0, lambda: 1 / 0)
    assert wait_until(lambda: mt.exceptions_count == 5, 5)
    assert mt.metrics().exceptions == 5
