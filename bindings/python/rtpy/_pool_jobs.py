"""Bookkeeping of ``rtpy.Loop.run_in_executor(None, ...)`` jobs on the core's blocking pool.

``shutdown_default_executor()`` must wait for every job that started, as asyncio's waits for
its executor's threads, including jobs whose future was cancelled meanwhile (cancelling an
asyncio future does not stop a thread). A job cancelled before it started never runs.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

_PENDING, _RUNNING, _ENDED = 0, 1, 2


class PoolJobs:
    """The jobs of one loop that have not ended, and the waiters for "none left"."""

    __slots__ = ("_loop", "_lock", "_count", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._count = 0
        self._waiters: list[asyncio.Future[None]] = []

    def job(self, func: Callable[..., Any], args: tuple[Any, ...]) -> PoolJob:
        """A callable for the pool that runs ``func(*args)``, counted until it ends."""
        with self._lock:
            self._count += 1
        return PoolJob(self, func, args)

    def pending(self) -> int:
        """Jobs not ended (queued or running)."""
        return self._count

    async def wait_idle(self) -> None:
        """Returns once every job counted so far has ended (on the loop's thread)."""
        with self._lock:
            if self._count == 0:
                return
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._waiters.append(waiter)
        await waiter

    def _ended(self) -> None:
        # Any thread (the pool's when the job ran, the loop's when it was cancelled unstarted).
        with self._lock:
            self._count -= 1
            if self._count or not self._waiters:
                return
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            try:
                self._loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:
                pass  # the loop closed meanwhile: nobody waits any more


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class PoolJob:
    """``func(*args)`` for a pool thread; ``future_done`` is its asyncio future's done callback."""

    __slots__ = ("_jobs", "_func", "_args", "_state")

    def __init__(self, jobs: PoolJobs, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._jobs = jobs
        self._func: Callable[..., Any] | None = func
        self._args: tuple[Any, ...] | None = args
        self._state = _PENDING

    def __call__(self) -> Any:
        jobs = self._jobs
        with jobs._lock:
            if self._state != _PENDING:
                return None  # its future was cancelled before it started
            self._state = _RUNNING
        func, args = self._func, self._args
        self._func = self._args = None
        try:
            assert func is not None and args is not None
            return func(*args)
        finally:
            self._state = _ENDED
            jobs._ended()

    def future_done(self, fut: asyncio.Future[Any]) -> None:
        """A future cancelled before its job started: the job is over (it will not run)."""
        if not fut.cancelled():
            return
        jobs = self._jobs
        with jobs._lock:
            if self._state != _PENDING:
                return
            self._state = _ENDED
            self._func = self._args = None
        jobs._ended()
