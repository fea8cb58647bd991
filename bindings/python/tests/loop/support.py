"""Helpers shared by the event-loop tests (plain functions; the fixtures are
in conftest.py)."""

import asyncio
import threading
import time


def close_loop(lp):
    """Closes `lp` the way asyncio.run does; a loop still running is a test bug."""
    if lp.is_closed():
        return
    assert not lp.is_running(), "the test left its loop running"
    try:
        lp.run_until_complete(lp.shutdown_asyncgens())
        lp.run_until_complete(lp.shutdown_default_executor())
    finally:
        lp.close()


def run(lp, coro, timeout=10.0):
    """Runs `coro` on `lp` to completion under `asyncio.wait_for(timeout)`."""
    return lp.run_until_complete(asyncio.wait_for(coro, timeout))


def stop_after(lp, seconds):
    """A safety net for run_forever: stops `lp` after `seconds`; returns a
    list that holds True once that timer fired (the test then knows the stop
    it expected never came)."""
    fired = []

    def stop():
        fired.append(True)
        lp.stop()

    lp.call_later(seconds, stop)
    return fired


def run_forever_until_stopped(lp, seconds=5, detail=None):
    """Runs `lp.run_forever()` under a `stop_after(seconds)` safety net and
    asserts the loop was stopped by the test's own stop, not the net;
    `detail()`, if given, says what the failure message shows."""
    safety = stop_after(lp, seconds)
    lp.run_forever()
    assert not safety, detail() if detail else "the loop was not stopped within %s s" % seconds


class SlowJob:
    """An executor job that sets `started`, sleeps `seconds`, appends True to
    `finished` and returns `result` (for tests of what waits for a job still
    running)."""

    def __init__(self, seconds, result=None):
        self.seconds = seconds
        self.result = result
        self.started = threading.Event()
        self.finished = []

    def __call__(self):
        self.started.set()
        time.sleep(self.seconds)
        self.finished.append(True)
        return self.result
