"""An outside tester's checks: races with shutdown, callbacks stopping each
other, level-triggered watches that never drain, runtimes dropped in odd
places, interpreter exit with work pending."""

import concurrent.futures as cf
import gc
import os
import socket
import threading
import time
import weakref

import pytest

import rtpy
from conftest import (
    collect_until_dead,
    join_threads,
    recording_errors,
    run_child,
    run_until_shut_down,
    shuts_down_from_inside,
    start_threads,
    wait_until,
)


def test_spawns_racing_shutdown_leave_no_future_pending():
    """Threads spawn until ShutdownError while the runtime shuts down: every
    future handed out ends done (result or cancelled), nothing runs twice.
    At least 3 rounds, and until one had both outcomes (on a loaded machine
    the workers may keep up with the spawners for a whole round)."""
    both_outcomes = 0
    for round_no in range(12):
        if round_no >= 3 and both_outcomes:
            break
        rt = rtpy.Runtime("multi_thread", workers=2)
        futs = [[] for _ in range(4)]
        ran = []
        errors = []
        go = threading.Barrier(5)

        @recording_errors(errors)
        def producer(k):
            go.wait()
            try:
                for i in range(100_000):
                    futs[k].append(rt.spawn(ran.append, (k, i)))
            except rtpy.ShutdownError:
                return

        ths = start_threads(4, producer, indexed=True)
        go.wait()
        time.sleep(0.02)
        rt.shutdown(timeout=10)
        join_threads(ths, 10)
        assert not errors, errors
        all_futs = [f for fs in futs for f in fs]
        done, not_done = cf.wait(all_futs, timeout=5)
        assert not not_done, f"{len(not_done)} of {len(all_futs)} futures still pending after shutdown"
        n_ran = len(ran)
        assert len(set(ran)) == n_ran, "a spawned function ran twice"
        ok = sum(1 for f in all_futs if not f.cancelled())
        assert ok == n_ran, f"{ok} futures have a result but {n_ran} functions ran"
        time.sleep(0.02)
        assert len(ran) == n_ran, "functions ran after shutdown returned"
        both_outcomes += n_ran > 0 and len(all_futs) > n_ran
    # Not vacuous: some round's race had both outcomes.
    assert both_outcomes, "no round had both spawned functions run and futures cancelled"


def test_timer_cancels_racing_shutdown():
    """Cancels from 3 threads while the runtime shuts down: each returns a
    bool or raises ShutdownError; nothing fires after shutdown returned."""
    rt = rtpy.Runtime("multi_thread", workers=2)
    fired = []
    timers = [rt.call_later((i % 50) * 0.001, fired.append, i) for i in range(3000)]
    errors = []

    @recording_errors(errors)
    def canceller(k):
        for t in timers[k::3]:
            try:
                r = t.cancel()
                assert r in (True, False)
            except rtpy.ShutdownError:
                pass

    ths = start_threads(3, canceller, indexed=True)
    time.sleep(0.01)
    rt.shutdown(timeout=10)
    n = len(fired)
    join_threads(ths, 10)
    assert not errors, errors
    time.sleep(0.05)
    assert len(fired) == n, "a timer fired after shutdown returned"
    assert len(set(fired)) == len(fired)
    assert not any(t.active for t in timers)
    assert 0 < len(fired) < len(timers), len(fired)


def test_two_repeating_timers_cancel_each_other_from_their_callbacks():
    """Each callback cancels the other while the other may be running on the
    second worker: neither may wait for the other (deadlock)."""
    for _ in range(20):
        with rtpy.Runtime("multi_thread", workers=2) as rt:
            box = {}
            results = {"a": [], "b": []}
            barrier = threading.Barrier(2, timeout=1)

            def make(me, other):
                def cb():
                    try:
                        barrier.wait()  # both callbacks running at once (when they meet)
                    except threading.BrokenBarrierError:
                        pass
                    results[me].append(box[other].cancel())

                return cb

            box["a"] = rt.call_every(0.001, make("a", "b"))
            box["b"] = rt.call_every(0.001, make("b", "a"))
            assert wait_until(lambda: results["a"] and results["b"], 10), "deadlock: callbacks never returned"
            box["a"].cancel()
            box["b"].cancel()
            n = (len(results["a"]), len(results["b"]))
            time.sleep(0.01)
            assert (len(results["a"]), len(results["b"])) == n, "called again after both were cancelled"


def test_timer_cancelled_from_another_callback_while_it_runs():
    with rtpy.Runtime("multi_thread", workers=2) as rt:
        running, release = threading.Event(), threading.Event()
        calls = []

        def slow():
            calls.append(1)
            running.set()
            release.wait(5)

        t = rt.call_every(0.001, slow)
        assert running.wait(5)
        took = []

        def stopper():
            t0 = time.monotonic()
            r = t.cancel()
            took.append(time.monotonic() - t0)
            return r

        assert rt.spawn(stopper).result(timeout=5) is True
        assert took[0] < 1.0, "cancel from another callback waited for the running call"
        release.set()
        time.sleep(0.02)
        assert len(calls) == 1, "called again after cancel"


def test_run_nowait_returns_with_a_watch_that_never_drains(ct):
    """A level-triggered watch whose callback never reads: run('nowait') and
    run_budget must still return (the next call runs it again)."""
    a, b = socket.socketpair()
    try:
        a.send(b"never read")
        calls = []
        w = ct.watch(b, rtpy.READABLE, calls.append)
        t0 = time.monotonic()
        for _ in range(5):
            ct.run("nowait")
        assert time.monotonic() - t0 < 2
        assert 1 <= len(calls) <= 10, f"{len(calls)} calls in 5 nowait runs"
        t0 = time.monotonic()
        ct.run_budget(0.01)
        assert time.monotonic() - t0 < 0.5
        n = len(calls)
        ct.run_budget(0.01, max_callbacks=3)
        assert len(calls) - n <= 3
        w.close()
    finally:
        a.close()
        b.close()


def test_watch_write_end_of_a_pipe_whose_reader_closed_reports_error_or_hup(any_rt):
    r, w = os.pipe()
    os.set_blocking(w, False)
    events = []
    box = {}

    def cb(ev):
        if ev & (rtpy.ERROR | rtpy.HUP):
            events.append(ev)
            box["w"].close()

    try:
        box["w"] = any_rt.watch(w, rtpy.WRITABLE, cb)
        os.close(r)
        r = None
        from conftest import drive

        assert drive(any_rt, lambda: events, timeout=5), "no ERROR/HUP for a pipe without reader"
    finally:
        if r is not None:
            os.close(r)
        box.get("w") and box["w"].close()
        os.close(w)


def test_watch_of_a_regular_file_is_an_oserror(mt, tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x")
    base = mt.metrics().io_registrations
    with open(p, "rb") as f:
        with pytest.raises(OSError):
            mt.watch(f, rtpy.READABLE, lambda ev: None)
    # Nothing half-registered was left.
    assert mt.metrics().io_registrations == base


def test_keyword_arguments_are_rejected(mt):
    with pytest.raises(TypeError):
        mt.spawn(print, x=1)
    with pytest.raises(TypeError):
        mt.call_later(0.1, print, x=1)


def test_watch_and_close_of_one_fd_from_many_threads(mt):
    """Threads race to watch / close one fd: at any time at most one watch
    holds it (others get EEXIST), nothing crashes, every watch closes."""
    a, b = socket.socketpair()
    errors = []
    counts = {"ok": 0, "eexist": 0}
    lock = threading.Lock()

    @recording_errors(errors)
    def racer():
        for _ in range(300):
            try:
                w = mt.watch(b, rtpy.READABLE, lambda ev: None)
            except FileExistsError:
                with lock:
                    counts["eexist"] += 1
                continue
            with lock:
                counts["ok"] += 1
            w.close()

    try:
        join_threads(start_threads(4, racer), 20)
        assert not errors, errors
        # Every attempt either watched or found the fd watched (how many of
        # each depends on the scheduling: 157 of 1200 watched once on a
        # loaded machine); a watch left open would make the last one fail.
        assert counts["ok"] + counts["eexist"] == 4 * 300
        assert counts["ok"] >= 1
        # Free at the end.
        mt.watch(b, rtpy.READABLE, lambda ev: None).close()
    finally:
        a.close()
        b.close()


def test_blocking_job_waits_for_a_spawn_and_a_spawn_starts_blocking_work(mt):
    def job():
        # A pool thread may block on the runtime's own work.
        return mt.spawn(lambda: "from worker").result(timeout=5)

    assert mt.run_blocking(job).result(timeout=10) == "from worker"

    def cb():
        return mt.run_blocking(lambda: "from pool")

    inner = mt.spawn(cb).result(timeout=5)
    assert inner.result(timeout=5) == "from pool"


def test_arg_with_a_del_that_runs_python_is_released_safely(mt):
    log = []

    class Noisy:
        def __del__(self):
            # Python work in __del__, wherever the last reference goes.
            log.append(sum(range(100)) + len(threading.enumerate()) * 0)

    for i in range(200):
        mt.spawn(lambda x: None, Noisy())
        mt.call_later(0, lambda x: None, Noisy())
    mt.spawn(lambda: None).result(timeout=5)
    assert wait_until(lambda: (gc.collect(), len(log))[1] == 400, 5), f"{len(log)} of 400 __del__ ran"


def test_runtime_dropped_by_its_own_callback():
    """The last reference to a runtime goes away on one of its own threads
    (inside its callback): no deadlock, no crash."""
    p = run_child(
        """
        import threading, time, rtpy
        ev = threading.Event()
        done = threading.Event()
        def make():
            rt = rtpy.Runtime("multi_thread", workers=1)
            def cb(rt=rt):
                ev.wait(5)
                return "ran"
            fut = rt.spawn(cb)
            fut.add_done_callback(lambda f: done.set())
            return fut
        fut = make()          # only the callback holds the runtime now
        ev.set()
        assert done.wait(5)
        assert fut.result() == "ran"
        time.sleep(0.3)
        print("ok")
        """,
        timeout=30,
    )
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr[-2000:]


def test_runtime_garbage_collected_without_shutdown_releases_callbacks():
    class Obj:
        pass

    arg = Obj()
    ra = weakref.ref(arg)
    a, b = socket.socketpair()
    try:
        rt = rtpy.Runtime("multi_thread", workers=1)
        rt.call_later(30, lambda x: None, arg)
        rt.spawn(lambda x: None, arg)
        w = rt.watch(b, rtpy.READABLE, lambda ev, x=arg: None)
        w.close()
        del arg, rt, w
        assert collect_until_dead(ra, timeout=10), "a dropped runtime kept its callbacks' arguments"
    finally:
        a.close()
        b.close()


def test_interpreter_exit_with_work_pending_and_callbacks_running():
    """No shutdown: the interpreter exits while repeats fire, watches are
    registered and a callback runs Python code. Exit 0, no fatal error."""
    p = run_child(
        """
        import socket, threading, time, rtpy
        rt = rtpy.Runtime("multi_thread", workers=2)
        ct = rtpy.Runtime("current_thread")
        a, b = socket.socketpair()
        a.send(b"x" * 100)
        rt.watch(b, rtpy.READABLE, lambda ev: [i * i for i in range(1000)])
        rt.call_every(0.001, lambda: [i for i in range(1000)])
        ct.call_later(10, print)
        for _ in range(100):
            rt.spawn(time.sleep, 0.001)
        rt.run_blocking(time.sleep, 0.2)
        time.sleep(0.05)
        print("exiting")
        """,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "exiting" in p.stdout
    assert "Fatal" not in p.stderr, p.stderr[-2000:]


def test_shutdown_from_inside_a_current_thread_callback():
    rt = rtpy.Runtime("current_thread")
    out = []
    rt.spawn(shuts_down_from_inside(rt, out))
    rt.call_later(0.01, out.append, "timer")
    run_until_shut_down(rt, within=5)
    assert out and out[0] in ("returned", "TimeoutError", "DeadlockError")
    rt.shutdown(timeout=5)
    with pytest.raises(rtpy.ShutdownError):
        rt.spawn(print)
    if out[0] != "DeadlockError":  # the shutdown began: no status-Ok call after that
        assert "timer" not in out, f"a timer ran after shutdown began: {out}"


def test_queue_dropped_without_close_cancels_and_releases():
    class Obj:
        pass

    with rtpy.Runtime() as rt:
        q = rt.queue()
        arg = Obj()
        ra = weakref.ref(arg)
        calls = []
        q.post(calls.append, arg)
        del arg, q
        assert collect_until_dead(ra), "a dropped queue kept its entries"
        assert calls == []


def test_post_after_close_raises_and_does_not_leak():
    class Obj:
        pass

    with rtpy.Runtime() as rt:
        q = rt.queue()
        q.close()
        arg = Obj()
        ra = weakref.ref(arg)
        with pytest.raises((ValueError, RuntimeError, OSError)):
            q.post(print, arg)
        del arg
        assert collect_until_dead(ra)
        with pytest.raises((ValueError, RuntimeError, OSError)):
            q.fileno()


def test_forked_child_that_never_uses_the_runtime_exits():
    """os.fork() with a live runtime: the child (no runtime threads there)
    exits normally without touching rt; its interpreter exit must not wait
    for the parent's runtime threads."""
    p = run_child(
        """
        import os, sys, time, rtpy
        rt = rtpy.Runtime("multi_thread", workers=2)
        rt.call_every(0.01, lambda: None)
        assert rt.spawn(lambda: 1).result(timeout=5) == 1
        pid = os.fork()
        if pid == 0:
            sys.exit(7)  # normal exit: atexit handlers and finalization run
        t0 = time.monotonic()
        while True:
            r, status = os.waitpid(pid, os.WNOHANG)
            if r:
                print("child exit", os.waitstatus_to_exitcode(status))
                break
            if time.monotonic() - t0 > 5:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                print("child hung at exit")
                break
            time.sleep(0.02)
        rt.shutdown(timeout=5)
        """,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "child exit 7" in p.stdout, p.stdout + p.stderr[-2000:]


@pytest.mark.parametrize("where", ["spawn", "run_blocking", "call_later"])
def test_deep_recursion_that_a_python_thread_survives_does_not_crash_a_runtime_thread(where):
    """Python code that runs on a threading.Thread (a ThreadPoolExecutor
    worker) runs on rt's threads too: their C stacks are not smaller than
    Python's threads' (a raised recursion limit is common in parsers)."""
    code = """
        import sys, threading, rtpy
        sys.setrecursionlimit(100000)
        def f(n):
            return 0 if n == 0 else 1 + list(map(f, [n - 1]))[0]
        N = 6000
        r = []
        t = threading.Thread(target=lambda: r.append(f(N)))
        t.start(); t.join()
        if r != [N]:
            print("skip: a Python thread cannot recurse that deep here")
            raise SystemExit(0)
        with rtpy.Runtime("multi_thread", workers=1) as rt:
            if WHERE == "spawn":
                got = rt.spawn(f, N).result(timeout=60)
            elif WHERE == "run_blocking":
                got = rt.run_blocking(f, N).result(timeout=60)
            else:
                out = []
                rt.call_later(0, lambda: out.append(f(N)))
                import time
                t0 = time.monotonic()
                while not out and time.monotonic() - t0 < 60:
                    time.sleep(0.01)
                got = out[0]
        assert got == N
        print("ok")
    """.replace("WHERE", repr(where))
    p = run_child(code, timeout=120)
    if "skip:" in p.stdout:
        pytest.skip(p.stdout.strip())
    assert p.returncode == 0, f"exit {p.returncode} (-11/139: segfault, the thread's stack overflowed)\n{p.stderr[-1500:]}"
    assert "ok" in p.stdout


def test_forked_child_can_make_its_own_runtime_and_the_parents_does_not_swallow_work():
    """In a forked child a new runtime works; the parent's runtime (its
    threads are not in the child) must not accept work it will never run:
    spawn raises (ShutdownError / RuntimeError) or the call runs."""
    p = run_child(
        """
        import os, sys, rtpy
        rt = rtpy.Runtime("multi_thread", workers=2)
        rt.call_every(0.01, lambda: None)
        pid = os.fork()
        if pid == 0:
            import signal
            signal.alarm(10)
            with rtpy.Runtime("multi_thread") as rt2:
                assert rt2.spawn(lambda: 42).result(timeout=5) == 42
            try:
                f = rt.spawn(lambda: 1)
            except RuntimeError as e:
                print("refused:", type(e).__name__)
                os._exit(0)
            try:
                f.result(timeout=2)
                print("ran")
                os._exit(0)
            except Exception as e:
                print("swallowed: the future never completed", repr(e))
                os._exit(3)
        _, st = os.waitpid(pid, 0)
        rt.shutdown(timeout=5)
        sys.exit(os.waitstatus_to_exitcode(st))
        """,
        timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]


def test_two_runtimes_shut_each_other_down_from_their_callbacks():
    for _ in range(5):
        a = rtpy.Runtime("multi_thread", workers=1)
        b = rtpy.Runtime("multi_thread", workers=1)
        meet = threading.Barrier(2, timeout=5)
        out = {}

        def stopper(me, other):
            meet.wait()
            try:
                other.shutdown(timeout=2)
                out[me] = "ok"
            except (TimeoutError, rtpy.DeadlockError) as e:
                out[me] = type(e).__name__

        fa = a.spawn(stopper, "a", b)
        fb = b.spawn(stopper, "b", a)
        assert wait_until(lambda: len(out) == 2, 10), f"deadlock: {out}"
        for rt in (a, b):
            rt.shutdown(timeout=10)
        for f in (fa, fb):
            assert f.done()
        with pytest.raises(rtpy.ShutdownError):
            a.spawn(print)


def test_watch_callback_shuts_down_its_own_runtime(any_rt):
    s1, s2 = socket.socketpair()
    try:
        s1.send(b"x")
        out = []

        def cb(ev):
            try:
                any_rt.shutdown(timeout=1)
                out.append("ok")
            except (TimeoutError, rtpy.DeadlockError) as e:
                out.append(type(e).__name__)

        any_rt.watch(s2, rtpy.READABLE, cb)
        if any_rt.flavor == "current_thread":
            try:
                any_rt.run("default")
            except rtpy.ShutdownError:
                pass
        assert wait_until(lambda: out, 5)
        any_rt.shutdown(timeout=10)
        n = len(out)
        time.sleep(0.02)
        assert len(out) == n == 1, f"watch called again after its runtime shut down: {out}"
    finally:
        s1.close()
        s2.close()
