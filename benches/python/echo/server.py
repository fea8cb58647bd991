"""An echo server on one event loop, in one of three styles.

    python server.py --loop asyncio|uvloop|rloop|rtpy --mode sock|streams|proto

It listens on 127.0.0.1 (an ephemeral port), prints `READY <port>` on stdout
once it accepts connections, then echoes every byte it receives on every
connection until it is killed (SIGTERM). Every accepted socket gets
TCP_NODELAY. The three modes are the three asyncio APIs an application echoes
with (uvloop's benchmark shape):

  sock     loop.sock_accept / loop.sock_recv / loop.sock_sendall, one task per
           connection;
  streams  asyncio.start_server: reader.read, writer.write, await writer.drain;
  proto    loop.create_server with an asyncio.Protocol whose data_received
           writes the data back to its transport.

If the loop is unavailable the server prints `UNAVAILABLE <reason>` and exits
with status 3; any other failure before READY exits non-zero with the error on
stderr.
"""

import argparse
import asyncio
import socket

from loops import factory_or_exit

#: Largest read per call (more than the largest message, 100 KiB).
READ_SIZE = 256 * 1024


def nodelay(sock):
    """Set TCP_NODELAY on `sock` (a socket or a loop's socket-like object)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def sock_connection(loop, conn):
    with conn:
        nodelay(conn)
        recv, sendall = loop.sock_recv, loop.sock_sendall
        while True:
            data = await recv(conn, READ_SIZE)
            if not data:
                return
            await sendall(conn, data)


async def sock_server(loop, lsock):
    conns = set()
    while True:
        conn, _ = await loop.sock_accept(lsock)
        conn.setblocking(False)
        task = loop.create_task(sock_connection(loop, conn))
        conns.add(task)  # keep a reference until it ends
        task.add_done_callback(conns.discard)


async def streams_connection(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        nodelay(sock)
    read, write, drain = reader.read, writer.write, writer.drain
    try:
        while True:
            data = await read(READ_SIZE)
            if not data:
                break
            write(data)
            await drain()
    finally:
        writer.close()


class EchoProtocol(asyncio.Protocol):
    """Writes back whatever it receives."""

    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            nodelay(sock)
        self.write = transport.write

    def data_received(self, data):
        self.write(data)

    def connection_lost(self, exc):
        self.write = None


def listener():
    """A bound, listening, non-blocking socket on 127.0.0.1 (ephemeral port)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    lsock.setblocking(False)
    return lsock


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop", required=True)
    ap.add_argument("--mode", required=True, choices=("sock", "streams", "proto"))
    args = ap.parse_args()
    make = factory_or_exit(args.loop)

    loop = make()
    asyncio.set_event_loop(loop)
    lsock = listener()
    port = lsock.getsockname()[1]

    if args.mode == "sock":
        loop.create_task(sock_server(loop, lsock))
    elif args.mode == "streams":
        loop.run_until_complete(asyncio.start_server(streams_connection, sock=lsock))
    else:
        loop.run_until_complete(loop.create_server(EchoProtocol, sock=lsock))
    loop.call_soon(lambda: print("READY", port, flush=True))
    loop.run_forever()


if __name__ == "__main__":
    main()
