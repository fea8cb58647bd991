"""rtpy: Python bindings of the rt async runtime.

A ``Runtime`` runs Python callables on its worker threads (``spawn``), on its
blocking pool (``run_blocking``), after a delay or periodically
(``call_later``, ``call_every``) and when a file descriptor is ready
(``watch``, ``add_reader``, ``add_writer``). A current-thread runtime is
driven by the host's own loop (``run``, ``run_budget``: a game's frame loop),
and a ``Queue`` carries results from any thread to that loop.

The GIL is released whenever the runtime waits; callbacks take it only to
call Python. An exception a callback raises goes to its future, or to
``Runtime.exception_handler``; it never stops a worker.
"""

from __future__ import annotations

import atexit

from ._rtpy import (
    ERROR,
    HUP,
    READABLE,
    WRITABLE,
    DeadlockError,
    Queue,
    Runtime,
    ShutdownError,
    Task,
    Timer,
    Watch,
    __version__,
    _shutdown_all,
)
from ._loop import Loop
from ._loop_metrics import LoopMetrics
from ._policy import EventLoopPolicy, install, new_event_loop, run
from ._types import Future, Metrics

__all__ = [
    "ERROR",
    "HUP",
    "READABLE",
    "WRITABLE",
    "DeadlockError",
    "EventLoopPolicy",
    "Future",
    "Loop",
    "LoopMetrics",
    "Metrics",
    "Queue",
    "Runtime",
    "ShutdownError",
    "Task",
    "Timer",
    "Watch",
    "__version__",
    "install",
    "new_event_loop",
    "run",
]

# No callback may run while the interpreter finalizes: every runtime still
# alive is shut down at exit (after the threading module joined its threads).
atexit.register(_shutdown_all)
