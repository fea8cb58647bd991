"""Fixtures for the event-loop tests (issue 12): every test runs once on
asyncio's own loop and once on rtpy's.

`loop_factory` is parametrized over `asyncio.SelectorEventLoop` (id "asyncio")
and `rtpy.new_event_loop` (id "rtpy"). The rtpy case fails (never skips) while
`rtpy.new_event_loop` is missing: a loop that is not there is a failure to
see. `loop` is a new loop of that kind, closed after the test.

The watchdog of ../conftest.py (autouse, faulthandler) covers these tests
too: a test that hangs dumps every thread's stack and ends the run.

This directory is a package (`__init__.py`): import the shared helpers with
`from .support import ...`, never `from conftest import ...` (that name is
../conftest.py's).
"""

import asyncio
import gc

import pytest

import rtpy

from .support import close_loop

LOOP_KINDS = ("asyncio", "rtpy")


def rtpy_factory():
    """`rtpy.new_event_loop`, or a test failure saying it is missing."""
    make = getattr(rtpy, "new_event_loop", None)
    if make is None:
        pytest.fail("rtpy.new_event_loop is missing: rtpy's asyncio loop (issue 12) is not built", pytrace=False)
    return make


@pytest.fixture(params=LOOP_KINDS, ids=LOOP_KINDS)
def loop_factory(request):
    """A zero-argument callable that makes a new event loop of the kind under test."""
    if request.param == "asyncio":
        return asyncio.SelectorEventLoop
    return rtpy_factory()


@pytest.fixture
def loop_kind(loop_factory, request):
    """"asyncio" or "rtpy": which loop `loop_factory` makes (for the few
    assertions about a known difference of the stock loop)."""
    return request.node.callspec.params["loop_factory"]


@pytest.fixture
def loop(loop_factory):
    """A new loop of the kind under test, set as the current loop and closed
    after the test (its async generators and default executor shut down)."""
    lp = loop_factory()
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        asyncio.set_event_loop(None)
        close_loop(lp)
        gc.collect()
