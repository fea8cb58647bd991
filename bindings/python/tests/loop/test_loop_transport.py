"""The stream transport (issue 12, TRANSPORT): rtpy's native SocketTransport
against asyncio's _SelectorSocketTransport, each test run on both loops.

Connections are socketpairs (AF_UNIX) or loopback TCP connected before the
loop runs, handed to `create_connection(sock=...)` /
`connect_accepted_socket`, so that only the transport is under test.
"""

import asyncio
import gc
import inspect
import logging
import socket
import struct
import warnings

import pytest

import rtpy

LOOP_KINDS = ("asyncio", "rtpy")


@pytest.fixture(params=LOOP_KINDS, ids=LOOP_KINDS)
def loop(request):
    """A new loop of the kind under test, closed after the test."""
    if request.param == "asyncio":
        lp = asyncio.SelectorEventLoop()
    else:
        lp = rtpy.new_event_loop()
    asyncio.set_event_loop(lp)
    try:
        yield lp
    finally:
        asyncio.set_event_loop(None)
        if not lp.is_closed():
            lp.run_until_complete(lp.shutdown_asyncgens())
            lp.close()
        gc.collect()


def run(lp, coro, timeout=20.0):
    return lp.run_until_complete(asyncio.wait_for(coro, timeout))


def check_kind(lp, transport):
    """On rtpy's loop the transport is the native one."""
    if isinstance(lp, rtpy.Loop):
        from rtpy._transports import SocketTransport

        assert type(transport) is SocketTransport
    assert isinstance(transport, asyncio.Transport)


class Recorder(asyncio.Protocol):
    """Records every callback; `lost` is done with connection_lost's argument."""

    def __init__(self, lp, keep_open=False):
        self.events = []
        self.data = bytearray()
        self.keep_open = keep_open
        self.transport = None
        self.lost = lp.create_future()
        self.eof = lp.create_future()
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def data_received(self, data):
        assert isinstance(data, bytes) and data
        self.data += data
        if not self.events or self.events[-1] != "data":
            self.events.append("data")

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        return self.keep_open

    def pause_writing(self):
        self.paused += 1
        self.events.append("pause")

    def resume_writing(self):
        self.resumed += 1
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        assert not self.lost.done(), "connection_lost called twice"
        self.lost.set_result(exc)


async def pair(lp, proto_a, proto_b=None):
    """Two connected transports over a socketpair (or one and a raw socket)."""
    a, b = socket.socketpair()
    ta, _ = await lp.create_connection(lambda: proto_a, sock=a)
    if proto_b is None:
        return ta, b
    tb, _ = await lp.create_connection(lambda: proto_b, sock=b)
    return ta, tb


async def recorded_pair(lp, **b_options):
    """Two connected transports over a socketpair with a Recorder each: (a, b, ta, tb)."""
    a = Recorder(lp)
    b = Recorder(lp, **b_options)
    ta, tb = await pair(lp, a, b)
    return a, b, ta, tb


async def accepted_tcp(lp, proto):
    """A transport over an accepted loopback TCP connection: (transport, the client's blocking socket,
    the accepted socket the transport owns)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        srv, _ = listener.accept()
    t, _ = await lp.connect_accepted_socket(lambda: proto, srv)
    return t, client, srv


async def wait_for_len(buf, n, timeout=10.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(buf) < n:
        assert loop.time() < end, f"{len(buf)} of {n} bytes"
        await asyncio.sleep(0.001)


def test_echo_over_tcp(loop):
    async def main():
        class Echo(asyncio.Protocol):
            def connection_made(self, t):
                self.t = t

            def data_received(self, data):
                self.t.write(data)

        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = Recorder(loop)
        sock = socket.create_connection(("127.0.0.1", port))
        t, _ = await loop.create_connection(lambda: client, sock=sock)
        check_kind(loop, t)
        sent = bytearray()
        for i in range(200):
            msg = struct.pack("!I", i) * (1 + i % 50)
            sent += msg
            t.write(msg)
            if i % 20 == 0:
                await wait_for_len(client.data, len(sent))
        await wait_for_len(client.data, len(sent))
        assert client.data == sent
        t.close()
        assert await client.lost is None
        server.close()
        await server.wait_closed()
        assert client.events == ["made", "data", "lost"]

    run(loop, main())


def test_extra_info(loop):
    async def main():
        p = Recorder(loop)
        t, c, srv = await accepted_tcp(loop, p)
        check_kind(loop, t)
        ts = t.get_extra_info("socket")
        assert isinstance(ts, asyncio.trsock.TransportSocket)
        assert ts.fileno() == srv.fileno()
        assert t.get_extra_info("sockname") == srv.getsockname()
        assert t.get_extra_info("peername") == c.getsockname()
        assert t.get_extra_info("nothing", 42) == 42
        assert t.get_protocol() is p
        assert repr(t).endswith("read=polling write=<idle, bufsize=0>>")
        t.close()
        await p.lost
        assert "closed" in repr(t)
        assert t.get_protocol() is None
        c.close()

    run(loop, main())


def test_flow_control_with_a_slow_reader(loop):
    async def main():
        writer = Recorder(loop)
        reader = Recorder(loop)
        tw, tr = await pair(loop, writer, reader)
        await asyncio.sleep(0)
        tr.pause_reading()
        assert not tr.is_reading()
        assert tw.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        payload = bytes(range(256)) * 8192  # 2 MiB
        tw.write(payload)
        assert tw.get_write_buffer_size() > 64 * 1024
        assert writer.paused == 1
        tw.write(b"tail")  # still accepted while paused
        assert writer.paused == 1
        await asyncio.sleep(0.05)
        assert reader.data == b"" or len(reader.data) < len(payload)
        tr.resume_reading()
        await wait_for_len(reader.data, len(payload) + 4)
        assert reader.data == payload + b"tail"
        assert writer.resumed == 1
        assert tw.get_write_buffer_size() == 0
        tw.close()
        tr.close()
        assert await writer.lost is None
        assert await reader.lost is None

    run(loop, main())


def test_set_write_buffer_limits(loop):
    async def main():
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        t.set_write_buffer_limits(high=100)
        assert t.get_write_buffer_limits() == (25, 100)
        t.set_write_buffer_limits(low=10)
        assert t.get_write_buffer_limits() == (10, 40)
        t.set_write_buffer_limits(200, 200)
        assert t.get_write_buffer_limits() == (200, 200)
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(high=-1)
        t.set_write_buffer_limits()
        assert t.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        # Filling the buffer, then lowering the marks below it, pauses at once.
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        t.write(b"x" * 30000)
        while t.get_write_buffer_size() == 0:
            t.write(b"x" * 30000)
        assert p.paused == 0 or t.get_write_buffer_size() > 64 * 1024
        paused = p.paused
        t.set_write_buffer_limits(high=1)
        assert p.paused == paused + (0 if paused else 1)
        t.abort()
        await p.lost
        peer.close()

    run(loop, main())


def test_pause_and_resume_reading(loop):
    async def main():
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        await asyncio.sleep(0)
        assert t.is_reading()
        t.pause_reading()
        t.pause_reading()
        assert not t.is_reading()
        peer.send(b"held")
        await asyncio.sleep(0.05)
        assert p.data == b""
        t.resume_reading()
        t.resume_reading()
        assert t.is_reading()
        await wait_for_len(p.data, 4)
        assert p.data == b"held"
        t.close()
        assert not t.is_reading()
        t.resume_reading()
        assert not t.is_reading()
        await p.lost
        peer.close()

    run(loop, main())


def test_write_eof_and_eof_received(loop):
    async def main():
        a, b, ta, tb = await recorded_pair(loop, keep_open=True)
        assert ta.can_write_eof()
        ta.write(b"before eof")
        ta.write_eof()
        ta.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            ta.write(b"after")
        await b.eof
        assert b.data == b"before eof"
        assert not tb.is_closing()  # kept open: b may still write
        tb.write(b"answer")
        await wait_for_len(a.data, 6)
        assert a.data == b"answer"
        tb.write_eof()
        await a.eof
        # a's eof_received returned False: a closes, then b sees the end.
        assert await a.lost is None
        tb.close()
        assert await b.lost is None
        assert a.events == ["made", "data", "eof", "lost"]
        assert b.events == ["made", "data", "eof", "lost"]

    run(loop, main())


def test_write_eof_waits_for_the_buffer(loop):
    async def main():
        a, b, ta, tb = await recorded_pair(loop)
        payload = b"z" * (3 * 1024 * 1024)
        ta.write(payload)
        assert ta.get_write_buffer_size() > 0
        ta.write_eof()
        await b.eof
        assert len(b.data) == len(payload)
        ta.close()
        await a.lost
        await b.lost

    run(loop, main())


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, lp, size=64):
        self.buf = bytearray(size)
        self.data = bytearray()
        self.sizes = []
        self.lost = lp.create_future()

    def connection_made(self, t):
        self.t = t

    def get_buffer(self, sizehint):
        self.sizes.append(sizehint)
        return memoryview(self.buf)

    def buffer_updated(self, n):
        self.data += self.buf[:n]

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_buffered_protocol(loop):
    async def main():
        p = Buffered(loop)
        t, peer = await pair(loop, p)
        payload = bytes(range(256)) * 40
        peer.sendall(payload)
        await wait_for_len(p.data, len(payload))
        assert p.data == payload
        assert set(p.sizes) == {-1}
        peer.close()
        assert await p.lost is None

    run(loop, main())


def test_set_protocol_switches_between_protocol_kinds(loop):
    async def main():
        first = Recorder(loop)
        t, peer = await pair(loop, first)
        peer.sendall(b"one")
        await wait_for_len(first.data, 3)
        second = Buffered(loop)
        t.set_protocol(second)
        assert t.get_protocol() is second
        peer.sendall(b"two")
        await wait_for_len(second.data, 3)
        third = Recorder(loop)
        t.set_protocol(third)
        peer.sendall(b"three")
        await wait_for_len(third.data, 5)
        assert (first.data, second.data, third.data) == (b"one", b"two", b"three")
        peer.close()
        assert await third.lost is None
        assert not first.lost.done() and not second.lost.done()

    run(loop, main())


def test_close_with_pending_data_flushes_first(loop):
    async def main():
        a, b, ta, tb = await recorded_pair(loop)
        payload = b"q" * (2 * 1024 * 1024)
        ta.write(payload)
        assert ta.get_write_buffer_size() > 0
        ta.close()
        assert ta.is_closing()
        ta.close()
        await b.eof
        assert len(b.data) == len(payload)
        assert await a.lost is None
        assert await b.lost is None
        assert a.events.count("lost") == 1

    run(loop, main())


def test_abort_drops_the_buffer(loop):
    async def main():
        a, b, ta, tb = await recorded_pair(loop)
        tb.pause_reading()
        ta.write(b"w" * (2 * 1024 * 1024))
        assert ta.get_write_buffer_size() > 0
        ta.abort()
        assert ta.get_write_buffer_size() == 0
        assert ta.is_closing()
        ta.abort()
        ta.close()
        assert await a.lost is None
        assert a.events.count("lost") == 1
        tb.resume_reading()
        await b.lost
        assert len(b.data) < 2 * 1024 * 1024

    run(loop, main())


def test_writes_after_close_are_counted_then_warned(loop, caplog):
    async def main():
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        t.close()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(7):
                t.write(b"late")
        warned = [r for r in caplog.records if "socket.send() raised exception." in r.getMessage()]
        assert len(warned) == 3  # the counter went 2..8; it warns once it is >= 5
        await p.lost
        t.write(b"even later")  # still no exception
        peer.close()

    run(loop, main())


def test_write_type_errors(loop):
    async def main():
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        with pytest.raises(TypeError, match="data argument must be a bytes-like object, not 'str'"):
            t.write("text")
        t.write(b"")
        t.write(bytearray(b"ba"))
        t.write(memoryview(b"mv"))
        t.writelines([b"x", bytearray(b"y"), memoryview(b"z")])
        await asyncio.sleep(0.01)
        assert peer.recv(100) == b"bamvxyz"
        t.close()
        await p.lost
        peer.close()

    run(loop, main())


def test_peer_reset(loop):
    async def main():
        p = Recorder(loop)
        t, c, srv = await accepted_tcp(loop, p)
        await asyncio.sleep(0)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        exc = await p.lost
        assert isinstance(exc, ConnectionResetError)
        assert exc.errno is not None
        assert p.events == ["made", "lost"]

    run(loop, main())


def test_exception_in_data_received_is_fatal(loop):
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

        class Bad(Recorder):
            def data_received(self, data):
                raise ZeroDivisionError("bad protocol")

        p = Bad(loop)
        t, peer = await pair(loop, p)
        peer.send(b"x")
        exc = await p.lost
        assert isinstance(exc, ZeroDivisionError)
        assert len(errors) == 1
        assert errors[0]["message"] == "Fatal error: protocol.data_received() call failed."
        assert errors[0]["exception"] is exc
        assert errors[0]["transport"] is t
        assert errors[0]["protocol"] is p
        peer.close()

    run(loop, main())


def test_exception_in_pause_writing_is_reported(loop):
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

        class Bad(Recorder):
            def pause_writing(self):
                raise ValueError("pause")

        p = Bad(loop)
        t, peer = await pair(loop, p)
        t.write(b"p" * (4 * 1024 * 1024))
        assert [e["message"] for e in errors] == ["protocol.pause_writing() failed"]
        assert not t.is_closing()
        t.abort()
        await p.lost
        peer.close()

    run(loop, main())


def test_connection_lost_once_whatever_the_calls(loop):
    async def main():
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        t.close()
        t.abort()
        t._force_close(None)
        t.close()
        await p.lost
        await asyncio.sleep(0.01)
        assert p.events.count("lost") == 1
        peer.close()

    run(loop, main())


def test_connection_lost_before_connection_made_ran(loop):
    async def main():
        p = Recorder(loop)
        a, b = socket.socketpair()
        fut = loop.create_future()
        t = loop._make_socket_transport(a, p, fut)
        t.close()  # before connection_made ran: still made, then lost
        await fut
        assert await p.lost is None
        assert p.events == ["made", "lost"]
        b.close()

    run(loop, main())


def test_many_connections(loop):
    async def main():
        class Echo(asyncio.Protocol):
            def connection_made(self, t):
                self.t = t

            def data_received(self, data):
                self.t.write(data)

        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=500)
        addr = server.sockets[0].getsockname()
        clients = []
        for _ in range(200):
            p = Recorder(loop)
            sock = socket.create_connection(addr)
            t, _ = await loop.create_connection(lambda p=p: p, sock=sock)
            clients.append((t, p))
        for i, (t, p) in enumerate(clients):
            t.write(b"%d;" % i * 100)
        for i, (t, p) in enumerate(clients):
            await wait_for_len(p.data, len(b"%d;" % i * 100))
            assert p.data == b"%d;" % i * 100
            t.close()
        for t, p in clients:
            assert await p.lost is None
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_streams_round_trip(loop):
    async def main():
        async def handle(r, w):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
            w.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        sock = socket.create_connection(server.sockets[0].getsockname())
        r, w = await asyncio.open_connection(sock=sock)
        check_kind(loop, w.transport)
        big = bytes(range(256)) * 20000
        w.write(big)
        assert await r.readexactly(len(big)) == big
        w.write_eof()
        assert await r.read() == b""
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_sendfile(loop, tmp_path):
    async def main():
        path = tmp_path / "blob"
        blob = bytes(range(256)) * 4000
        path.write_bytes(blob)
        a, b, ta, tb = await recorded_pair(loop)
        ta.write(b"head:")
        with open(path, "rb") as f:
            sent = await loop.sendfile(ta, f)
        assert sent == len(blob)
        ta.write(b":tail")
        await wait_for_len(b.data, len(blob) + 10)
        assert b.data == b"head:" + blob + b":tail"
        ta.close()
        tb.close()
        await a.lost
        await b.lost

    run(loop, main())


def test_unclosed_transport_warns(loop):
    async def main():
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        await asyncio.sleep(0)
        t.pause_reading()  # the loop no longer holds it
        return t, peer

    t, peer = run(loop, main())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del t
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    peer.close()


def test_write_and_close_from_data_received(loop):
    # The transport used re-entrantly, from its own read callback.
    async def main():
        class CloseOnData(Recorder):
            def data_received(self, data):
                super().data_received(data)
                self.transport.write(b"bye")
                self.transport.close()

        p = CloseOnData(loop)
        t, peer = await pair(loop, p)
        peer.send(b"hi")
        assert await p.lost is None
        assert peer.recv(10) == b"bye"
        peer.close()

    run(loop, main())


def test_protocol_without_data_received_fails_on_data(loop):
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        lost = loop.create_future()

        class Bare(asyncio.BaseProtocol):
            def connection_lost(self, exc):
                lost.set_result(exc)

        t, peer = await pair(loop, Bare())
        peer.send(b"x")
        assert isinstance(await lost, AttributeError)
        assert errors[0]["message"] == "Fatal error: protocol.data_received() call failed."
        peer.close()

    run(loop, main())


def test_write_after_a_completed_close_is_counted(loop):
    async def main():
        a, b, ta, tb = await recorded_pair(loop)
        ta.write(b"d" * (1024 * 1024))
        ta.close()
        assert await a.lost is None
        if isinstance(loop, rtpy.Loop):
            ta.write(b"late")  # the socket is closed: nothing is sent, nothing raised
        else:
            # The stock transport sends on its cleared socket (a known asyncio wart).
            with pytest.raises(AttributeError):
                ta.write(b"late")
        await b.lost
        assert len(b.data) == 1024 * 1024

    run(loop, main())


def test_used_and_dropped_on_another_thread(loop):
    # Not how asyncio is meant to be used, but Python allows it: no panic, no leak warning.
    import threading

    async def main():
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        await asyncio.sleep(0)
        th = threading.Thread(target=t.write, args=(b"from a thread",))
        th.start()
        th.join()
        assert peer.recv(100) == b"from a thread"
        t.close()
        await p.lost
        peer.close()
        return t

    box = [run(loop, main())]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        th = threading.Thread(target=lambda: (box.clear(), gc.collect()))
        th.start()
        th.join()
    assert not caught


@pytest.mark.parametrize("bad", [bytearray(), 42], ids=["empty", "not-a-buffer"])
def test_buffered_protocol_bad_buffer_is_fatal(loop, bad):
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

        class Bad(Buffered):
            def get_buffer(self, sizehint):
                return bad

        p = Bad(loop)
        t, peer = await pair(loop, p)
        peer.send(b"x")
        exc = await p.lost
        assert isinstance(exc, RuntimeError if isinstance(bad, bytearray) else TypeError)
        assert errors[0]["message"] == "Fatal error: protocol.get_buffer() call failed."
        peer.close()

    run(loop, main())


def test_os_errors_are_logged_only_in_debug_mode(loop, caplog):
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        loop.set_debug(True)
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        await asyncio.sleep(0)
        peer.close()
        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            t.write(b"x" * 100)  # EPIPE (or ECONNRESET): the fatal path, no handler call
            exc = await p.lost
        assert isinstance(exc, (BrokenPipeError, ConnectionResetError))
        assert errors == []
        logged = [r for r in caplog.records if "Fatal write error on socket transport" in r.getMessage()]
        assert logged and logged[0].exc_info[1] is exc
        loop.set_debug(False)

    run(loop, main())


def test_peer_reset_while_data_is_buffered(loop):
    async def main():
        p = Recorder(loop)
        t, c, srv = await accepted_tcp(loop, p)
        t.write(b"b" * (8 * 1024 * 1024))  # more than the socket buffers hold
        assert t.get_write_buffer_size() > 0
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        exc = await p.lost
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError))
        assert t.get_write_buffer_size() == 0
        assert p.events.count("lost") == 1

    run(loop, main())


def test_random_traffic_keeps_every_byte_in_order(loop):
    import random

    rnd = random.Random(12)

    async def main():
        conns = []
        for i in range(30):
            a, b, ta, tb = await recorded_pair(loop)
            if i % 3 == 0:
                ta.set_write_buffer_limits(high=rnd.randrange(1, 100_000))
            conns.append((ta, tb, a, b, bytearray()))
        for _ in range(300):
            ta, tb, a, b, sent = rnd.choice(conns)
            n = rnd.choice([1, 10, 1000, 70_000, 300_000])
            chunk = bytes([rnd.randrange(256)]) * n
            if rnd.random() < 0.2:
                ta.writelines([chunk[: n // 2], chunk[n // 2 :]])
            else:
                ta.write(memoryview(chunk) if rnd.random() < 0.2 else chunk)
            sent += chunk
            if rnd.random() < 0.1:
                tb.pause_reading()
            elif rnd.random() < 0.3:
                tb.resume_reading()
            if rnd.random() < 0.2:
                await asyncio.sleep(0)
        for ta, tb, a, b, sent in conns:
            tb.resume_reading()
            ta.write_eof()
        for ta, tb, a, b, sent in conns:
            await b.eof
            assert b.data == sent
            assert a.paused == a.resumed  # drained before the EOF was sent
            ta.close()
            await a.lost
            await b.lost

    run(loop, main(), timeout=60)


def test_large_reads_keep_every_byte_then_eof(loop):
    # Large messages (rtpy reads them straight into a new bytes object once a
    # read brought 4 KiB or more, sized from that read), then small ones
    # (back to the copying read), then EOF.
    async def main():
        p = Recorder(loop)
        t, peer = await pair(loop, p)
        peer.setblocking(False)
        sent = bytearray()
        sizes = [100 * 1024, 200 * 1024, 64 * 1024, 1, 17, 300 * 1024, 5, 40 * 1024, 4096, 10 * 1024, 5000, 70 * 1024, 3]
        for i, size in enumerate(sizes):
            msg = bytes((i * 13 + k * 7) & 0xFF for k in range(251)) * (size // 251 + 1)
            msg = msg[:size]
            sent += msg
            await loop.sock_sendall(peer, msg)
            await wait_for_len(p.data, len(sent))
        assert p.data == sent
        peer.shutdown(socket.SHUT_WR)
        await p.eof
        assert await p.lost is None
        assert p.events == ["made", "data", "eof", "lost"]
        assert t.is_closing()
        peer.close()

    run(loop, main())


def test_exception_in_data_received_after_a_large_read_is_fatal(loop):
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

        class BadLater(Recorder):
            def data_received(self, data):
                super().data_received(data)
                if len(self.data) > 300 * 1024:
                    raise ZeroDivisionError("bad protocol")

        p = BadLater(loop)
        t, peer = await pair(loop, p)
        peer.setblocking(False)
        for _ in range(4):
            await loop.sock_sendall(peer, b"y" * (100 * 1024))
        exc = await p.lost
        assert isinstance(exc, ZeroDivisionError)
        assert len(errors) == 1
        assert errors[0]["message"] == "Fatal error: protocol.data_received() call failed."
        assert errors[0]["exception"] is exc
        assert len(p.data) > 300 * 1024
        assert bytes(p.data) == b"y" * len(p.data)
        peer.close()

    run(loop, main())


def test_write_and_is_closing_are_per_transport(loop):
    # On rtpy's loop write / is_closing are the core's bound methods (slots):
    # each transport's own, still working after the close.
    async def main():
        a, b = Recorder(loop), Recorder(loop)
        ta, pa = await pair(loop, a)
        tb, pb = await pair(loop, b)
        ta.write(b"to a")
        tb.write(data=b"to b")
        assert pa.recv(10) == b"to a"
        assert pb.recv(10) == b"to b"
        for bad_args, bad_kwargs in [((), {}), ((b"x", b"y"), {}), ((), {"other": b"x"})]:
            with pytest.raises(TypeError):
                ta.write(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            ta.is_closing(1)
        if type(ta).__module__.startswith("rtpy"):
            # the core's write is a hand-written method over pyo3's: same
            # signature, and the descriptor still checks its self
            core_type = type(ta.write.__self__)
            assert str(inspect.signature(ta.write)) == "(data)"
            assert "bytes, bytearray or memoryview" in ta.write.__doc__
            with pytest.raises(TypeError):
                core_type.write(object(), b"x")
            with pytest.raises(TypeError, match="unexpected keyword argument 'other'"):
                ta.write(b"x", other=1)
            with pytest.raises(TypeError, match="multiple values for argument 'data'"):
                ta.write(b"x", data=b"y")
            ta.write(bytearray(b"[ba]"))
            ta.write(memoryview(b"[mv]"))
            assert pa.recv(10) == b"[ba][mv]"
        assert not ta.is_closing() and not tb.is_closing()
        ta.close()
        assert ta.is_closing() and not tb.is_closing()
        assert await a.lost is None
        ta.write(b"dropped")  # counted, not sent
        with pytest.raises(TypeError):
            tb.write("str")
        tb.close()
        assert await b.lost is None
        pa.close()
        pb.close()

    run(loop, main())
