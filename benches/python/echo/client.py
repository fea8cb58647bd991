"""Echo clients: blocking sockets, one thread per connection, in one process.

    python client.py --port P --size BYTES --conns K

Opens K connections (TCP_NODELAY) to 127.0.0.1:P, prints `READY`, then reads
one line `T0 T1` from stdin: two time.monotonic() values (CLOCK_MONOTONIC,
shared by every process on the machine, so the runner sets one window for all
its clients once they are all connected). Each connection then sends a message
of BYTES bytes, reads until the whole echo is back, checks it byte for byte,
and repeats until T1. The time before T0 is warm-up. A request counts when its
echo completes inside [T0, T1]; its latency is from just before its send to
the end of its echo.

Prints one JSON object on stdout: {"requests": n, "latencies_us": [...],
"errors": [...]} for all of this process's connections together.
"""

import argparse
import json
import socket
import sys
import threading
import time


def payload(size, seed):
    """`size` bytes that differ between connections (a broken echo shows)."""
    pattern = bytes((seed * 31 + i * 7) & 0xFF for i in range(251))
    return (pattern * (size // len(pattern) + 1))[:size]


def connection(sock, size, seed, window, out):
    """One connection's request loop; appends its results to `out`."""
    msg = payload(size, seed)
    buf = bytearray(size)
    view = memoryview(buf)
    lat = []
    now = time.monotonic
    start, end = window
    try:
        with sock:
            sendall, recv_into = sock.sendall, sock.recv_into
            while True:
                t0 = now()
                if t0 >= end:
                    break
                sendall(msg)
                n = 0
                while n < size:
                    k = recv_into(view[n:])
                    if k == 0:
                        raise ConnectionError("server closed the connection")
                    n += k
                t1 = now()
                if buf != msg:
                    raise ValueError("echo differs from the message sent")
                if start <= t1 <= end:
                    lat.append(int((t1 - t0) * 1e6))
        out.append((lat, None))
    except Exception as e:  # noqa: BLE001 - reported to the runner
        out.append((lat, f"{type(e).__name__}: {e}"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    socks = []
    for _ in range(args.conns):
        sock = socket.create_connection(("127.0.0.1", args.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(sock)
    print("READY", flush=True)
    line = sys.stdin.readline().split()
    if len(line) != 2:
        sys.exit("no window on stdin")
    window = (float(line[0]), float(line[1]))

    out = []
    threads = [
        threading.Thread(target=connection, args=(sock, args.size, args.seed + i, window, out))
        for i, sock in enumerate(socks)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lats = [x for lat, _ in out for x in lat]
    errors = [e for _, e in out if e]
    json.dump({"requests": len(lats), "latencies_us": lats, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
