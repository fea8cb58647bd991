"""No Python object leaks: callbacks and their arguments are released after
their call, after a cancel and after shutdown (weakref / refcount based)."""

import gc
import socket
import sys
import threading
import time
import weakref

import pytest

import rtpy
from conftest import collect_until_dead, wait_until


class Obj:
    pass


class CallableObj:
    def __init__(self, sink=None):
        self.sink = sink

    def __call__(self, *args):
        if self.sink is not None:
            self.sink.append(len(args))


def test_spawn_releases_callback_and_args_after_the_call(mt):
    arg, fn = Obj(), CallableObj()
    ra, rf = weakref.ref(arg), weakref.ref(fn)
    fut = mt.spawn(fn, arg)
    del arg, fn
    fut.result(timeout=5)
    assert collect_until_dead(ra), "spawn argument kept after the call"
    assert collect_until_dead(rf), "spawn callable kept after the call"


def test_spawn_releases_after_cancel(ct):
    arg, fn = Obj(), CallableObj()
    ra, rf = weakref.ref(arg), weakref.ref(fn)
    fut = ct.spawn(fn, arg)
    del arg, fn
    assert fut.cancel()
    assert collect_until_dead(ra), "spawn argument kept after cancel"
    assert collect_until_dead(rf), "spawn callable kept after cancel"


def test_spawn_result_is_held_only_by_the_future(mt):
    fut = mt.spawn(Obj)
    r = weakref.ref(fut.result(timeout=5))
    assert r() is not None
    del fut
    assert collect_until_dead(r), "result kept alive after its future died"


def test_exception_and_its_frames_released_with_the_future(mt):
    def fail(arg):
        raise ValueError(arg)

    arg = Obj()
    ra = weakref.ref(arg)
    fut = mt.spawn(fail, arg)
    del arg
    assert isinstance(fut.exception(timeout=5), ValueError)
    del fut
    assert collect_until_dead(ra), "exception (or its traceback) kept after the future died"


def test_handled_exception_and_its_frames_released(mt):
    mt.exception_handler = lambda exc, ctx: None
    done = threading.Event()

    def fail(arg):
        done.set()
        raise ValueError("x")

    arg = Obj()
    ra = weakref.ref(arg)
    mt.call_later(0, fail, arg)
    del arg
    assert done.wait(5)
    assert collect_until_dead(ra), "a handled exception's traceback (frame locals) leaked"


def test_timer_releases_after_its_call_while_the_timer_object_lives(mt):
    arg, fn = Obj(), CallableObj()
    ra, rf = weakref.ref(arg), weakref.ref(fn)
    sink = []
    fn.sink = sink
    t = mt.call_later(0, fn, arg)
    del arg, fn
    assert wait_until(lambda: sink, 5)
    assert collect_until_dead(ra), "timer argument kept after its one call"
    assert collect_until_dead(rf), "timer callback kept after its one call"
    assert t is not None


def test_timer_releases_after_cancel(mt):
    for every in (False, True):
        arg, fn = Obj(), CallableObj()
        ra, rf = weakref.ref(arg), weakref.ref(fn)
        t = (mt.call_every if every else mt.call_later)(30, fn, arg)
        del arg, fn
        assert t.cancel() is True
        assert collect_until_dead(ra), f"argument kept after cancel (every={every})"
        assert collect_until_dead(rf), f"callback kept after cancel (every={every})"


def test_timer_cancelled_from_its_own_callback_is_released(mt):
    box = {}
    calls = []

    class SelfCancel:
        def __call__(self):
            calls.append(1)
            box["t"].cancel()

    fn = SelfCancel()
    rf = weakref.ref(fn)
    box["t"] = mt.call_every(0.002, fn)
    del fn
    assert wait_until(lambda: calls, 5)
    assert collect_until_dead(rf), "repeat callback kept after cancelling itself"


def test_watch_releases_after_close(mt):
    a, b = socket.socketpair()
    try:
        fn = CallableObj()
        rf = weakref.ref(fn)
        w = mt.watch(b, rtpy.READABLE, fn)
        del fn
        w.close()
        assert collect_until_dead(rf), "watch callback kept after close"
        arg = Obj()
        ra = weakref.ref(arg)
        w2 = mt.add_reader(b, CallableObj(), arg)
        del arg
        w2.close()
        assert collect_until_dead(ra), "add_reader argument kept after close"
    finally:
        a.close()
        b.close()


def test_run_blocking_releases_after_call_and_cancel():
    with rtpy.Runtime("multi_thread", workers=1, blocking_threads=1) as rt:
        arg = Obj()
        ra = weakref.ref(arg)
        rt.run_blocking(CallableObj(), arg).result(timeout=5)
        del arg
        assert collect_until_dead(ra), "run_blocking argument kept after the call"
        started, release = threading.Event(), threading.Event()
        blocker = rt.run_blocking(lambda: (started.set(), release.wait(10)))
        assert started.wait(5)
        arg = Obj()
        ra = weakref.ref(arg)
        f = rt.run_blocking(CallableObj(), arg)
        del arg
        assert f.cancel()
        assert collect_until_dead(ra), "run_blocking argument kept after cancel"
        release.set()
        blocker.result(timeout=5)


def test_queue_releases_after_drain(mt):
    q = mt.queue()
    arg = Obj()
    ra = weakref.ref(arg)
    q.post(CallableObj(), arg)
    del arg
    assert q.drain() == 1
    assert collect_until_dead(ra), "queue entry argument kept after drain"
    q.close()


def test_refcounts_return_to_their_start(mt):
    arg = Obj()
    fn = CallableObj()
    gc.collect()
    base_a, base_f = sys.getrefcount(arg), sys.getrefcount(fn)
    futs = [mt.spawn(fn, arg) for _ in range(500)]
    futs += [mt.run_blocking(fn, arg) for _ in range(100)]
    for f in futs:
        f.result(timeout=10)
    timers = [mt.call_later(0, fn, arg) for _ in range(200)]
    timers += [mt.call_later(30, fn, arg) for _ in range(200)]
    for t in timers[200:]:
        assert t.cancel()
    del futs, timers
    assert wait_until(lambda: (gc.collect(), sys.getrefcount(arg))[1] == base_a, 5), \
        f"argument refcount {sys.getrefcount(arg)} != {base_a}"
    assert wait_until(lambda: (gc.collect(), sys.getrefcount(fn))[1] == base_f, 5), \
        f"callable refcount {sys.getrefcount(fn)} != {base_f}"


def test_shutdown_releases_everything_and_the_runtime_itself():
    """Callbacks that refer to their runtime (a cycle through Rust) are let go
    at shutdown: the runtime's refcount returns to its start."""
    a, b = socket.socketpair()
    try:
        rt = rtpy.Runtime("current_thread", blocking_threads=1)
        gc.collect()
        base = sys.getrefcount(rt)
        arg = Obj()
        ra = weakref.ref(arg)
        started, release = threading.Event(), threading.Event()
        handles = [rt.run_blocking(lambda: (started.set(), release.wait(10)))]
        assert started.wait(5)
        handles += [rt.spawn(lambda x: rt, arg), rt.call_later(30, lambda x: rt, arg),
                    rt.call_every(30, lambda x: rt, arg), rt.watch(b, rtpy.READABLE, lambda ev: rt),
                    rt.run_blocking(lambda x: rt, arg)]
        q = rt.queue()
        q.post(lambda x: rt, arg)
        q.close()
        del arg
        threading.Timer(0.1, release.set).start()
        rt.shutdown(timeout=5)
        assert collect_until_dead(ra), "argument kept after shutdown (handles still alive)"
        del handles, q
        assert wait_until(lambda: (gc.collect(), sys.getrefcount(rt))[1] == base, 3), \
            f"runtime refcount {sys.getrefcount(rt)} != {base}: callbacks referring to it were kept"
    finally:
        a.close()
        b.close()


def test_repeated_runtime_cycles_do_not_grow_python_objects():
    def cycle():
        with rtpy.Runtime("multi_thread", workers=1) as rt:
            fs = [rt.spawn(CallableObj(), Obj()) for _ in range(50)]
            for f in fs:
                f.result(timeout=5)
            rt.call_later(0, CallableObj())
            rt.call_later(30, CallableObj(), Obj())

    cycle()
    gc.collect()
    n0 = len(gc.get_objects())
    objs0 = sum(1 for o in gc.get_objects() if isinstance(o, (Obj, CallableObj)))
    for _ in range(10):
        cycle()
    gc.collect()
    objs1 = sum(1 for o in gc.get_objects() if isinstance(o, (Obj, CallableObj)))
    assert objs1 == objs0, f"{objs1 - objs0} callback objects left over from 10 runtime cycles"
    assert len(gc.get_objects()) - n0 < 500, "tracked objects grow with each runtime"


def test_no_runtime_task_outlives_its_work(mt):
    """The runtime's own count of live tasks returns to its start once every
    spawn, blocking job, timer and watch is done, cancelled or closed."""
    time.sleep(0.05)
    base = mt.metrics().tasks_alive
    futs = [mt.spawn(lambda: None) for _ in range(500)]
    futs += [mt.run_blocking(lambda: None) for _ in range(50)]
    cancelled = [mt.call_later(30, print) for _ in range(50)]
    fired = [mt.call_later(0, lambda: None) for _ in range(50)]
    a, b = socket.socketpair()
    try:
        a.send(b"x")
        w = mt.watch(b, rtpy.READABLE, lambda ev: None)
        for f in futs:
            f.result(timeout=10)
        for t in cancelled:
            t.cancel()
        assert wait_until(lambda: not any(t.active for t in fired), 5)
        w.close()
    finally:
        a.close()
        b.close()
    assert wait_until(lambda: mt.metrics().tasks_alive <= base, 5), \
        f"tasks_alive {mt.metrics().tasks_alive} > {base} after all work finished"
