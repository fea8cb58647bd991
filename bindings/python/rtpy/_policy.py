"""Entry points of ``rtpy.Loop``: ``run``, ``new_event_loop``, ``EventLoopPolicy``, ``install``."""

from __future__ import annotations

import asyncio
import sys
import warnings
from asyncio import events, runners
from typing import Any, Coroutine, TypeVar

from ._loop import Loop

_T = TypeVar("_T")


def new_event_loop() -> Loop:
    """A new ``rtpy.Loop`` (for ``asyncio.Runner(loop_factory=rtpy.new_event_loop)``)."""
    return Loop()


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """``asyncio.run(main)`` on a new ``rtpy.Loop``: runs the coroutine, then cancels the tasks
    left, shuts down async generators and the executor, and closes the loop."""
    if events._get_running_loop() is not None:
        # asyncio.run's check, before a loop is made (Runner's own comes after, too late).
        raise RuntimeError("rtpy.run() cannot be called from a running event loop")
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_legacy(main, debug)


def _run_legacy(main: Coroutine[Any, Any, _T], debug: bool | None) -> _T:
    # asyncio.run of 3.9/3.10 (no Runner there) with our loop.
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = new_event_loop()
    try:
        events.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            runners._cancel_all_tasks(loop)  # type: ignore[attr-defined]  # asyncio.run's own
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            events.set_event_loop(None)
            loop.close()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The default policy, making ``rtpy.Loop`` loops (``asyncio.set_event_loop_policy``)."""

    # What BaseDefaultEventLoopPolicy.new_event_loop calls.
    _loop_factory = Loop


def install() -> None:
    """Makes ``rtpy.Loop`` asyncio's default loop (sets ``EventLoopPolicy``).

    Deprecated on Python 3.12+ (as asyncio's policies): use ``rtpy.run`` or
    ``asyncio.Runner(loop_factory=rtpy.new_event_loop)``.
    """
    if sys.version_info >= (3, 12):
        warnings.warn(
            "rtpy.install() is deprecated in favor of rtpy.run()", DeprecationWarning, stacklevel=2
        )
    asyncio.set_event_loop_policy(EventLoopPolicy())
