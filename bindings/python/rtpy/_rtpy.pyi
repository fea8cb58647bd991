"""Type stubs of the native module ``rtpy._rtpy`` (checked against it by
``python -m mypy.stubtest rtpy`` in ``make test``)."""

from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, TypeAlias, final

from ._types import Future, Metrics

__version__: str
__all__ = [
    "DeadlockError",
    "ERROR",
    "HUP",
    "Queue",
    "READABLE",
    "Runtime",
    "ShutdownError",
    "Task",
    "WRITABLE",
    "__version__",
    "_shutdown_all",
]

#: Watch interest / event bits.
READABLE: int
WRITABLE: int
#: Event bits (reported, never asked for).
HUP: int
ERROR: int

class ShutdownError(RuntimeError):
    """The runtime is shut down (or shutting down): it accepts no new work."""

class DeadlockError(RuntimeError):
    """A blocking wait refused because it could wait for itself (asked from
    inside a runtime callback, or on one of the runtime's threads)."""

_ExceptionHandler: TypeAlias = Callable[[BaseException, dict[str, Any]], object]

@final
class Runtime:
    def __new__(
        cls,
        flavor: Literal["multi_thread", "current_thread"] = "multi_thread",
        workers: int | None = None,
        blocking_threads: int | None = None,
    ) -> Runtime: ...
    @property
    def flavor(self) -> Literal["multi_thread", "current_thread"]: ...
    @property
    def is_shutdown(self) -> bool: ...
    @property
    def exception_handler(self) -> _ExceptionHandler | None: ...
    @exception_handler.setter
    def exception_handler(self, handler: _ExceptionHandler | None) -> None: ...
    @property
    def exceptions_count(self) -> int: ...
    def shutdown(self, timeout: float | None = None) -> None: ...
    def metrics(self) -> Metrics: ...
    def __enter__(self) -> Runtime: ...
    def __exit__(
        self,
        *_exc: type[BaseException] | BaseException | TracebackType | None,
    ) -> bool: ...
    # tasks
    def spawn(self, func: Callable[..., Any], /, *args: Any) -> Future: ...
    def run_blocking(self, func: Callable[..., Any], /, *args: Any) -> Future: ...
    # completion queue
    def queue(self) -> Queue: ...

@final
class Task:
    """The task behind an ``rtpy.Future`` (its ``_rt_task``)."""

    def abort(self) -> bool: ...
    def is_finished(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...

@final
class Queue:
    def post(self, func: Callable[..., object], /, *args: Any) -> None: ...
    def drain(self, max: int | None = None) -> int: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __len__(self) -> int: ...
    def __enter__(self) -> Queue: ...
    def __exit__(
        self,
        *_exc: type[BaseException] | BaseException | TracebackType | None,
    ) -> bool: ...

def _shutdown_all() -> None: ...
