"""Threads and an asyncio loop: call_soon_threadsafe from many threads (it
wakes a waiting loop; each thread's calls keep their order), run_in_executor
with many jobs, close racing threadsafe calls (RuntimeError, never a crash),
the debug-mode thread check.

Each test runs on asyncio's loop and on rtpy's (conftest.loop_factory).
"""

import asyncio
import concurrent.futures
import threading
import time

import pytest

from .support import run, run_forever_until_stopped, stop_after

CLOSED = "Event loop is closed"


def test_threadsafe_from_8_threads_wakes_the_loop_and_keeps_per_thread_order(loop):
    n_threads, per_thread = 8, 2000
    seen = {k: [] for k in range(n_threads)}
    total = [0]
    done = loop.create_future()
    go = threading.Event()

    def record(k, i):
        seen[k].append(i)
        total[0] += 1
        if total[0] == n_threads * per_thread:
            done.set_result(None)

    def producer(k):
        go.wait()
        for i in range(per_thread):
            loop.call_soon_threadsafe(record, k, i)
            if i % 250 == 0:
                # Let the loop drain and go back to waiting: the next call
                # must wake it (there is no timer to wake it otherwise).
                time.sleep(0.002)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    loop.call_soon(go.set)
    try:
        # No timer is pending: only the threads' wake-ups end the waits.
        loop.run_until_complete(done)
    finally:
        go.set()
        for t in threads:
            t.join(10)
    for k in range(n_threads):
        assert seen[k] == list(range(per_thread)), f"thread {k}'s calls ran out of order or not once each"


def test_threadsafe_call_wakes_an_idle_loop_promptly(loop):
    # The loop waits with nothing to do but a 10 s safety timer; a thread's
    # call_soon_threadsafe(stop) must end the wait at once.
    lat = []
    for _ in range(5):
        sent = []

        def later():
            time.sleep(0.05)
            sent.append(time.monotonic())
            loop.call_soon_threadsafe(loop.stop)

        safety = stop_after(loop, 10)
        t = threading.Thread(target=later)
        t.start()
        loop.run_forever()
        woke = time.monotonic()
        t.join()
        assert not safety, "the thread's call did not wake the loop"
        lat.append(woke - sent[0])
    # Loose (shared machine): a wake-up is microseconds, a missed one 10 s.
    assert max(lat) < 2.0, lat


def _run_after_a_thread(loop, worker):
    """Runs `worker` in a thread to its end, then runs `loop` until the stop
    that `worker` scheduled (a 5 s safety net fails the test)."""
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    run_forever_until_stopped(loop, 5)


def test_threadsafe_returns_a_handle_that_can_be_cancelled(loop):
    log = []
    hs = []

    def worker():
        hs.append(loop.call_soon_threadsafe(log.append, "x"))
        hs.append(loop.call_soon_threadsafe(log.append, "y"))
        hs[0].cancel()
        loop.call_soon_threadsafe(loop.stop)

    _run_after_a_thread(loop, worker)
    assert log == ["y"]
    assert hs[0].cancelled()


def test_threadsafe_calls_before_the_loop_runs_run_in_order_once_it_does(loop):
    log = []

    def worker(k):
        for i in range(100):
            loop.call_soon_threadsafe(log.append, (k, i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(log) == 400
    for k in range(4):
        assert [i for kk, i in log if kk == k] == list(range(100))


def test_threadsafe_context_is_respected(loop):
    import contextvars

    var = contextvars.ContextVar("var", default="unset")
    got = []
    ctx = contextvars.copy_context()
    ctx.run(var.set, "from-ctx")

    def worker():
        var.set("thread")
        loop.call_soon_threadsafe(lambda: got.append(var.get()), context=ctx)
        loop.call_soon_threadsafe(lambda: got.append(var.get()))  # the thread's context, copied
        loop.call_soon_threadsafe(loop.stop)

    _run_after_a_thread(loop, worker)
    assert got == ["from-ctx", "thread"]


def test_run_in_executor_many_jobs(loop):
    loop_thread = threading.get_ident()
    n = 600

    def job(i):
        return i * i, threading.get_ident()

    async def main():
        futs = [loop.run_in_executor(None, job, i) for i in range(n)]
        return await asyncio.gather(*futs)

    results = run(loop, main(), timeout=30)
    assert [r for r, _ in results] == [i * i for i in range(n)]
    assert all(tid != loop_thread for _, tid in results), "a job ran on the loop's thread"


def test_run_in_executor_jobs_run_in_parallel_and_errors_propagate(loop):
    def boom():
        raise ValueError("boom")

    async def main():
        t0 = time.monotonic()
        await asyncio.gather(*(loop.run_in_executor(None, time.sleep, 0.1) for _ in range(12)))
        wall = time.monotonic() - t0
        with pytest.raises(ValueError, match="boom"):
            await loop.run_in_executor(None, boom)
        return wall

    wall = run(loop, main(), timeout=30)
    # 12 x 0.1 s one after another would be 1.2 s; a pool (asyncio's default:
    # min(32, cpus + 4) threads) does them in a few rounds.
    assert wall < 0.9, f"12 sleeping jobs took {wall:.2f} s: the pool is not parallel"


def test_run_in_executor_with_an_explicit_and_a_default_executor(loop):
    names = []
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="explicit") as ex:

        async def main():
            names.append(await loop.run_in_executor(ex, lambda: threading.current_thread().name))
            loop.set_default_executor(ex)
            names.append(await loop.run_in_executor(None, lambda: threading.current_thread().name))

        run(loop, main())
    assert all(n.startswith("explicit") for n in names), names


def test_run_in_executor_cancel_while_the_job_runs(loop):
    release = threading.Event()
    finished = []

    def slow():
        release.wait(10)
        finished.append(True)
        return 1

    async def main():
        fut = loop.run_in_executor(None, slow)
        await asyncio.sleep(0.01)
        fut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fut
        release.set()
        # The job itself still completes on its thread; the loop is unharmed.
        return await loop.run_in_executor(None, lambda: 2)

    assert run(loop, main()) == 2
    deadline = time.monotonic() + 10
    while not finished and time.monotonic() < deadline:
        time.sleep(0.005)
    assert finished == [True]


def _hammer(loop, stop_evt, outcomes, lock):
    ok = closed = 0
    other = []
    while not stop_evt.is_set():
        if ok >= 5000:
            # Bounded: the loop must be able to run what it was given (a native
            # call_soon_threadsafe can outpace the loop's Python callbacks by far).
            time.sleep(0.0002)
        try:
            loop.call_soon_threadsafe(lambda: None)
            ok += 1
        except RuntimeError as e:
            if str(e) == CLOSED:
                closed += 1
                if closed > 50:
                    break
            else:
                other.append(repr(e))
        except BaseException as e:  # noqa: BLE001 - the test asserts none come
            other.append(repr(e))
    with lock:
        outcomes.append((ok, closed, other))


def test_close_racing_threadsafe_calls(loop_factory):
    # Repeatedly: 8 threads call call_soon_threadsafe as fast as they can while
    # the main thread runs the loop a little, then closes it. Every call
    # returns a handle or raises RuntimeError('Event loop is closed').
    for round_ in range(15):
        lp = loop_factory()
        stop_evt = threading.Event()
        outcomes, lock = [], threading.Lock()
        threads = [threading.Thread(target=_hammer, args=(lp, stop_evt, outcomes, lock)) for _ in range(8)]
        for t in threads:
            t.start()
        lp.call_later(0.005 * (round_ % 3), lp.stop)
        lp.run_forever()
        lp.close()
        # Each thread stops by itself after 50 refusals; the event only
        # ends a thread that never sees the closed loop (then asserted).
        for t in threads:
            t.join(10)
        stop_evt.set()
        for t in threads:
            t.join(10)
        assert len(outcomes) == 8
        for ok, closed, other in outcomes:
            assert other == [], other[:3]
            assert closed >= 1, "a thread never saw the closed loop"
        with pytest.raises(RuntimeError, match=CLOSED):
            lp.call_soon_threadsafe(lambda: None)
        lp.close()  # closing twice is a no-op


def test_close_while_running_in_another_thread_is_refused(loop):
    started = threading.Event()
    errors = []

    def runner():
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=runner)
    t.start()
    assert started.wait(10)
    with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
        loop.close()
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    assert not t.is_alive()
    assert errors == []
    assert not loop.is_closed()


def test_call_soon_from_another_thread_in_debug_mode_is_refused(loop):
    loop.set_debug(True)
    started = threading.Event()
    done = threading.Event()

    def runner():
        loop.call_soon(started.set)
        loop.run_forever()
        done.set()

    # The check needs a loop that runs in a thread (asyncio: _thread_id set).
    t = threading.Thread(target=runner)
    t.start()
    assert started.wait(10)
    for call in (
        lambda: loop.call_soon(lambda: None),
        lambda: loop.call_later(1, lambda: None),
        lambda: loop.call_at(loop.time() + 1, lambda: None),
    ):
        with pytest.raises(RuntimeError, match="Non-thread-safe operation invoked on an event loop other than the current one"):
            call()
    # The thread-safe variant is fine.
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    assert done.is_set()
    loop.set_debug(False)


def test_timer_handles_cancelled_from_another_thread_while_the_loop_runs(loop):
    """Not part of asyncio's thread-safety contract, but common (a thread
    cancels a timeout it was handed) and it must never crash or run a timer
    twice: each timer runs at most once, and one whose cancel() returned
    before its deadline never runs."""
    import random

    n = 5000
    ran = [0] * n
    handles = [None] * n
    cancelled_at = {}
    ready = threading.Event()
    done = loop.create_future()

    def fired(i):
        ran[i] += 1

    def setup():
        now = loop.time()
        for i in range(n):
            handles[i] = loop.call_at(now + 0.01 + (i % 500) * 1e-4, fired, i)
        ready.set()
        loop.call_at(now + 0.2, lambda: done.done() or done.set_result(None))

    def canceller():
        ready.wait(10)
        rng = random.Random(9)
        for i in rng.sample(range(n), n // 2):
            handles[i].cancel()
            cancelled_at[i] = loop.time()

    t = threading.Thread(target=canceller)
    t.start()
    loop.call_soon(setup)
    try:
        loop.run_until_complete(asyncio.wait_for(done, 10))
    finally:
        t.join(10)
    assert max(ran) <= 1, "a timer ran twice"
    for i, at in cancelled_at.items():
        if at < handles[i].when() - 0.005:  # cancelled well before its deadline
            assert ran[i] == 0, f"timer {i} ran although cancelled {handles[i].when() - at:.4f} s before its deadline"
    assert sum(ran) >= n - len(cancelled_at)


def test_a_second_thread_cannot_run_a_running_loop(loop):
    started = threading.Event()
    t = threading.Thread(target=loop.run_forever)
    loop.call_soon(started.set)
    t.start()
    try:
        assert started.wait(10)
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="This event loop is already running"):
            loop.run_until_complete(coro)
        coro.close()
        with pytest.raises(RuntimeError, match="This event loop is already running"):
            loop.run_forever()
        run_for = getattr(loop, "run_for", None)
        if run_for is not None:  # rtpy's frame-budget run
            with pytest.raises(RuntimeError):
                run_for(0.01)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
    assert not t.is_alive()
