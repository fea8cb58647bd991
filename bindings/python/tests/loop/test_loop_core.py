"""`_rtpy.LoopCore`, `_rtpy.Handle`, `_rtpy.TimerHandle` (issue 12, §2 of the
design): the native core of `rtpy.Loop`, tested on its own through a minimal
loop class (`CoreLoop`: LoopCore + asyncio.BaseEventLoop, nothing else), so
that these tests do not depend on the Python half of `rtpy.Loop`."""

import asyncio
import contextvars
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
import weakref
from asyncio import events

import pytest

from rtpy import _rtpy


class CoreLoop(_rtpy.LoopCore, asyncio.BaseEventLoop):
    """The least loop built on the core: BaseEventLoop's orchestration, the
    core's scheduling and iteration."""

    def __init__(self):
        asyncio.BaseEventLoop.__init__(self)

    def close(self):
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        self._close_core()
        asyncio.BaseEventLoop.close(self)


@pytest.fixture
def loop():
    lp = CoreLoop()
    try:
        yield lp
    finally:
        lp.close()


def run_until(loop, pred, timeout=5.0):
    """Runs iterations until `pred()`; fails after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        loop._run_once(deadline=loop.time() + 0.05)


# ---- handles ----------------------------------------------------------------------------------


def test_call_soon_runs_in_order_with_args(loop):
    out = []
    handles = [loop.call_soon(out.append, i) for i in range(100)]
    assert all(type(h) is _rtpy.Handle for h in handles)
    assert loop._run_once() == 100
    assert out == list(range(100))
    assert loop._run_once(deadline=loop.time()) == 0


def test_handles_added_while_running_wait_for_next_iteration(loop):
    out = []

    def first():
        out.append("first")
        loop.call_soon(out.append, "added")

    loop.call_soon(first)
    loop.call_soon(out.append, "second")
    assert loop._run_once() == 2
    assert out == ["first", "second"]
    assert loop._run_once() == 1
    assert out == ["first", "second", "added"]


def test_handle_attributes_and_repr_match_asyncio(loop):
    ref = asyncio.new_event_loop()
    try:

        def cb(a, b):
            pass

        for make in (
            lambda lp: lp.call_soon(cb, 1, "x"),
            lambda lp: lp.call_at(12.5, cb, 1, "x"),
            lambda lp: lp.call_at(10, cb, 1, "x"),  # when() is the caller's int
        ):
            ours, theirs = make(loop), make(ref)
            assert ours._callback is cb and ours._args == (1, "x")
            assert ours._loop is loop
            assert repr(ours) == repr(theirs)
            ours.cancel()
            theirs.cancel()
            assert repr(ours) == repr(theirs)
            assert ours._callback is None and ours._args is None
            assert ours.cancelled()
    finally:
        ref.close()


def test_timer_handle_compares_like_asyncio(loop):
    a = loop.call_at(100.0, print)
    b = loop.call_at(200.0, print)
    c = loop.call_at(100.0, print)
    assert a < b and b > a and a <= c and a >= c and a == c and not (a != c)
    assert hash(a) == hash(100.0)
    assert a.when() == 100.0 and a._when == 100.0
    assert a.__lt__(object()) is NotImplemented
    c.cancel()
    assert a != c


def test_context_is_copied_or_given(loop):
    var = contextvars.ContextVar("var")
    var.set("outer")
    seen = []
    loop.call_soon(lambda: seen.append(var.get()))
    ctx = contextvars.Context()
    h = loop.call_soon(lambda: seen.append(var.get("unset")), context=ctx)
    assert h.get_context() is ctx
    var.set("changed")
    loop._run_once()
    assert seen == ["outer", "unset"]


def test_cancel_skips_and_releases_the_callback(loop):
    class Cb:
        def __call__(self):
            ran.append(1)

    ran = []
    cb = Cb()
    ref = weakref.ref(cb)
    h = loop.call_soon(cb)
    del cb
    h.cancel()
    h.cancel()  # a no-op
    gc.collect()
    assert ref() is None
    assert loop._run_once() == 0
    assert ran == []


def test_handle_run_reports_to_the_exception_handler(loop):
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    def boom():
        raise ValueError("boom")

    h = loop.call_soon(boom)
    loop.call_soon(lambda: errors.append("after"))
    assert loop._run_once() == 2
    ctx = errors[0]
    assert isinstance(ctx["exception"], ValueError)
    assert ctx["handle"] is h
    assert ctx["message"].startswith("Exception in callback ") and "boom" in ctx["message"]
    assert errors[1] == "after"


def test_keyboard_interrupt_mid_batch_keeps_the_rest(loop):
    out = []

    def stop():
        raise KeyboardInterrupt

    loop.call_soon(out.append, 1)
    loop.call_soon(stop)
    loop.call_soon(out.append, 3)
    loop.call_soon(out.append, 4)
    with pytest.raises(KeyboardInterrupt):
        loop._run_once()
    assert out == [1]
    assert loop._run_once() == 2
    assert out == [1, 3, 4]


def test_system_exit_comes_out(loop):
    loop.call_soon(sys.exit, 3)
    with pytest.raises(SystemExit):
        loop._run_once()


# ---- timers -----------------------------------------------------------------------------------


def test_timers_never_early_and_in_order(loop):
    fired = []
    t0 = loop.time()
    delays = [0.03, 0.01, 0.02, 0.01, 0.0, -1.0]
    handles = []
    for i, d in enumerate(delays):
        handles.append(loop.call_later(d, lambda i=i: fired.append((i, loop.time()))))
    run_until(loop, lambda: len(fired) == len(delays))
    order = [i for i, _ in fired]
    # by deadline, ties in insertion order
    assert order == [5, 4, 1, 3, 2, 0]
    for i, at in fired:
        assert at >= handles[i].when(), (i, at, handles[i].when())
    assert handles[0].when() >= t0 + 0.03


def test_call_at_never_early_many(loop):
    fired = []
    now = loop.time()
    hs = [loop.call_at(now + 0.001 * (i % 20), lambda h=None: fired.append(loop.time())) for i in range(200)]
    whens = sorted(h.when() for h in hs)
    run_until(loop, lambda: len(fired) == 200)
    assert all(a >= w for a, w in zip(fired, whens))


def test_timer_cancel_removes_it_at_once(loop):
    hs = [loop.call_later(100, print) for _ in range(10)]
    assert loop._core_metrics()["timers_pending"] == 10
    for h in hs[:7]:
        h.cancel()
        assert not h._scheduled
    assert loop._core_metrics()["timers_pending"] == 3
    assert hs[8]._scheduled


def test_cancel_of_a_fired_timer_is_a_no_op(loop):
    out = []
    h = loop.call_later(0, out.append, 1)
    other = loop.call_later(100, print)
    run_until(loop, lambda: out)
    h.cancel()
    assert h.cancelled()
    assert loop._core_metrics()["timers_pending"] == 1
    assert other._scheduled


def test_call_later_none_and_call_at_none(loop):
    with pytest.raises(TypeError, match="delay must not be None"):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match="when cannot be None"):
        loop.call_at(None, print)


def test_time_is_monotonic_clock(loop):
    a = time.monotonic()
    b = loop.time()
    c = time.monotonic()
    assert a <= b <= c


# ---- threadsafe -------------------------------------------------------------------------------


def test_call_soon_threadsafe_wakes_a_waiting_loop(loop):
    out = []
    n_threads, per = 4, 250

    def worker(k):
        for i in range(per):
            loop.call_soon_threadsafe(out.append, (k, i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while len(out) < n_threads * per:
        assert time.monotonic() - t0 < 10
        loop._run_once()  # no deadline: only the wake-ups end the wait
    for t in threads:
        t.join()
    for k in range(n_threads):
        assert [i for kk, i in out if kk == k] == list(range(per))


def test_wake_ends_a_wait(loop):
    threading.Timer(0.05, loop._wake).start()
    t0 = time.monotonic()
    assert loop._run_once() == 0
    assert time.monotonic() - t0 < 5


# ---- readers and writers ----------------------------------------------------------------------


def test_reader_is_level_triggered(loop):
    a, b = socket.socketpair()
    try:
        seen = []
        loop._add_reader(a, seen.append, "r")
        assert loop._has_reader(a.fileno())
        b.send(b"xy")
        loop._run_once(deadline=loop.time() + 1)
        assert seen == ["r"]
        loop._run_once(deadline=loop.time() + 1)
        assert seen == ["r", "r"]  # still readable: fires again
        a.recv(10)
        assert loop._run_once(deadline=loop.time() + 0.05) == 0
        assert loop._remove_reader(a) is True
        assert loop._remove_reader(a) is False
        assert not loop._has_reader(a)
    finally:
        a.close()
        b.close()


def test_writer_and_replacement_cancels_the_old_handle(loop):
    a, b = socket.socketpair()
    try:
        seen = []
        h1 = loop._add_writer(a.fileno(), seen.append, 1)
        h2 = loop._add_writer(a.fileno(), seen.append, 2)
        assert h1.cancelled() and not h2.cancelled()
        loop._run_once(deadline=loop.time() + 1)
        assert seen == [2]
        assert loop._remove_writer(a) is True
        assert h2.cancelled()
    finally:
        a.close()
        b.close()


def test_fd_arguments_like_selectors(loop):
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop._add_reader(-1, print)
    with pytest.raises(ValueError, match="Invalid file object"):
        loop._add_reader(object(), print)
    with open(__file__) as f:
        with pytest.raises(PermissionError):
            loop._add_reader(f, print)
    assert not loop._has_reader(0) or True


# ---- debug mode -------------------------------------------------------------------------------


def test_debug_mode_source_traceback_and_current_handle(loop):
    loop.set_debug(True)
    seen = []
    h = loop.call_soon(lambda: seen.append(loop._current_handle))
    tb = h._source_traceback
    assert tb and tb[-1][2] == "test_debug_mode_source_traceback_and_current_handle"
    assert "created at" in repr(h)
    loop._run_once()
    assert seen == [h]
    assert loop._current_handle is None
    t = loop.call_later(10, print)
    assert t._source_traceback[-1][2] == "test_debug_mode_source_traceback_and_current_handle"
    t.cancel()
    assert t._repr is not None and "cancelled" in repr(t)


def test_debug_mode_checks_callbacks_and_thread(loop):
    loop.set_debug(True)

    async def coro():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used with call_soon"):
        loop.call_soon(coro)
    with pytest.raises(TypeError, match="a callable object was expected by call_at"):
        loop.call_later(1, 42)
    loop.call_soon([].append, 1)  # builtin method: the fast path
    loop._thread_id = threading.get_ident() + 1
    try:
        with pytest.raises(RuntimeError, match="Non-thread-safe operation"):
            loop.call_soon(print)
    finally:
        loop._thread_id = None


def test_debug_mode_slow_callback_warning(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    loop.call_soon(time.sleep, 0.03)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop._run_once()
    assert any("Executing <Handle" in r.getMessage() and "took" in r.getMessage() for r in caplog.records)


# ---- closing ----------------------------------------------------------------------------------


def _register_everywhere(lp, cbs, a, b):
    """Hands one of the 5 callbacks `cbs` to each kind of handle `lp` keeps:
    call_soon, call_later, call_soon_threadsafe, a reader on `a`, a writer on `b`."""
    soon, later, threadsafe, reader, writer = cbs
    lp.call_soon(soon)
    lp.call_later(3600, later)
    lp.call_soon_threadsafe(threadsafe)
    lp._add_reader(a, reader)
    lp._add_writer(b, writer)


def test_close_releases_every_handle(pair):
    lp = CoreLoop()
    a, b = pair

    class Cb:
        def __call__(self, *args):
            pass

    cbs = [Cb() for _ in range(5)]
    refs = [weakref.ref(c) for c in cbs]
    _register_everywhere(lp, cbs, a, b)
    loop_ref = weakref.ref(lp)
    del cbs
    lp.close()
    gc.collect()
    assert [r() for r in refs] == [None] * 5
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        lp.call_soon(print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        lp._add_reader(a, print)
    assert lp._remove_reader(a) is False
    del lp
    gc.collect()
    assert loop_ref() is None


# ---- with BaseEventLoop -----------------------------------------------------------------------


def test_run_until_complete_with_sleep_and_futures(loop):
    async def main():
        await asyncio.sleep(0.01)
        fut = loop.create_future()
        loop.call_later(0.01, fut.set_result, 7)
        return await fut + await loop.run_in_executor(None, sum, [1, 2])

    assert loop.run_until_complete(main()) == 10


def test_run_in_pool(loop):
    fut = loop._run_in_pool(lambda x: x * 2, 21)
    assert isinstance(fut, asyncio.Future)
    assert loop.run_until_complete(fut) == 42

    def fail():
        raise OSError("nope")

    with pytest.raises(OSError, match="nope"):
        loop.run_until_complete(loop._run_in_pool(fail))
    gate = threading.Event()
    blocker = loop._run_in_pool(gate.wait, 5)
    fut = loop._run_in_pool(time.sleep, 0)
    fut.cancel()
    gate.set()
    assert loop.run_until_complete(blocker) is True
    assert fut.cancelled()


def test_sigint_during_the_wait_raises_keyboard_interrupt(loop):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        loop.call_later(30, print)
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            loop._run_once()
        assert time.monotonic() - t0 < 10
    finally:
        signal.signal(signal.SIGINT, old)


def test_stop_makes_the_iteration_not_wait(loop):
    loop.call_later(30, print)
    loop._stopping = True
    t0 = time.monotonic()
    assert loop._run_once() == 0
    assert time.monotonic() - t0 < 1
    loop._stopping = False


def test_max_callbacks_and_deadline(loop):
    out = []
    for i in range(10):
        loop.call_soon(out.append, i)
    assert loop._run_once(max_callbacks=3) == 3
    assert out == [0, 1, 2]
    loop.call_soon(out.append, "later")
    assert loop._run_once() == 8  # the rest, at the head, then the new one
    assert out == list(range(10)) + ["later"]
    for i in range(3):
        loop.call_soon(time.sleep, 0.02)
    # past the deadline no new handle starts (at least one runs)
    assert loop._run_once(deadline=loop.time() + 0.01) == 1
    assert loop._run_once() == 2


def test_subclass_has_dict_and_weakref(loop):
    loop.anything = 1
    assert loop.__dict__["anything"] == 1
    assert weakref.ref(loop)() is loop
    assert isinstance(loop, asyncio.AbstractEventLoop)


def test_handles_made_directly(loop):
    h = _rtpy.Handle(print, [1, 2], loop)
    assert h._args == (1, 2)
    t = _rtpy.TimerHandle(5.0, print, (), loop)
    assert t.when() == 5.0 and not t._scheduled
    assert repr(t) == repr(events.TimerHandle(5.0, print, (), loop))


def test_a_cycle_through_a_handle_is_collected(loop):
    class Owner:
        def cb(self):
            pass

    owner = Owner()
    owner.handle = loop.call_soon(owner.cb)  # owner -> handle -> bound method -> owner
    ref = weakref.ref(owner)
    loop._run_once()
    del owner
    gc.collect()
    assert ref() is None


def test_run_in_pool_in_debug_mode(loop):
    # the result comes back through call_soon_threadsafe from a pool thread
    # (no Python frame there: no source traceback, no error)
    loop.set_debug(True)
    assert loop.run_until_complete(loop._run_in_pool(sum, [1, 2])) == 3


def test_run_in_pool_converts_concurrent_futures_errors(loop):
    import concurrent.futures

    def cancelled():
        raise concurrent.futures.CancelledError()

    with pytest.raises(asyncio.CancelledError):
        loop.run_until_complete(loop._run_in_pool(cancelled))


def test_threadsafe_and_call_soon_share_one_fifo(loop):
    out = []
    loop.call_soon_threadsafe(out.append, "hello")
    loop.call_soon(out.append, "world")
    loop._run_once()
    loop._run_once(deadline=loop.time())
    assert out == ["hello", "world"]


def test_call_soon_arguments_like_a_python_method(loop):
    # the scheduling methods are installed with the vectorcall convention:
    # same signatures and errors as Python methods
    import inspect

    assert str(inspect.signature(loop.call_soon)) == "(callback, *args, context=None)"
    assert str(inspect.signature(loop.call_later)) == "(delay, callback, *args, context=None)"
    assert str(inspect.signature(loop.call_at)) == "(when, callback, *args, context=None)"
    with pytest.raises(TypeError, match=r"call_later\(\) missing 2 required positional arguments: 'delay' and 'callback'"):
        loop.call_later()
    with pytest.raises(TypeError, match="multiple values for argument 'when'"):
        loop.call_at(1, print, when=2)
    t = loop.call_later(delay=100, callback=print)
    assert t._callback is print
    t.cancel()
    out = []
    loop.call_soon(callback=out.append)  # asyncio accepts it by keyword too
    loop.call_soon(out.append, 1, context=contextvars.copy_context())
    loop.call_soon(out.append, 2, context=None)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'callback'"):
        loop.call_soon()
    with pytest.raises(TypeError, match="unexpected keyword argument 'when'"):
        loop.call_soon(print, when=1)
    with pytest.raises(TypeError, match="multiple values for argument 'callback'"):
        loop.call_soon(print, callback=print)
    with pytest.raises(TypeError):
        _rtpy.LoopCore.call_soon(object(), print)
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx["exception"]))
    assert loop._run_once() == 3
    assert out == [1, 2] and isinstance(errors[0], TypeError)  # append() without its argument


def test_call_soon_keywords_built_at_run_time_and_many_arguments(loop):
    # keyword names that are not interned strings (made at run time) and
    # many positional arguments: the same binding as a Python method's
    var = contextvars.ContextVar("var", default="outside")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inside")
    seen = []
    context_kw = "".join(["con", "text"])
    callback_kw = "".join(["call", "back"])
    for _ in range(3):  # the first non-interned name is then kept: same answers after
        loop.call_soon(lambda *a: seen.append((var.get(), a)), 1, 2, 3, 4, 5, 6, 7, 8, 9, **{context_kw: ctx})
        loop.call_soon(**{callback_kw: lambda: seen.append(var.get()), context_kw: ctx})
        with pytest.raises(TypeError, match="unexpected keyword argument 'contexts'"):
            loop.call_soon(print, **{context_kw + "s": ctx})
    loop.call_soon(lambda: seen.append(var.get()), context=None)
    assert loop._run_once() == 7
    assert seen == [("inside", tuple(range(1, 10))), "inside"] * 3 + ["outside"]
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print, **{context_kw: ctx})


def test_an_unclosed_loop_with_pending_handles_is_collected(pair):
    import warnings

    lp = CoreLoop()
    a, b = pair

    class Owner:
        def cb(self, *args):
            pass

    owner = Owner()
    owner.loop = lp
    _register_everywhere(lp, [owner.cb] * 5, a, b)
    lp.call_at(1e300, owner.cb)
    refs = weakref.ref(lp), weakref.ref(owner)
    del lp, owner
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # "unclosed event loop"
        gc.collect()
    assert [r() for r in refs] == [None, None]


def test_pool_idle_counts_each_loops_own_jobs():
    a, b = CoreLoop(), CoreLoop()
    try:
        gate = threading.Event()
        job = a._run_in_pool(gate.wait, 5)
        idle_a, idle_b = _rtpy._pool_idle(a), _rtpy._pool_idle(b)
        assert idle_b.done()  # b has no job: done at once
        assert not idle_a.done()
        job.cancel()  # started: still counted until it ends
        b.run_until_complete(asyncio.sleep(0.05))
        assert not idle_a.done()
        gate.set()
        assert a.run_until_complete(asyncio.wait_for(idle_a, 5)) is None
        assert _rtpy._pool_idle(a).done()
    finally:
        a.close()
        b.close()


def test_run_in_pool_cancelled_job_sends_nothing_back():
    lp = CoreLoop()
    called = []
    gate = threading.Event()
    fut = lp._run_in_pool(gate.wait, 5)
    time.sleep(0.05)  # started: the cancel cannot abort it
    fut.cancel()
    lp.call_soon_threadsafe = lambda *a: called.append(a)  # what a result would go through
    gate.set()
    time.sleep(0.2)
    lp.close()
    assert called == []


def test_interpreter_exit_waits_for_a_running_pool_job():
    # A job running Python code when the interpreter exits is waited for
    # (as asyncio's executor threads are joined): it must not meet a
    # finalizing interpreter (that aborted the process).
    import subprocess
    import textwrap

    code = textwrap.dedent(
        """
        import asyncio, time
        from rtpy import _rtpy

        class L(_rtpy.LoopCore, asyncio.BaseEventLoop):
            def __init__(self):
                asyncio.BaseEventLoop.__init__(self)

        def busy():
            end = time.monotonic() + 0.5
            n = 0
            while time.monotonic() < end:
                n += 1
            print("job done", flush=True)

        lp = L()
        lp._run_in_pool(busy)
        time.sleep(0.1)
        print("exiting", flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["exiting", "job", "done"]


def test_get_debug_and_debug_attribute_are_one_flag(loop):
    # BaseEventLoop's set_debug writes `_debug`; the core's get_debug, its
    # `_debug` attribute and the flag it reads (debug handles) agree.
    assert loop.get_debug() is False and loop._debug is False
    loop.set_debug(True)
    assert loop.get_debug() is True and loop._debug is True
    assert loop.call_soon(lambda: None)._source_traceback
    loop._debug = False
    assert loop.get_debug() is False
    assert loop.call_soon(lambda: None)._source_traceback is None
    assert type(loop).get_debug is _rtpy.LoopCore.get_debug


def test_create_future_is_an_asyncio_future_of_the_loop(loop):
    fut = loop.create_future()
    assert type(fut) is asyncio.Future
    assert fut.get_loop() is loop
    loop.set_debug(True)
    assert loop.create_future()._source_traceback  # Future.__init__ read get_debug()
    loop.call_soon(fut.set_result, 7)
    assert loop.run_until_complete(fut) == 7


def test_subclass_overrides_of_get_debug_and_create_future_win():
    made = []

    class Sub(CoreLoop):
        def get_debug(self):
            return True

        def create_future(self):
            fut = super().create_future()
            made.append(fut)
            return fut

    loop = Sub()
    try:
        fut = loop.create_future()
        assert made == [fut]
        assert fut._source_traceback  # the override's get_debug was asked
        loop.call_soon(fut.set_result, None)
        loop.run_until_complete(asyncio.sleep(0))
        assert fut.done()
    finally:
        loop.close()


def test_fast_methods_called_late_at_exit_answer_without_aborting():
    # The hand-written methods (transport write, call_soon) called from a
    # `__del__` while the interpreter finalizes, before anything else
    # attached from outside a method: once pyo3 refuses to attach there, a
    # clean RuntimeError (an early build aborted the process here).
    import subprocess
    import textwrap

    code = textwrap.dedent(
        """
        import asyncio, socket
        from rtpy import _rtpy

        class Loop:
            def __getattr__(self, name):
                return lambda *args: None

        class Transport:
            def __getattr__(self, name):
                return lambda *args: None

        class L(_rtpy.LoopCore, asyncio.BaseEventLoop):
            def __init__(self):
                asyncio.BaseEventLoop.__init__(self)

        a, b = socket.socketpair()
        a.setblocking(False)
        core = _rtpy.SocketTransportCore(Loop(), Transport(), a, asyncio.Protocol(), False)

        class AtExit:
            def __del__(self):
                for name, call in (("write", lambda: self.write(b"bye")),
                                   ("call_soon", lambda: self.call_soon(print))):
                    try:
                        call()
                        print(name, "ok", flush=True)
                    except RuntimeError as e:
                        print(name, "refused", e, flush=True)

        keep = AtExit()
        keep.write, keep.call_soon, keep.peers = core.write, L().call_soon, (a, b)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "panicked" not in out.stderr, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[:2] for line in lines] in (
        [["write", "ok"], ["call_soon", "ok"]],
        [["write", "refused"], ["call_soon", "refused"]],
        [["write", "ok"], ["call_soon", "refused"]],
    ), out.stdout
