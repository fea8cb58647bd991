"""What an echo request costs each loop's server, counted rather than timed.

    python benches/python/echo/counts.py [--loops asyncio,uvloop,rloop,rtpy]
                                         [--modes sock,streams,proto]
                                         [--sizes 1024,10240,102400] [--concurrency 1,10]
                                         [--requests N] [--out DIR]

run.py times the servers; on a shared 2-CPU machine their CPU time per
request moves by 10-20% from one round to the next, so cells within that
margin stay undecided. This script counts instead, for the same server
(server.py) and request shape (a message of `size` bytes echoed back, on
`conc` connections from blocking clients), two figures that do not depend on
the machine's load:

- user-space instructions per request: the server runs under valgrind's
  callgrind; after a warm-up of 50 requests per connection the counters are
  dumped (`callgrind_control -d`), then `--requests` more requests run and
  they are dumped again: the second dump holds the instructions of those
  requests only (the interpreter, the loop, libc: the whole process, all
  threads), less those of libc's memcpy / memmove / memset: under valgrind
  glibc picks a copy loop of about one instruction per byte, where natively
  it copies 32 bytes or more per instruction (or one `rep movsb`), so a
  copy would count for 30 times its share (they are reported apart in
  counts.json);
- system calls and minor page faults per request: the server runs
  natively; after the warm-up `perf stat` counts the kernel's
  `raw_syscalls:sys_enter` events and the minor faults of all its threads
  over the `--requests` requests (counted in the kernel, so the server runs
  at full speed: a tracer that stops it at every call, as strace does,
  changes what a loop that reads the clock decides).

The kernel's share of a request (the system calls themselves, wake-ups) is
not counted in instructions; the system calls and the minor page faults
(a fresh mapping's pages cost one fault each) stand for it, as counts only:
their costs differ by kind (see README.md). Under valgrind
the server runs about 50x slower, which changes nothing it counts except
where a loop reads the clock to decide (rtpy's busy-poll window), so the
counts are of a slow machine's requests: about the same work per request.

Writes counts.json and counts.md to --out (default: target/bench-python-echo
under the repository) and prints the markdown. Needs valgrind and perf.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from loops import LOOPS, PEERS, factory, version  # noqa: E402

PY = sys.executable
WARMUP_PER_CONN = 50


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Server:
    """server.py for one loop and mode, under `wrap` (a command prefix)."""

    def __init__(self, loop, mode, wrap=()):
        self.proc = subprocess.Popen(
            [*wrap, PY, os.path.join(HERE, "server.py"), "--loop", loop, "--mode", mode],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE,
        )
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            err = self.proc.stderr.read()[-400:] if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"{loop} {mode}: no READY ({' '.join(line)} {err})")
        self.port = int(line[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Clients:
    """`conc` blocking connections to `port`, each echoing `size`-byte messages."""

    def __init__(self, port, size, conc):
        self.socks = []
        for _ in range(conc):
            s = socket.create_connection(("127.0.0.1", port), timeout=120)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks.append(s)
        self.msg = os.urandom(size)

    def _echo(self, sock, k, errors):
        try:
            for _ in range(k):
                sock.sendall(self.msg)
                got = 0
                while got < len(self.msg):
                    d = sock.recv(len(self.msg) - got)
                    if not d:
                        raise ConnectionError("server closed the connection")
                    got += len(d)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{type(e).__name__}: {e}")

    def run(self, per_conn):
        """`per_conn` requests on every connection at once; raises on an error."""
        errors = []
        ts = [threading.Thread(target=self._echo, args=(s, per_conn, errors)) for s in self.socks]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise RuntimeError(errors[0])

    def close(self):
        for s in self.socks:
            s.close()


#: libc's copy and fill routines: left out of the instruction counts (see
#: the module doc).
MEM_FN = re.compile(r"^(__)?mem(cpy|move|set)")


def callgrind_counts(path):
    """(all instructions, those of libc's mem* routines) of a callgrind dump
    written with --compress-strings=no: the self cost of each function is
    the sum of its cost lines ("position cost"), the line after a "calls="
    line being a call's inclusive cost, not the caller's own."""
    total = mem = 0
    fn = ""
    with open(path) as f:
        lines = iter(f)
        for line in lines:
            if line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("calls="):
                next(lines, None)
            elif line[:1].isdigit():
                parts = line.split()
                if len(parts) == 2:
                    cost = int(parts[1])
                    total += cost
                    if MEM_FN.match(fn):
                        mem += cost
    return total, mem


def instructions(loop, mode, size, conc, requests):
    """User-space instructions per request (see the module doc)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg")
        server = Server(loop, mode, ["valgrind", "--tool=callgrind", "--quiet",
                                     "--compress-strings=no", "--compress-pos=no",
                                     f"--callgrind-out-file={out}.%p"])
        try:
            clients = Clients(server.port, size, conc)
            per_conn = max(1, requests // conc)
            try:
                clients.run(WARMUP_PER_CONN)
                dump = ["callgrind_control", "-d", str(server.proc.pid)]
                subprocess.run(dump, check=True, capture_output=True)
                clients.run(per_conn)
                subprocess.run(dump, check=True, capture_output=True)
            finally:
                clients.close()
        finally:
            server.stop()
        dumps = sorted(glob.glob(out + ".*.2"))
        if not dumps:
            raise RuntimeError(f"{loop} {mode}: no second callgrind dump")
        total, mem = callgrind_counts(dumps[0])
        n = per_conn * conc
        return (total - mem) / n, mem / n


def syscalls(loop, mode, size, conc, requests):
    """System calls and minor page faults per request (see the module doc)."""
    server = Server(loop, mode)
    try:
        clients = Clients(server.port, size, conc)
        per_conn = max(1, requests // conc)
        try:
            clients.run(WARMUP_PER_CONN)
            counter = subprocess.Popen(
                ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter,minor-faults",
                 "-p", str(server.proc.pid)],
                stderr=subprocess.PIPE, text=True)
            # perf prints nothing until it stops: give it time to attach to
            # every thread before the requests start.
            time.sleep(0.5)
            clients.run(per_conn)
            counter.send_signal(signal.SIGINT)
            _, err = counter.communicate(timeout=30)
        finally:
            clients.close()
    finally:
        server.stop()
    found = {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[0].strip().isdigit():
            found[parts[2]] = int(parts[0])
    if "raw_syscalls:sys_enter" not in found:
        raise RuntimeError(f"perf stat counted nothing for {loop}: {err[-300:]}")
    n = per_conn * conc
    return found["raw_syscalls:sys_enter"] / n, found.get("minor-faults", 0) / n


def table(results, loops):
    lines = ["| mode | size | conc | " + " | ".join(loops) + " |",
             "|---|---:|---:|" + "---:|" * len(loops)]
    for cell in results:
        peers = [cell["loops"][p]["instructions"] for p in PEERS if p in cell["loops"]]
        best = min(peers) if peers else None
        row = []
        for lp in loops:
            r = cell["loops"].get(lp)
            if r is None:
                row.append("n/a")
                continue
            ins = r["instructions"]
            ratio = f" ({ins / best:.2f})" if best else ""
            row.append(f"{ins / 1000:.1f}k{ratio}, {r['syscalls']:.1f}, {r['faults']:.1f}")
        size = f"{cell['size'] // 1024} KiB" if cell["size"] >= 1024 else f"{cell['size']} B"
        lines.append(f"| {cell['mode']} | {size} | {cell['conc']} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--modes", default="sock,streams,proto")
    ap.add_argument("--sizes", default="1024,10240,102400")
    ap.add_argument("--concurrency", default="1,10")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "..", "target",
                                                  "bench-python-echo"))
    a = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "perf"):
        if shutil.which(tool) is None:
            sys.exit(f"counts.py needs {tool} (make bench-counts installs it)")
    loops = [x for x in a.loops.split(",") if x]
    available = {}
    for lp in loops:
        try:
            factory(lp)
            available[lp] = version(lp)
        except LookupError as e:
            log(f"{lp}: skipped ({e})")
    loops = [lp for lp in loops if lp in available]
    results = []
    start = time.time()
    for mode in a.modes.split(","):
        for size in (int(s) for s in a.sizes.split(",")):
            for conc in (int(c) for c in a.concurrency.split(",")):
                cell = {"mode": mode, "size": size, "conc": conc, "loops": {}}
                for lp in loops:
                    ins, mem = instructions(lp, mode, size, conc, a.requests)
                    calls, faults = syscalls(lp, mode, size, conc, a.requests)
                    cell["loops"][lp] = {"instructions": ins, "mem_instructions": mem,
                                         "syscalls": calls, "faults": faults}
                    log(f"{mode} {size} c{conc} {lp}: {ins:.0f} instructions (+{mem:.0f} in mem*), "
                        f"{calls:.2f} syscalls, {faults:.1f} page faults")
                results.append(cell)
    os.makedirs(a.out, exist_ok=True)
    head = (f"Counted {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(start))}, "
            f"{a.requests} requests per cell after a warm-up, "
            + ", ".join(f"{k} {v}" for k, v in available.items())
            + f"; run time {time.time() - start:.0f} s.")
    md = "\n".join([
        head, "",
        "Per request: user-space instructions of the server process (without libc's memcpy / "
        "memmove / memset), in thousands (ratio to the fewest of the peers); system calls; "
        "minor page faults.", "",
        table(results, loops), ""])
    with open(os.path.join(a.out, "counts.json"), "w") as f:
        json.dump({"header": head, "cells": results}, f, indent=1)
    with open(os.path.join(a.out, "counts.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
