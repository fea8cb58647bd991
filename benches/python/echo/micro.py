"""Scheduling micro-benchmarks on one event loop.

    python micro.py --loop NAME --bench BENCH [--n N] [--reps R]

BENCH is one of:
  call_soon_batched  N callbacks through call_soon, scheduled 1,000 at a time
                     by a driver callback that re-schedules itself (the ready
                     queue's throughput);
  call_soon_chained  N callbacks, each scheduling the next (one callback per
                     loop iteration: the cost of an iteration);
  call_later         N call_later timers with delays spread uniformly over
                     [0, 10 ms) (fixed seed), all scheduled from one callback;
                     until the last one fired (the timer queue's throughput).

Each repetition uses a new loop; the wall time runs from the first callback
to the loop's stop. Prints JSON {"rates": [callbacks per second, one per
repetition], "cpu_s": process CPU seconds of all repetitions}.
"""

import argparse
import json
import random
import resource
import sys
import time

from loops import factory_or_exit

BATCH = 1000


def call_soon_batched(loop, n):
    left = [n]

    def tick():
        left[0] -= 1
        if left[0] == 0:
            loop.stop()

    def driver(remaining):
        k = min(BATCH, remaining)
        soon = loop.call_soon
        for _ in range(k):
            soon(tick)
        if remaining > k:
            soon(driver, remaining - k)

    loop.call_soon(driver, n)


def call_soon_chained(loop, n):
    left = [n]

    def tick():
        left[0] -= 1
        if left[0] == 0:
            loop.stop()
        else:
            loop.call_soon(tick)

    loop.call_soon(tick)


def call_later(loop, n):
    rng = random.Random(12)
    delays = [rng.random() * 0.010 for _ in range(n)]
    left = [n]

    def fired():
        left[0] -= 1
        if left[0] == 0:
            loop.stop()

    def schedule():
        later = loop.call_later
        for d in delays:
            later(d, fired)

    loop.call_soon(schedule)


BENCHES = {
    "call_soon_batched": call_soon_batched,
    "call_soon_chained": call_soon_chained,
    "call_later": call_later,
}


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop", required=True)
    ap.add_argument("--bench", required=True, choices=sorted(BENCHES))
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    make = factory_or_exit(args.loop)

    setup = BENCHES[args.bench]
    rates = []
    cpu0 = cpu_seconds()
    for _ in range(args.reps):
        loop = make()
        try:
            setup(loop, args.n)
            t0 = time.perf_counter()
            loop.run_forever()
            rates.append(args.n / (time.perf_counter() - t0))
        finally:
            loop.close()
    json.dump({"rates": rates, "cpu_s": cpu_seconds() - cpu0}, sys.stdout)


if __name__ == "__main__":
    main()
