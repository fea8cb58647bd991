"""Helpers shared by the event-loop tests (plain functions; the fixtures are
in conftest.py)."""

import asyncio


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
