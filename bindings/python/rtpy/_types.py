"""The pure-Python types of rtpy: ``Future`` and ``Metrics``."""

from __future__ import annotations

import concurrent.futures
from concurrent.futures._base import CANCELLED as _CANCELLED
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._rtpy import DeadlockError

if TYPE_CHECKING:
    from ._rtpy import Task


_T = TypeVar("_T")


class Future(concurrent.futures.Future[_T]):
    """The outcome of ``Runtime.spawn`` / ``Runtime.run_blocking``.

    A ``concurrent.futures.Future``, so ``concurrent.futures.wait`` and
    ``asyncio.wrap_future`` work with it. ``cancel()`` aborts the task first:
    it wins only if the task had not started (then the call never runs).
    A task the runtime's shutdown cancels before it ran has its future
    cancelled.
    """

    # The task behind it, set by the runtime right after it is created (a
    # class default rather than an __init__: one Python call less per task).
    _rt_task: Task | None = None

    def cancel(self) -> bool:
        """Cancels the task if it has not started; True if it is cancelled."""
        task = self._rt_task
        if task is None:
            return super().cancel()
        # A successful abort cancels this future (_rt_set_cancelled); else
        # the task started or finished: nothing changes (it may have been
        # cancelled already, by an earlier cancel or the runtime's shutdown).
        task.abort()
        return self.cancelled()

    def result(self, timeout: float | None = None) -> _T:
        """As ``concurrent.futures.Future.result``; ``DeadlockError`` (at
        once, unless ``timeout`` is 0) inside a callback of ``run()`` /
        ``run_budget()`` of the current-thread runtime the call was spawned
        on, before the call ran: only this thread could run it."""
        self._refuse_to_wait_for_itself(timeout)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """As ``concurrent.futures.Future.exception``; ``DeadlockError`` as
        ``result()``."""
        self._refuse_to_wait_for_itself(timeout)
        return super().exception(timeout)

    def _refuse_to_wait_for_itself(self, timeout: float | None) -> None:
        task = self._rt_task
        if timeout != 0 and task is not None and task._waits_for_itself() and not self.done():
            raise DeadlockError(
                "waiting for a call spawned on the current-thread runtime this thread runs, "
                "from inside one of its callbacks: only this thread could run it"
            )

    def _rt_set_cancelled(self) -> None:
        """The runtime's final call for a task that never ran: cancelled, and
        its waiters told (``concurrent.futures.wait`` / ``as_completed`` see a
        cancelled future only once notified)."""
        with self._condition:
            super().cancel()
            if self._state == _CANCELLED:
                self.set_running_or_notify_cancel()

    def __reduce__(self) -> Any:
        raise TypeError("rtpy.Future cannot be pickled")


@dataclass(frozen=True)
class Metrics:
    """Counters of a runtime (``Runtime.metrics()``): the C API's
    ``rt_metrics`` set, plus the exceptions callbacks raised."""

    #: Worker threads (1 for a current-thread runtime).
    workers: int
    #: Tasks alive (spawned, not yet finished).
    tasks_alive: int
    #: Tasks ever spawned.
    tasks_spawned: int
    #: Task polls, all workers.
    polls: int
    #: Tasks stolen between workers.
    steals: int
    #: Local queue overflows into the shared queue.
    overflows: int
    #: Tasks scheduled from outside the runtime's threads.
    remote_schedules: int
    #: Times workers parked.
    parks: int
    #: Threads of the blocking pool (a multi-thread runtime's workers included).
    blocking_threads: int
    #: Idle threads of the blocking pool.
    blocking_idle_threads: int
    #: Blocking jobs waiting for a thread.
    blocking_queue_depth: int
    #: Timers armed in the wheel.
    timers: int
    #: File descriptors registered with the reactor.
    io_registrations: int
    #: Exceptions raised by callbacks that went to the exception handler.
    exceptions: int
