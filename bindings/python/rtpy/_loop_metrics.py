"""``rtpy.LoopMetrics``: a snapshot of an ``rtpy.Loop``'s counters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class LoopMetrics:
    """What ``Loop.metrics()`` returns: counters since the loop was made, and its current sizes."""

    #: iterations of the loop (one poll for I/O and timers, then the callbacks ready then)
    iterations: int
    #: callbacks run (ready handles, timers, I/O callbacks; cancelled ones are not counted)
    callbacks_run: int
    #: timers that came due
    timers_fired: int
    #: timers scheduled and not yet due (cancelled ones are removed at once)
    timers_pending: int
    #: readiness events the poller reported
    io_events: int
    #: file descriptors with a reader callback now
    readers: int
    #: file descriptors with a writer callback now
    writers: int
    #: callbacks ready to run now
    ready_len: int
    #: nanoseconds spent waiting for events (the GIL released)
    parked_ns: int
    #: call_soon_threadsafe calls received
    threadsafe_calls: int
    #: the embedded runtime's own metrics (its blocking pool: run_in_executor(None, ...), getaddrinfo)
    runtime: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_core(cls, values: Mapping[str, Any]) -> LoopMetrics:
        """Builds it from the core's ``_core_metrics()`` dict; a missing counter is a KeyError."""
        kwargs = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.name != "runtime"}
        runtime = values.get("runtime", {})
        return cls(runtime=dict(runtime), **kwargs)
