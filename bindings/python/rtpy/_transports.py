"""The native stream transport of ``rtpy.Loop``: TCP and Unix stream sockets.

``SocketTransport`` is asyncio's ``selector_events._SelectorSocketTransport`` (the spec) with its
state machine and socket I/O in Rust (``_rtpy.SocketTransportCore``, over
``rt_core::transport::SocketTransport``): reads of up to 256 KiB handed to the protocol, writes
sent at once when nothing is pending and the rest buffered (one gather write per readiness),
flow control with high/low water marks, ``write_eof``, ``close`` and ``abort``, the fatal-error
path, ``connection_lost`` exactly once. The core watches its socket through the loop's
``_add_reader`` / ``_add_writer`` hooks and schedules through ``call_soon``, so the transport
runs on any loop that has them. This class keeps what is Python's: the extra info, the server
and ``loop._transports`` bookkeeping, error reports, the sendfile waiter and ``__del__``.
"""

from __future__ import annotations

import socket
import sys
import warnings
from asyncio import base_events, constants, futures, protocols, transports, trsock
from asyncio.log import logger
from typing import Any, Callable, Iterable, Protocol

from ._rtpy import SocketTransportCore

_set_result_unless_cancelled = getattr(futures, "_set_result_unless_cancelled")
_PY312 = sys.version_info >= (3, 12)
_PY313 = sys.version_info >= (3, 13)


# asyncio's own: Nagle off for TCP sockets.
_set_nodelay: Callable[[socket.socket], None] = base_events._set_nodelay  # type: ignore[attr-defined]


class _Write(Protocol):
    # The type of `SocketTransport.write` (the core's bound `write`).
    def __call__(self, data: bytes | bytearray | memoryview[Any]) -> None: ...


class SocketTransport(transports._FlowControlMixin, transports.Transport):
    """A connected stream socket's transport (``loop._make_socket_transport``)."""

    # `write` and `is_closing` are slots holding builtin functions bound to the core (set in
    # __init__): the per-request calls (a protocol's write, StreamWriter.drain's is_closing) go
    # straight to native code, with no Python frame and no argument tuple in between.
    __slots__ = ("_core", "_sock", "_sock_fd", "_server", "write", "is_closing", "__weakref__")
    _extra: dict[str, Any]  # BaseTransport's slot
    write: _Write
    is_closing: Callable[[], bool]

    max_size = 256 * 1024  # one read's bytes, as asyncio's
    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE

    def __init__(
        self,
        loop: Any,
        sock: socket.socket,
        protocol: protocols.BaseProtocol,
        waiter: futures.Future[Any] | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> None:
        transports.BaseTransport.__init__(self, extra)
        self._extra["socket"] = trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._sock_fd = sock.fileno()
        self._core = core = SocketTransportCore(
            loop, self, sock, protocol, isinstance(protocol, protocols.BufferedProtocol)
        )
        # The core's own (fastcall) methods, bound: a protocol's write(data) is one C call.
        self.write = core.write
        self.is_closing = core.is_closing
        self._server = server
        if server is not None:
            if _PY313:
                server._attach(self)
            else:
                server._attach()
        loop._transports[self._sock_fd] = self
        _set_nodelay(sock)
        # connection_made, then the reader, then the waiter (asyncio's order).
        self._core._start()
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    # -- state --------------------------------------------------------------------------------

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        core = getattr(self, "_core", None)
        if getattr(self, "_sock", None) is None or core is None:
            info.append("closed")
        elif core.is_closing():
            info.append("closing")
        info.append(f"fd={getattr(self, '_sock_fd', -1)}")
        loop = getattr(self, "_loop", None)
        if core is not None and loop is not None and not loop.is_closed():
            reading, writing = core._polling()
            info.append("read=polling" if reading else "read=idle")
            state = "polling" if writing else "idle"
            info.append(f"write=<{state}, bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()

    @property
    def _protocol(self) -> Any:
        return self._core.get_protocol()

    @property
    def _protocol_paused(self) -> bool:
        return self._core._protocol_paused

    @property
    def _high_water(self) -> int:
        return self._core.get_write_buffer_limits()[1]

    @property
    def _low_water(self) -> int:
        return self._core.get_write_buffer_limits()[0]

    @property
    def _closing(self) -> bool:
        return self._core.is_closing()

    @property
    def _conn_lost(self) -> int:
        return self._core._conn_lost

    @property
    def _eof(self) -> bool:
        return self._core._eof

    @property
    def _empty_waiter(self) -> Any:
        return self._core._empty_waiter

    def set_protocol(self, protocol: protocols.BaseProtocol) -> None:
        self._core.set_protocol(protocol, isinstance(protocol, protocols.BufferedProtocol))

    def get_protocol(self) -> Any:
        return self._core.get_protocol()

    def is_reading(self) -> bool:
        return self._core.is_reading()

    def pause_reading(self) -> None:
        if not self._core.is_reading():
            return
        self._core.pause_reading()
        if self._loop is not None and self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        was_paused = not self._core.is_reading() and not self._core.is_closing()
        self._core.resume_reading()
        if was_paused and self._loop is not None and self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    # -- writing ------------------------------------------------------------------------------

    # write / is_closing: builtin functions bound to the core, in slots (see __slots__).

    def get_write_buffer_size(self) -> int:
        return self._core.get_write_buffer_size()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        if _PY312:
            if self._core._eof:
                raise RuntimeError("Cannot call writelines() after write_eof()")
            if self._core._empty_waiter is not None:
                raise RuntimeError("unable to writelines; sendfile is in progress")
        self._core.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        self._core.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._core.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._core._set_write_buffer_limits(high, low)

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        self._core.close()

    def abort(self) -> None:
        self._core.abort()

    def _force_close(self, exc: BaseException | None) -> None:
        self._core._force_close(exc)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        self._core._fatal_error(exc, message)

    def _read_ready(self) -> None:
        self._core._read_ready()

    def _write_ready(self) -> None:
        self._core._write_ready()

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        # connection_lost(exc) once, then _release (also when the core completes a close itself).
        self._core._call_connection_lost(exc)

    def _release(self) -> None:
        core = self._core
        waiter = core._empty_waiter
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._loop = None
        server = self._server
        if server is not None:
            if _PY313:
                server._detach(self)
            else:
                server._detach()
            self._server = None
        core._clear()
        if waiter is not None:
            waiter.set_exception(ConnectionError("Connection is closed by peer"))

    # Reports of the core's fatal-error path and of failed flow-control callbacks.
    def _report_fatal(self, exc: BaseException, message: str) -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=exc)
        else:
            self._report_error(exc, message)

    def _report_error(self, exc: BaseException, message: str) -> None:
        self._loop.call_exception_handler(
            {
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._core.get_protocol(),
            }
        )

    # -- sendfile (the loop's _sendfile_native) -----------------------------------------------

    def _make_empty_waiter(self) -> futures.Future[None]:
        if self._core._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        waiter: futures.Future[None] = self._loop.create_future()
        if self._core._set_empty_waiter(waiter):
            waiter.set_result(None)
        return waiter

    def _reset_empty_waiter(self) -> None:
        self._core._set_empty_waiter(None)
