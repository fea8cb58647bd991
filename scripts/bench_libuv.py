#!/usr/bin/env python3
"""librt vs libuv on libuv's own benchmarks, as a Markdown table.

Runs benches/c/run.sh (which builds the C programs of benches/c against
libuv and against librt and writes one JSON result per line), then prints

    | workload | libuv | librt | librt/libuv |

with one row per librt variant (current-thread / multi-thread runtime,
rt_wake / rt_queue_post). The ratio is "librt time / libuv time" for time
workloads and "libuv rate / librt rate" for throughput workloads, so that
< 1.0 always means librt is faster.

Exits non-zero if a program failed (its checks, a timeout, a crash) or a
planned result is missing; the table is still printed.

Usage:
  scripts/bench_libuv.py [--quick] [--results FILE] [WORKLOAD...]

  --quick         RT_BENCH_QUICK=1: 1 s durations, 10x smaller counts
  --results FILE  do not run anything: read FILE (results.jsonl of an
                  earlier run.sh run) and check it against the plan
  WORKLOAD        only these workloads (name prefixes, as for run.sh)
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_SH = os.path.join(ROOT, "benches", "c", "run.sh")

NOTE = (
    "librt/libuv: librt time / libuv time for time rows, libuv rate / "
    "librt rate for rate rows: < 1.0 means librt is faster (peak RSS rows: "
    "librt / libuv memory)."
)


def out_dir():
    return os.environ.get("RT_BENCH_OUT") or os.path.join(ROOT, "target", "bench-c")


def planned(workloads):
    """The runs run.sh would make: [(workload, impl, variant)] in order."""
    out = subprocess.run(
        ["bash", RUN_SH, "--list", *workloads],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [
        (r["workload"], r["impl"], r["variant"])
        for r in (json.loads(line) for line in out.splitlines() if line.strip())
    ]


def load(path):
    """The results by (workload, impl, variant): each key's median run.

    run.sh runs the whole list several times, interleaved (RT_BENCH_ROUNDS),
    so that libuv and librt see the same machine weather; a failed round
    makes the key failed. The median is taken over the values, and the row
    keeps that run's other figures (phases, RSS), with "rounds" added.
    """
    runs = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                print(f"{path}:{n}: not JSON: {line!r}", file=sys.stderr)
                continue
            key = (r.get("workload"), r.get("impl"), r.get("variant", ""))
            runs.setdefault(key, []).append(r)
    results = {}
    for key, rs in runs.items():
        failed = [r for r in rs if not r.get("ok")]
        if failed:
            results[key] = failed[0]
            continue
        rs = sorted(rs, key=lambda r: r["value"])
        median = dict(rs[(len(rs) - 1) // 2])
        median["rounds"] = len(rs)
        median["spread"] = (rs[0]["value"], rs[-1]["value"])
        results[key] = median
    return results


def human(value, unit):
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "bytes/s":
        return f"{value / 1e9:.2f} GB/s"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.2f}{suffix} {unit}"
    return f"{value:.1f} {unit}"


def ratio(metric, uv, rt):
    if uv is None or rt is None or uv <= 0 or rt <= 0:
        return None
    return rt / uv if metric == "time" else uv / rt


def cell(r, unit, value=None):
    if r is None:
        return "missing"
    if not r.get("ok"):
        return "FAILED: " + str(r.get("error", "?"))
    return human(r["value"] if value is None else value, unit)


def rows(plan, results):
    """Table rows [(name, libuv cell, librt cell, ratio cell)] and problems."""
    problems = []
    table = []
    for key in plan:
        r = results.get(key)
        label = f"{key[0]}/{key[1]}" + (f" ({key[2]})" if key[2] else "")
        if r is None:
            problems.append(f"{label}: no result")
        elif not r.get("ok"):
            problems.append(f"{label}: {r.get('error', 'failed')}")
    for workload, impl, variant in plan:
        if impl != "librt":
            continue
        uv = results.get((workload, "libuv", ""))
        rt = results.get((workload, impl, variant))
        ok = uv is not None and rt is not None and uv.get("ok") and rt.get("ok")
        sample = rt if rt is not None and rt.get("ok") else uv
        metric = (sample or {}).get("metric", "time")
        unit = (sample or {}).get("unit", "s")
        name = f"{workload} [{variant}]" if variant else workload
        if ok and "count" in rt and metric == "time":
            name += f" ({rt['count']:,})"
        rat = ratio(metric, uv["value"], rt["value"]) if ok else None
        table.append(
            (name, cell(uv, unit), cell(rt, unit), f"{rat:.2f}" if rat is not None else "-")
        )
        # Phases (million_timers: init, dispatch, cleanup) as sub-rows.
        if ok and "phases" in uv and "phases" in rt:
            for phase, v in rt["phases"].items():
                u = uv["phases"].get(phase)
                rat = ratio("time", u, v)
                table.append(
                    (
                        f"  {workload}: {phase}",
                        human(u, "s") if u is not None else "-",
                        human(v, "s"),
                        f"{rat:.2f}" if rat is not None else "-",
                    )
                )
            if "max_rss_mib" in uv and "max_rss_mib" in rt:
                u, v = uv["max_rss_mib"], rt["max_rss_mib"]
                table.append(
                    (
                        f"  {workload}: peak RSS",
                        f"{u:.0f} MiB",
                        f"{v:.0f} MiB",
                        f"{v / u:.2f}" if u > 0 else "-",
                    )
                )
    return table, problems


def print_table(table, quick, rounds):
    head = ("workload", "libuv", "librt", "librt/libuv")
    print("| " + " | ".join(head) + " |")
    print("|---|---:|---:|---:|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print()
    print(NOTE)
    if any(row[0].startswith("million_timers") for row in table):
        print(
            "million_timers: both have the same deadlines (start of init + "
            "timeout: libuv counts from the loop time cached before init, the "
            "librt program subtracts the time already spent in init), so the "
            "totals compare; dispatch waits for the last deadline (10 s)."
        )
    if quick:
        print("Quick run (RT_BENCH_QUICK=1): 1 s durations, 10x smaller counts.")
    if rounds > 1:
        print(
            f"Each figure is the median of {rounds} runs, the programs taking "
            "turns (RT_BENCH_ROUNDS); a ratio compares the two medians."
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="RT_BENCH_QUICK=1")
    ap.add_argument("--results", help="read this results.jsonl instead of running")
    ap.add_argument("workloads", nargs="*", help="workload name prefixes")
    args = ap.parse_args()

    plan = planned(args.workloads)
    if not plan:
        print("bench_libuv.py: no workload matches", file=sys.stderr)
        return 2
    run_failed = False
    path = args.results
    if path is None:
        env = dict(os.environ)
        if args.quick:
            env["RT_BENCH_QUICK"] = "1"
        # run.sh's JSON lines go to the results file; keep the terminal for
        # its progress (stderr).
        rc = subprocess.run(
            ["bash", RUN_SH, *args.workloads], env=env, stdout=subprocess.DEVNULL
        ).returncode
        run_failed = rc != 0
        path = os.path.join(out_dir(), "results.jsonl")
    try:
        results = load(path)
    except OSError as e:
        print(f"bench_libuv.py: {e}", file=sys.stderr)
        return 1

    table, problems = rows(plan, results)
    quick = any(r.get("quick") for r in results.values())
    rounds = min((r.get("rounds", 1) for r in results.values()), default=1)
    print_table(table, quick, rounds)
    if problems or run_failed:
        for p in problems:
            print(f"bench_libuv.py: {p}", file=sys.stderr)
        if run_failed and not problems:
            print("bench_libuv.py: run.sh failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
