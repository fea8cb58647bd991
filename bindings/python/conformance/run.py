"""Conformance runner: CPython's own ``test.test_asyncio`` against a chosen event loop.

    python bindings/python/conformance/run.py --loop asyncio|uvloop|rloop|rtpy [options]

Each applicable module runs in its own subprocess (``worker.py``), several at once (``--jobs``).
A test that runs longer than ``--test-timeout`` seconds is reported as an error ("timeout"),
its worker is killed and the module resumes after it; a worker that dies mid-test is handled
the same way ("crashed"). The summary gives passed / failed / errors / skipped per module and
overall, and the pass rate on applicable tests: passed / (passed + failed + errors).

Exit status: 0 when the run completed (and met ``--min-pass-rate`` if given), 1 when the pass
rate is below ``--min-pass-rate``, 2 when the chosen loop cannot be imported.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
DEFAULT_SKIPS = HERE / "skips.toml"
MAX_ATTEMPTS = 25
# Longest modules first, so that parallel workers finish together.
WEIGHT = {"test_events": 0, "test_sendfile": 1, "test_subprocess": 2, "test_streams": 3,
          "test_tasks": 4, "test_sslproto": 5, "test_ssl": 6, "test_sock_lowlevel": 7,
          "test_unix_events": 8, "test_locks": 9}

sys.path.insert(0, str(HERE))
from skiplist import load_skips, module_skipped  # noqa: E402

_PROBE = r"""
import json, pkgutil, sys
sys.path.insert(0, {here!r})
from loops import load_factory
load_factory({loop!r})
import test.test_asyncio as pkg
print(json.dumps(sorted(n for _, n, _ in pkgutil.iter_modules(pkg.__path__) if n.startswith("test_"))))
"""


def probe(python: str, loop: str) -> list[str]:
    """Check that ``loop`` imports under ``python``; return the suite's module names."""
    proc = subprocess.run([python, "-c", _PROBE.format(here=str(HERE), loop=loop)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(2 if proc.returncode == 2 else 1)
    return json.loads(proc.stdout)


class ModuleRun:
    """One module, run to completion across worker restarts."""

    def __init__(self, module, args, workdir: Path):
        self.module = module
        self.args = args
        self.out = workdir / f"{module}.jsonl"
        self.exclude = workdir / f"{module}.exclude"
        self.log = workdir / f"{module}.log"
        self.results: dict[str, tuple[str, str]] = {}
        self.listed: list[str] = []
        self.attempts = 0
        self.seconds = 0.0
        for p in (self.out, self.exclude, self.log):
            p.write_text("")

    def _record(self, tid, outcome, detail):
        self.results[tid] = (outcome, detail)
        with self.exclude.open("a") as f:
            f.write(tid + "\n")

    def _attempt(self) -> bool:
        """One worker process; True when the module is finished."""
        self.attempts += 1
        cmd = [self.args.python, str(WORKER), "--module", self.module, "--loop", self.args.loop,
               "--out", str(self.out), "--skips", str(self.args.skips),
               "--exclude", str(self.exclude)]
        with self.log.open("a") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        pos = self.out.stat().st_size
        current, started, done, progress = None, None, False, False
        buf = ""
        killed_for = None
        idle_since = time.monotonic()
        last_ended = None
        while True:
            rc = proc.poll()
            with self.out.open() as f:
                f.seek(pos)
                chunk = f.read()
                pos += len(chunk.encode())
            buf += chunk
            *lines, buf = buf.split("\n")
            for line in lines:
                if not line.strip():
                    continue
                idle_since = time.monotonic()
                ev = json.loads(line)
                if ev["ev"] == "start":
                    current, started = ev["id"], time.monotonic()
                elif ev["ev"] == "end":
                    progress = True
                    self._record(ev["id"], ev["outcome"], ev.get("detail", ""))
                    last_ended = ev["id"]
                    if ev["id"] == current:
                        current = None
                elif ev["ev"] == "done":
                    done = True
                    self.listed = ev["listed_skips"]
            if rc is not None:
                break
            now = time.monotonic()
            if current is not None and now - started > self.args.test_timeout:
                killed_for = current
            elif current is None and now - idle_since > self.args.test_timeout:
                # Stuck between tests. After a test: its own clean-up outside TestCase.run
                # (IsolatedAsyncioTestCase closes its asyncio.Runner there), class or module
                # teardown: charged to the test that ended last. Before any test: the module.
                killed_for = last_ended or f"test.test_asyncio.{self.module} (worker)"
            if killed_for is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.2)
        if done:
            return True
        if killed_for is not None:
            where = "still running" if current is not None else "hung after its end (clean-up/teardown)"
            self._record(killed_for, "error",
                         f"timeout: {where} after {self.args.test_timeout:g} s (worker killed)")
            # Resume after the hung test; a worker hung before its first test is not restarted.
            return current is None and last_ended is None
        tail = self.log.read_text()[-3000:]
        if current is not None:
            self._record(current, "error", f"crashed: worker exited with status {proc.returncode}\n{tail}")
            return False
        # Died outside any test (import error, fixture crash...): report once, stop.
        if not progress or self.attempts >= MAX_ATTEMPTS:
            self._record(f"test.test_asyncio.{self.module} (worker)", "error",
                         f"worker exited with status {proc.returncode} outside a test\n{tail}")
            return True
        return False

    def run(self):
        t0 = time.monotonic()
        while not self._attempt():
            if self.attempts >= MAX_ATTEMPTS:
                self._record(f"test.test_asyncio.{self.module} (worker)", "error",
                             f"gave up after {MAX_ATTEMPTS} worker restarts")
                break
        self.seconds = time.monotonic() - t0
        return self

    def counts(self) -> Counter:
        c = Counter()
        for outcome, detail in self.results.values():
            key = {"xfail": "pass", "xpass": "fail"}.get(outcome, outcome)
            c[key] += 1
            if detail.startswith("timeout:"):
                c["timeout"] += 1
        c["listed"] = len(self.listed)
        return c


def rate(c) -> float:
    applicable = c["pass"] + c["fail"] + c["error"]
    return 100.0 * c["pass"] / applicable if applicable else 100.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loop", required=True, help="asyncio, uvloop, rloop or rtpy")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that runs the tests (it must import the loop)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="modules run at once (default: number of CPUs)")
    ap.add_argument("--test-timeout", type=float, default=60.0,
                    help="seconds one test may run before it is reported as hung (default 60)")
    ap.add_argument("--modules", nargs="*", help="run only these modules (default: all applicable)")
    ap.add_argument("--skips", default=str(DEFAULT_SKIPS), help="skip list (TOML)")
    ap.add_argument("--json", help="write the full results (every test's outcome) to this file")
    ap.add_argument("--show-failures", type=int, default=50,
                    help="list up to N failing tests with their first error line (default 50)")
    ap.add_argument("--min-pass-rate", type=float, default=None,
                    help="exit 1 if the overall pass rate (percent) is below this")
    args = ap.parse_args(argv)

    skips = load_skips(args.skips)
    modules = probe(args.python, args.loop)
    skipped_modules = [m for m in modules if module_skipped(skips, m)]
    todo = [m for m in modules if not module_skipped(skips, m)]
    if args.modules:
        unknown = set(args.modules) - set(modules)
        if unknown:
            sys.exit(f"conformance: unknown modules: {sorted(unknown)}")
        todo = [m for m in todo if m in args.modules]
    todo.sort(key=lambda m: WEIGHT.get(m, 99))

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="asyncio-conformance-") as tmp:
        runs = [ModuleRun(m, args, Path(tmp)) for m in todo]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(ModuleRun.run, runs))
    wall = time.monotonic() - t0
    runs.sort(key=lambda r: r.module)

    total = Counter()
    print(f"\nCPython {args.python} test.test_asyncio on loop '{args.loop}'\n")
    hdr = f"{'module':<22}{'passed':>7}{'failed':>7}{'errors':>7}{'skipped':>8}{'listed':>7}{'rate %':>8}{'time s':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in runs:
        c = r.counts()
        total.update(c)
        print(f"{r.module:<22}{c['pass']:>7}{c['fail']:>7}{c['error']:>7}{c['skip']:>8}"
              f"{c['listed']:>7}{rate(c):>8.1f}{r.seconds:>8.1f}")
    print("-" * len(hdr))
    print(f"{'TOTAL':<22}{total['pass']:>7}{total['fail']:>7}{total['error']:>7}{total['skip']:>8}"
          f"{total['listed']:>7}{rate(total):>8.1f}{wall:>8.1f}")
    applicable = total["pass"] + total["fail"] + total["error"]
    print(f"\npass rate on applicable tests: {total['pass']}/{applicable} = {rate(total):.2f}%"
          f"  (hung: {total['timeout']}; skipped = the test skipped itself; listed = skips.toml)")
    cats = Counter(e["category"] for e in skips.values())
    print(f"skip list: {len(skips)} entries ({', '.join(f'{k} {v}' for k, v in sorted(cats.items()))}); "
          f"whole modules not run: {', '.join(skipped_modules)}")

    bad = [(tid, o, d) for r in runs for tid, (o, d) in sorted(r.results.items())
           if o in ("fail", "error", "xpass")]
    if bad and args.show_failures:
        print(f"\nfailing tests ({len(bad)}):")
        for tid, o, d in bad[: args.show_failures]:
            lines = [ln for ln in d.strip().splitlines() if ln.strip()]
            print(f"  {o.upper():5} {tid.removeprefix('test.test_asyncio.')}: {lines[-1][:160] if lines else ''}")
        if len(bad) > args.show_failures:
            print(f"  ... {len(bad) - args.show_failures} more (see --json)")
    print(f"\nwall time {wall:.1f} s, {args.jobs} jobs")

    if args.json:
        Path(args.json).write_text(json.dumps({
            "loop": args.loop, "python": args.python, "wall_seconds": wall,
            "pass_rate": rate(total), "totals": dict(total),
            "skipped_modules": skipped_modules,
            "modules": {r.module: {"counts": dict(r.counts()), "seconds": r.seconds,
                                   "attempts": r.attempts, "listed_skips": r.listed,
                                   "tests": {t: {"outcome": o, "detail": d}
                                             for t, (o, d) in r.results.items()}}
                        for r in runs},
        }, indent=1))
    if args.min_pass_rate is not None and rate(total) < args.min_pass_rate:
        print(f"pass rate {rate(total):.2f}% is below --min-pass-rate {args.min_pass_rate}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
