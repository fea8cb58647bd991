"""blocking.py - blocking work on rt's pool, results back through a queue.

A multi-thread runtime runs JOBS blocking jobs on its blocking pool with
`rt.run_blocking` (each "reads a file" - a sleep - then hashes generated data,
which releases the GIL in hashlib). Each finished job posts its result to a
completion queue (`rt.queue()`) from the runtime; the main thread waits on the
queue's fd with `select` and drains it, as a GUI or game thread would.

Checked: every job's result arrives exactly once with the right digest, on
the main thread; the jobs ran in parallel (wall time well under the sum of
their sleeps); the queue's fd is unreadable once drained. Exit status 0 when
every check passed, 1 otherwise.
"""

import hashlib
import select
import sys
import threading
import time

import rtpy

JOBS = 64
SLEEP = 0.02
POOL = 8
DATA = 256 << 10


def job(i):
    time.sleep(SLEEP)  # "disk I/O"
    data = hashlib.shake_256(b"job-%d" % i).digest(DATA)
    return i, hashlib.sha256(data).hexdigest(), threading.get_ident()


def main():
    failures = []
    results = {}
    main_thread = threading.get_ident()
    delivered_on = set()

    def on_result(i, digest, pool_thread):
        delivered_on.add(threading.get_ident())
        if i in results:
            failures.append(f"job {i} delivered twice")
        results[i] = (digest, pool_thread)

    t0 = time.perf_counter()
    with rtpy.Runtime("multi_thread", workers=2, blocking_threads=POOL) as rt:
        q = rt.queue()

        def forward(fut):
            # Runs where the future completes (a runtime thread): hand the
            # result to the main thread.
            q.post(on_result, *fut.result())

        futs = [rt.run_blocking(job, i) for i in range(JOBS)]
        for f in futs:
            f.add_done_callback(forward)
        deadline = time.monotonic() + 30
        while len(results) < JOBS and time.monotonic() < deadline:
            r, _, _ = select.select([q.fileno()], [], [], 1.0)
            if r:
                q.drain()
        wall = time.perf_counter() - t0
        if select.select([q.fileno()], [], [], 0)[0]:
            failures.append("queue fd readable after the last drain")
        m = rt.metrics()
        q.close()

    for i in range(JOBS):
        if i not in results:
            failures.append(f"job {i}: no result")
            continue
        expected = hashlib.sha256(hashlib.shake_256(b"job-%d" % i).digest(DATA)).hexdigest()
        if results[i][0] != expected:
            failures.append(f"job {i}: wrong digest")
    if delivered_on - {main_thread}:
        failures.append("a result was delivered off the main thread")
    pool_threads = {r[1] for r in results.values()}
    if main_thread in pool_threads:
        failures.append("a job ran on the main thread")
    serial = JOBS * SLEEP
    if wall > serial * 0.75:
        failures.append(f"jobs did not overlap: {wall:.2f}s for {serial:.2f}s of sleeps")

    print(f"{JOBS} blocking jobs on {len(pool_threads)} pool threads: {wall * 1e3:.0f} ms "
          f"(serial sleeps alone: {serial * 1e3:.0f} ms); results drained on the main thread via rt.queue(); "
          f"pool threads at the end: {m.blocking_threads}")
    if failures:
        for msg in failures:
            print("FAIL:", msg, file=sys.stderr)
        return 1
    print("blocking: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
