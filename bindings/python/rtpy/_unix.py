"""The Unix half of ``rtpy.Loop``: signals, pipes, subprocesses, datagrams and the ``sock_*`` methods.

``UnixMixin`` sits between ``_rtpy.LoopCore`` and ``asyncio.BaseEventLoop`` in ``rtpy.Loop``'s MRO. It
only needs the engine's readiness hooks (``_add_reader(fd, cb, *args)``, ``_remove_reader(fd)``,
``_add_writer``, ``_remove_writer``), ``call_soon`` / ``call_soon_threadsafe`` and, from ``Loop``,
``_transports`` and ``_ensure_fd_no_transports(fd)``. asyncio's ``selector_events`` and ``unix_events``
(3.11) are the specification; the stdlib transport classes that only use those hooks are reused
(pipes, subprocesses, datagrams).

Differences from the stock selector loop, none of them visible through the public API:
- a ``sock_*`` operation that has to wait registers its reader / writer once and removes it itself as
  soon as it completes (the stock loop removes it from a done callback, one iteration later);
  cancellation removes it from the done callback, unless the fd was taken over meanwhile: by a later
  ``sock_*`` operation (a per-loop fd -> future table) or by anyone else (the ``Handle`` the engine's
  ``_add_reader`` returned was cancelled, the stock loop's only test);
- ``sock_recv`` / ``sock_recv_into`` / ``sock_sendall`` run natively (``_rtpy._sock_recv`` ...,
  ``src/event_loop/sock.rs``: the syscall in Rust, the future made, registered and completed there) for
  an exact non-blocking ``socket.socket`` and an ``int`` size <= 256 KiB / a ``bytearray`` / a ``bytes``;
  anything else returns ``NotImplemented`` and takes the Python implementation (``_sock_recv_py``...);
- signal numbers arrive on a socketpair of their own (``signal.set_wakeup_fd``), read through
  ``_add_reader``, instead of the self-pipe shared with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import signal
import socket
import sys
import warnings
from asyncio import base_events, coroutines, events, exceptions, selector_events, transports, unix_events
from asyncio.log import logger
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple, Union, cast

from ._rtpy import _sock_recv as _sock_recv_native
from ._rtpy import _sock_recv_into as _sock_recv_into_native
from ._rtpy import _sock_sendall as _sock_sendall_native

if TYPE_CHECKING:
    from asyncio import BaseEventLoop as _MixinBase
    from asyncio import Future

    from _typeshed import FileDescriptorLike, ReadableBuffer, WriteableBuffer
    from typing_extensions import TypeAlias, TypeVarTuple, Unpack

    _Ts = TypeVarTuple("_Ts")
    #: what ``socket.connect`` / ``sendto`` take (typeshed's ``asyncio.events._Address``).
    _Address: TypeAlias = Union[Tuple[Any, ...], str, ReadableBuffer]
else:
    _MixinBase = object

#: Index of the reader / writer slot in ``_UnixState.owners`` keys.
_READ = 0
_WRITE = 1


def _sighandler_noop(signum: int, frame: object) -> None:
    """Python-level handler of the signals the loop handles: the wakeup fd does the work."""


class _UnixState:
    """Per-loop state of the mixin (created on first use: ``Loop.__init__`` need not know it)."""

    __slots__ = ("signal_handlers", "sig_rsock", "sig_wsock", "sig_watched", "owners")

    def __init__(self) -> None:
        #: signal number -> the ``events.Handle`` to run when it arrives.
        self.signal_handlers: dict[int, events.Handle] = {}
        #: the wakeup socketpair (read end registered with ``_add_reader``), None until needed.
        self.sig_rsock: Optional[socket.socket] = None
        self.sig_wsock: Optional[socket.socket] = None
        #: True once the read end is registered with ``_add_reader``.
        self.sig_watched = False
        #: (fd, _READ | _WRITE) -> (future, handle, done callback) of the ``sock_*`` operation whose
        #: callback is registered. ``handle`` is what the engine's ``_add_reader`` returned (None from an
        #: engine that returns none): cancelled, it was replaced or removed by someone else, whose
        #: registration stays. The done callback (cancellation) is taken off when the operation completes.
        self.owners: dict[tuple[int, int], tuple[Future[Any], Any, Callable[[Any], object]]] = {}


# typeshed does not describe the stock transport classes.
_SelectorDatagramTransport: Any = selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]


class _DatagramTransport(_SelectorDatagramTransport, transports.DatagramTransport):  # type: ignore[misc]
    """asyncio's datagram transport. ``__repr__`` changes (the stock one reads ``loop._selector``), and it
    is an ``asyncio.DatagramTransport`` on every version (3.12+'s base list)."""

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        loop: Any = self._loop
        if loop is not None and not loop.is_closed():
            info.append("read=polling" if loop._has_reader(self._sock_fd) else "read=idle")
            state = "polling" if loop._has_writer(self._sock_fd) else "idle"
            info.append(f"write=<{state}, bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))


class _SendfileOp:
    """State of one ``os.sendfile`` loop (``unix_events._sock_sendfile_native_impl``'s arguments)."""

    __slots__ = ("fut", "sock", "fd", "fileno", "offset", "count", "blocksize", "total_sent", "registered")

    def __init__(
        self, fut: Future[int], sock: socket.socket, fileno: int, offset: int, count: int | None, blocksize: int
    ) -> None:
        self.fut = fut
        self.sock = sock
        self.fd = sock.fileno()
        self.fileno = fileno
        self.offset = offset
        self.count = count
        self.blocksize = blocksize
        self.total_sent = 0
        self.registered = False

    def update_filepos(self) -> None:
        """Leaves the file position after the bytes sent, as ``os.sendfile`` with an offset does not."""
        if self.total_sent > 0:
            os.lseek(self.fileno, self.offset, os.SEEK_SET)


class UnixMixin(_MixinBase):
    """Unix-specific methods of ``rtpy.Loop`` (a mixin before ``asyncio.BaseEventLoop`` in the MRO)."""

    if TYPE_CHECKING:
        # Provided by the core (``_rtpy.LoopCore``) and by ``rtpy.Loop``.
        _transports: Any

        def _add_reader(self, fd: FileDescriptorLike, callback: Callable[..., object], *args: Any) -> object: ...
        def _remove_reader(self, fd: FileDescriptorLike) -> bool: ...
        def _add_writer(self, fd: FileDescriptorLike, callback: Callable[..., object], *args: Any) -> object: ...
        def _remove_writer(self, fd: FileDescriptorLike) -> bool: ...
        def _has_reader(self, fd: FileDescriptorLike) -> bool: ...
        def _has_writer(self, fd: FileDescriptorLike) -> bool: ...
        def _ensure_fd_no_transports(self, fd: FileDescriptorLike) -> object: ...
        def _check_closed(self) -> None: ...

    # ------------------------------------------------------------------------------------------
    # state
    #: The mixin's state, made on first use (``Loop.__init__`` need not know it).
    _unix_state: Optional[_UnixState] = None

    @property
    def _unix(self) -> _UnixState:
        st = self._unix_state
        if st is None:
            st = self._unix_state = _UnixState()
        return st

    @property
    def _signal_handlers(self) -> dict[int, events.Handle]:
        """signal number -> Handle, as ``_UnixSelectorEventLoop._signal_handlers``."""
        return self._unix.signal_handlers

    # ------------------------------------------------------------------------------------------
    # signals
    def add_signal_handler(self, sig: int, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts]) -> None:
        """Add a handler for a signal (main thread only).

        Raise ValueError if the signal number is invalid or uncatchable, RuntimeError if the handler
        cannot be set up (another thread, SIGKILL / SIGSTOP, a closed loop).
        """
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        st = self._unix
        wakeup = self._signal_wakeup_socket()
        try:
            # set_wakeup_fd() raises ValueError outside the main thread: a loop running in another
            # thread cannot add a signal handler.
            signal.set_wakeup_fd(wakeup.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None
        self._watch_signal_wakeup()

        handle = events.Handle(callback, args, self, None)
        st.signal_handlers[sig] = handle
        try:
            # Python's C handler writes the signal number to the wakeup fd; the Python-level handler
            # has nothing left to do.
            signal.signal(sig, _sighandler_noop)
            # SA_RESTART: fewer EINTR.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del st.signal_handlers[sig]
            if not st.signal_handlers:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    logger.info("set_wakeup_fd(-1) failed: %s", nexc)
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

    def _signal_wakeup_socket(self) -> socket.socket:
        """The write end of the wakeup socketpair (both ends non-blocking), made on first use."""
        st = self._unix
        if st.sig_wsock is None:
            rsock, wsock = socket.socketpair()
            rsock.setblocking(False)
            wsock.setblocking(False)
            st.sig_rsock, st.sig_wsock = rsock, wsock
        return st.sig_wsock

    def _watch_signal_wakeup(self) -> None:
        """Registers the read end with the engine, once (after set_wakeup_fd succeeded: main thread)."""
        st = self._unix
        if not st.sig_watched and st.sig_rsock is not None:
            self._add_reader(st.sig_rsock.fileno(), self._read_signals)
            st.sig_watched = True

    def _read_signals(self) -> None:
        """Reader of the wakeup socket: each byte is a signal number."""
        rsock = self._unix.sig_rsock
        if rsock is None:
            return
        while True:
            try:
                data = rsock.recv(4096)
            except InterruptedError:
                continue
            except BlockingIOError:
                return
            if not data:
                return
            for signum in data:
                if signum:
                    self._handle_signal(signum)

    def _handle_signal(self, sig: int) -> None:
        """Schedules the handler of ``sig`` (the loop's actual signal handler)."""
        handle = self._unix.signal_handlers.get(sig)
        if handle is None:
            return  # removed meanwhile, or a signal with a handler of its own
        if handle._cancelled:
            self.remove_signal_handler(sig)  # remove it properly
        else:
            self.call_soon(self._run_signal_handle, handle)

    @staticmethod
    def _run_signal_handle(handle: events.Handle) -> None:
        # A handle cancelled after its signal arrived does not run (asyncio skips it in _ready).
        if not handle._cancelled:
            handle._run()

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler of a signal; True if there was one. Restores the default disposition."""
        self._check_signal(sig)
        st = self._unix
        try:
            del st.signal_handlers[sig]
        except KeyError:
            return False

        handler: Any = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

        if not st.signal_handlers:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                logger.info("set_wakeup_fd(-1) failed: %s", exc)
        return True

    def _check_signal(self, sig: int) -> None:
        """TypeError unless an int, ValueError unless a valid signal number."""
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def close(self) -> None:
        """``BaseEventLoop.close()``, then ``_close_signals()`` (``_UnixSelectorEventLoop.close``'s order)."""
        super().close()
        self._close_signals()

    def _close_signals(self) -> None:
        """Removes every signal handler (default dispositions back) and the wakeup socketpair.

        ``close()`` calls it; idempotent, so ``Loop.close()`` may call it too.
        """
        st = self._unix
        if not sys.is_finalizing():
            for sig in list(st.signal_handlers):
                self.remove_signal_handler(sig)
        elif st.signal_handlers:
            warnings.warn(
                f"Closing the loop {self!r} on interpreter shutdown stage, skipping signal handlers removal",
                ResourceWarning,
                source=self,
            )
            st.signal_handlers.clear()
        rsock, wsock, watched = st.sig_rsock, st.sig_wsock, st.sig_watched
        st.sig_rsock = st.sig_wsock = None
        st.sig_watched = False
        if rsock is not None and wsock is not None:
            if watched:
                try:
                    self._remove_reader(rsock.fileno())
                except RuntimeError:
                    pass  # the core is already closed
            rsock.close()
            wsock.close()

    # ------------------------------------------------------------------------------------------
    # pipes, subprocesses, datagrams
    def _make_read_pipe_transport(
        self,
        pipe: Any,
        protocol: Any,
        waiter: Optional[Future[Any]] = None,
        extra: Optional[dict[str, Any]] = None,
    ) -> Any:
        return unix_events._UnixReadPipeTransport(self, pipe, protocol, waiter, extra)  # type: ignore[attr-defined]

    def _make_write_pipe_transport(
        self,
        pipe: Any,
        protocol: Any,
        waiter: Optional[Future[Any]] = None,
        extra: Optional[dict[str, Any]] = None,
    ) -> Any:
        return unix_events._UnixWritePipeTransport(self, pipe, protocol, waiter, extra)  # type: ignore[attr-defined]

    async def _make_subprocess_transport(
        self,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> Any:
        # The stock loop's logic on 3.9-3.13: the policy's child watcher (deprecated on 3.12+, where
        # the stock loop silences the warning too).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            watcher = events.get_child_watcher()  # type: ignore[attr-defined,unused-ignore]
        with watcher:
            if not watcher.is_active():
                # Raised before the process exists: nothing would reap it.
                raise RuntimeError(
                    "asyncio.get_child_watcher() is not activated, subprocess support is not installed."
                )
            waiter = self.create_future()
            transp = unix_events._UnixSubprocessTransport(  # type: ignore[attr-defined]
                self, protocol, args, shell, stdin, stdout, stderr, bufsize, waiter=waiter, extra=extra, **kwargs
            )
            watcher.add_child_handler(transp.get_pid(), self._child_watcher_callback, transp)
            try:
                await waiter
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                transp.close()
                await transp._wait()
                raise
        return transp

    def _child_watcher_callback(self, pid: int, returncode: int, transp: Any) -> None:
        # Any thread (ThreadedChildWatcher). 3.10 and 3.11 skip one iteration so that the pipes'
        # pending callbacks run first; 3.9 and 3.12+ do not.
        if (3, 10) <= sys.version_info < (3, 12):
            self.call_soon_threadsafe(self.call_soon, transp._process_exited, returncode)
        else:
            self.call_soon_threadsafe(transp._process_exited, returncode)

    def _make_datagram_transport(
        self,
        sock: socket.socket,
        protocol: Any,
        address: Any = None,
        waiter: Optional[Future[Any]] = None,
        extra: Optional[dict[str, Any]] = None,
    ) -> Any:
        return cast(Any, _DatagramTransport)(self, sock, protocol, address, waiter, extra)

    # ------------------------------------------------------------------------------------------
    # sock_*: readiness bookkeeping
    def _sock_check(self, sock: socket.socket) -> None:
        """TypeError for an SSL socket; ValueError for a blocking one in debug mode (asyncio's checks)."""
        if sock.__class__ is not socket.socket:  # ssl.SSLSocket is a subclass
            base_events._check_ssl_socket(sock)  # type: ignore[attr-defined]
        if self._debug and sock.gettimeout() != 0:  # type: ignore[attr-defined]
            raise ValueError("the socket must be non-blocking")

    def _sock_wait(self, kind: int, fd: int, fut: Future[Any], callback: Callable[..., object], *args: Any) -> None:
        """Registers ``callback(fut, *args)`` as the reader / writer of ``fd`` until ``fut`` is done."""
        self._ensure_fd_no_transports(fd)
        if kind == _READ:
            handle = self._add_reader(fd, callback, fut, *args)
        else:
            handle = self._add_writer(fd, callback, fut, *args)
        on_done = functools.partial(self._sock_release, kind, fd)
        (self._unix_state or self._unix).owners[(fd, kind)] = (fut, handle, on_done)
        fut.add_done_callback(on_done)

    def _sock_release(self, kind: int, fd: int, fut: Future[Any]) -> None:
        """``fut``'s done callback (it ran: ``fut`` was cancelled, or completed by someone else).

        Removes the reader / writer the operation registered, unless the fd was taken over meanwhile:
        by a later ``sock_*`` operation (the table's entry is not ``fut``'s) or by anyone else's
        ``add_reader`` / ``add_writer`` (the engine cancelled the handle it replaced).
        """
        owners = (self._unix_state or self._unix).owners
        owner = owners.get((fd, kind))
        if owner is None or owner[0] is not fut:
            return
        del owners[(fd, kind)]
        handle = owner[1]
        if self._closed or (handle is not None and handle.cancelled()):  # type: ignore[attr-defined]
            return
        if kind == _READ:
            self._remove_reader(fd)
        else:
            self._remove_writer(fd)

    def _sock_done(
        self, kind: int, fd: int, fut: Future[Any], result: Any = None, exc: BaseException | None = None
    ) -> None:
        """Completes an operation from its own reader / writer callback: the callback removed, the
        future's done callback taken off (one callback less for the loop to run), the outcome set.

        The callback runs only while it is the fd's registration (a replaced handle is cancelled and
        never runs), so the registration and the table's entry are the operation's own.
        """
        owners = (self._unix_state or self._unix).owners
        owner = owners.get((fd, kind))
        if owner is not None and owner[0] is fut:
            del owners[(fd, kind)]
            fut.remove_done_callback(owner[2])
        if kind == _READ:
            self._remove_reader(fd)
        else:
            self._remove_writer(fd)
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    async def _sock_call(self, kind: int, sock: socket.socket, method: str, *args: Any) -> Any:
        """``sock.<method>(*args)`` (a non-blocking call) at once; if it would block, again on each
        readiness of ``sock`` (reader for ``_READ``, writer for ``_WRITE``) until it completes. The
        method is looked up at each attempt, as asyncio's own retries call ``sock.<method>`` anew."""
        try:
            return getattr(sock, method)(*args)
        except (BlockingIOError, InterruptedError):
            pass
        fut: Future[Any] = self.create_future()
        fd = sock.fileno()
        self._sock_wait(kind, fd, fut, self._sock_call_ready, kind, fd, sock, method, args)
        return await fut

    def _sock_call_ready(
        self, fut: Future[Any], kind: int, fd: int, sock: socket.socket, method: str, args: Tuple[Any, ...]
    ) -> None:
        if fut.done():
            return  # cancelled; the done callback removes the registration
        try:
            result = getattr(sock, method)(*args)
        except (BlockingIOError, InterruptedError):
            return  # spurious wakeup: wait again
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._sock_done(kind, fd, fut, exc=exc)
        else:
            self._sock_done(kind, fd, fut, result)

    # ------------------------------------------------------------------------------------------
    # sock_*: receive
    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        """Receive up to ``nbytes`` bytes from the socket."""
        r = _sock_recv_native(self, sock, nbytes)  # type: ignore[arg-type]
        if r is NotImplemented:  # any other socket-like object: asyncio's checks, in Python
            self._sock_check(sock)
            return cast(bytes, await self._sock_call(_READ, sock, "recv", nbytes))
        if isinstance(r, bytes):
            return r
        return await cast("Future[bytes]", r)

    async def sock_recv_into(self, sock: socket.socket, buf: WriteableBuffer) -> int:
        """Receive into ``buf``; returns the number of bytes written."""
        r = _sock_recv_into_native(self, sock, buf)  # type: ignore[arg-type]
        if r is NotImplemented:  # any other socket or buffer: asyncio's checks, in Python
            self._sock_check(sock)
            return cast(int, await self._sock_call(_READ, sock, "recv_into", buf))
        if isinstance(r, int):
            return r
        return await cast("Future[int]", r)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram: ``(data, address)``."""
        self._sock_check(sock)
        return cast("tuple[bytes, Any]", await self._sock_call(_READ, sock, "recvfrom", bufsize))

    async def sock_recvfrom_into(self, sock: socket.socket, buf: WriteableBuffer, nbytes: int = 0) -> tuple[int, Any]:
        """Receive a datagram into ``buf``: ``(nbytes, address)``."""
        self._sock_check(sock)
        if not nbytes:
            nbytes = len(buf)  # type: ignore[arg-type]
        return cast("tuple[int, Any]", await self._sock_call(_READ, sock, "recvfrom_into", buf, nbytes))

    # ------------------------------------------------------------------------------------------
    # sock_*: send
    async def sock_sendall(self, sock: socket.socket, data: ReadableBuffer) -> None:
        """Send all of ``data``; on error there is no telling how much was sent."""
        r = _sock_sendall_native(self, sock, data)  # type: ignore[arg-type]
        if r is None:
            return
        if r is NotImplemented:
            return await self._sock_sendall_py(sock, data)
        await r

    async def _sock_sendall_py(self, sock: socket.socket, data: ReadableBuffer) -> None:
        """``sock_sendall`` in Python: any socket-like object and buffer, asyncio's checks."""
        self._sock_check(sock)
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        view = memoryview(data)
        if view.itemsize != 1 or view.ndim != 1:
            view = view.cast("B")
        if n == len(view):
            return
        fut: Future[None] = self.create_future()
        # pos: a one-item list, the offset reached so far.
        self._sock_wait(_WRITE, sock.fileno(), fut, self._sock_sendall_ready, sock.fileno(), sock, view, [n])
        return await fut

    def _sock_sendall_ready(
        self, fut: Future[None], fd: int, sock: socket.socket, view: memoryview, pos: list[int]
    ) -> None:
        if fut.done():
            return  # cancelled; the done callback removes the writer
        start = pos[0]
        try:
            n = sock.send(view[start:])
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._sock_done(_WRITE, fd, fut, exc=exc)
            return
        start += n
        if start == len(view):
            self._sock_done(_WRITE, fd, fut)
        else:
            pos[0] = start

    async def sock_sendto(self, sock: socket.socket, data: ReadableBuffer, address: _Address) -> int:
        """Send a datagram to ``address``; returns the number of bytes sent."""
        self._sock_check(sock)
        return cast(int, await self._sock_call(_WRITE, sock, "sendto", data, address))

    # ------------------------------------------------------------------------------------------
    # sock_*: connect, accept
    async def sock_connect(self, sock: socket.socket, address: _Address) -> None:
        """Connect to ``address`` (host names of INET / INET6 sockets are resolved first)."""
        self._sock_check(sock)
        has_ipv6: bool = base_events._HAS_IPv6  # type: ignore[attr-defined]
        if sock.family == socket.AF_INET or (has_ipv6 and sock.family == socket.AF_INET6):
            resolved = await self._ensure_resolved(  # type: ignore[attr-defined]
                address, family=sock.family, type=sock.type, proto=sock.proto, loop=self
            )
            _, _, _, _, address = resolved[0]
        fut: Optional[Future[None]] = self.create_future()
        assert fut is not None
        fd = sock.fileno()
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            # EINTR: the connection goes on in the background, as EINPROGRESS (bpo-23618).
            self._sock_wait(_WRITE, fd, fut, self._sock_connect_ready, fd, sock, address)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(None)
        try:
            return await fut
        finally:
            fut = None  # break the traceback -> frame -> future cycle

    def _sock_connect_ready(self, fut: Future[None], fd: int, sock: socket.socket, address: _Address) -> None:
        if fut.done():
            return
        try:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                raise OSError(err, "Connect call failed " + str(address))
        except (BlockingIOError, InterruptedError):
            return  # still connecting
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._sock_done(_WRITE, fd, fut, exc=exc)
        else:
            self._sock_done(_WRITE, fd, fut)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection: ``(conn, address)``, ``conn`` non-blocking."""
        self._sock_check(sock)
        fut: Future[tuple[socket.socket, Any]] = self.create_future()
        fd = sock.fileno()
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
        except (BlockingIOError, InterruptedError):
            self._sock_wait(_READ, fd, fut, self._sock_accept_ready, fd, sock)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result((conn, address))
        return await fut

    def _sock_accept_ready(self, fut: Future[tuple[socket.socket, Any]], fd: int, sock: socket.socket) -> None:
        if fut.done():
            return  # cancelled: leave the connection in the backlog
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._sock_done(_READ, fd, fut, exc=exc)
        else:
            self._sock_done(_READ, fd, fut, (conn, address))

    # ------------------------------------------------------------------------------------------
    # sock_sendfile: BaseEventLoop.sock_sendfile is the front end; this is its native path.
    async def _sock_sendfile_native(self, sock: socket.socket, file: Any, offset: int, count: int | None) -> int:
        try:
            os.sendfile
        except AttributeError:  # pragma: no cover (Linux has it)
            raise exceptions.SendfileNotAvailableError("os.sendfile() is not available") from None
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise exceptions.SendfileNotAvailableError("not a regular file") from None
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise exceptions.SendfileNotAvailableError("not a regular file") from None
        blocksize = count if count else fsize
        if not blocksize:
            return 0  # empty file
        # 32-bit platforms: os.sendfile's count is a ssize_t.
        blocksize = min(blocksize, sys.maxsize // 2 + 1)
        self._ensure_fd_no_transports(sock.fileno())
        fut: Future[int] = self.create_future()
        op = _SendfileOp(fut, sock, fileno, offset, count, blocksize)
        self._sendfile_step(op)
        return await fut

    def _sendfile_step(self, op: _SendfileOp) -> None:
        """One ``os.sendfile`` call; the writer callback of the operation once it has to wait."""
        fut = op.fut
        if fut.done():
            return
        if op.count:
            op.blocksize = op.count - op.total_sent
            if op.blocksize <= 0:
                self._sendfile_finish(op, op.total_sent)
                return
        try:
            sent = os.sendfile(op.fd, op.fileno, op.offset, op.blocksize)
        except (BlockingIOError, InterruptedError):
            self._sendfile_wait(op)
        except OSError as exc:
            if op.registered and exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                # The peer closed in the middle of the transfer: a ConnectionError on every POSIX.
                new_exc = ConnectionError("socket is not connected", errno.ENOTCONN)
                new_exc.__cause__ = exc
                exc = new_exc
            if op.total_sent == 0:
                # Not a file sendfile(2) can read (not mmap-able...): the caller falls back to send().
                self._sendfile_finish(op, exc=exceptions.SendfileNotAvailableError("os.sendfile call failed"))
            else:
                self._sendfile_finish(op, exc=exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._sendfile_finish(op, exc=exc)
        else:
            if sent == 0:
                self._sendfile_finish(op, op.total_sent)  # EOF
            else:
                op.offset += sent
                op.total_sent += sent
                self._sendfile_wait(op)

    def _sendfile_wait(self, op: _SendfileOp) -> None:
        if not op.registered:
            op.registered = True
            handle = self._add_writer(op.fd, self._sendfile_step, op)
            on_done = functools.partial(self._sendfile_done, op)
            self._unix.owners[(op.fd, _WRITE)] = (op.fut, handle, on_done)
            op.fut.add_done_callback(on_done)

    def _sendfile_done(self, op: _SendfileOp, fut: Future[int]) -> None:
        if fut.cancelled():
            op.update_filepos()
        self._sock_release(_WRITE, op.fd, fut)

    def _sendfile_finish(self, op: _SendfileOp, result: int = 0, exc: BaseException | None = None) -> None:
        op.update_filepos()
        if op.registered:
            self._sock_done(_WRITE, op.fd, op.fut, result, exc)
        elif exc is not None:
            op.fut.set_exception(exc)
        else:
            op.fut.set_result(result)
