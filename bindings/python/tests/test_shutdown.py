"""Shutdown with pending work of every kind, use after shutdown, timeouts."""

import concurrent.futures as cf
import socket
import threading
import time
import weakref

import pytest

import rtpy
from conftest import collect_until_dead, run_until_shut_down, shuts_down_from_inside, wait_until


class Token:
    """A weak-referenceable argument: its death proves the runtime let go."""


def _pending_everything(rt, release_blocking):
    """Queues spawns, arms timers, registers watches and queues blocking jobs
    behind a pool thread blocked until `release_blocking` is set."""
    ran = []
    refs = []
    socks = []
    futs = {"spawn": [], "blocking": []}

    def keep(x):
        refs.append(weakref.ref(x))
        return x

    started = threading.Event()
    first_blocking = rt.run_blocking(lambda: (started.set(), release_blocking.wait(20))[1])
    assert started.wait(5)
    for i in range(20):
        futs["spawn"].append(rt.spawn(lambda t, i=i: ran.append(("spawn", i)), keep(Token())))
        futs["blocking"].append(rt.run_blocking(lambda t, i=i: ran.append(("blocking", i)), keep(Token())))
    timers = [rt.call_later(30, lambda t, i=i: ran.append(("later", i)), keep(Token())) for i in range(20)]
    timers += [rt.call_every(30, lambda t, i=i: ran.append(("every", i)), keep(Token())) for i in range(5)]
    watches = []
    for i in range(5):
        a, b = socket.socketpair()
        socks += [a, b]
        tok = keep(Token())
        watches.append(rt.watch(b, rtpy.READABLE, lambda ev, tok=tok, i=i: ran.append(("watch", i))))
    del tok
    return first_blocking, futs, timers, watches, ran, refs, socks


@pytest.mark.parametrize("flavor", ["current_thread", "multi_thread"])
def test_shutdown_with_pending_work_of_every_kind(flavor):
    kw = {"blocking_threads": 1}
    if flavor == "multi_thread":
        kw["workers"] = 1
    rt = rtpy.Runtime(flavor, **kw)
    release_blocking = threading.Event()
    worker_release = threading.Event()
    if flavor == "multi_thread":
        # Hold the only worker so that nothing queued can start before shutdown.
        busy = threading.Event()
        holder = rt.spawn(lambda: (busy.set(), worker_release.wait(20))[1])
        assert busy.wait(5)
    first_blocking, futs, timers, watches, ran, refs, socks = _pending_everything(rt, release_blocking)
    try:
        # Release the held threads only once shutdown has begun.
        threading.Timer(0.3, release_blocking.set).start()
        threading.Timer(0.3, worker_release.set).start()
        t0 = time.monotonic()
        rt.shutdown(timeout=10)
        took = time.monotonic() - t0
        assert took < 5
        # What had started finished with its result.
        assert first_blocking.result(timeout=5) is True
        if flavor == "multi_thread":
            assert holder.result(timeout=5) is True
        # Everything else got its cancellation.
        for kind in ("spawn", "blocking"):
            for i, f in enumerate(futs[kind]):
                assert f.done(), f"{kind} {i}: future still pending after shutdown"
                assert f.cancelled(), f"{kind} {i}: not cancelled ({f})"
                with pytest.raises(cf.CancelledError):
                    f.result(timeout=0)
        all_futs = futs["spawn"] + futs["blocking"]
        done, not_done = cf.wait(all_futs, timeout=2)
        assert not not_done, f"concurrent.futures.wait does not see {len(not_done)} cancelled futures as done"
        for t in timers:
            assert not t.active
            assert t.cancel() is False
        time.sleep(0.05)
        assert ran == [], f"ran after/at shutdown: {ran[:5]}"
        dead = [collect_until_dead(r, timeout=2) for r in refs]
        assert all(dead), f"{dead.count(False)} of {len(refs)} callback arguments leaked after shutdown"
    finally:
        release_blocking.set()
        worker_release.set()
        for s in socks:
            s.close()


def test_shutdown_is_idempotent_and_context_manager_shuts_down():
    with rtpy.Runtime() as rt:
        assert rt.spawn(lambda: 1).result(timeout=5) == 1
    with pytest.raises(rtpy.ShutdownError):
        rt.spawn(lambda: 1)
    rt.shutdown()
    rt.shutdown(timeout=0)


def test_context_manager_returns_the_runtime_and_does_not_swallow():
    with pytest.raises(ZeroDivisionError):
        with rtpy.Runtime("current_thread") as rt:
            assert isinstance(rt, rtpy.Runtime)
            1 / 0
    with pytest.raises(rtpy.ShutdownError):
        rt.call_later(0, lambda: None)


def test_use_after_shutdown_raises_shutdown_error():
    assert issubclass(rtpy.ShutdownError, RuntimeError)
    a, b = socket.socketpair()
    try:
        for flavor in ("multi_thread", "current_thread"):
            rt = rtpy.Runtime(flavor)
            rt.shutdown()
            calls = [
                lambda: rt.spawn(print),
                lambda: rt.run_blocking(print),
                lambda: rt.call_later(0.1, print),
                lambda: rt.call_every(0.1, print),
                lambda: rt.watch(b, rtpy.READABLE, print),
                lambda: rt.add_reader(b, print),
                lambda: rt.add_writer(b, print),
            ]
            if flavor == "current_thread":
                calls += [lambda: rt.run(), lambda: rt.run("nowait"), lambda: rt.run_budget(0.01), rt.stop,
                          rt.backend_fd, rt.backend_timeout]
            for i, call in enumerate(calls):
                with pytest.raises(rtpy.ShutdownError):
                    call()
            if flavor == "current_thread":
                rt.wake()  # works after shutdown: nothing to wake
            rt.metrics()  # still readable
    finally:
        a.close()
        b.close()


def test_handles_after_shutdown_do_not_crash():
    a, b = socket.socketpair()
    try:
        rt = rtpy.Runtime()
        t = rt.call_later(10, print)
        w = rt.watch(b, rtpy.READABLE, print)
        rt.shutdown()
        assert not t.active
        try:
            assert t.cancel() is False
        except rtpy.ShutdownError:
            pass
        try:
            w.close()
        except rtpy.ShutdownError:
            pass
        with pytest.raises((rtpy.ShutdownError, OSError, ValueError)):
            w.modify(rtpy.WRITABLE)
    finally:
        a.close()
        b.close()


def test_shutdown_timeout_raises_timeout_error_then_completes():
    rt = rtpy.Runtime("multi_thread", workers=1)
    started, release = threading.Event(), threading.Event()
    fut = rt.spawn(lambda: (started.set(), release.wait(20))[1])
    assert started.wait(5)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        rt.shutdown(timeout=0.1)
    assert time.monotonic() - t0 < 2
    with pytest.raises(rtpy.ShutdownError):
        rt.spawn(print)
    release.set()
    rt.shutdown(timeout=10)
    # The call that was running when the first shutdown timed out finishes and delivers.
    assert fut.result(timeout=5) is True


def test_shutdown_waits_for_a_running_callback_with_the_gil_released():
    """The callback needs the GIL to finish; a shutdown holding the GIL would hang."""
    rt = rtpy.Runtime("multi_thread", workers=2)
    started = threading.Event()
    done = []

    def cb():
        started.set()
        x = 0
        for i in range(200_000):  # pure Python: needs the GIL all along
            x += i
        done.append(x)

    rt.spawn(cb)
    assert started.wait(5)
    rt.shutdown(timeout=20)
    assert done == [sum(range(200_000))]


def test_shutdown_from_another_thread_while_host_runs(ct):
    # run("default") with an armed repeat would run forever; a shutdown from another thread ends it.
    ct.call_every(0.005, lambda: None)
    res = []
    th = threading.Timer(0.1, lambda: res.append(ct.shutdown(timeout=5)))
    th.start()
    run_until_shut_down(ct, within=5)
    th.join(10)
    assert res == [None]


def test_shutdown_from_inside_a_callback_does_not_hang():
    rt = rtpy.Runtime("multi_thread", workers=2)
    out = []
    rt.spawn(shuts_down_from_inside(rt, out))
    assert wait_until(lambda: out, 10)
    rt.shutdown(timeout=10)
    with pytest.raises(rtpy.ShutdownError):
        rt.spawn(print)


def test_many_runtimes_created_and_shut_down():
    for i in range(30):
        flavor = "multi_thread" if i % 2 else "current_thread"
        with rtpy.Runtime(flavor) as rt:
            f = rt.spawn(lambda: 3)
            if flavor == "current_thread":
                rt.run("nowait")
            assert f.result(timeout=5) == 3


@pytest.mark.parametrize("flavor", ["multi_thread", "current_thread"])
def test_shutdown_timeout_zero_of_an_idle_runtime_succeeds(flavor):
    """TimeoutError means callbacks are still running (rt.h's RT_ETIMEDOUT:
    "only they are outstanding"); an idle runtime has none, so even a zero
    timeout succeeds."""
    rt = rtpy.Runtime(flavor)
    try:
        f = rt.spawn(lambda: None)
        if flavor == "current_thread":
            rt.run("nowait")
        f.result(timeout=5)
        time.sleep(0.1)  # every worker idle
        rt.shutdown(timeout=0)
    finally:
        rt.shutdown()
