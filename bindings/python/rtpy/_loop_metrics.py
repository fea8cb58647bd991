"""``rtpy.LoopMetrics``: a snapshot of an ``rtpy.Loop``'s counters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class LoopMetrics:
    """What ``Loop.metrics()`` returns: counters since the loop was made, and its current sizes.

    Counters only grow; "now" values are the state when ``metrics()`` was called.
    """

    #: loop iterations (one poll for I/O and timers, then the callbacks that were ready)
    iterations: int
    #: callbacks run (ready handles, due timers, I/O callbacks; cancelled ones are not counted)
    callbacks_run: int
    #: timers that came due (cancelled ones are not counted)
    timers_fired: int
    #: timers scheduled now (a cancelled timer leaves at once)
    timers_pending: int
    #: readiness events the poller reported for reader / writer fds
    io_events: int
    #: file descriptors with a reader callback now
    readers: int
    #: file descriptors with a writer callback now
    writers: int
    #: callbacks ready to run now
    ready_len: int
    #: nanoseconds spent waiting for events (the GIL released)
    parked_ns: int
    #: call_soon_threadsafe calls accepted
    threadsafe_calls: int
    #: times the embedded rt runtime was run (its timers, I/O and blocking-pool completions)
    runtime_runs: int
    #: tasks the embedded runtime polled
    runtime_tasks_polled: int
    #: the embedded runtime's tasks alive now
    runtime_alive_tasks: int
    #: blocking-pool threads now (``run_in_executor(None, ...)``, ``getaddrinfo``)
    runtime_blocking_threads: int
    #: idle blocking-pool threads now
    runtime_idle_blocking_threads: int
    #: blocking jobs queued and not started yet
    runtime_blocking_queue_depth: int

    @classmethod
    def from_core(cls, values: Mapping[str, Any]) -> LoopMetrics:
        """Builds it from the core's ``_core_metrics()`` dict (a missing counter is a KeyError;
        keys it does not know are ignored)."""
        return cls(**{f.name: int(values[f.name]) for f in dataclasses.fields(cls)})
