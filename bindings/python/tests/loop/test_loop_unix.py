"""The Unix half of the loop (rtpy/_unix.py): signals, pipes, subprocesses, datagram endpoints, every
sock_* method and sock_sendfile. Each test runs on asyncio's loop and on rtpy's (the `loop` fixture),
so asyncio's behaviour is checked as the reference beside ours."""

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from .support import run

SIGNAL_WAIT_S = 5.0


def socketpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def fill_send_buffer(sock):
    """Sends until the kernel buffer is full (the next send would block)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    chunk = b"x" * 65536
    while True:
        try:
            sock.send(chunk)
        except BlockingIOError:
            return


def tcp_listener():
    ls = socket.socket()
    ls.setblocking(False)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    return ls


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.bind(("127.0.0.1", 0))
    return s


# --------------------------------------------------------------------------------------- signals
@pytest.fixture
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    signal.set_wakeup_fd(-1)


async def wait_for_flag(event):
    await asyncio.wait_for(event.wait(), SIGNAL_WAIT_S)


def test_signal_handler_runs_with_args(loop, restore_signals):
    async def main():
        got = []
        ev = asyncio.Event()

        def handler(*args):
            got.append(args)
            ev.set()

        loop.add_signal_handler(signal.SIGUSR1, handler, "a", 2)
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_for_flag(ev)
        return got

    assert run(loop, main()) == [("a", 2)]


def test_signal_handler_runs_once_per_delivery_and_in_a_later_callback(loop, restore_signals):
    async def main():
        got = []
        ev = asyncio.Event()

        def handler():
            got.append(loop.time())
            if len(got) == 2:
                ev.set()

        loop.add_signal_handler(signal.SIGUSR1, handler)
        os.kill(os.getpid(), signal.SIGUSR1)
        # Python's C handler only flags the signal: the handler runs from the loop, not from kill().
        assert got == []
        while not got:
            await asyncio.sleep(0.001)
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_for_flag(ev)
        return got

    assert len(run(loop, main())) == 2


@pytest.fixture
def restore_sigalrm():
    old = signal.getsignal(signal.SIGALRM)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def test_signal_wakes_a_loop_waiting_in_poll(loop, restore_signals, restore_sigalrm):
    """A signal that arrives while the loop waits (nothing ready, the next timer far away) runs its
    handler at once: the wakeup fd ends the wait."""

    async def main():
        ev = asyncio.Event()
        loop.add_signal_handler(signal.SIGALRM, ev.set)
        loop.add_signal_handler(signal.SIGUSR1, ev.set)
        far = loop.call_later(30, lambda: None)  # the loop would sleep until then
        try:
            lateness = []
            # From the kernel (a timer), then from another thread.
            for fire in (
                lambda: signal.setitimer(signal.ITIMER_REAL, 0.05),
                lambda: threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start(),
            ):
                ev.clear()
                t0 = loop.time()
                fire()
                await wait_for_flag(ev)
                lateness.append(loop.time() - t0)
            return lateness
        finally:
            far.cancel()

    for elapsed in run(loop, main()):
        assert elapsed < 2.0  # 0.05 s plus scheduling under load, not the 30 s timer


def test_signal_handler_added_from_inside_a_callback(loop, restore_signals):
    ev = asyncio.Event()
    got = []

    def handler():
        got.append("sig")
        ev.set()

    def install():
        loop.add_signal_handler(signal.SIGUSR2, handler)
        os.kill(os.getpid(), signal.SIGUSR2)

    async def main():
        loop.call_soon(install)
        await wait_for_flag(ev)

    run(loop, main())
    assert got == ["sig"]


def test_signal_handler_replaced_and_removed(loop, restore_signals):
    async def main():
        got = []
        ev = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, got.append, "old")
        loop.add_signal_handler(signal.SIGUSR1, lambda: (got.append("new"), ev.set()))
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_for_flag(ev)
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert loop.remove_signal_handler(signal.SIGUSR1) is False
        return got

    assert run(loop, main()) == ["new"]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_remove_sigint_handler_restores_default_int_handler(loop, restore_signals):
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, signal.SIG_DFL)
    assert loop.remove_signal_handler(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signal_handler_exception_goes_to_exception_handler(loop, restore_signals):
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        def handler():
            raise ZeroDivisionError("in handler")

        loop.add_signal_handler(signal.SIGUSR1, handler)
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(5000):
            if errors:
                break
            await asyncio.sleep(0.001)

    run(loop, main())
    assert len(errors) == 1
    assert isinstance(errors[0]["exception"], ZeroDivisionError)


def test_cancelled_signal_handle_does_not_run_and_is_removed(loop, restore_signals):
    async def main():
        got = []
        loop.add_signal_handler(signal.SIGUSR1, got.append, 1)
        loop._signal_handlers[signal.SIGUSR1].cancel()
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(5000):
            if signal.SIGUSR1 not in loop._signal_handlers:
                break
            await asyncio.sleep(0.001)
        return got

    assert run(loop, main()) == []
    assert signal.SIGUSR1 not in loop._signal_handlers
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


@pytest.mark.parametrize(
    ("sig", "exc"),
    [("boom", TypeError), (signal.NSIG + 1, ValueError), (0, ValueError), (-1, ValueError)],
)
def test_signal_bad_numbers(loop, sig, exc):
    with pytest.raises(exc):
        loop.add_signal_handler(sig, lambda: None)
    with pytest.raises(exc):
        loop.remove_signal_handler(sig)


def test_signal_uncatchable_and_coroutines(loop, restore_signals):
    for sig in (signal.SIGKILL, signal.SIGSTOP):
        with pytest.raises(RuntimeError):
            loop.add_signal_handler(sig, lambda: None)
        assert loop.remove_signal_handler(sig) is False

    async def coro():
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    c = coro()
    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, c)
    c.close()
    # The failed calls left no handler behind.
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_handler_outside_main_thread_is_refused(loop, restore_signals):
    caught = []

    def other():
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            caught.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(caught) == 1 and isinstance(caught[0], RuntimeError)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_handler_on_closed_loop(loop_factory, restore_signals):
    lp = loop_factory()
    lp.close()
    with pytest.raises(RuntimeError):
        lp.add_signal_handler(signal.SIGUSR1, lambda: None)


def test_close_restores_default_dispositions_and_wakeup_fd(loop_factory, restore_signals):
    lp = loop_factory()
    lp.add_signal_handler(signal.SIGUSR1, lambda: None)
    lp.add_signal_handler(signal.SIGINT, lambda: None)
    assert signal.set_wakeup_fd(-1) != -1  # the loop's, put back at once
    lp.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.set_wakeup_fd(-1) == -1


# ----------------------------------------------------------------------------------------- pipes
class RecordingProtocol(asyncio.Protocol):
    def __init__(self, loop):
        self.data = bytearray()
        self.events = []
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.events.append("made")

    def data_received(self, data):
        self.data += data

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append("lost")
        if not self.done.done():
            self.done.set_result(exc)


def test_read_pipe(loop):
    async def main():
        rfd, wfd = os.pipe()
        proto = RecordingProtocol(loop)
        transport, _ = await loop.connect_read_pipe(lambda: proto, os.fdopen(rfd, "rb", 0))
        assert isinstance(transport, asyncio.ReadTransport)
        os.write(wfd, b"hello ")
        os.write(wfd, b"pipe")
        os.close(wfd)
        assert await asyncio.wait_for(proto.done, 5) is None
        return proto

    proto = run(loop, main())
    assert bytes(proto.data) == b"hello pipe"
    assert proto.events == ["made", "eof", "lost"]


def test_read_pipe_pause_resume(loop):
    async def main():
        rfd, wfd = os.pipe()
        proto = RecordingProtocol(loop)
        transport, _ = await loop.connect_read_pipe(lambda: proto, os.fdopen(rfd, "rb", 0))
        transport.pause_reading()
        os.write(wfd, b"held")
        await asyncio.sleep(0.05)
        assert bytes(proto.data) == b""
        transport.resume_reading()
        os.close(wfd)
        await asyncio.wait_for(proto.done, 5)
        return proto

    assert bytes(run(loop, main()).data) == b"held"


def test_write_pipe(loop):
    async def main():
        rfd, wfd = os.pipe()
        proto = RecordingProtocol(loop)
        transport, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(wfd, "wb", 0))
        assert isinstance(transport, asyncio.WriteTransport)
        payload = os.urandom(300_000)  # more than the pipe buffer: the transport has to wait
        transport.write(payload)
        received = bytearray()
        os.set_blocking(rfd, False)
        while len(received) < len(payload):
            try:
                chunk = os.read(rfd, 65536)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            received += chunk
        transport.close()
        assert await asyncio.wait_for(proto.done, 5) is None
        os.close(rfd)
        return payload, bytes(received)

    payload, received = run(loop, main())
    assert received == payload


def test_write_pipe_reader_closed(loop):
    async def main(write_after):
        rfd, wfd = os.pipe()
        proto = RecordingProtocol(loop)
        transport, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(wfd, "wb", 0))
        os.close(rfd)
        if write_after:
            transport.write(b"to nobody")
        return await asyncio.wait_for(proto.done, 5)

    # Nothing buffered: the write end sees the reader go (EPOLLERR), a clean connection_lost(None).
    assert run(loop, main(False)) is None
    # A write into a pipe without reader: EPIPE, connection_lost(BrokenPipeError).
    assert isinstance(run(loop, main(True)), BrokenPipeError)


# ----------------------------------------------------------------------------------- subprocesses
def test_subprocess_exec_stdin_stdout(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        out, err = await proc.communicate(b"hello subprocess")
        return out, err, proc.returncode

    assert run(loop, main(), timeout=30) == (b"HELLO SUBPROCESS", None, 0)


def test_subprocess_shell_exit_code_and_stderr(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo $((6*7)); echo oops >&2; exit 3", stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await proc.communicate()
        return out, err, proc.returncode

    assert run(loop, main(), timeout=30) == (b"42\n", b"oops\n", 3)


def test_subprocess_transport_extra_info_and_kill(loop):
    async def main():
        exited = loop.create_future()

        class P(asyncio.SubprocessProtocol):
            def process_exited(self):
                exited.set_result(None)

        transport, _ = await loop.subprocess_exec(P, sys.executable, "-c", "import time; time.sleep(30)")
        popen = transport.get_extra_info("subprocess")
        assert isinstance(popen, subprocess.Popen)
        assert popen.pid == transport.get_pid()
        transport.kill()
        await asyncio.wait_for(exited, 10)
        code = transport.get_returncode()
        transport.close()
        return code

    assert run(loop, main(), timeout=30) == -signal.SIGKILL


def test_subprocess_missing_program(loop):
    async def main():
        await asyncio.create_subprocess_exec("/nonexistent/rtpy-test-program")

    with pytest.raises(FileNotFoundError):
        run(loop, main())


# ------------------------------------------------------------------------------ datagram endpoints
def test_datagram_endpoints_exchange(loop, loop_kind):
    async def main():
        got = loop.create_future()
        echoed = loop.create_future()

        class Server(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(data.upper(), addr)

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                echoed.set_result((data, addr))

            def connection_lost(self, exc):
                got.set_result(exc)

        st, _ = await loop.create_datagram_endpoint(Server, local_addr=("127.0.0.1", 0))
        addr = st.get_extra_info("sockname")
        ct, _ = await loop.create_datagram_endpoint(Client, remote_addr=addr)
        # The stock transport is an asyncio.DatagramTransport from 3.12 on; rtpy's on every version.
        if loop_kind == "rtpy" or sys.version_info >= (3, 12):
            assert isinstance(ct, asyncio.DatagramTransport)
        assert "fd=" in repr(ct)
        ct.sendto(b"ping")
        data, src = await asyncio.wait_for(echoed, 5)
        ct.close()
        assert await asyncio.wait_for(got, 5) is None
        st.close()
        await asyncio.sleep(0)
        return data, src, addr, repr(ct)

    data, src, addr, closed_repr = run(loop, main())
    assert data == b"PING" and src == addr
    assert "closed" in closed_repr


def test_datagram_error_received(loop):
    async def main():
        errors = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def error_received(self, exc):
                if not errors.done():
                    errors.set_result(exc)

        # A closed UDP port: the kernel answers with ICMP port unreachable (ECONNREFUSED).
        probe = udp_socket()
        addr = probe.getsockname()
        probe.close()
        ct, _ = await loop.create_datagram_endpoint(Client, remote_addr=addr)
        for _ in range(50):
            ct.sendto(b"x")
            try:
                return await asyncio.wait_for(asyncio.shield(errors), 0.1)
            except asyncio.TimeoutError:
                pass
            finally:
                if errors.done():
                    ct.close()
        ct.close()
        return None

    assert isinstance(run(loop, main()), ConnectionRefusedError)


# ------------------------------------------------------------------------------------------ sock_*
def test_sock_recv_sendall_immediate_and_waiting(loop):
    a, b = socketpair()

    async def main():
        await loop.sock_sendall(a, b"now")
        assert await loop.sock_recv(b, 100) == b"now"  # data already there: no wait
        task = asyncio.ensure_future(loop.sock_recv(b, 100))
        await asyncio.sleep(0.01)
        assert not task.done()
        await loop.sock_sendall(a, b"later")
        return await task

    with a, b:
        assert run(loop, main()) == b"later"


def test_sock_sendall_large_with_concurrent_reader(loop):
    a, b = socketpair()
    payload = os.urandom(4 * 1024 * 1024)

    async def reader():
        buf = bytearray()
        while len(buf) < len(payload):
            chunk = await loop.sock_recv(b, 1 << 16)
            assert chunk
            buf += chunk
        return bytes(buf)

    async def main():
        rtask = asyncio.ensure_future(reader())
        await loop.sock_sendall(a, memoryview(payload))
        return await rtask

    with a, b:
        assert run(loop, main(), timeout=30) == payload


def test_sock_recv_into(loop):
    a, b = socketpair()

    async def main():
        buf = bytearray(10)
        task = asyncio.ensure_future(loop.sock_recv_into(b, buf))
        await asyncio.sleep(0.01)
        await loop.sock_sendall(a, b"abc")
        n = await task
        await loop.sock_sendall(a, b"defg")
        m = await loop.sock_recv_into(b, memoryview(buf)[n:])
        return bytes(buf[: n + m])

    with a, b:
        assert run(loop, main()) == b"abcdefg"


def test_sock_recv_eof_and_error(loop):
    a, b = socketpair()

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(b, 10))
        await asyncio.sleep(0.01)
        a.close()
        assert await task == b""
        b2, c = socketpair()
        with b2, c:
            t2 = asyncio.ensure_future(loop.sock_recv(b2, 10))
            await asyncio.sleep(0.01)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()
            return await t2

    with b:
        # A socketpair close is an orderly EOF even with SO_LINGER 0 on AF_UNIX.
        assert run(loop, main()) == b""


def stock_lacks_311_sock_methods(loop_kind):
    """asyncio's loop has sock_recvfrom / sock_recvfrom_into / sock_sendto from 3.11 on; rtpy's always."""
    return loop_kind == "asyncio" and sys.version_info < (3, 11)


def test_sock_udp_sendto_recvfrom(loop, loop_kind):
    if stock_lacks_311_sock_methods(loop_kind):
        pytest.skip("the stock loop has no sock_recvfrom / sock_sendto before 3.11")
    s1, s2 = udp_socket(), udp_socket()

    async def main():
        task = asyncio.ensure_future(loop.sock_recvfrom(s2, 100))
        await asyncio.sleep(0.01)
        assert not task.done()
        n = await loop.sock_sendto(s1, b"dgram", s2.getsockname())
        data, addr = await task
        buf = bytearray(8)
        t2 = asyncio.ensure_future(loop.sock_recvfrom_into(s1, buf))
        await asyncio.sleep(0.01)
        await loop.sock_sendto(s2, b"back", addr)
        nbytes, addr2 = await t2
        back = bytes(buf[:nbytes])
        await loop.sock_sendto(s2, b"0123456789", addr)
        nb3, _ = await loop.sock_recvfrom_into(s1, buf, 3)
        return n, data, addr, back, addr2, nbytes, nb3, bytes(buf[:3])

    with s1, s2:
        n, data, addr, back, addr2, nbytes, nb3, head = run(loop, main())
        assert addr == s1.getsockname() and addr2 == s2.getsockname()
    assert (n, data, back, nbytes, nb3, head) == (5, b"dgram", b"back", 4, 3, b"012")


def test_sock_connect_accept(loop):
    ls = tcp_listener()
    port = ls.getsockname()[1]

    async def main():
        accept = asyncio.ensure_future(loop.sock_accept(ls))
        await asyncio.sleep(0.01)
        assert not accept.done()
        c = socket.socket()
        c.setblocking(False)
        await loop.sock_connect(c, ("localhost" if socket.has_ipv6 is False else "127.0.0.1", port))
        conn, addr = await accept
        assert conn.gettimeout() == 0
        assert addr == c.getsockname()
        await loop.sock_sendall(c, b"over tcp")
        data = await loop.sock_recv(conn, 100)
        c.close()
        conn.close()
        return data

    with ls:
        assert run(loop, main()) == b"over tcp"


def test_sock_connect_resolves_host_names(loop):
    ls = tcp_listener()
    port = ls.getsockname()[1]

    async def main():
        c = socket.socket(socket.AF_INET)
        c.setblocking(False)
        with c:
            await loop.sock_connect(c, ("localhost", port))
            return c.getpeername()

    with ls:
        assert run(loop, main()) == ("127.0.0.1", port)


def test_sock_connect_refused(loop):
    probe = tcp_listener()
    addr = probe.getsockname()
    probe.close()

    async def main():
        c = socket.socket()
        c.setblocking(False)
        with c:
            await loop.sock_connect(c, addr)

    with pytest.raises(ConnectionRefusedError):
        run(loop, main())


def test_sock_connect_unix_path(loop, tmp_path):
    path = str(tmp_path / "s.sock")
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(1)
    ls.setblocking(False)

    async def main():
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        with c:
            accept = asyncio.ensure_future(loop.sock_accept(ls))
            await loop.sock_connect(c, path)
            conn, _ = await accept
            conn.close()
            return c.getpeername()

    with ls:
        assert run(loop, main()) == path


def test_cancelled_sock_recv_leaves_no_reader_and_next_recv_works(loop):
    a, b = socketpair()

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(b, 100))
        await asyncio.sleep(0)
        task.cancel()
        # At once, before the cancellation's done callbacks ran: a new recv on the same fd.
        second = asyncio.ensure_future(loop.sock_recv(b, 100))
        await asyncio.sleep(0.01)
        await loop.sock_sendall(a, b"for the second")
        data = await asyncio.wait_for(second, 5)
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return data, loop.remove_reader(b.fileno())

    with a, b:
        assert run(loop, main()) == (b"for the second", False)


def test_cancelled_sock_recv_keeps_a_reader_that_replaced_it(loop):
    a, b = socketpair()

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(b, 100))
        await asyncio.sleep(0.01)
        got = loop.create_future()

        def on_readable():
            if not got.done():
                got.set_result(b.recv(100))

        loop.add_reader(b.fileno(), on_readable)  # replaces sock_recv's reader
        task.cancel()
        await asyncio.sleep(0.01)
        a.send(b"for the public reader")
        data = await asyncio.wait_for(got, 5)
        return data, loop.remove_reader(b.fileno())

    with a, b:
        assert run(loop, main()) == (b"for the public reader", True)


def test_cancelled_sock_accept_and_sendall_remove_their_callbacks(loop):
    ls = tcp_listener()
    a, b = socketpair()

    async def main():
        t = asyncio.ensure_future(loop.sock_accept(ls))
        await asyncio.sleep(0.01)
        t.cancel()
        await asyncio.sleep(0.01)
        accepted_reader_gone = not loop.remove_reader(ls.fileno())

        fill_send_buffer(a)
        t2 = asyncio.ensure_future(loop.sock_sendall(a, b"y" * 100_000))
        await asyncio.sleep(0.01)
        assert not t2.done()
        t2.cancel()
        await asyncio.sleep(0.01)
        writer_gone = not loop.remove_writer(a.fileno())
        return accepted_reader_gone, writer_gone, t.cancelled(), t2.cancelled()

    with ls, a, b:
        assert run(loop, main()) == (True, True, True, True)


def test_cancelled_sock_connect_removes_writer(loop):
    # A listener that never accepts and a full backlog keep the connect pending (or refused).
    async def main():
        c = socket.socket()
        c.setblocking(False)
        with c:
            # 192.0.2.0/24 (TEST-NET-1) is never routed: the connect stays in progress or fails.
            task = asyncio.ensure_future(loop.sock_connect(c, ("192.0.2.1", 9)))
            await asyncio.sleep(0.05)
            if task.done():
                task.exception()
                return True
            task.cancel()
            await asyncio.sleep(0.01)
            return not loop.remove_writer(c.fileno())

    assert run(loop, main())


def test_sock_methods_refuse_blocking_sockets_in_debug(loop, loop_kind):
    loop.set_debug(True)
    a, b = socket.socketpair()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    async def main():
        calls = [
            loop.sock_recv(a, 1),
            loop.sock_recv_into(a, bytearray(1)),
            loop.sock_sendall(a, b"x"),
            loop.sock_connect(u, ("127.0.0.1", 9)),
            loop.sock_accept(a),
            loop.sock_sendfile(a, io.BytesIO(b"x")),
        ]
        if not stock_lacks_311_sock_methods(loop_kind):
            calls += [
                loop.sock_recvfrom(u, 1),
                loop.sock_recvfrom_into(u, bytearray(1)),
                loop.sock_sendto(u, b"x", ("127.0.0.1", 9)),
            ]
        errors = []
        for c in calls:
            try:
                await c
            except ValueError as exc:
                errors.append(str(exc))
        return errors

    with a, b, u:
        errors = run(loop, main())
    assert errors == ["the socket must be non-blocking"] * (6 if stock_lacks_311_sock_methods(loop_kind) else 9)


def test_sock_ops_on_a_transport_fd_raise(loop):
    a, b = socketpair()

    async def main():
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        try:
            with pytest.raises(RuntimeError, match="used by transport"):
                await loop.sock_recv(a, 10)
            with pytest.raises(RuntimeError, match="used by transport"):
                await loop.sock_recv_into(a, bytearray(4))
            fill_send_buffer(b)
            with pytest.raises(RuntimeError, match="used by transport"):
                await loop.sock_sendall(a, b"z" * (1 << 22))
        finally:
            transport.close()
            await asyncio.sleep(0)

    with b:
        run(loop, main())


def test_sock_ops_on_closed_socket(loop):
    a, b = socketpair()
    a.close()
    b.close()

    async def main():
        with pytest.raises(OSError):
            await loop.sock_recv(a, 1)
        with pytest.raises(OSError):
            await loop.sock_sendall(a, b"x")

    run(loop, main())


# ------------------------------------------------------------------------------------ sock_sendfile
@pytest.fixture
def data_file(tmp_path):
    data = os.urandom(1 << 20)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


async def recv_all(loop, sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = await loop.sock_recv(sock, 1 << 16)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def test_sock_sendfile_whole_file(loop, data_file):
    f, data = data_file
    a, b = socketpair()

    async def main():
        reader = asyncio.ensure_future(recv_all(loop, b, len(data)))
        sent = await loop.sock_sendfile(a, f)
        return sent, await reader

    with a, b:
        sent, received = run(loop, main(), timeout=30)
    assert sent == len(data) and received == data
    assert f.tell() == len(data)


def test_sock_sendfile_offset_and_count(loop, data_file):
    f, data = data_file
    a, b = socketpair()

    async def main():
        reader = asyncio.ensure_future(recv_all(loop, b, 5000))
        sent = await loop.sock_sendfile(a, f, 1000, 5000)
        return sent, await reader

    with a, b:
        sent, received = run(loop, main())
    assert sent == 5000 and received == data[1000:6000]
    assert f.tell() == 6000


def test_sock_sendfile_empty_file_and_past_eof(loop, tmp_path, data_file):
    f, data = data_file
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    a, b = socketpair()

    async def main():
        with open(empty, "rb") as e:
            n0 = await loop.sock_sendfile(a, e)
        n1 = await loop.sock_sendfile(a, f, len(data) + 10)
        return n0, n1

    with a, b:
        assert run(loop, main()) == (0, 0)


def test_sock_sendfile_fallback_for_non_files(loop):
    a, b = socketpair()

    async def main():
        src = io.BytesIO(b"from memory")
        reader = asyncio.ensure_future(recv_all(loop, b, 11))
        sent = await loop.sock_sendfile(a, src)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(a, io.BytesIO(b"nope"), fallback=False)
        return sent, await reader

    with a, b:
        assert run(loop, main()) == (11, b"from memory")


def test_sock_sendfile_bad_input(loop, data_file):
    f, _ = data_file
    u = udp_socket()
    a, b = socketpair()

    async def main():
        with pytest.raises(ValueError, match="SOCK_STREAM"):
            await loop.sock_sendfile(u, f)
        with pytest.raises(ValueError):
            await loop.sock_sendfile(a, f, -1)
        with pytest.raises(ValueError):
            await loop.sock_sendfile(a, f, 0, 0)
        with pytest.raises(TypeError):
            await loop.sock_sendfile(a, f, "0")
        with open(__file__, "r") as text:
            with pytest.raises(ValueError, match="binary mode"):
                await loop.sock_sendfile(a, text)

    with u, a, b:
        run(loop, main())


def test_sock_sendfile_peer_closed_midway(loop, data_file):
    f, data = data_file
    a, b = socketpair()

    async def main():
        task = asyncio.ensure_future(loop.sock_sendfile(a, f))
        first = await loop.sock_recv(b, 1000)
        b.close()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, 10)
        return first

    with a:
        assert run(loop, main())
    assert 0 < f.tell() < len(data)


def test_sock_sendfile_cancelled(loop, data_file):
    f, data = data_file
    a, b = socketpair()

    async def main():
        task = asyncio.ensure_future(loop.sock_sendfile(a, f))
        await asyncio.sleep(0.01)
        assert not task.done()  # 1 MiB does not fit a socketpair's buffer
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)
        return loop.remove_writer(a.fileno())

    with a, b:
        assert run(loop, main()) is False
