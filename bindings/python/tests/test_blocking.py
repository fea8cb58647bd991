"""rt.run_blocking: the blocking pool."""

import asyncio
import concurrent.futures as cf
import threading
import time

import pytest

import rtpy
from conftest import wait_until


def test_run_blocking_result_and_args(mt):
    fut = mt.run_blocking(lambda a, b=0: a * 10 + b, 4)
    assert isinstance(fut, rtpy.Future) and isinstance(fut, cf.Future)
    assert fut.result(timeout=5) == 40


def test_run_blocking_runs_off_the_workers_and_off_the_caller(mt):
    worker = mt.spawn(threading.get_ident).result(timeout=5)
    pool = mt.run_blocking(threading.get_ident).result(timeout=5)
    assert pool != threading.get_ident()
    assert pool != worker


def test_run_blocking_jobs_run_in_parallel():
    with rtpy.Runtime("multi_thread", workers=1, blocking_threads=4) as rt:
        barrier = threading.Barrier(4, timeout=5)
        futs = [rt.run_blocking(barrier.wait) for _ in range(4)]
        done, not_done = cf.wait(futs, timeout=10)
        assert not not_done
        for f in futs:
            f.result()  # BrokenBarrierError if they did not run at once


def test_blocking_work_does_not_block_the_workers():
    with rtpy.Runtime("multi_thread", workers=1, blocking_threads=2) as rt:
        release = threading.Event()
        slow = rt.run_blocking(release.wait, 10)
        # The single worker still runs spawns while the pool thread blocks.
        assert rt.spawn(lambda: "free").result(timeout=5) == "free"
        release.set()
        assert slow.result(timeout=5) is True


def test_run_blocking_exception_lands_in_the_future(mt):
    def fail():
        raise KeyError("k")

    fut = mt.run_blocking(fail)
    with pytest.raises(KeyError):
        fut.result(timeout=5)
    assert mt.run_blocking(lambda: "ok").result(timeout=5) == "ok"


def test_cancel_queued_blocking_job_wins():
    with rtpy.Runtime("multi_thread", workers=1, blocking_threads=1) as rt:
        started, release = threading.Event(), threading.Event()
        first = rt.run_blocking(lambda: (started.set(), release.wait(10)))
        assert started.wait(5)
        ran = []
        queued = rt.run_blocking(ran.append, "queued")
        assert queued.cancel() is True
        assert queued.cancelled()
        release.set()
        first.result(timeout=5)
        after = rt.run_blocking(lambda: "after")
        assert after.result(timeout=5) == "after"
        assert ran == []


def test_cancel_running_blocking_job_loses(mt):
    started, release = threading.Event(), threading.Event()
    fut = mt.run_blocking(lambda: (started.set(), release.wait(10))[1])
    assert started.wait(5)
    assert fut.cancel() is False
    release.set()
    assert fut.result(timeout=5) is True


def test_many_blocking_jobs_each_once(mt):
    n = 2000
    ran = []
    futs = [mt.run_blocking(ran.append, i) for i in range(n)]
    done, not_done = cf.wait(futs, timeout=30)
    assert not not_done
    assert sorted(ran) == list(range(n))


def test_run_blocking_on_a_current_thread_runtime(ct):
    fut = ct.run_blocking(lambda: 5)
    deadline = time.monotonic() + 5
    while not fut.done() and time.monotonic() < deadline:
        ct.run_budget(0.01)
        time.sleep(0.001)
    assert fut.result(timeout=0) == 5


def test_run_blocking_with_asyncio(mt):
    async def main():
        return await asyncio.wait_for(asyncio.wrap_future(mt.run_blocking(time.sleep, 0.01)), 5)

    assert asyncio.run(main()) is None


def test_run_blocking_non_callable(mt):
    with pytest.raises(TypeError):
        mt.run_blocking(object())
    assert wait_until(lambda: mt.metrics().blocking_queue_depth == 0, 2)
