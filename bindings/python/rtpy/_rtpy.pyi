"""Type stubs of the native module ``rtpy._rtpy`` (checked against it by
``python -m mypy.stubtest rtpy`` in ``make test``)."""

from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, Protocol, TypeAlias, TypeVar, final

from typing_extensions import TypeVarTuple, Unpack

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
    "Timer",
    "WRITABLE",
    "Watch",
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

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

_FileDescriptorLike: TypeAlias = int | _HasFileno
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
    def spawn(self, func: Callable[[Unpack[_Ts]], _T], /, *args: Unpack[_Ts]) -> Future[_T]: ...
    def run_blocking(
        self, func: Callable[[Unpack[_Ts]], _T], /, *args: Unpack[_Ts]
    ) -> Future[_T]: ...
    # timers
    def call_later(
        self, delay: float, func: Callable[[Unpack[_Ts]], object], /, *args: Unpack[_Ts]
    ) -> Timer: ...
    def call_every(
        self, interval: float, func: Callable[[Unpack[_Ts]], object], /, *args: Unpack[_Ts]
    ) -> Timer: ...
    # fd watches
    def watch(self, fd: _FileDescriptorLike, events: int, func: Callable[[int], object]) -> Watch: ...
    def add_reader(
        self, fd: _FileDescriptorLike, func: Callable[[Unpack[_Ts]], object], /, *args: Unpack[_Ts]
    ) -> Watch: ...
    def add_writer(
        self, fd: _FileDescriptorLike, func: Callable[[Unpack[_Ts]], object], /, *args: Unpack[_Ts]
    ) -> Watch: ...
    # host-driven mode (current-thread runtimes)
    def run(self, mode: Literal["default", "once", "nowait"] = "default") -> int: ...
    def run_budget(self, seconds: float, max_callbacks: int | None = None) -> int: ...
    def stop(self) -> None: ...
    def wake(self) -> None: ...
    def backend_fd(self) -> int: ...
    def backend_timeout(self) -> float | None: ...
    # completion queue
    def queue(self) -> Queue: ...

@final
class Timer:
    """A timer (``Runtime.call_later`` / ``call_every``)."""

    def cancel(self) -> bool: ...
    @property
    def when(self) -> float: ...
    @property
    def active(self) -> bool: ...
    @property
    def repeating(self) -> bool: ...

@final
class Watch:
    """A level-triggered watch of a file descriptor."""

    @property
    def fd(self) -> int: ...
    @property
    def events(self) -> int: ...
    @property
    def active(self) -> bool: ...
    def modify(self, events: int) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Watch: ...
    def __exit__(
        self,
        *_exc: type[BaseException] | BaseException | TracebackType | None,
    ) -> bool: ...

@final
class Task:
    """The task behind an ``rtpy.Future`` (its ``_rt_task``)."""

    def abort(self) -> bool: ...
    def is_finished(self) -> bool: ...
    def join(self, timeout: float | None = None) -> None: ...

@final
class Queue:
    def post(self, func: Callable[[Unpack[_Ts]], object], /, *args: Unpack[_Ts]) -> None: ...
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
