"""rtpy against the standard library's peers, one table of ratios.

    $PYTHON benches/python/bench.py [--rounds N] [--quick]

Workloads (issue 11 section 6):
  spawn      100k trivial `rt.spawn` calls vs `ThreadPoolExecutor.submit`
             (both with os.cpu_count() threads), submitted then all awaited
             with concurrent.futures.wait.
  blocking   50k `rt.run_blocking` vs `loop.run_in_executor(None, ...)` on
             asyncio's default loop; both awaited inside `asyncio.run`
             (rt's future through `asyncio.wrap_future`).
  timers     1M `call_later` timers (delays spread over 0.5 s) on a
             current-thread runtime driven by `rt.run()` vs asyncio's
             `loop.call_later` on the default loop; until all fired.

Each side of each workload runs in its own child process, which reports its
wall time and its peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`).
Times are the median of --rounds rounds (sides interleaved); peak RSS the
median too. The ratio is rt / peer: < 1 means rt is faster / smaller.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

N_SPAWN = 100_000
N_BLOCKING = 50_000
N_TIMERS = 1_000_000
TIMER_SPREAD = 0.5
THREADS = os.cpu_count() or 2


def noop():
    return None


# --- children: each measures one side of one workload ---

def timed_submits(submit, n):
    """Seconds to submit `n` noops with `submit` and wait for all their futures
    (each of which must have the result None)."""
    import concurrent.futures as cf

    t0 = time.perf_counter()
    futs = [submit(noop) for _ in range(n)]
    done, not_done = cf.wait(futs)
    dt = time.perf_counter() - t0
    assert not not_done and all(f.result() is None for f in futs)
    return dt


def child_spawn_rt(n):
    import rtpy

    with rtpy.Runtime("multi_thread", workers=THREADS) as rt:
        return timed_submits(rt.spawn, n)


def child_spawn_peer(n):
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(max_workers=THREADS) as ex:
        ex.submit(noop).result()  # threads started lazily: start one outside the clock as rt's are
        return timed_submits(ex.submit, n)


def child_blocking_rt(n):
    import asyncio
    import rtpy

    with rtpy.Runtime("multi_thread", workers=THREADS) as rt:

        async def main():
            wrap, rb = asyncio.wrap_future, rt.run_blocking
            await wrap(rb(noop))
            t0 = time.perf_counter()
            res = await asyncio.gather(*[wrap(rb(noop)) for _ in range(n)])
            dt = time.perf_counter() - t0
            assert len(res) == n
            return dt

        return asyncio.run(main())


def child_blocking_peer(n):
    import asyncio

    async def main():
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, noop)
        t0 = time.perf_counter()
        res = await asyncio.gather(*[loop.run_in_executor(None, noop) for _ in range(n)])
        dt = time.perf_counter() - t0
        assert len(res) == n
        return dt

    return asyncio.run(main())


def child_timers_rt(n):
    import itertools
    import rtpy

    with rtpy.Runtime("current_thread") as rt:
        fired = itertools.count()
        cb = fired.__next__
        t0 = time.perf_counter()
        call_later = rt.call_later
        step = TIMER_SPREAD / n
        for i in range(n):
            call_later(i * step, cb)
        rt.run()
        dt = time.perf_counter() - t0
        got = next(fired)
        assert got == n, f"{got} of {n} timers fired"
    return dt


def child_timers_peer(n):
    import asyncio
    import itertools

    async def main():
        loop = asyncio.get_running_loop()
        fired = itertools.count()
        cb = fired.__next__
        done = loop.create_future()
        t0 = time.perf_counter()
        call_later = loop.call_later
        step = TIMER_SPREAD / n
        for i in range(n):
            call_later(i * step, cb)
        call_later(TIMER_SPREAD + 0.001, done.set_result, None)
        await done
        # Timers due in the same tick as `done` may still be queued: let them run.
        while True:
            got = next(fired)
            if got >= n:
                break
            await asyncio.sleep(0)
        dt = time.perf_counter() - t0
        assert got == n, f"{got} of {n} timers fired"
        return dt

    return asyncio.run(main())


CHILDREN = {
    ("spawn", "rt"): (child_spawn_rt, N_SPAWN),
    ("spawn", "peer"): (child_spawn_peer, N_SPAWN),
    ("blocking", "rt"): (child_blocking_rt, N_BLOCKING),
    ("blocking", "peer"): (child_blocking_peer, N_BLOCKING),
    ("timers", "rt"): (child_timers_rt, N_TIMERS),
    ("timers", "peer"): (child_timers_peer, N_TIMERS),
}

LABELS = {
    "spawn": ("spawn", "rt.spawn", "ThreadPoolExecutor.submit"),
    "blocking": ("blocking", "rt.run_blocking", "loop.run_in_executor"),
    "timers": ("timers", "rt.call_later", "asyncio call_later"),
}


def count_label(n):
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def run_child(workload, side, scale):
    """One side of one workload in a fresh interpreter: (seconds, peak RSS KiB)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", workload, side, "--scale", str(scale)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"{workload}/{side} failed (exit {p.returncode}):\n{p.stderr.strip()[-2000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    return out["seconds"], out["maxrss_kib"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a tenth of each workload, one round")
    ap.add_argument("--only", choices=sorted({w for w, _ in CHILDREN}), action="append")
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "SIDE"), help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        import resource

        fn, n = CHILDREN[tuple(args.child)]
        seconds = fn(max(1, int(n * args.scale)))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        print(json.dumps({"seconds": seconds, "maxrss_kib": rss}))
        return 0

    scale = 0.1 if args.quick else 1.0
    rounds = 1 if args.quick else args.rounds
    workloads = args.only or ["spawn", "blocking", "timers"]
    results = {}
    failed = []
    t_start = time.perf_counter()
    for r in range(rounds):
        for w in workloads:
            for side in ("rt", "peer"):
                if (w, side) in failed:
                    continue
                try:
                    results.setdefault((w, side), []).append(run_child(w, side, scale))
                except Exception as e:  # noqa: BLE001 - reported in the table
                    print(f"error: {e}", file=sys.stderr)
                    failed.append((w, side))

    import platform

    print(f"\nrtpy vs the standard library: Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{rounds} round(s), medians{' (--quick: 1/10 sizes)' if args.quick else ''}")
    print("ratio = rt / peer: < 1 means rt is faster (time) or smaller (peak RSS)\n")
    print(f"| {'workload':<14} | {'rt':<16} | {'peer':<26} | {'rt':>10} | {'peer':>10} | {'ratio':>6} |")
    print(f"|{'-' * 16}|{'-' * 18}|{'-' * 28}|{'-' * 11}:|{'-' * 11}:|{'-' * 7}:|")
    for w in workloads:
        name, rt_name, peer_name = LABELS[w]
        label = f"{count_label(max(1, int(CHILDREN[(w, 'rt')][1] * scale)))} {name}"
        rt_res, peer_res = results.get((w, "rt")), results.get((w, "peer"))
        if not rt_res or not peer_res or (w, "rt") in failed or (w, "peer") in failed:
            print(f"| {label:<14} | {rt_name:<16} | {peer_name:<26} | {'error':>10} | {'':>10} | {'':>6} |")
            continue
        rt_t = statistics.median(s for s, _ in rt_res)
        pe_t = statistics.median(s for s, _ in peer_res)
        rt_m = statistics.median(m for _, m in rt_res) / 1024
        pe_m = statistics.median(m for _, m in peer_res) / 1024
        print(f"| {label:<14} | {rt_name:<16} | {peer_name:<26} | {rt_t:>8.3f} s | {pe_t:>8.3f} s | {rt_t / pe_t:>6.2f} |")
        print(f"| {'  peak RSS':<14} | {'':<16} | {'':<26} | {rt_m:>6.1f} MiB | {pe_m:>6.1f} MiB | {rt_m / pe_m:>6.2f} |")
    print(f"\n(total {time.perf_counter() - t_start:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
