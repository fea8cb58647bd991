"""Timer lateness of asyncio event loops on an idle loop (not a test).

    python benches/python/timer_lateness.py [--loops asyncio,uvloop,rloop,rtpy] [--n 1000]
                                           [--rounds 5] [--min-ms 1] [--max-ms 5] [--json FILE]

For each loop: N sequential timers on an otherwise idle loop. Each is armed
from the previous one's callback with `loop.call_later(d)`, d uniform in
[min-ms, max-ms] (one fixed seed, the same delays for every loop). The
scheduling instant t0 is `time.monotonic()` just before `call_later`, the
firing instant t1 is `time.monotonic()` first thing in the callback;
lateness = t1 - (t0 + d). A timer is *early* when t1 < t0 + d: it ran before
the delay it was given had passed (a loop with a cached clock fires early).
Measured on time.monotonic(), not on each loop's own `time()`, so that loops
with a coarse or cached clock are judged on the same clock.

Loops are made by their package's `new_event_loop()` (benches/python/echo/
loops.py); one that is not importable is listed as unavailable, never
replaced. The N timers are split into R rounds; each round runs every loop in
turn, the order rotating, so a change in the machine's load hits all loops
alike. Prints one table: early count, mean / p50 / p99 / max lateness (ms).
Issue 12's goal for rtpy: none early, mean <= 0.5 ms.
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo"))

from loops import LOOPS, factory, version  # noqa: E402  (benches/python/echo/loops.py)


def measure(make, delays):
    """Runs the sequential timers on a new loop; returns [(lateness_s)]."""
    loop = make()
    late = []
    it = iter(delays)
    mono = time.monotonic
    state = {}

    def fired():
        t1 = mono()
        late.append(t1 - state["due"])
        arm()

    def arm():
        d = next(it, None)
        if d is None:
            loop.stop()
            return
        t0 = mono()
        state["due"] = t0 + d
        loop.call_later(d, fired)

    try:
        loop.call_soon(arm)
        loop.run_forever()
    finally:
        loop.close()
    return late


def summarize(late):
    ms = sorted(x * 1e3 for x in late)
    n = len(ms)
    return {
        "n": n,
        "early": sum(1 for x in ms if x < 0),
        "mean_ms": statistics.fmean(ms),
        "p50_ms": ms[n // 2],
        "p99_ms": ms[min(n - 1, int(round(0.99 * (n - 1))))],
        "max_ms": ms[-1],
        "min_ms": ms[0],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--n", type=int, default=1000, help="timers per loop (all rounds together)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-ms", type=float, default=1.0)
    ap.add_argument("--max-ms", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--json", help="also write the per-loop summaries (and every lateness) to this file")
    args = ap.parse_args()

    names = [s.strip() for s in args.loops.split(",") if s.strip()]
    makers, unavailable = {}, {}
    for name in names:
        try:
            makers[name] = factory(name)
        except LookupError as e:
            unavailable[name] = str(e)

    rng = random.Random(args.seed)
    per_round = max(1, args.n // args.rounds)
    rounds = [[rng.uniform(args.min_ms, args.max_ms) / 1e3 for _ in range(per_round)] for _ in range(args.rounds)]
    late = {name: [] for name in makers}
    failed = {}
    order = list(makers)
    t_start = time.monotonic()
    for r, delays in enumerate(rounds):
        k = r % len(order) if order else 0
        for name in order[k:] + order[:k]:
            if name in failed:
                continue
            try:
                late[name] += measure(makers[name], delays)
            except Exception as e:  # noqa: BLE001 - reported in the table
                failed[name] = f"{type(e).__name__}: {e}"

    print(
        f"Timer lateness on an idle loop: {per_round * args.rounds} sequential call_later "
        f"({args.min_ms:g}..{args.max_ms:g} ms) per loop, {args.rounds} rounds interleaved; "
        f"CPython {platform.python_version()}, {os.cpu_count()} CPUs; {time.monotonic() - t_start:.1f} s"
    )
    print()
    print("| loop | version | timers | early | early % | mean ms | p50 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    out = {}
    for name in names:
        if name in unavailable or name in failed:
            print(f"| {name} | unavailable: {unavailable.get(name) or failed[name]} | | | | | | | |")
            continue
        s = summarize(late[name])
        out[name] = dict(s, version=version(name))
        print(
            f"| {name} | {version(name)} | {s['n']} | {s['early']} | {100.0 * s['early'] / s['n']:.1f} "
            f"| {s['mean_ms']:.3f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | {s['max_ms']:.3f} |"
        )
    print()
    print("early: fired before t0 + delay on time.monotonic(); lateness = t1 - (t0 + delay).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": out, "lateness_s": late, "unavailable": unavailable, "failed": failed}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
