"""rt.spawn: exactly-once runs, cancellation, exceptions, interop with
concurrent.futures and asyncio."""

import asyncio
import concurrent.futures as cf
import threading
import time

import pytest

import rtpy
from conftest import drive, exceptions_count, join_threads, recording_errors, start_threads, wait_until


def test_spawn_returns_a_concurrent_future(mt):
    fut = mt.spawn(lambda a, b: a + b, 2, 3)
    assert isinstance(fut, rtpy.Future)
    assert isinstance(fut, cf.Future)
    assert fut.result(timeout=5) == 5


def test_spawn_runs_on_a_runtime_thread(mt):
    fut = mt.spawn(threading.get_ident)
    assert fut.result(timeout=5) != threading.get_ident()


def test_spawn_100k_from_4_threads_each_runs_exactly_once():
    n_threads, per_thread = 4, 25_000
    ran = []  # list.append is atomic under the GIL
    futures = [None] * n_threads
    with rtpy.Runtime("multi_thread", workers=2) as rt:

        def producer(t):
            base = t * per_thread
            spawn, add = rt.spawn, ran.append
            futures[t] = [spawn(add, base + i) for i in range(per_thread)]

        threads = [threading.Thread(target=producer, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        all_futs = [f for fs in futures for f in fs]
        assert len(all_futs) == n_threads * per_thread
        done, not_done = cf.wait(all_futs, timeout=60)
        assert not not_done, f"{len(not_done)} futures never completed"
        assert all(f.result() is None for f in all_futs)
    # Exactly once: no index missing, none twice.
    assert len(ran) == n_threads * per_thread
    assert sorted(ran) == list(range(n_threads * per_thread))


def test_spawn_result_and_args_are_passed_through(mt):
    obj = object()
    assert mt.spawn(lambda x: x, obj).result(timeout=5) is obj
    assert mt.spawn(lambda *a: a, 1, "two", None).result(timeout=5) == (1, "two", None)
    assert mt.spawn(dict).result(timeout=5) == {}


def test_spawn_exception_lands_in_the_future_not_the_handler(mt):
    seen = []
    mt.exception_handler = lambda exc, ctx: seen.append(exc)
    before = exceptions_count(mt)
    err = ValueError("boom")

    def fail():
        raise err

    fut = mt.spawn(fail)
    assert fut.exception(timeout=5) is err
    with pytest.raises(ValueError, match="boom"):
        fut.result()
    assert seen == []
    assert exceptions_count(mt) == before
    # The worker survived.
    assert mt.spawn(lambda: 7).result(timeout=5) == 7


def test_spawn_base_exception_lands_in_the_future_and_spares_the_worker():
    with rtpy.Runtime("multi_thread", workers=1) as rt:

        def exit_():
            raise SystemExit(3)

        fut = rt.spawn(exit_)
        exc = fut.exception(timeout=5)
        assert isinstance(exc, SystemExit) and exc.code == 3
        # The only worker still runs work.
        assert rt.spawn(lambda: "alive").result(timeout=5) == "alive"


def test_cancel_before_start_wins_current_thread(ct):
    ran = []
    fut = ct.spawn(ran.append, 1)
    assert fut.cancel() is True
    assert fut.cancelled()
    ct.run("nowait")  # (the task's final, cancelled call may count as a callback made)
    assert ran == []
    with pytest.raises(cf.CancelledError):
        fut.result(timeout=0)
    # A second cancel is still true (concurrent.futures semantics), no call.
    assert fut.cancel() is True
    assert ran == []


def test_cancel_before_start_wins_on_a_blocked_worker():
    release = threading.Event()
    started = threading.Event()
    with rtpy.Runtime("multi_thread", workers=1) as rt:
        blocker = rt.spawn(lambda: (started.set(), release.wait(10)))
        assert started.wait(5)
        ran = []
        queued = [rt.spawn(ran.append, i) for i in range(50)]
        assert all(f.cancel() for f in queued[::2])
        release.set()
        assert blocker.result(timeout=5)[1] is True
        done, not_done = cf.wait(queued, timeout=5)
        assert not not_done
        assert sorted(ran) == list(range(1, 50, 2))
        assert all(f.cancelled() for f in queued[::2])
        assert not any(f.cancelled() for f in queued[1::2])


def test_cancel_after_start_loses_and_the_result_arrives(mt):
    started, release = threading.Event(), threading.Event()

    def work():
        started.set()
        release.wait(5)
        return "finished"

    fut = mt.spawn(work)
    assert started.wait(5)
    assert fut.cancel() is False
    assert not fut.cancelled()
    release.set()
    assert fut.result(timeout=5) == "finished"
    assert fut.cancel() is False  # done


def test_cancel_racing_the_start_is_exactly_one_outcome(mt):
    """Each cancel either wins (the function never runs) or loses (it ran
    exactly once and its result is in the future): never both, never neither."""
    n = 3000
    ran = []
    futs = []
    won = []
    for i in range(n):
        f = mt.spawn(ran.append, i)
        futs.append(f)
        won.append(f.cancel())
    done, not_done = cf.wait(futs, timeout=5)
    assert not not_done
    # Let any (buggy) late run show up.
    time.sleep(0.05)
    ran_set = set(ran)
    assert len(ran) == len(ran_set), "a spawned function ran twice"
    for i, (f, w) in enumerate(zip(futs, won)):
        if w:
            assert f.cancelled(), i
            assert i not in ran_set, f"cancel of {i} returned True but the function ran"
        else:
            assert not f.cancelled(), i
            assert i in ran_set, f"cancel of {i} returned False but the function never ran"
            assert f.result() is None


def test_concurrent_futures_wait_and_as_completed(mt):
    futs = [mt.spawn(lambda i=i: (time.sleep(0.001 * (i % 5)), i)[1]) for i in range(40)]
    done, not_done = cf.wait(futs, timeout=10, return_when=cf.ALL_COMPLETED)
    assert len(done) == 40 and not not_done
    assert sorted(f.result() for f in cf.as_completed(futs, timeout=5)) == list(range(40))
    first = cf.wait([mt.spawn(time.sleep, 0.0), mt.spawn(time.sleep, 0.5)], return_when=cf.FIRST_COMPLETED, timeout=5)
    assert len(first.done) >= 1


def test_add_done_callback_runs_once(mt):
    calls = []
    fut = mt.spawn(lambda: 42)
    ev = threading.Event()
    fut.add_done_callback(lambda f: (calls.append(f.result()), ev.set()))
    assert ev.wait(5)
    time.sleep(0.01)
    assert calls == [42]


def test_asyncio_wrap_future(mt):
    async def main():
        a = asyncio.wrap_future(mt.spawn(lambda: 1))
        b = asyncio.wrap_future(mt.spawn(lambda x: x * 2, 21))
        c = asyncio.wrap_future(mt.spawn(lambda: 1 / 0))
        r = await asyncio.wait_for(asyncio.gather(a, b, c, return_exceptions=True), 5)
        return r

    r = asyncio.run(main())
    assert r[0] == 1 and r[1] == 42 and isinstance(r[2], ZeroDivisionError)


def test_asyncio_wrap_future_of_a_cancelled_spawn(ct):
    fut = ct.spawn(lambda: 1)
    assert fut.cancel()

    async def main():
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.wrap_future(fut), 5)

    asyncio.run(main())


def test_spawn_from_inside_a_callback(any_rt):
    out = []

    def outer():
        out.append("outer")
        any_rt.spawn(out.append, "inner")

    any_rt.spawn(outer)
    assert drive(any_rt, lambda: len(out) == 2)
    assert out == ["outer", "inner"]


def test_current_thread_spawn_runs_on_the_driving_thread(ct):
    fut = ct.spawn(threading.get_ident)
    assert not fut.done()
    # Nothing runs until the host runs the runtime.
    time.sleep(0.02)
    assert not fut.done()
    assert ct.run("nowait") == 1
    assert fut.result(timeout=0) == threading.get_ident()


def test_spawn_of_a_non_callable_raises_type_error(mt):
    with pytest.raises(TypeError):
        mt.spawn(42)
    with pytest.raises(TypeError):
        mt.spawn(None)
    # Nothing was leaked into the runtime: it still works.
    assert mt.spawn(lambda: 1).result(timeout=5) == 1


def test_spawn_from_many_threads_while_results_flow(mt):
    """Producers and consumers at once: futures completed by workers while
    other threads keep spawning (a smaller, mixed version of the 100k test)."""
    total = []
    errors = []

    @recording_errors(errors)
    def producer():
        fs = [mt.spawn(lambda i=i: i * i) for i in range(2000)]
        total.append(sum(f.result(timeout=20) for f in fs))

    join_threads(start_threads(4, producer), 30)
    assert not errors, errors
    assert total == [sum(i * i for i in range(2000))] * 4


def test_concurrent_futures_wait_sees_a_cancelled_spawn_as_done(ct):
    """concurrent.futures.wait / as_completed count a future as done only once
    it is CANCELLED_AND_NOTIFIED (what an executor's
    set_running_or_notify_cancel does); a cancelled rtpy future must get there
    too, or they block until their timeout."""
    fut = ct.spawn(lambda: 1)
    assert fut.cancel()
    t0 = time.monotonic()
    done, not_done = cf.wait([fut], timeout=2)
    assert fut in done and not not_done, f"wait blocked {time.monotonic() - t0:.1f}s on a cancelled future"
    assert list(cf.as_completed([fut], timeout=2)) == [fut]
