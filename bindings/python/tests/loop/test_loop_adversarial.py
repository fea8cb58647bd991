"""An asyncio loop under abuse: re-entrant calls from inside callbacks, many
registrations on one fd, fd reuse after close, bad input in every argument of
call_* / add_reader / sock_*, KeyboardInterrupt and SystemExit raised by a
callback, exceptions routed to the handler with asyncio's context keys, a
100k-callback burst.

Every expectation is what asyncio's own loop does (each test runs on it and
on rtpy's, conftest.loop_factory); a stock-loop bug is marked as such.
"""

import asyncio
import gc
import logging
import os
import socket
import sys
import tempfile
import threading
import time
import weakref
from asyncio import format_helpers

import pytest

from .support import SlowJob, run, run_forever_until_stopped, stop_after

CLOSED = "Event loop is closed"
RUNNING = "This event loop is already running"


def _run_soon(loop, fn):
    """Runs `fn()` inside a callback of `loop`; returns what it returned or
    raised as ("ok", value) / ("raised", exc)."""
    out = []

    def cb():
        try:
            out.append(("ok", fn()))
        except BaseException as e:  # noqa: BLE001 - returned to the test
            out.append(("raised", e))
        finally:
            loop.stop()

    loop.call_soon(cb)
    safety = stop_after(loop, 5)
    loop.run_forever()
    assert not safety and out, "the callback never ran"
    return out[0]


# -- re-entrancy -------------------------------------------------------------------------------


def test_run_forever_and_run_until_complete_inside_a_callback_are_refused(loop):
    coro = asyncio.sleep(0)
    for fn in (loop.run_forever, lambda: loop.run_until_complete(coro)):
        kind, exc = _run_soon(loop, fn)
        assert kind == "raised" and type(exc) is RuntimeError, exc
        assert str(exc) == RUNNING
    coro.close()
    # The loop is still usable afterwards.
    assert loop.run_until_complete(asyncio.sleep(0, "fine")) == "fine"


def test_running_another_loop_inside_a_callback_is_refused(loop, loop_factory):
    other = loop_factory()
    try:
        coro = asyncio.sleep(0)
        kind, exc = _run_soon(loop, lambda: other.run_until_complete(coro))
        coro.close()
        assert kind == "raised" and type(exc) is RuntimeError
        assert str(exc) == "Cannot run the event loop while another loop is running"
        kind, exc = _run_soon(loop, other.run_forever)
        assert kind == "raised" and str(exc) == "Cannot run the event loop while another loop is running"
        assert not other.is_running()
    finally:
        other.close()


def test_close_inside_a_callback_is_refused(loop):
    kind, exc = _run_soon(loop, loop.close)
    assert kind == "raised" and type(exc) is RuntimeError
    assert str(exc) == "Cannot close a running event loop"
    assert not loop.is_closed()
    assert loop.run_until_complete(asyncio.sleep(0, 1)) == 1


def test_stop_inside_a_callback_finishes_the_batch_not_the_next(loop):
    log = []

    def a():
        log.append("a")
        loop.call_soon(log.append, "a-child")

    def stopper():
        log.append("stop")
        loop.stop()
        loop.stop()  # twice is the same

    loop.call_soon(a)
    loop.call_soon(stopper)
    loop.call_soon(log.append, "b")
    loop.run_forever()
    # The whole batch ran (b after the stop), not what it scheduled.
    assert log == ["a", "stop", "b"]
    assert not loop.is_running()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert log == ["a", "stop", "b", "a-child"]


def test_stop_before_run_forever_runs_one_iteration(loop):
    log = []
    loop.call_soon(log.append, 1)
    loop.call_later(3600, log.append, "never")
    loop.stop()
    t0 = time.monotonic()
    loop.run_forever()
    assert time.monotonic() - t0 < 2, "stopping: the iteration must not wait for the timer"
    assert log == [1]
    # stop() was consumed: the next run_forever runs until another stop().
    loop.call_later(0.01, loop.stop)
    loop.call_soon(log.append, 2)
    loop.run_forever()
    assert log == [1, 2]


def test_run_until_complete_inside_a_task_is_refused(loop):
    async def main():
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match=RUNNING):
                loop.run_until_complete(coro)
        finally:
            coro.close()
        return "ok"

    assert run(loop, main()) == "ok"


def test_a_closed_loop_refuses_everything_and_close_twice_is_fine(loop):
    loop.close()
    loop.close()
    assert loop.is_closed()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match=CLOSED):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError, match=CLOSED):
        loop.run_forever()
    for call in (
        lambda: loop.call_soon(print),
        lambda: loop.call_soon_threadsafe(print),
        lambda: loop.call_later(1, print),
        lambda: loop.call_at(1, print),
    ):
        with pytest.raises(RuntimeError, match=CLOSED):
            call()
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(RuntimeError, match=CLOSED):
            loop.add_reader(a, print)
        # Removing on a closed loop is a quiet False (asyncio's rule).
        assert loop.remove_reader(a) is False
        assert loop.remove_writer(a) is False


def test_close_releases_pending_callbacks(loop):
    class Cb:
        def __call__(self):
            pass

    a, b = socket.socketpair()
    refs = []
    try:
        for schedule in (
            lambda cb: loop.call_soon(cb),
            lambda cb: loop.call_later(3600, cb),
            lambda cb: loop.call_soon_threadsafe(cb),
            lambda cb: loop.add_reader(a, cb),
            lambda cb: loop.add_writer(b, cb),
        ):
            cb = Cb()
            refs.append(weakref.ref(cb))
            schedule(cb)
            del cb
        loop.close()
        gc.collect()
        assert [r() is None for r in refs] == [True] * len(refs), "close() kept a callback alive"
    finally:
        a.close()
        b.close()


# -- one fd, many registrations ------------------------------------------------------------------


def test_add_reader_replaces_the_previous_one(loop, pair):
    a, b = pair
    hits = []
    for i in range(1000):
        loop.add_reader(a, hits.append, i)
    b.send(b"x")

    def last(i):
        hits.append(i)
        loop.stop()

    loop.add_reader(a, last, "last")
    run_forever_until_stopped(loop, 5)
    assert hits == ["last"]
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_reader_and_writer_on_one_fd_and_level_triggering(loop, pair):
    a, b = pair
    events = []

    def on(kind, stop_when):
        events.append(kind)
        if stop_when():
            loop.stop()

    both = lambda: events.count("r") >= 3 and events.count("w") >= 3  # noqa: E731
    loop.add_writer(a, on, "w", both)
    loop.add_reader(a, on, "r", both)
    b.send(b"x")  # never read: the reader keeps firing (level-triggered)
    run_forever_until_stopped(loop, 5, lambda: events[:10])
    assert loop.remove_writer(a) is True
    events.clear()
    loop.add_reader(a, on, "r", lambda: events.count("r") >= 3)
    run_forever_until_stopped(loop, 5)
    assert events == ["r", "r", "r"]
    assert loop.remove_reader(a) is True


def test_reader_removed_from_inside_its_own_callback_then_readded_many_times(loop, pair):
    a, b = pair
    got = []
    n = 300

    def on_read():
        got.append(a.recv(10))
        assert loop.remove_reader(a) is True
        if len(got) == n:
            loop.stop()
        else:
            loop.call_soon(arm)

    def arm():
        loop.add_reader(a, on_read)
        b.send(b"%d," % len(got))

    loop.call_soon(arm)
    run_forever_until_stopped(loop, 20)
    assert got == [b"%d," % i for i in range(n)]


def test_many_loops_watching_one_fd_from_many_threads(loop_factory):
    a, b = socket.socketpair()
    with a, b:
        b.send(b"x")  # stays unread: every loop sees it readable
        results, errors = [], []

        def worker(k):
            lp = loop_factory()
            try:
                fut = lp.create_future()
                lp.add_reader(a.fileno(), lambda: fut.done() or fut.set_result(k))
                results.append(lp.run_until_complete(asyncio.wait_for(fut, 10)))
                lp.remove_reader(a.fileno())
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
            finally:
                lp.close()

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert sorted(results) == list(range(6))


def test_fd_reuse_after_close_and_remove(loop):
    for _ in range(20):
        a, b = socket.socketpair()
        fd = a.fileno()
        loop.add_reader(fd, lambda: None)
        a.close()
        b.close()
        # Removing a closed fd's reader is fine (epoll already forgot it).
        assert loop.remove_reader(fd) is True
        c, d = socket.socketpair()
        with c, d:
            s, peer = (c, d) if c.fileno() == fd else (d, c)
            assert s.fileno() == fd, "the kernel did not reuse the fd number"
            fut = loop.create_future()
            loop.add_reader(fd, lambda fut=fut: fut.done() or fut.set_result("new"))
            peer.send(b"y")
            assert loop.run_until_complete(asyncio.wait_for(fut, 5)) == "new"
            assert loop.remove_reader(fd) is True


def test_fd_removed_then_closed_while_a_dup_lives_and_the_number_reused(loop):
    """A reader removed (rtpy keeps the epoll registration until it is
    needed again), its fd closed while a dup keeps the socket open, and the
    number reused by a new socket: data on the old socket never runs the new
    socket's reader, the new socket's data does, and the idle loop does not
    spin on the old registration."""
    a, b = socket.socketpair()
    keep = a.dup()  # the old file lives on under another number
    fd = a.fileno()
    loop.add_reader(fd, lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()  # the old file is watched now
    loop.remove_reader(fd)
    a.close()
    c, d = socket.socketpair()
    with b, keep, c, d:
        s, peer = (c, d) if c.fileno() == fd else (d, c)
        assert s.fileno() == fd, "the kernel did not reuse the fd number"
        got = []
        loop.add_reader(fd, lambda: got.append("ran"))
        b.send(b"old")  # readable: the old file, not `s`
        iterations = []

        def tick():
            iterations.append(None)
            if len(iterations) < 10_000:
                loop.call_later(0.001, tick)

        loop.call_soon(tick)
        loop.call_later(0.1, loop.stop)
        loop.run_forever()
        assert got == [], "the old file's data ran the new socket's reader"
        # About 100 timer ticks in 0.1 s; a loop spinning on the old
        # registration would not sleep between them, but it could not run
        # more ticks either: check that it did wait (little CPU).
        t0 = time.process_time()
        loop.call_later(0.1, loop.stop)
        loop.run_forever()
        assert time.process_time() - t0 < 0.08, "the loop spun on the old registration"
        peer.send(b"new")
        fut = loop.create_future()
        loop.remove_reader(fd)
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(s.recv(16)))
        assert loop.run_until_complete(asyncio.wait_for(fut, 5)) == b"new"
        assert loop.remove_reader(fd) is True


def test_fd_reuse_after_close_with_a_reader_still_registered(loop, loop_kind, request):
    """The fd is closed behind the loop's back (its reader still registered),
    the number comes back with a new socket, and a new reader is set on it.
    epoll dropped the old file on close; the loop must register the new one
    (MOD -> ENOENT -> ADD), not believe it is still watched."""
    if loop_kind == "asyncio":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="asyncio: the same interest mask makes selectors skip epoll_ctl, so the new "
                "file is never watched and its reader never fires",
            )
        )
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(fd, lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()  # the old file is now in epoll
    a.close()
    b.close()
    c, d = socket.socketpair()
    with c, d:
        s, peer = (c, d) if c.fileno() == fd else (d, c)
        assert s.fileno() == fd
        fut = loop.create_future()
        loop.add_reader(fd, lambda: fut.done() or fut.set_result("new"))
        peer.send(b"y")
        loop.call_later(1.0, lambda: fut.done() or fut.set_result("never fired"))
        assert loop.run_until_complete(fut) == "new"
        assert loop.remove_reader(fd) is True


def test_fd_closed_while_watched_then_a_writer_is_added_on_the_new_file(loop, loop_kind, request):
    if loop_kind == "asyncio":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                raises=OSError,
                reason="asyncio: selectors' modify hits ENOENT for the dropped file and raises",
            )
        )
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(fd, lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    a.close()
    b.close()
    c, d = socket.socketpair()
    with c, d:
        s = c if c.fileno() == fd else d
        assert s.fileno() == fd
        fut = loop.create_future()
        loop.add_writer(fd, lambda: fut.done() or fut.set_result("writable"))
        assert loop.run_until_complete(asyncio.wait_for(fut, 5)) == "writable"
        loop.remove_writer(fd)
        loop.remove_reader(fd)


# -- bad input -----------------------------------------------------------------------------------


async def _coro_fn():
    pass


_BAD_CALLBACKS = [
    pytest.param(None, id="None"),
    pytest.param(42, id="int"),
    pytest.param("print", id="str"),
    pytest.param(_coro_fn, id="coroutine-function"),
]


@pytest.mark.parametrize("cb", _BAD_CALLBACKS)
def test_call_methods_reject_a_bad_callback_in_debug_mode(loop, cb):
    # asyncio checks the callback in debug mode (_check_callback).
    loop.set_debug(True)
    for call in (
        lambda: loop.call_soon(cb),
        lambda: loop.call_soon_threadsafe(cb),
        lambda: loop.call_later(0, cb),
        lambda: loop.call_at(loop.time(), cb),
    ):
        with pytest.raises(TypeError):
            call()
    loop.set_debug(False)


@pytest.mark.parametrize("cb", _BAD_CALLBACKS)
def test_a_bad_callback_outside_debug_mode_never_breaks_the_loop(loop, cb):
    """Outside debug mode asyncio takes any callback and the failure of
    calling it goes to the exception handler; a loop may as well refuse it up
    front with TypeError. Either way the loop goes on."""
    handled = []
    loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))
    scheduled = 0
    for call in (
        lambda: loop.call_soon(cb),
        lambda: loop.call_soon_threadsafe(cb),
        lambda: loop.call_later(0, cb),
        lambda: loop.call_at(loop.time(), cb),
    ):
        try:
            call()
            scheduled += 1
        except TypeError:
            pass
    log = []
    loop.call_later(0.001, log.append, "after")
    loop.call_later(0.002, loop.stop)
    with warnings_ignored():
        loop.run_forever()
        gc.collect()
    assert log == ["after"]
    if cb is not _coro_fn:  # calling a coroutine function does not raise
        assert len(handled) == scheduled
        assert all(isinstance(c["exception"], TypeError) for c in handled)


def warnings_ignored():
    import warnings

    cm = warnings.catch_warnings()
    cm.__enter__()
    warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited"

    class _Exit:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            cm.__exit__(*exc)

    return _Exit()


def test_call_methods_reject_a_coroutine_object_with_asyncios_message(loop):
    loop.set_debug(True)
    coro = _coro_fn()
    try:
        for call in (loop.call_soon, loop.call_soon_threadsafe):
            with pytest.raises(TypeError, match=r"coroutines cannot be used with call_soon(_threadsafe)?\(\)"):
                call(coro)
        # asyncio's call_later delegates to call_at and names it.
        with pytest.raises(TypeError, match=r"coroutines cannot be used with call_(later|at)\(\)"):
            loop.call_later(0, coro)
        with pytest.raises(TypeError, match=r"coroutines cannot be used with call_at\(\)"):
            loop.call_at(0, coro)
        with pytest.raises(TypeError, match="a callable object was expected by call_soon"):
            loop.call_soon(1)
    finally:
        coro.close()
        loop.set_debug(False)


def test_call_methods_reject_bad_arguments(loop):
    with pytest.raises(TypeError):
        loop.call_soon()
    with pytest.raises(TypeError):
        loop.call_soon(print, bogus=1)
    with pytest.raises(TypeError):
        loop.call_later(print)  # no callback
    with pytest.raises(TypeError, match="delay must not be None"):
        loop.call_later(None, print)
    with pytest.raises(TypeError):
        loop.call_later("1", print)
    with pytest.raises(TypeError):
        loop.call_later(object(), print)
    with pytest.raises(TypeError, match="when cannot be None"):
        loop.call_at(None, print)
    with pytest.raises(TypeError):
        loop.call_later(1, print, context=None, bogus=2)
    # None of these left anything behind: the loop runs and is empty.
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_a_bad_context_never_runs_the_callback_nor_breaks_the_loop(loop):
    """asyncio accepts any `context` and fails when running the handle (the
    error goes to the exception handler); a loop may as well refuse it up
    front with TypeError. Either way the callback does not run and the loop
    goes on."""
    ran, handled = [], []
    loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))
    try:
        loop.call_soon(ran.append, 1, context=42)
    except TypeError:
        refused = True
    else:
        refused = False
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == []
    assert refused or (len(handled) == 1 and isinstance(handled[0]["exception"], Exception))


@pytest.mark.parametrize(
    "fd, exc, msg",
    [
        (-1, ValueError, "Invalid file descriptor: -1"),
        ("abc", ValueError, "Invalid file object"),
        (None, ValueError, "Invalid file object"),
        (1.5, ValueError, "Invalid file object"),
        (object(), ValueError, "Invalid file object"),
    ],
    ids=["minus-one", "str", "None", "float", "object"],
)
def test_fd_methods_reject_a_bad_fd(loop, fd, exc, msg):
    for call in (
        lambda: loop.add_reader(fd, print),
        lambda: loop.add_writer(fd, print),
        lambda: loop.remove_reader(fd),
        lambda: loop.remove_writer(fd),
    ):
        with pytest.raises(exc, match=msg):
            call()


def test_fd_methods_reject_a_closed_fd_and_a_regular_file(loop):
    a, b = socket.socketpair()
    fd = a.detach()
    b.close()
    os.close(fd)
    with pytest.raises(OSError) as ei:
        loop.add_reader(fd, print)
    assert ei.value.errno == 9  # EBADF
    assert loop.remove_reader(fd) is False
    with tempfile.TemporaryFile() as f:
        with pytest.raises(OSError) as ei:
            loop.add_reader(f, print)
        assert ei.value.errno == 1  # EPERM: epoll refuses regular files
        assert loop.remove_reader(f) is False
    # An object whose fileno() says -1.
    class Neg:
        def fileno(self):
            return -1

    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.add_writer(Neg(), print)
    # Nothing half-registered: the loop still runs and waits well.
    loop.call_later(0.01, loop.stop)
    loop.run_forever()


def test_sock_methods_reject_bad_arguments(loop, pair):
    a, b = pair
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setblocking(False)

    cases = [
        (lambda: loop.sock_recv(a, "abc"), TypeError),
        (lambda: loop.sock_recv(a, -1), ValueError),
        (lambda: loop.sock_recv(a, None), TypeError),
        (lambda: loop.sock_recv_into(a, b"immutable"), TypeError),
        (lambda: loop.sock_recv_into(a, "str"), TypeError),
        (lambda: loop.sock_sendall(a, "str"), TypeError),
        (lambda: loop.sock_sendall(a, 123), TypeError),
        (lambda: loop.sock_sendall(a, None), TypeError),
        (lambda: loop.sock_recvfrom(udp, -1), ValueError),
        (lambda: loop.sock_recvfrom(udp, "x"), TypeError),
        (lambda: loop.sock_recvfrom_into(udp, b"immutable"), TypeError),
        (lambda: loop.sock_sendto(udp, "str", ("127.0.0.1", 9)), TypeError),
        (lambda: loop.sock_sendto(udp, b"x", "not an address"), (TypeError, OSError)),
        (lambda: loop.sock_sendto(udp, b"x", ("127.0.0.1", 70000)), OverflowError),
        (lambda: loop.sock_connect(tcp, ("127.0.0.1", 70000)), OverflowError),
        (lambda: loop.sock_accept(tcp), OSError),  # not listening: EINVAL
        (lambda: loop.sock_recv(42, 10), (TypeError, AttributeError)),
    ]

    async def main():
        for make, exc in cases:
            with pytest.raises(exc):
                await asyncio.wait_for(make(), 5)

    try:
        run(loop, main())
        # The loop holds no reader / writer for them afterwards.
        for s in (a, b, udp, tcp):
            assert loop.remove_reader(s) is False
            assert loop.remove_writer(s) is False
    finally:
        udp.close()
        tcp.close()


def test_sock_methods_reject_blocking_sockets_in_debug_mode(loop):
    loop.set_debug(True)
    a, b = socket.socketpair()  # blocking
    with a, b:

        async def main():
            for make in (
                lambda: loop.sock_recv(a, 10),
                lambda: loop.sock_recv_into(a, bytearray(10)),
                lambda: loop.sock_sendall(a, b"x"),
                lambda: loop.sock_accept(a),
            ):
                with pytest.raises(ValueError, match="the socket must be non-blocking"):
                    await make()

        run(loop, main())
    loop.set_debug(False)


def test_sock_sendfile_rejects_bad_arguments(loop, pair):
    a, _ = pair
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    with tempfile.TemporaryFile("w+b") as f, tempfile.TemporaryFile("w+") as text, udp:
        f.write(b"data")
        f.flush()
        cases = [
            (lambda: loop.sock_sendfile(a, text), ValueError, "binary mode"),
            (lambda: loop.sock_sendfile(udp, f), ValueError, "SOCK_STREAM"),
            (lambda: loop.sock_sendfile(a, f, -1), ValueError, "offset must be a non-negative integer"),
            (lambda: loop.sock_sendfile(a, f, "x"), TypeError, "offset must be a non-negative integer"),
            (lambda: loop.sock_sendfile(a, f, 0, 0), ValueError, "count must be a positive integer"),
            (lambda: loop.sock_sendfile(a, f, 0, "x"), TypeError, "count must be a positive integer"),
        ]

        async def main():
            for make, exc, msg in cases:
                with pytest.raises(exc, match=msg):
                    await make()

        run(loop, main())


def test_sock_recv_on_a_closed_socket(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    a.close()
    b.close()

    async def main():
        with pytest.raises(OSError):
            await asyncio.wait_for(loop.sock_recv(a, 10), 5)
        with pytest.raises(OSError):
            await asyncio.wait_for(loop.sock_sendall(a, b"x"), 5)

    run(loop, main())


# -- KeyboardInterrupt, SystemExit ----------------------------------------------------------------


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("where", ["call_soon", "call_later", "reader"])
def test_base_exception_in_a_callback_leaves_the_loop_usable(loop, exc_type, where):
    log = []
    a, b = socket.socketpair()
    with a, b:

        def boom():
            log.append("boom")
            if where == "reader":
                loop.remove_reader(a)
            raise exc_type("from a callback")

        if where == "call_soon":
            loop.call_soon(boom)
        elif where == "call_later":
            loop.call_later(0.001, boom)
        else:
            loop.add_reader(a, boom)
            b.send(b"x")

        def after():
            log.append("after")

        def first_of_next():
            # Queued behind boom in the same batch: not run by the interrupted
            # iteration, run by the next run, in order.
            loop.call_soon(after)

        safety = stop_after(loop, 5)
        with pytest.raises(exc_type, match="from a callback"):
            loop.run_forever()
        assert log == ["boom"]
        assert not loop.is_running()
        assert not loop.is_closed()
        assert asyncio._get_running_loop() is None
        loop.call_soon(first_of_next)
        loop.call_soon(loop.stop)
        loop.run_forever()
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert log == ["boom", "after"]
        assert not safety
        assert loop.run_until_complete(asyncio.sleep(0.001, "again")) == "again"


def test_keyboard_interrupt_mid_batch_keeps_the_rest_in_order(loop):
    log = []

    def boom():
        log.append("boom")
        raise KeyboardInterrupt

    loop.call_soon(log.append, 1)
    loop.call_soon(boom)
    for i in range(2, 6):
        loop.call_soon(log.append, i)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert log == [1, "boom"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert log == [1, "boom", 2, 3, 4, 5]


def test_keyboard_interrupt_from_a_task_comes_out_of_run_until_complete(loop):
    async def main():
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(main())
    assert loop.run_until_complete(asyncio.sleep(0, "usable")) == "usable"


# -- the exception handler ----------------------------------------------------------------------


def _expected_message(cb, args):
    return "Exception in callback " + format_helpers._format_callback_source(cb, args)


def test_exception_in_a_callback_goes_to_the_handler_with_asyncios_keys(loop):
    got = []
    loop.set_exception_handler(lambda lp, ctx: got.append((lp, ctx)))

    def bad(x, y):
        raise ValueError(f"bad {x} {y}")

    h_soon = loop.call_soon(bad, 1, "a")
    h_later = loop.call_later(0.001, bad, 2, "b")
    h_ts = loop.call_soon_threadsafe(bad, 3, "c")
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert len(got) == 3
    for (lp, ctx), h, args in zip(
        sorted(got, key=lambda g: g[1]["exception"].args[0]),
        (h_soon, h_later, h_ts),
        ((1, "a"), (2, "b"), (3, "c")),
    ):
        assert lp is loop
        assert set(ctx) == {"message", "exception", "handle"}, sorted(ctx)
        assert ctx["handle"] is h
        assert isinstance(ctx["exception"], ValueError)
        assert ctx["exception"].args == (f"bad {args[0]} {args[1]}",)
        assert ctx["message"] == _expected_message(bad, args)
        assert ctx["exception"].__traceback__ is not None


def test_exception_in_a_reader_goes_to_the_handler(loop):
    got, reprs = [], []
    loop.set_exception_handler(lambda lp, ctx: (got.append(ctx), reprs.append(repr(ctx.get("handle")))))
    a, b = socket.socketpair()
    with a, b:

        def bad_reader():
            a.recv(10)  # drained: level-triggered, it does not fire again
            raise OSError("reader failed")

        loop.add_reader(a, bad_reader)
        b.send(b"x")
        loop.call_later(0.05, loop.stop)
        loop.run_forever()
        # (Removed after the run: asyncio's remove_reader cancels the handle,
        # which forgets the callback the message is made from.)
        assert loop.remove_reader(a) is True
    assert len(got) == 1
    ctx = got[0]
    assert {"message", "exception", "handle"} <= set(ctx)
    assert isinstance(ctx["exception"], OSError)
    assert ctx["message"] == _expected_message(bad_reader, ())
    assert "bad_reader" in reprs[0]


def test_exception_context_in_debug_mode_has_the_source_traceback(loop):
    got = []
    loop.set_debug(True)
    loop.slow_callback_duration = 10
    loop.set_exception_handler(lambda lp, ctx: got.append(ctx))

    def bad():
        raise ValueError("debug")

    h = loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.set_debug(False)
    assert len(got) == 1
    ctx = got[0]
    assert ctx["handle"] is h
    assert "source_traceback" in ctx
    tb = ctx["source_traceback"]
    assert tb and any("test_exception_context_in_debug_mode" in frame.name for frame in tb)


def test_default_handler_logs_and_a_failing_handler_is_logged(loop, caplog):
    def bad():
        raise ValueError("to the log")

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_soon(bad)
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert any("Exception in callback" in r.getMessage() and r.exc_info for r in caplog.records)
    caplog.clear()

    def failing_handler(lp, ctx):
        raise RuntimeError("the handler failed")

    loop.set_exception_handler(failing_handler)
    log = []
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_soon(bad)
        loop.call_soon(log.append, "next")
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert log == ["next"], "a failing handler must not stop the batch"
    assert any("Unhandled error in exception handler" in r.getMessage() for r in caplog.records)


def test_exceptions_do_not_stop_the_batch_and_are_counted_once(loop):
    got = []
    loop.set_exception_handler(lambda lp, ctx: got.append(ctx["exception"]))
    log = []

    def bad(i):
        raise ValueError(i)

    for i in range(100):
        loop.call_soon(bad if i % 2 else log.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert log == list(range(0, 100, 2))
    assert [e.args[0] for e in got] == list(range(1, 100, 2))


# -- bursts -------------------------------------------------------------------------------------


def test_a_100k_callback_burst(loop):
    n = 100_000
    log = []
    done = loop.create_future()

    def burst():
        soon = loop.call_soon
        for i in range(n):
            soon(log.append, i)
        soon(done.set_result, None)

    loop.call_soon(burst)
    t0 = time.perf_counter()
    loop.run_until_complete(asyncio.wait_for(done, 60))
    wall = time.perf_counter() - t0
    assert len(log) == n and log == list(range(n))
    print(f"\n100k call_soon burst: {wall * 1e3:.1f} ms ({wall / n * 1e9:.0f} ns per callback)")


def test_a_100k_threadsafe_burst_from_threads(loop):
    n_threads, per = 4, 25_000
    seen = {k: 0 for k in range(n_threads)}
    bad = []
    done = loop.create_future()
    total = [0]

    def rec(k, i):
        if seen[k] != i:
            bad.append((k, i, seen[k]))
        seen[k] = i + 1
        total[0] += 1
        if total[0] == n_threads * per:
            done.set_result(None)

    def producer(k):
        ts = loop.call_soon_threadsafe
        for i in range(per):
            ts(rec, k, i)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    try:
        loop.run_until_complete(asyncio.wait_for(done, 60))
    finally:
        for t in threads:
            t.join(30)
    assert bad == []
    assert seen == {k: per for k in range(n_threads)}


def test_a_100k_timer_burst_all_fire_never_early(loop):
    import random

    n = 100_000
    rng = random.Random(5)
    count = [0]
    early = []
    done = loop.create_future()

    def fired(h_when):
        if loop.time() < h_when:
            early.append(h_when)
        count[0] += 1
        if count[0] == n:
            done.set_result(None)

    def burst():
        now = loop.time()
        later = loop.call_at
        for _ in range(n):
            w = now + rng.random() * 0.05
            later(w, fired, w)

    loop.call_soon(burst)
    loop.run_until_complete(asyncio.wait_for(done, 60))
    assert early == []
    assert count[0] == n


def test_callbacks_scheduled_while_running_wait_for_the_next_iteration(loop):
    # A callback that keeps re-scheduling itself must not starve timers or I/O.
    spins = [0]
    timer_fired = []

    def spin():
        spins[0] += 1
        if not timer_fired:
            loop.call_soon(spin)

    loop.call_soon(spin)
    loop.call_later(0.02, lambda: (timer_fired.append(spins[0]), loop.stop()))
    run_forever_until_stopped(loop, 5)
    assert timer_fired and timer_fired[0] > 1


@pytest.mark.skipif(sys.platform != "linux", reason="Linux only")
def test_many_fds_registered_at_once(loop):
    pairs = [socket.socketpair() for _ in range(200)]
    try:
        hits = set()
        done = loop.create_future()
        for i, (a, _) in enumerate(pairs):

            def on(i=i, a=a):
                a.recv(1)
                loop.remove_reader(a)
                hits.add(i)
                if len(hits) == len(pairs):
                    done.set_result(None)

            loop.add_reader(a, on)
        for _, b in reversed(pairs):
            b.send(b"z")
        loop.run_until_complete(asyncio.wait_for(done, 10))
        assert hits == set(range(len(pairs)))
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# -- lifetimes, signals, pool after close -------------------------------------------------------


def test_an_unclosed_loop_with_pending_callbacks_is_garbage_collected(loop_factory):
    """Cycles through the loop's own queues (loop -> handle -> callback ->
    loop) are found by the GC: the loop needs to report what it holds."""
    import warnings

    class Owner:
        def __init__(self, lp):
            self.lp = lp

        def cb(self):
            pass

    lp = loop_factory()
    owner = Owner(lp)
    a, b = socket.socketpair()
    try:
        lp.call_soon(owner.cb)
        lp.call_later(3600, owner.cb)
        lp.call_soon_threadsafe(owner.cb)
        lp.add_reader(a, owner.cb)
        ref = weakref.ref(lp)
        oref = weakref.ref(owner)
        del lp, owner
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # "unclosed event loop"
            for _ in range(3):
                gc.collect()
        assert ref() is None, "the loop was not collected"
        assert oref() is None
    finally:
        a.close()
        b.close()


def test_a_handle_in_a_cycle_with_its_callback_is_collected(loop):
    class Cb:
        def __call__(self):
            pass

    refs = []
    for schedule in (loop.call_soon, lambda cb: loop.call_later(0, cb)):
        cb = Cb()
        cb.handle = schedule(cb)  # handle -> cb -> handle
        refs.append(weakref.ref(cb))
        del cb
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    gc.collect()
    assert [r() for r in refs] == [None, None], "a run handle kept its callback alive through a cycle"


def test_many_cancelled_timers_are_released(loop):
    class Cb:
        def __call__(self):
            raise AssertionError("a cancelled timer ran")

    cb = Cb()
    ref = weakref.ref(cb)
    hs = [loop.call_later(10 + i * 1e-4, cb) for i in range(100_000)]
    del cb
    for h in hs:
        h.cancel()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    del hs
    gc.collect()
    assert ref() is None, "cancelled timers still hold their callback"


def test_fd_closed_inside_its_own_reader_callback(loop):
    a, b = socket.socketpair()
    fd = a.fileno()
    calls = []

    def on_read():
        calls.append(1)
        a.close()  # behind the loop's back: no remove_reader

    loop.add_reader(fd, on_read)
    b.send(b"x")
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    b.close()
    assert calls == [1], "a closed fd kept firing"
    assert loop.remove_reader(fd) is True
    assert loop.remove_reader(fd) is False


def test_keyboard_interrupt_while_the_loop_waits(loop):
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")
    old = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:

        def send():
            time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGINT)

        safety = stop_after(loop, 10)
        t = threading.Thread(target=send)
        t0 = time.monotonic()
        t.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                loop.run_forever()
        finally:
            t.join()
        assert time.monotonic() - t0 < 3, "Ctrl-C did not interrupt the wait"
        assert not safety
        assert not loop.is_running()
        assert loop.run_until_complete(asyncio.sleep(0.001, "usable")) == "usable"
    finally:
        signal.signal(signal.SIGINT, old)


def test_an_executor_job_finishing_after_close(loop):
    job = SlowJob(0.2, result=1)

    fut = loop.run_in_executor(None, job)
    loop.run_until_complete(asyncio.sleep(0))
    assert job.started.wait(5)
    # Closed with the job still running: its result has no loop to go to.
    loop.close()
    deadline = time.monotonic() + 10
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    gc.collect()
    assert job.finished == [True]
    assert not fut.done() or fut.cancelled() or fut.result() == 1


@pytest.mark.parametrize("when", [float("-inf"), -1e308])
def test_extreme_past_deadlines_fire_at_once(loop, when):
    log = []
    h = loop.call_at(when, log.append, "fired")
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert log == ["fired"]
    assert h.when() <= loop.time()


def test_fd_objects_whose_fileno_misbehaves(loop):
    class F:
        def __init__(self, v):
            self.v = v

        def fileno(self):
            if isinstance(self.v, BaseException):
                raise self.v
            return self.v

    with pytest.raises(RuntimeError, match="fileno failed"):
        loop.add_reader(F(RuntimeError("fileno failed")), print)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader(F(ValueError("no")), print)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader(F(None), print)
    for huge in (2**31, 2**40, 2**70):
        with pytest.raises((OverflowError, ValueError, OSError)):
            loop.add_reader(huge, print)
        with pytest.raises((OverflowError, ValueError, OSError)):
            loop.add_writer(F(huge), print)
    with pytest.raises((OverflowError, ValueError)):
        loop.add_reader(-(2**70), print)
    loop.call_later(0.005, loop.stop)
    loop.run_forever()


@pytest.mark.parametrize("cb", [None, 42, "print"], ids=["None", "int", "str"])
def test_a_bad_reader_callback_never_breaks_the_loop(loop, cb):
    """asyncio's add_reader takes any callback (no check, even in debug mode)
    and the TypeError of calling it goes to the exception handler each time
    the fd is ready; a loop may refuse it up front with TypeError instead."""
    handled = []
    loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))
    a, b = socket.socketpair()
    with a, b:
        try:
            loop.add_reader(a, cb)
        except TypeError:
            accepted = False
        else:
            accepted = True
        b.send(b"x")
        loop.call_later(0.01, loop.stop)
        loop.run_forever()
        if accepted:
            assert handled and all(isinstance(c["exception"], TypeError) for c in handled)
            assert loop.remove_reader(a) is True
        else:
            assert handled == [] and loop.remove_reader(a) is False
