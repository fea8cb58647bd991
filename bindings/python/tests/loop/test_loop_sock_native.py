"""The native paths of sock_recv / sock_recv_into / sock_sendall (rtpy/_unix.py over
src/event_loop/sock.rs) and the cases that leave them for the Python path: cancellation, a
reader taken over, a transport's fd, errors set on the future, closed sockets and loops, debug
mode's check, socket subclasses, sizes. Each test runs on asyncio's loop too (the reference)."""

import asyncio
import errno
import socket

import pytest

from .support import run


def socketpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def tcp_pair():
    """A connected non-blocking TCP pair over loopback."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    c = socket.create_connection(ls.getsockname())
    s, _ = ls.accept()
    ls.close()
    c.setblocking(False)
    s.setblocking(False)
    return c, s


def fill_send_buffer(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    while True:
        try:
            sock.send(b"x" * 65536)
        except BlockingIOError:
            return


def test_sock_methods_are_coroutine_functions(loop):
    for name in ("sock_recv", "sock_recv_into", "sock_sendall"):
        assert asyncio.iscoroutinefunction(getattr(loop, name)), name


def test_cancelled_recv_removes_its_reader_and_loses_no_data(loop):
    a, b = socketpair()

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(b, 100))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        assert not loop.remove_reader(b.fileno())  # nothing left registered
        await loop.sock_sendall(a, b"kept")
        return await loop.sock_recv(b, 100)

    with a, b:
        assert run(loop, main()) == b"kept"


def test_cancelled_sendall_removes_its_writer(loop):
    a, b = socketpair()
    fill_send_buffer(a)

    async def main():
        task = asyncio.ensure_future(loop.sock_sendall(a, b"y" * 100_000))
        await asyncio.sleep(0.01)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return loop.remove_writer(a.fileno())

    with a, b:
        assert run(loop, main()) is False


def test_reader_taken_over_stays_after_cancel(loop):
    a, b = socketpair()
    seen = []

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(b, 100))
        await asyncio.sleep(0.01)
        loop.add_reader(b.fileno(), lambda: seen.append(b.recv(100)))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        await loop.sock_sendall(a, b"to the new reader")
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        return loop.remove_reader(b.fileno())

    with a, b:
        assert run(loop, main()) is True
    assert seen == [b"to the new reader"]


def test_partial_sendall_of_bytes_continues(loop):
    a, b = socketpair()
    payload = bytes(range(256)) * 16384  # 4 MiB, more than the socket buffers

    async def reader():
        buf = bytearray(65536)
        out = bytearray()
        while len(out) < len(payload):
            n = await loop.sock_recv_into(b, buf)
            assert n
            out += buf[:n]
        return bytes(out)

    async def main():
        rtask = asyncio.ensure_future(reader())
        await loop.sock_sendall(a, payload)
        return await rtask

    with a, b:
        assert run(loop, main(), timeout=30) == payload


def test_fd_used_by_a_transport_is_refused(loop):
    a, b = socketpair()

    async def main():
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=b)
        try:
            with pytest.raises(RuntimeError, match="used by transport"):
                await loop.sock_recv(b, 10)
        finally:
            transport.close()
            await asyncio.sleep(0)

    with a:
        run(loop, main())


def test_connection_reset_is_set_on_the_waiting_future(loop):
    c, s = tcp_pair()

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(s, 100))
        await asyncio.sleep(0.01)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()  # RST
        with pytest.raises(ConnectionResetError) as info:
            await task
        return info.value.errno

    with s:
        assert run(loop, main()) == errno.ECONNRESET


def test_closed_socket_raises_ebadf(loop):
    a, b = socketpair()
    a.close()
    b.close()

    async def main():
        errs = []
        for call in (
            loop.sock_recv(b, 10),
            loop.sock_recv_into(b, bytearray(10)),
            loop.sock_sendall(b, b"x"),
        ):
            with pytest.raises(OSError) as info:
                await call
            errs.append(info.value.errno)
        return errs

    assert run(loop, main()) == [errno.EBADF] * 3


def test_debug_mode_refuses_a_blocking_socket(loop):
    a, b = socket.socketpair()
    loop.set_debug(True)

    async def main():
        for call in (loop.sock_recv(b, 10), loop.sock_recv_into(b, bytearray(1)), loop.sock_sendall(b, b"x")):
            with pytest.raises(ValueError, match="non-blocking"):
                await call

    with a, b:
        run(loop, main())


def test_sizes_and_other_sockets_and_buffers(loop):
    a, b = socketpair()

    class Sub(socket.socket):
        pass

    async def main():
        assert await loop.sock_recv(b, 0) == b""
        await loop.sock_sendall(a, b"")
        await loop.sock_sendall(a, bytearray(b"12"))
        await loop.sock_sendall(a, memoryview(b"34"))
        assert await loop.sock_recv(b, 1 << 20) == b"1234"  # over the native size limit
        with pytest.raises(ValueError):
            await loop.sock_recv(b, -1)
        c, d = socket.socketpair()
        sc = Sub(fileno=c.detach())
        sc.setblocking(False)
        d.setblocking(False)
        with sc, d:
            task = asyncio.ensure_future(loop.sock_recv(sc, 10))
            await asyncio.sleep(0.01)
            await loop.sock_sendall(d, b"sub")
            return await task

    with a, b:
        assert run(loop, main()) == b"sub"


def test_closed_loop_refuses_to_wait_but_returns_ready_data(loop_factory):
    lp = loop_factory()
    a, b = socketpair()
    lp.close()

    async def main():
        with pytest.raises(RuntimeError, match="closed"):
            await lp.sock_recv(b, 10)
        a.send(b"ready")
        return await lp.sock_recv(b, 10)

    coro = main()
    with a, b:
        try:
            coro.send(None)
        except StopIteration as stop:
            assert stop.value == b"ready"
        else:
            pytest.fail("main() waited")


def test_recv_sizes_around_the_first_chunk(loop):
    a, b = socketpair()
    payload = bytes(i * 7 % 251 for i in range(100_000))

    async def main():
        await loop.sock_sendall(a, payload)
        got = []
        for n in (16384, 20000, 1, 16383, 60000):  # the first receive takes at most 16 KiB
            got.append(await loop.sock_recv(b, n))
        return got

    with a, b:
        got = run(loop, main())
    assert [len(g) for g in got] == [16384, 20000, 1, 16383, 47232]  # the last: what was left
    assert b"".join(got) == payload
