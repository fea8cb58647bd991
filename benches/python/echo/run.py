"""Echo-server and scheduling benchmarks of asyncio event loops; tables and a chart.

    python benches/python/echo/run.py [--quick] [--loops asyncio,uvloop,rloop,rtpy]
                                      [--rounds R] [--warmup S] [--duration S]
                                      [--out DIR] [--no-echo] [--no-micro] [--no-chart]

Echo (uvloop's published method): one server process per loop and mode
(server.py), blocking clients in separate processes (client.py; concurrency 10
is 2 processes of 5 threads, so that server and clients fit 2 cores), 127.0.0.1
and TCP_NODELAY on both ends. Each cell (mode x message size x concurrency)
runs R rounds; each round runs every loop in turn (the order rotates), so a
change in the machine's load hits all loops alike. A round: new client
processes connect, then a warm-up, then the measured window, during which the
runner samples the server's CPU time (user + system, all its threads: the run
time of /proc/<pid>/task/*/schedstat, in ns; /proc/<pid>/stat's clock ticks
when threads that ended would be missed). Reported per cell and loop:
requests per second, p99 latency, and the server's CPU time per request, each
the best of the rounds (a shared machine only ever makes a figure worse), and
the CPU time's median over the rounds (one lucky quiet round does not decide
it; on a noisy machine cells within ~10% need both).

Scheduling (micro.py): call_soon (batched and chained) and call_later
throughput, each loop in its own process, the best of the repetitions of all
the rounds (loops interleaved within each round, as the echo cells).

Ratios are against the best *peer* (asyncio, uvloop, rloop) of the cell:
value / best. For req/s and callbacks/s the fastest peer is 1.00 and above 1
is faster; for CPU per request the cheapest peer is 1.00 and below 1 is
cheaper. rtpy is measured when `rtpy.new_event_loop` exists, else listed as
skipped with the reason. Writes results.json, results.md and echo.png to --out
(default: target/bench-python-echo under the repository) and prints the
markdown.
"""

import argparse
import datetime
import json
import math
import os
import platform
import select
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from loops import LOOPS, PEERS, version  # noqa: E402

PY = sys.executable
MODES = ("sock", "streams", "proto")
SIZES = (1024, 10 * 1024, 100 * 1024)
CONCURRENCY = (1, 10)
#: Client processes at most (each runs conns/procs threads).
CLIENT_PROCS = 2
MICRO = (  # name, full N, reps
    ("call_soon_batched", 1_000_000, 3),
    ("call_soon_chained", 200_000, 3),
    ("call_later", 100_000, 3),
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_START_TIMEOUT = 30


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def size_name(n):
    return f"{n // 1024} KiB"


def proc_cpu(pid):
    """CPU seconds (user + system) of process `pid`, two ways.

    Returns (precise, ticks): `precise` sums the run time in nanoseconds of
    /proc/<pid>/task/*/schedstat (the threads alive now); `ticks` is utime +
    stime of /proc/<pid>/stat (every thread, ended ones too, in clock ticks).
    """
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    ticks = (int(fields[11]) + int(fields[12])) / CLK_TCK
    precise = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                precise += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended meanwhile: `ticks` still counts it
    return precise / 1e9, ticks


def cpu_delta(before, after):
    """Server CPU seconds between two proc_cpu samples.

    The precise figure, unless threads that ended in the window make it
    miss more than 20 ms + 10% of the tick count (then the tick count).
    """
    precise = after[0] - before[0]
    ticks = after[1] - before[1]
    return ticks if ticks - precise > 0.02 + 0.1 * ticks else precise


class Server:
    """One server.py process; `error` says why it is unusable, if it is."""

    def __init__(self, loop, mode):
        self.loop, self.mode = loop, mode
        self.port = None
        self.error = None
        self.proc = subprocess.Popen(
            [PY, os.path.join(HERE, "server.py"), "--loop", loop, "--mode", mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], SERVER_START_TIMEOUT)
        line = self.proc.stdout.readline().split(None, 1) if ready else ["(timeout)"]
        if line and line[0] == "READY":
            self.port = int(line[1])
        elif line and line[0] == "UNAVAILABLE":
            self.error = "skipped: " + line[1].strip()
            self.proc.wait()
        elif line == ["(timeout)"]:
            self.error = f"server not ready within {SERVER_START_TIMEOUT} s"
            self.stderr_tail()
        else:
            self.error = "server failed to start: " + self.stderr_tail()

    def alive(self):
        if self.error is None and self.proc.poll() is not None:
            self.error = f"server exited ({self.proc.returncode}): " + self.stderr_tail()
        return self.error is None

    def stderr_tail(self):
        self.proc.kill()
        self.proc.wait()
        err = self.proc.stderr.read().strip().splitlines()
        return err[-1] if err else "(no message)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure(server, size, conc, warmup, duration):
    """One cell on one server: a dict of req/s, p99 (ms), CPU µs/request, or error."""
    procs = min(conc, CLIENT_PROCS)
    split = [conc // procs + (i < conc % procs) for i in range(procs)]
    clients = [
        subprocess.Popen(
            [PY, os.path.join(HERE, "client.py"), "--port", str(server.port),
             "--size", str(size), "--conns", str(k), "--seed", str(100 * i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, k in enumerate(split)
    ]
    # The window starts once every client has connected all its connections.
    for c in clients:
        c.stdout.readline()  # READY (or "" if it failed: then its exit status says so)
    start = time.monotonic() + warmup
    end = start + duration
    for c in clients:
        try:
            c.stdin.write(f"{start!r} {end!r}\n")
            c.stdin.flush()
        except BrokenPipeError:
            pass
    time.sleep(max(0.0, start - time.monotonic()))
    cpu0 = proc_cpu(server.proc.pid)
    time.sleep(max(0.0, end - time.monotonic()))
    cpu1 = proc_cpu(server.proc.pid)
    lats, errors = [], []
    for c in clients:
        try:
            out, err = c.communicate(timeout=max(1.0, end + 10 - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.kill()
            c.communicate()
            errors.append("client hung (no echo within 10 s of the window's end)")
            continue
        if c.returncode != 0:
            errors.append(f"client exited {c.returncode}: {err.strip().splitlines()[-1:]}")
            continue
        d = json.loads(out)
        lats.extend(d["latencies_us"])
        errors.extend(d["errors"])
    if not server.alive():
        return {"error": server.error}
    if errors or not lats:
        return {"error": "; ".join(sorted(set(errors))) or "no request completed"}
    lats.sort()
    n = len(lats)
    return {
        "requests": n,
        "rps": n / duration,
        "p99_ms": lats[max(0, math.ceil(0.99 * n) - 1)] / 1000,
        "cpu_us_per_req": cpu_delta(cpu0, cpu1) / n * 1e6,
        "server_cpu_s": cpu_delta(cpu0, cpu1),
    }


def aggregate(rounds):
    """One cell's result from its rounds, or the first error.

    Each figure is the best of the rounds, taken separately: the highest
    req/s, the lowest CPU per request, the lowest p99. On a shared machine a
    disturbance (another process taking a core) only ever makes a figure
    worse, so the best round is the least disturbed estimate.
    """
    for r in rounds:
        if "error" in r:
            return {"error": r["error"]}
    agg = {
        "rps": max(r["rps"] for r in rounds),
        "cpu_us_per_req": min(r["cpu_us_per_req"] for r in rounds),
        # Beside the best: the median, which one lucky quiet round does
        # not decide (cells within ~10% of each other need both).
        "cpu_us_per_req_median": statistics.median(r["cpu_us_per_req"] for r in rounds),
        "p99_ms": min(r["p99_ms"] for r in rounds),
    }
    agg["rounds"] = rounds
    return agg


def run_echo(loops, modes, sizes, concs, warmup, duration, rounds):
    results = []
    skipped = {}
    for mode in modes:
        servers = [Server(loop, mode) for loop in loops]
        try:
            live = []
            for s in servers:
                if s.error and s.error.startswith("skipped"):
                    skipped.setdefault(s.loop, s.error)
                else:
                    live.append(s)
            for size in sizes:
                for conc in concs:
                    per = {s.loop: [] for s in live}
                    for rnd in range(rounds):
                        # Rotate the order each round: no loop always goes first.
                        k = rnd % max(1, len(live))
                        for s in live[k:] + live[:k]:
                            if not per[s.loop] or "error" not in per[s.loop][-1]:
                                per[s.loop].append(
                                    measure(s, size, conc, warmup, duration) if s.alive()
                                    else {"error": s.error})
                    for i, s in enumerate(live):
                        cell = {"mode": mode, "size": size, "conc": conc, "loop": s.loop}
                        cell.update(aggregate(per[s.loop]))
                        results.append(cell)
                        if "error" in cell:
                            # A server that failed (or hangs) gets a fresh start for the next cell.
                            s.stop()
                            live[i] = Server(s.loop, mode)
                            servers.append(live[i])
                        log(f"  {mode:7} {size_name(size):>7} c{conc:<2} {s.loop:8} "
                            + (f"{cell['rps']:9.0f} req/s  p99 {cell['p99_ms']:6.2f} ms  "
                               f"{cell['cpu_us_per_req']:7.1f} us/req" if "rps" in cell
                               else "FAILED: " + cell["error"]))
        finally:
            for s in servers:
                s.stop()
    return results, skipped


def run_micro(loops, scale, reps, rounds):
    rows = {}
    skipped = {}
    for rnd in range(rounds):
        for name, n, full_reps in MICRO:
            n = max(1000, int(n * scale))
            for loop in loops:
                if loop in skipped:
                    continue
                p = subprocess.run(
                    [PY, os.path.join(HERE, "micro.py"), "--loop", loop, "--bench", name,
                     "--n", str(n), "--reps", str(reps or full_reps)],
                    capture_output=True, text=True, cwd=HERE, timeout=300,
                )
                if p.stdout.startswith("UNAVAILABLE"):
                    skipped[loop] = "skipped: " + p.stdout.split(None, 1)[1].strip()
                    continue
                row = rows.setdefault((name, loop), {"bench": name, "n": n, "loop": loop, "rates": []})
                if p.returncode != 0:
                    row["error"] = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
                else:
                    row["rates"] += json.loads(p.stdout)["rates"]
                    row["rate"] = max(row["rates"])
                log(f"  round {rnd + 1}/{rounds} {name:18} {loop:8} "
                    + (f"{row['rate']:12.0f} /s" if "rate" in row else "FAILED: " + row["error"]))
    results = [r for r in rows.values() if r["loop"] not in skipped]
    return results, skipped


# ---- tables ----

def ratio_cell(value, best, fmt):
    if best is None or not best:
        return fmt(value)
    return f"{fmt(value)} ({value / best:.2f})"


def fmt_rate(v):
    return f"{v / 1000:.1f}k" if v < 1e6 else f"{v / 1e6:.2f}M"


def echo_tables(results, loops):
    by = {(r["mode"], r["size"], r["conc"], r["loop"]): r for r in results}
    cells = sorted({(r["mode"], r["size"], r["conc"]) for r in results},
                   key=lambda c: (MODES.index(c[0]), c[1], c[2]))
    shown = [lp for lp in loops if any(r["loop"] == lp for r in results)]
    out = []
    metrics = (
        ("req/s (ratio to the fastest peer)", "rps", max, fmt_rate),
        ("server CPU µs per request (ratio to the cheapest peer)", "cpu_us_per_req", min,
         lambda v: f"{v:.1f}"),
        ("server CPU µs per request, median of the rounds (ratio to the cheapest peer's)",
         "cpu_us_per_req_median", min, lambda v: f"{v:.1f}"),
        ("p99 latency, ms", "p99_ms", None, lambda v: f"{v:.2f}"),
    )
    for title, key, pick, fmt in metrics:
        out.append(f"#### {title}\n")
        out.append("| mode | size | conc | " + " | ".join(shown) + " |")
        out.append("|---|---:|---:|" + "---:|" * len(shown))
        for mode, size, conc in cells:
            peer_vals = [by[(mode, size, conc, p)][key] for p in PEERS
                         if key in by.get((mode, size, conc, p), {})]
            best = pick(peer_vals) if pick and peer_vals else None
            row = []
            for lp in shown:
                r = by.get((mode, size, conc, lp), {})
                row.append(ratio_cell(r[key], best, fmt) if key in r
                           else "fail" if "error" in r else "–")
            out.append(f"| {mode} | {size_name(size)} | {conc} | " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def sign_test(wins, n):
    """One-sided binomial tail: the chance of `wins` or more of `n` fair coin flips."""
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


#: The sign test's level for a verdict (one-sided, each direction): 1%, as
#: the table makes 36 such tests (18 cells, two figures) and at 5% about two
#: verdicts would come from chance alone.
PAIRED_LEVEL = 0.01


def paired(rtpy_rounds, peer_rounds, key, better):
    """rtpy against one peer round by round (the two ran seconds apart, in
    the same rotation): the ratios' median and quartiles, the rounds rtpy
    won, and a verdict by the sign test."""
    pairs = [(a[key], b[key]) for a, b in zip(rtpy_rounds, peer_rounds)
             if key in a and key in b and b[key]]
    if not pairs:
        return None
    ratios = sorted(a / b for a, b in pairs)
    wins = sum(better(a, b) for a, b in pairs)
    losses = sum(better(b, a) for a, b in pairs)
    n = len(pairs)
    q = statistics.quantiles(ratios, n=4) if n > 1 else ratios * 3
    verdict = ("ahead" if sign_test(wins, wins + losses) < PAIRED_LEVEL
               else "behind" if sign_test(losses, wins + losses) < PAIRED_LEVEL
               else "tie")
    return {"median": statistics.median(ratios), "q1": q[0], "q3": q[2],
            "wins": wins, "n": n, "verdict": verdict}


def paired_table(results, loops):
    """rtpy against the peer with the best median in each cell, paired by round."""
    if "rtpy" not in loops:
        return ""
    by = {(r["mode"], r["size"], r["conc"], r["loop"]): r for r in results}
    cells = sorted({(r["mode"], r["size"], r["conc"]) for r in results},
                   key=lambda c: (MODES.index(c[0]), c[1], c[2]))
    figures = (("cpu_us_per_req", min, lambda a, b: a < b),
               ("rps", max, lambda a, b: a > b))
    out = ["#### rtpy against the best peer, round by round\n",
           "| mode | size | conc | CPU: peer | ratio, median [quartiles] | rounds won | verdict "
           "| req/s: peer | ratio, median [quartiles] | rounds won | verdict |",
           "|---|---:|---:|---|---:|---:|---|---|---:|---:|---|"]
    for mode, size, conc in cells:
        rt = by.get((mode, size, conc, "rtpy"), {})
        row = []
        for key, pick, better in figures:
            peers = [(statistics.median(r[key] for r in by[(mode, size, conc, p)]["rounds"]), p)
                     for p in PEERS if "rounds" in by.get((mode, size, conc, p), {})]
            if "rounds" not in rt or not peers:
                row += ["–"] * 4
                continue
            peer = pick(peers)[1]
            pr = paired(rt["rounds"], by[(mode, size, conc, peer)]["rounds"], key, better)
            if pr is None:
                row += [peer] + ["–"] * 3
                continue
            row += [peer, f"{pr['median']:.2f} [{pr['q1']:.2f}, {pr['q3']:.2f}]",
                    f"{pr['wins']}/{pr['n']}", pr["verdict"]]
        out.append(f"| {mode} | {size_name(size)} | {conc} | " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def micro_table(results, loops):
    by = {(r["bench"], r["loop"]): r for r in results}
    benches = [m[0] for m in MICRO if any(r["bench"] == m[0] for r in results)]
    shown = [lp for lp in loops if any(r["loop"] == lp for r in results)]
    out = ["#### callbacks per second (ratio to the fastest peer)\n",
           "| benchmark | N | " + " | ".join(shown) + " |",
           "|---|---:|" + "---:|" * len(shown)]
    for b in benches:
        peer = [by[(b, p)]["rate"] for p in PEERS if "rate" in by.get((b, p), {})]
        best = max(peer) if peer else None
        n = next(r["n"] for r in results if r["bench"] == b)
        row = [ratio_cell(by[(b, lp)]["rate"], best, fmt_rate) if "rate" in by.get((b, lp), {})
               else "fail" if (b, lp) in by else "–" for lp in shown]
        out.append(f"| {b} | {n:,} | " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def failures(echo, micro, skipped):
    lines = [f"- {lp}: {why}" for lp, why in sorted(skipped.items())]
    for r in echo:
        if "error" in r:
            lines.append(f"- {r['loop']} {r['mode']} {size_name(r['size'])} c{r['conc']}: "
                         f"{r['error']}")
    for r in micro:
        if "error" in r:
            lines.append(f"- {r['loop']} {r['bench']}: {r['error']}")
    return "\n".join(lines)


# ---- chart ----

def chart(echo, micro, loops, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [lp for lp in loops
             if any(r["loop"] == lp and ("rps" in r or "rate" in r) for r in echo + micro)]
    modes = [m for m in MODES if any(r["mode"] == m for r in echo)]
    rows = (2 if echo else 0) + (1 if micro else 0)
    cols = max(len(modes), 1 if not micro else len({r["bench"] for r in micro}))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    width = 0.8 / max(1, len(shown))
    colors = dict(zip(LOOPS, ("#888888", "#1f77b4", "#ff7f0e", "#2ca02c")))
    by = {(r["mode"], r["size"], r["conc"], r["loop"]): r for r in echo}
    for ci, mode in enumerate(modes):
        cells = sorted({(r["size"], r["conc"]) for r in echo if r["mode"] == mode})
        labels = [f"{size_name(s)}\nc{c}" for s, c in cells]
        for ri, (key, ylabel) in enumerate((("rps", "requests / s"),
                                            ("cpu_us_per_req", "server CPU µs / request"))):
            ax = axes[ri][ci]
            for li, lp in enumerate(shown):
                vals = [by.get((mode, s, c, lp), {}).get(key, 0) for s, c in cells]
                ax.bar([i + li * width for i in range(len(cells))], vals, width,
                       label=lp, color=colors.get(lp))
            ax.set_xticks([i + width * (len(shown) - 1) / 2 for i in range(len(cells))])
            ax.set_xticklabels(labels, fontsize=8)
            ax.set_title(f"{mode}: {ylabel}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            if ri == 0 and ci == 0:
                ax.legend(fontsize=8)
    for ci in range(len(modes), cols):
        for ri in range(2 if echo else 0):
            axes[ri][ci].axis("off")
    if micro:
        ri = rows - 1
        benches = [m[0] for m in MICRO if any(r["bench"] == m[0] for r in micro)]
        for ci, b in enumerate(benches):
            ax = axes[ri][ci]
            vals = [next((r.get("rate", 0) for r in micro
                          if r["bench"] == b and r["loop"] == lp), 0) for lp in shown]
            ax.bar(shown, [v / 1e6 for v in vals], color=[colors.get(lp) for lp in shown])
            ax.set_title(f"{b}: million callbacks / s", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
        for ci in range(len(benches), cols):
            axes[ri][ci].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 round per cell (0.1 s warm-up, 0.5 s measured), micro sizes / 10")
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--concurrency", default=",".join(str(c) for c in CONCURRENCY))
    ap.add_argument("--rounds", type=int, help="rounds per cell (default 12: the round-by-round sign test needs 11 of 12 for a verdict at 1%%; quick 1)")
    ap.add_argument("--warmup", type=float, help="seconds per round (default 0.2; quick 0.1)")
    ap.add_argument("--duration", type=float,
                    help="measured seconds per round (default 0.6; quick 0.5)")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "..", "target",
                                                  "bench-python-echo"))
    ap.add_argument("--no-echo", action="store_true")
    ap.add_argument("--no-micro", action="store_true")
    ap.add_argument("--no-chart", action="store_true")
    args = ap.parse_args()
    warmup = args.warmup if args.warmup is not None else (0.1 if args.quick else 0.2)
    duration = args.duration if args.duration is not None else (0.5 if args.quick else 0.6)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 12)
    loops = [lp for lp in args.loops.split(",") if lp]
    for lp in loops:
        if lp not in LOOPS:
            ap.error(f"unknown loop {lp!r} (known: {', '.join(LOOPS)})")
    modes = [m for m in args.modes.split(",") if m]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    concs = [int(c) for c in args.concurrency.split(",") if c]
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)

    t0 = time.monotonic()
    echo, micro, skipped = [], [], {}
    if not args.no_echo:
        log(f"echo: {len(modes) * len(sizes) * len(concs)} cells x {len(loops)} loops, "
            f"{rounds} round(s) of {warmup} s warm-up + {duration} s measured")
        echo, skipped = run_echo(loops, modes, sizes, concs, warmup, duration, rounds)
    if not args.no_micro:
        log("scheduling micro-benchmarks")
        micro, sk = run_micro(loops, 0.1 if args.quick else 1.0, 1 if args.quick else None, rounds)
        for k, v in sk.items():
            skipped.setdefault(k, v)
    elapsed = time.monotonic() - t0

    avail = [lp for lp in loops if lp not in skipped]
    header = (
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; "
        + ", ".join(f"{lp} {version(lp)}" for lp in avail if lp != "asyncio")
        + f". {'Quick mode: ' if args.quick else ''}{rounds} round(s) per cell (loops interleaved, "
        f"best round per figure), each {warmup} s warm-up + {duration} s measured; run time {elapsed:.0f} s.\n"
    )
    md = [header]
    if echo:
        md += ["### Echo server\n", echo_tables(echo, loops), paired_table(echo, loops)]
    if micro:
        md += ["### Scheduling\n", micro_table(micro, loops)]
    notes = failures(echo, micro, skipped)
    if notes:
        md += ["### Skipped and failed\n", notes + "\n"]
    text = "\n".join(md)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"echo": echo, "micro": micro, "skipped": skipped, "warmup": warmup,
                   "duration": duration, "rounds": rounds, "elapsed_s": elapsed}, f, indent=1)
    wrote = ["results.md", "results.json"]
    if not args.no_chart and (echo or micro):
        try:
            chart(echo, micro, loops, os.path.join(out_dir, "echo.png"))
            wrote.append("echo.png")
        except ImportError as e:
            log(f"no chart: {e} (pip install -r {os.path.join(HERE, 'requirements.txt')})")
    print(text)
    log(f"wrote {', '.join(wrote)} to {out_dir} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
