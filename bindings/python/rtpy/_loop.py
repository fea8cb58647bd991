"""``rtpy.Loop``: an asyncio event loop on rt's engine.

asyncio's own ``BaseEventLoop`` does the orchestration (run_until_complete, tasks, the exception
handler, create_connection / create_server, start_tls, getaddrinfo...); the native ``LoopCore``
(first base) schedules, keeps the timers, polls the fds and runs the handles; ``UnixMixin`` adds
signals, pipes, subprocesses, datagrams and the ``sock_*`` methods. This module holds the rest:
the lifecycle, the executor, the public fd hooks, the stream transports and their servers, unix
sockets, sendfile, ``run_for`` and ``metrics``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import math
import os
import selectors
import socket
import stat
import sys
import warnings
import weakref
from asyncio import base_events, constants, events, futures, sslproto, transports, trsock
from asyncio.log import logger
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, TypeVar, cast

from . import _rtpy
from ._loop_metrics import LoopMetrics
from ._unix import UnixMixin

if TYPE_CHECKING:
    import ssl as _ssl

    from _typeshed import FileDescriptorLike
    from typing_extensions import TypeVarTuple, Unpack

    _Ts = TypeVarTuple("_Ts")

from ._rtpy import LoopCore as _Core

from ._transports import SocketTransport as _SocketTransport

_T = TypeVar("_T")


# asyncio's defaults (SSL_SHUTDOWN_TIMEOUT is 3.11+).
_SSL_HANDSHAKE_TIMEOUT: float = constants.SSL_HANDSHAKE_TIMEOUT
_SSL_SHUTDOWN_TIMEOUT: float = getattr(constants, "SSL_SHUTDOWN_TIMEOUT", 30.0)

# accept() errors that mean "the system is out of a resource": stop accepting for a while.
_ACCEPT_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _Key(NamedTuple):
    """What ``selectors.SelectorKey`` holds, for asyncio code that inspects ``loop._selector``."""

    fileobj: int
    fd: int
    events: int
    data: None


class _SelectorView:
    """A read-only ``loop._selector`` look-alike answering ``get_key`` from the core's fd table.

    asyncio's stock transports (datagram, pipes, the selector socket transport) read
    ``loop._selector`` in their ``__repr__`` to say whether they are polling; this answers them.
    """

    __slots__ = ("_loop",)

    def __init__(self, loop: Loop) -> None:
        self._loop = weakref.proxy(loop)

    def get_key(self, fileobj: Any) -> _Key:
        fd = fileobj if isinstance(fileobj, int) else int(fileobj.fileno())
        mask = (selectors.EVENT_READ if self._loop._has_reader(fd) else 0) | (
            selectors.EVENT_WRITE if self._loop._has_writer(fd) else 0
        )
        if not mask:
            raise KeyError(f"{fileobj!r} is not registered")
        return _Key(fd, fd, mask, None)


def _run_handle(handle: events.Handle) -> None:
    if not handle.cancelled():
        handle._run()


# The ignore below: LoopCore's call_soon/call_later/... return the native Handle / TimerHandle,
# which asyncio's callers use by duck typing but which are not asyncio.Handle subclasses for mypy.
class Loop(_Core, UnixMixin, asyncio.BaseEventLoop):  # type: ignore[misc]
    """An asyncio event loop running on rt: ``asyncio.Runner(loop_factory=rtpy.Loop)``.

    Everything ``asyncio.AbstractEventLoop`` defines, plus ``run_for`` (run for a time budget and
    return: asyncio inside a frame loop) and ``metrics``.
    """

    def __init__(self) -> None:
        # LoopCore made its state in __new__; UnixMixin's __init__ (if any) chains to
        # BaseEventLoop's.
        super().__init__()
        #: fd -> transport using it (selector_events' rule: the public fd hooks refuse these fds).
        self._transports: weakref.WeakValueDictionary[int, asyncio.BaseTransport] = (
            weakref.WeakValueDictionary()
        )
        # Listening unix sockets whose path close() unlinks (3.13's cleanup_socket): sock -> inode.
        self._unix_server_sockets: dict[socket.socket, int] = {}
        self._selector: _SelectorView | None = _SelectorView(self)

    __repr__ = asyncio.BaseEventLoop.__repr__

    if TYPE_CHECKING:
        # BaseEventLoop's private state and helpers that typeshed does not declare.
        _debug: bool
        _stopping: bool
        _thread_id: int | None
        _default_executor: concurrent.futures.ThreadPoolExecutor | None
        _executor_shutdown_called: bool

        def _check_closed(self) -> None: ...
        def _check_running(self) -> None: ...
        def _check_default_executor(self) -> None: ...
        def _check_callback(self, callback: Any, method: str) -> None: ...
        def _set_coroutine_origin_tracking(self, enabled: bool) -> None: ...
        def _asyncgen_firstiter_hook(self, agen: Any) -> None: ...
        def _asyncgen_finalizer_hook(self, agen: Any) -> None: ...

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the loop: pending callbacks are dropped, signal handlers removed.

        Refused while the loop runs (RuntimeError); a second call does nothing. The default
        executor, if one was set, is shut down without waiting; blocking-pool jobs finish on their
        own (their results are dropped).
        """
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            super().close()  # UnixMixin's (signal handlers), then BaseEventLoop's
        finally:
            self._close_core()
            self._selector = None

    def _write_to_self(self) -> None:
        # BaseEventLoop's name for "wake the loop from another thread".
        self._wake()

    def _add_callback(self, handle: events.Handle) -> None:
        # BaseEventLoop's hook for "run this existing handle soon" (the stock _ready deque is
        # not ours: the core runs its own queue).
        if not handle.cancelled():
            self.call_soon(_run_handle, handle)

    def run_forever(self) -> None:
        """Runs the loop until ``stop()`` is called (asyncio's, with the iterations in native code)."""
        if "_run_once" in self.__dict__ or type(self)._run_once is not _Core._run_once:
            # A subclass or a test replaced the iteration: BaseEventLoop's loop calls theirs.
            super().run_forever()
            return
        token = self._enter_run()
        try:
            self._run_forever()
        finally:
            self._leave_run(token)

    def run_for(self, seconds: float, max_callbacks: int | None = None) -> int:
        """Runs the loop for a time budget of ``seconds`` (a frame's), then returns.

        Ready callbacks, due timers and I/O are processed as ``run_forever`` would, and the loop
        waits for events only until the budget's end. No callback is started once the budget is
        spent (except the first of each iteration, so a budget of 0 still makes progress); the
        ones not run keep their place for the next call. It also returns once ``max_callbacks``
        callbacks have run in this call, or when ``stop()`` is called. Returns the number of
        callbacks run. RuntimeError if the loop is running or closed.
        """
        if not seconds >= 0:  # NaN too
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        if max_callbacks is not None and max_callbacks < 0:
            raise ValueError(f"max_callbacks must be >= 0 or None, got {max_callbacks!r}")
        # An infinite budget: no deadline (until stop() or max_callbacks).
        deadline = None if seconds == math.inf else self.time() + seconds
        ran = 0
        token = self._enter_run()
        try:
            while True:
                left = None if max_callbacks is None else max_callbacks - ran
                if left == 0:
                    break
                ran += self._run_once(deadline, left)
                if self._stopping or (deadline is not None and self.time() >= deadline):
                    break
        finally:
            self._leave_run(token)
        return ran

    # run_forever's bookkeeping, shared with run_for (3.13 names it _run_forever_setup/_cleanup).
    def _enter_run(self) -> Any:
        if sys.version_info >= (3, 13):
            cast(Any, self)._run_forever_setup()
            return None
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        old_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = _get_ident()
            sys.set_asyncgen_hooks(
                firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
            )
            events._set_running_loop(self)
        except BaseException:
            self._leave_run(old_hooks)
            raise
        return old_hooks

    def _leave_run(self, old_hooks: Any) -> None:
        if sys.version_info >= (3, 13):
            cast(Any, self)._run_forever_cleanup()
            return
        self._stopping = False
        self._thread_id = None
        events._set_running_loop(None)
        self._set_coroutine_origin_tracking(False)
        sys.set_asyncgen_hooks(*old_hooks)

    def metrics(self) -> LoopMetrics:
        """A snapshot of the loop's counters (see ``rtpy.LoopMetrics``)."""
        return LoopMetrics.from_core(self._core_metrics())

    # -- executor ---------------------------------------------------------------------------------

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[_Ts]], _T],
        *args: Unpack[_Ts],
    ) -> asyncio.Future[_T]:
        """As asyncio's; with ``executor=None`` and no default executor set, ``func`` runs on rt's
        blocking pool."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            self._check_default_executor()
            executor = self._default_executor
            if executor is None:
                return self._run_in_pool(func, *args)
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """As asyncio's; also waits for the blocking-pool jobs of ``run_in_executor(None, ...)``,
        cancelled ones included, as asyncio's waits for its executor's threads (at most
        ``timeout`` seconds: then a RuntimeWarning, as asyncio's). Later calls of
        ``run_in_executor`` raise RuntimeError."""
        if self._default_executor is not None:
            if sys.version_info >= (3, 12):
                await super().shutdown_default_executor(timeout)
            else:
                await super().shutdown_default_executor()
        self._executor_shutdown_called = True
        try:
            await asyncio.wait_for(_rtpy._pool_idle(self), timeout)
        except asyncio.TimeoutError:
            warnings.warn(
                f"The blocking pool did not finish its jobs within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )

    # -- public fd hooks --------------------------------------------------------------------------

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        """RuntimeError if ``fd`` belongs to a transport that is not closing (selector_events'
        rule); ValueError for an object without a valid ``fileno()``."""
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    _ensure_fd_no_transports = _ensure_fd_no_transport

    def add_reader(
        self, fd: FileDescriptorLike, callback: Callable[[Unpack[_Ts]], Any], *args: Unpack[_Ts]
    ) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd: FileDescriptorLike) -> bool:
        self._ensure_fd_no_transport(fd)
        return bool(self._remove_reader(fd))

    def add_writer(
        self, fd: FileDescriptorLike, callback: Callable[[Unpack[_Ts]], Any], *args: Unpack[_Ts]
    ) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd: FileDescriptorLike) -> bool:
        self._ensure_fd_no_transport(fd)
        return bool(self._remove_writer(fd))

    # -- stream transports ------------------------------------------------------------------------

    def _make_socket_transport(
        self,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[Any] | None = None,
        *,
        extra: dict[str, Any] | None = None,
        server: asyncio.Server | None = None,
    ) -> asyncio.Transport:
        transport: asyncio.Transport = _SocketTransport(self, sock, protocol, waiter, extra, server)
        return transport

    def _make_ssl_transport(
        self,
        rawsock: socket.socket,
        protocol: asyncio.BaseProtocol,
        sslcontext: _ssl.SSLContext,
        waiter: asyncio.Future[Any] | None = None,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
        extra: dict[str, Any] | None = None,
        server: asyncio.Server | None = None,
        ssl_handshake_timeout: float | None = _SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = _SSL_SHUTDOWN_TIMEOUT,
    ) -> asyncio.Transport:
        kwargs: dict[str, Any] = {"ssl_handshake_timeout": ssl_handshake_timeout}
        if sys.version_info >= (3, 11):
            kwargs["ssl_shutdown_timeout"] = ssl_shutdown_timeout
        ssl_protocol = sslproto.SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,  # type: ignore[arg-type]  # None is allowed (typeshed says Future)
            server_side,
            server_hostname,
            **kwargs,
        )
        self._make_socket_transport(rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    # -- servers: the accept loop -----------------------------------------------------------------

    def _start_serving(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        sslcontext: _ssl.SSLContext | None = None,
        server: asyncio.Server | None = None,
        backlog: int = 100,
        ssl_handshake_timeout: float | None = _SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: float | None = _SSL_SHUTDOWN_TIMEOUT,
    ) -> None:
        self._add_reader(
            sock.fileno(),
            self._accept_connection,
            protocol_factory,
            sock,
            sslcontext,
            server,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )

    def _accept_connection(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        sslcontext: _ssl.SSLContext | None,
        server: asyncio.Server | None,
        backlog: int,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None,
    ) -> None:
        # Called once per iteration in which the listening socket is readable: accept up to
        # `backlog` connections (bpo-27906), each set up by its own task.
        for _ in range(backlog):
            try:
                conn, addr = sock.accept()
                if self._debug:
                    logger.debug("%r got a new connection from %r: %r", server, addr, conn)
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # nothing more to accept now
            except OSError as exc:
                if exc.errno not in _ACCEPT_RESOURCE_ERRNOS:
                    raise  # the exception handler logs it; the server keeps serving
                # Out of fds / memory: the socket stays readable (level-triggered), so stop
                # watching it for a while instead of spinning.
                self.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": exc,
                        "socket": trsock.TransportSocket(sock),
                    }
                )
                self._remove_reader(sock.fileno())
                self.call_later(
                    constants.ACCEPT_RETRY_DELAY,
                    self._start_serving,
                    protocol_factory,
                    sock,
                    sslcontext,
                    server,
                    backlog,
                    ssl_handshake_timeout,
                    ssl_shutdown_timeout,
                )
                return
            else:
                self.create_task(
                    self._accept_connection2(
                        protocol_factory,
                        conn,
                        {"peername": addr},
                        sslcontext,
                        server,
                        ssl_handshake_timeout,
                        ssl_shutdown_timeout,
                    )
                )

    async def _accept_connection2(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        conn: socket.socket,
        extra: dict[str, Any],
        sslcontext: _ssl.SSLContext | None,
        server: asyncio.Server | None,
        ssl_handshake_timeout: float | None,
        ssl_shutdown_timeout: float | None,
    ) -> None:
        protocol = None
        transport = None
        try:
            protocol = protocol_factory()
            waiter: asyncio.Future[None] | None = self.create_future()
            if sslcontext:
                transport = self._make_ssl_transport(
                    conn,
                    protocol,
                    sslcontext,
                    waiter,
                    server_side=True,
                    extra=extra,
                    server=server,
                    ssl_handshake_timeout=ssl_handshake_timeout,
                    ssl_shutdown_timeout=ssl_shutdown_timeout,
                )
            else:
                transport = self._make_socket_transport(
                    conn, protocol, waiter, extra=extra, server=server
                )
            try:
                assert waiter is not None
                await waiter
            except BaseException:
                transport.close()
                waiter = None  # gh-109534: no cycle through the exception
                raise
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            # The connection is dropped; only debug mode reports why.
            if self._debug:
                context: dict[str, Any] = {
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                }
                if protocol is not None:
                    context["protocol"] = protocol
                if transport is not None:
                    context["transport"] = transport
                self.call_exception_handler(context)

    def _stop_serving(self, sock: socket.socket) -> None:
        path = sock.getsockname() if sock in self._unix_server_sockets else None
        self._remove_reader(sock.fileno())
        sock.close()
        if path is not None:
            inode = self._unix_server_sockets.pop(sock)
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)

    # -- unix sockets -----------------------------------------------------------------------------

    async def create_unix_connection(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        path: str | bytes | os.PathLike[str] | None = None,
        *,
        ssl: bool | _ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
        server_hostname: str | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        """As asyncio's unix loop: connect to the unix stream socket ``path`` (or use ``sock``)."""
        assert server_hostname is None or isinstance(server_hostname, str)
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)
        kwargs: dict[str, Any] = {"ssl_handshake_timeout": ssl_handshake_timeout}
        if sys.version_info >= (3, 11):
            kwargs["ssl_shutdown_timeout"] = ssl_shutdown_timeout
        # BaseEventLoop's (private: typeshed does not declare it).
        transport: asyncio.BaseTransport
        protocol: asyncio.BaseProtocol
        transport, protocol = await cast(Any, self)._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname, **kwargs
        )
        return transport, protocol

    async def create_unix_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        path: str | bytes | os.PathLike[str] | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: _ssl.SSLContext | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        cleanup_socket: bool = True,
    ) -> asyncio.Server:
        """As asyncio's unix loop: listen on the unix stream socket ``path`` (or ``sock``).

        A stale socket file at ``path`` is replaced; on 3.13+ (``cleanup_socket``) closing the
        server unlinks the path if it is still this server's socket.
        """
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if path[0] not in (0, "\x00"):  # not an abstract socket: replace a stale socket file
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    # The directory may only allow creating the socket.
                    logger.error("Unable to check or remove stale UNIX socket %r: %r", path, err)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        if sys.version_info >= (3, 13) and cleanup_socket:
            name = sock.getsockname()
            if name and name[0] not in (0, "\x00"):
                try:
                    self._unix_server_sockets[sock] = os.stat(name).st_ino
                except FileNotFoundError:
                    pass
        sock.setblocking(False)
        server_args: list[Any] = [ssl, backlog, ssl_handshake_timeout]
        if sys.version_info >= (3, 11):
            server_args.append(ssl_shutdown_timeout)
        server = base_events.Server(self, [sock], protocol_factory, *server_args)
        if start_serving:
            server._start_serving()  # type: ignore[attr-defined]
            # One iteration so that the accept reader is registered before we return.
            await asyncio.sleep(0)
        return server

    # -- sendfile ---------------------------------------------------------------------------------

    async def _sendfile_native(
        self, transp: transports._FlowControlMixin, file: Any, offset: int, count: int | None
    ) -> int:
        # os.sendfile straight from the file to the transport's socket, once the transport's
        # buffer is flushed; reading is paused meanwhile and the fd leaves _transports so that
        # sock_sendfile may use it.
        t: Any = transp
        fd = t._sock_fd
        del self._transports[fd]
        resume_reading = t.is_reading()
        t.pause_reading()
        await t._make_empty_waiter()
        try:
            sent: int = await self.sock_sendfile(t._sock, file, offset, count, fallback=False)
            return sent
        finally:
            t._reset_empty_waiter()
            if resume_reading:
                t.resume_reading()
            self._transports[fd] = t


def _get_ident() -> int:
    import threading

    return threading.get_ident()
