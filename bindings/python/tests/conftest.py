"""Shared fixtures and helpers for the rtpy test suite.

Every test runs under a watchdog (faulthandler): a test that hangs dumps every
thread's stack and ends the run instead of blocking `make test` forever.
"""

import faulthandler
import gc
import os
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import rtpy

# Seconds one test may take before the watchdog kills the run (the whole suite
# is meant to take well under a minute on 2 loaded cores).
TEST_WATCHDOG_S = float(os.environ.get("RTPY_TEST_WATCHDOG_S", "60"))


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(TEST_WATCHDOG_S, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def pair():
    """A connected pair of non-blocking Unix sockets (socket.socketpair),
    closed after the test."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def wait_until(pred, timeout=5.0, interval=0.001):
    """Polls `pred` until it is true; returns False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return bool(pred())
        time.sleep(interval)


def readable(fd, timeout=0.0):
    """Whether `fd` is readable within `timeout` seconds (select)."""
    return bool(select.select([fd], [], [], timeout)[0])


def start_threads(n, target, indexed=False):
    """Starts `n` threads running `target` (`target(k)` for k in 0..n when
    `indexed`); returns them, for `join_threads`."""
    threads = [threading.Thread(target=target, args=(k,) if indexed else ()) for k in range(n)]
    for t in threads:
        t.start()
    return threads


def join_threads(threads, timeout=None):
    """Joins each of `threads`, waiting at most `timeout` seconds for each."""
    for t in threads:
        t.join(timeout)


def recording_errors(errors):
    """Decorator for a thread's target: whatever it raises (BaseException
    included) is appended to the list `errors` for the test to assert on,
    instead of being printed and lost with the thread."""

    def wrap(fn):
        def run(*args):
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - the test asserts on `errors`
                errors.append(e)

        return run

    return wrap


def run_until_shut_down(rt, within=5.0):
    """Runs the current-thread `rt` ("default" mode) until a shutdown ends the
    run, and asserts that took less than `within` seconds."""
    t0 = time.monotonic()
    try:
        rt.run("default")
    except rtpy.ShutdownError:
        pass
    assert time.monotonic() - t0 < within


def shuts_down_from_inside(rt, out):
    """A callback that shuts `rt` down from inside the runtime (timeout 1 s)
    and appends to `out` "returned", or the name of the TimeoutError or
    DeadlockError the shutdown raised."""

    def cb():
        try:
            rt.shutdown(timeout=1)
            out.append("returned")
        except (TimeoutError, rtpy.DeadlockError) as e:
            out.append(type(e).__name__)

    return cb


def collect_until_dead(ref, timeout=5.0):
    """Waits (running the GC) until the weak reference `ref` is dead.

    A runtime thread may drop its last reference just after the future or
    callback is done, so give it a moment; a live reference after `timeout`
    is a leak."""

    def dead():
        gc.collect()
        return ref() is None

    return wait_until(dead, timeout=timeout, interval=0.005)


def exceptions_count(rt):
    """The runtime's count of callback exceptions routed to its handler."""
    n = getattr(rt, "exceptions_count", None)
    if n is not None:
        return n() if callable(n) else n
    m = rt.metrics()
    for name in ("exceptions", "exceptions_count", "callback_exceptions"):
        if hasattr(m, name):
            return getattr(m, name)
    raise AssertionError("rtpy.Runtime exposes no exception count (exceptions_count / metrics().exceptions)")


def _close(rt):
    # A shutdown that does not finish in 10 s is a bug the test must see.
    rt.shutdown(timeout=10.0)


@pytest.fixture
def mt():
    """A multi-thread runtime with 2 workers and a small blocking pool."""
    rt = rtpy.Runtime("multi_thread", workers=2, blocking_threads=4)
    yield rt
    _close(rt)


@pytest.fixture
def ct():
    """A current-thread runtime, driven by the test's thread."""
    rt = rtpy.Runtime("current_thread")
    yield rt
    _close(rt)


@pytest.fixture(params=["multi_thread", "current_thread"])
def any_rt(request):
    """One runtime of each flavor; `drive(rt, pred)` runs it until pred()."""
    rt = rtpy.Runtime(request.param, **({"workers": 2} if request.param == "multi_thread" else {}))
    yield rt
    _close(rt)


def drive(rt, pred, timeout=5.0):
    """Waits until pred(): a current-thread runtime is run on this thread meanwhile."""
    if rt.flavor == "current_thread":
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                return bool(pred())
            rt.run_budget(0.01)
            if not pred():
                time.sleep(0.0005)
        return True
    return wait_until(pred, timeout=timeout)


PY = sys.executable


def run_child(code: str, timeout: float = 60) -> "subprocess.CompletedProcess[str]":
    """Runs ``code`` (dedented) in a fresh interpreter, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
