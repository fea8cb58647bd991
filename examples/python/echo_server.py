"""echo_server.py - asyncio echo servers on rtpy's event loop.

Two echo servers on 127.0.0.1 (ephemeral ports) in one program, and their
clients in the same program:

 - a streams server (`asyncio.start_server`: StreamReader / StreamWriter);
 - a Protocol server (`loop.create_server` with an `asyncio.Protocol`), with
   half-close: the client's `write_eof` reaches `eof_received`, and the
   server closes once its echo is written.

Against each, CLIENTS concurrent stream clients send messages of sizes from
1 byte to 256 KiB and check every echo byte for byte; one Protocol client
more uses `loop.create_connection`, sends, then half-closes and waits for the
whole echo and the server's close. Stats per server are printed at the end.

    python examples/python/echo_server.py [--loop rtpy|asyncio]

`--loop rtpy` (the default) runs under `rtpy.run`, `--loop asyncio` under
`asyncio.run` (the same program on the stock loop, for comparison). Exit
status 0 only if every check passed, within TIME_LIMIT seconds.
"""

import argparse
import asyncio
import sys
import time

HOST = "127.0.0.1"  # loopback only
CLIENTS = 8
ROUNDS = 12
SIZES = (1, 100, 1024, 10 * 1024, 64 * 1024, 256 * 1024)
TIME_LIMIT = 4.5


def payload(size, seed):
    """`size` bytes that differ per client and round (a mixed-up echo shows)."""
    pattern = bytes((seed * 31 + i * 7) & 0xFF for i in range(251))
    return (pattern * (size // len(pattern) + 1))[:size]


class Stats:
    """Counters of one server, as its handlers see them."""

    def __init__(self, name):
        self.name = name
        self.connections = 0
        self.bytes = 0
        self.requests = 0  # echoes checked by the clients
        self.elapsed = 0.0


# -- the servers ---------------------------------------------------------------------------------


def stream_handler(stats):
    async def handle(reader, writer):
        stats.connections += 1
        try:
            while True:
                data = await reader.read(64 * 1024)
                if not data:  # the client's EOF
                    break
                stats.bytes += len(data)
                writer.write(data)
                await writer.drain()  # flow control: wait while the peer is slow
        finally:
            writer.close()
            await writer.wait_closed()

    return handle


class EchoProtocol(asyncio.Protocol):
    """Echoes every chunk; on the client's EOF, closes once the echo is out."""

    def __init__(self, stats):
        self.stats = stats
        self.transport = None

    def connection_made(self, transport):
        self.stats.connections += 1
        self.transport = transport

    def data_received(self, data):
        self.stats.bytes += len(data)
        self.transport.write(data)

    def eof_received(self):
        # Returning a false value: the transport closes itself (after its
        # write buffer is flushed).
        return False


# -- the clients ---------------------------------------------------------------------------------


async def stream_client(port, cid, stats):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for rnd in range(ROUNDS):
            size = SIZES[(cid + rnd) % len(SIZES)]
            msg = payload(size, cid * 1000 + rnd)
            writer.write(msg)
            await writer.drain()
            echo = await reader.readexactly(size)
            if echo != msg:
                raise AssertionError(f"client {cid}: round {rnd}: the echo of {size} bytes differs")
            stats.requests += 1
        writer.write_eof()
        if await reader.read() != b"":
            raise AssertionError(f"client {cid}: data after the last echo")
    finally:
        writer.close()
        await writer.wait_closed()


class HalfCloseClient(asyncio.Protocol):
    """Sends `msg`, half-closes, collects the echo until the server closes."""

    def __init__(self, msg, done):
        self.msg = msg
        self.done = done
        self.got = bytearray()
        self.eof = False

    def connection_made(self, transport):
        transport.write(self.msg)
        if not transport.can_write_eof():
            raise AssertionError("a TCP transport must support write_eof")
        transport.write_eof()

    def data_received(self, data):
        self.got += data

    def eof_received(self):
        self.eof = True

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


async def protocol_client(port, stats):
    loop = asyncio.get_running_loop()
    msg = payload(300 * 1024, 7)
    done = loop.create_future()
    transport, proto = await loop.create_connection(lambda: HalfCloseClient(msg, done), HOST, port)
    exc = await done
    if exc is not None:
        raise AssertionError(f"protocol client: connection lost with {exc!r}")
    if not proto.eof or bytes(proto.got) != msg:
        raise AssertionError(f"protocol client: echo of {len(msg)} bytes: got {len(proto.got)}, eof={proto.eof}")
    if not transport.is_closing():
        raise AssertionError("protocol client: transport not closed after connection_lost")
    stats.requests += 1


# -- main ----------------------------------------------------------------------------------------


async def exercise(server, stats):
    port = server.sockets[0].getsockname()[1]
    t0 = time.perf_counter()
    await asyncio.gather(*(stream_client(port, cid, stats) for cid in range(CLIENTS)), protocol_client(port, stats))
    stats.elapsed = time.perf_counter() - t0


async def main():
    loop = asyncio.get_running_loop()
    streams = Stats("streams (start_server)")
    protocol = Stats("Protocol (create_server)")
    s1 = await asyncio.start_server(stream_handler(streams), HOST, 0)
    s2 = await loop.create_server(lambda: EchoProtocol(protocol), HOST, 0)
    for srv in (s1, s2):
        if not srv.is_serving() or not isinstance(srv.sockets, tuple) or not srv.sockets:
            raise AssertionError(f"{srv!r}: expected a serving server with a tuple of sockets")
    try:
        await exercise(s1, streams)
        await exercise(s2, protocol)
    finally:
        for srv in (s1, s2):
            srv.close()
            await srv.wait_closed()
    if any(srv.is_serving() for srv in (s1, s2)):
        raise AssertionError("a server still serves after close()")
    # rtpy's loop counts its work (loop.metrics(), an rtpy.LoopMetrics); the stock loop has none.
    metrics = loop.metrics() if hasattr(loop, "metrics") else None
    return type(loop), (streams, protocol), metrics


def report(loop_type, stats, metrics):
    print(f"loop: {loop_type.__module__}.{loop_type.__qualname__}")
    if metrics is not None:
        print(
            f"loop.metrics(): {metrics.iterations} iterations, {metrics.callbacks_run} callbacks, "
            f"{metrics.io_events} I/O events, {metrics.timers_fired} timers, "
            f"{metrics.parked_ns / 1e6:.1f} ms waiting in epoll"
        )
    print(f"{'server':<26} {'conns':>5} {'echoes':>6} {'bytes':>10} {'time ms':>8} {'MiB/s':>7}")
    for s in stats:
        mib = s.bytes / (1 << 20)
        print(
            f"{s.name:<26} {s.connections:>5} {s.requests:>6} {s.bytes:>10} "
            f"{s.elapsed * 1e3:>8.1f} {mib / s.elapsed if s.elapsed else 0:>7.1f}"
        )
    expected = CLIENTS * ROUNDS + 1
    for s in stats:
        if s.requests != expected or s.connections != CLIENTS + 1:
            raise AssertionError(f"{s.name}: {s.requests} echoes over {s.connections} connections, expected {expected} over {CLIENTS + 1}")


def run(loop_name, coro):
    """Runs `coro` on the chosen loop: rtpy.run or asyncio.run."""
    if loop_name == "asyncio":
        return asyncio.run(coro)
    import rtpy

    return rtpy.run(coro)


def cli():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop", choices=("rtpy", "asyncio"), default="rtpy")
    args = ap.parse_args()
    t0 = time.monotonic()
    try:
        loop_type, stats, metrics = run(args.loop, asyncio.wait_for(main(), TIME_LIMIT))
        report(loop_type, stats, metrics)
    except Exception as e:  # noqa: BLE001 - the demo reports and fails
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    wall = time.monotonic() - t0
    print(f"ok in {wall:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
