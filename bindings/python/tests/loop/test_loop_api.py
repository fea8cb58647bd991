"""rtpy.Loop's own API and lifecycle (issue 12): what CPython's suite does not cover.

Tests that state asyncio behaviour run on asyncio's stock loop and on rtpy's (`any_loop`), so a
difference between them is a failure; rtpy-only features (`run_for`, `metrics`, `rtpy.run`,
the policy) run on rtpy's loop.
"""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings

import pytest

import rtpy

from .support import SlowJob, close_loop, run

KINDS = {"asyncio": asyncio.SelectorEventLoop, "rtpy": rtpy.new_event_loop}


@pytest.fixture(params=sorted(KINDS))
def any_loop(request):
    """A new loop of each kind (asyncio's, rtpy's), closed after the test."""
    lp = KINDS[request.param]()
    try:
        yield lp
    finally:
        close_loop(lp)


@pytest.fixture
def rt_loop():
    """A new rtpy loop, closed after the test."""
    lp = rtpy.new_event_loop()
    try:
        yield lp
    finally:
        close_loop(lp)


# -- construction and lifecycle -------------------------------------------------------------------


def test_new_event_loop_is_an_asyncio_loop():
    lp = rtpy.new_event_loop()
    try:
        assert isinstance(lp, rtpy.Loop)
        assert isinstance(lp, asyncio.AbstractEventLoop)
        assert isinstance(lp, asyncio.BaseEventLoop)
        assert not lp.is_running() and not lp.is_closed()
        assert repr(lp) == "<Loop running=False closed=False debug=False>"
        lp.some_attribute = 1  # tests set attributes on loops: it needs a __dict__
    finally:
        lp.close()
    assert lp.is_closed()
    assert repr(lp) == "<Loop running=False closed=True debug=False>"


def test_each_loop_is_new():
    a, b = rtpy.new_event_loop(), rtpy.new_event_loop()
    try:
        assert a is not b
    finally:
        a.close()
        b.close()


def test_run_until_complete_sleep_and_result(any_loop):
    async def main():
        t0 = any_loop.time()
        await asyncio.sleep(0.02)
        return any_loop.time() - t0

    assert run(any_loop, main()) >= 0.02


def test_running_loop_inside_and_not_after(any_loop):
    async def main():
        assert any_loop.is_running()
        return asyncio.get_running_loop()

    assert run(any_loop, main()) is any_loop
    assert not any_loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_close_twice_and_use_after_close(any_loop):
    any_loop.close()
    any_loop.close()
    assert any_loop.is_closed()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.call_soon(print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.call_later(1, print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.run_forever()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.run_in_executor(None, print)
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.run_until_complete(coro)
    coro.close()


def test_close_while_running_is_refused(any_loop):
    errors = []

    def try_close():
        try:
            any_loop.close()
        except RuntimeError as e:
            errors.append(str(e))
        any_loop.stop()

    any_loop.call_soon(try_close)
    any_loop.run_forever()
    assert errors == ["Cannot close a running event loop"]
    assert not any_loop.is_closed()


def test_close_drops_pending_callbacks_timers_and_readers(any_loop):
    ran = []
    a, b = socket.socketpair()
    try:
        b.send(b"x")  # `a` is readable: its reader would run at the next iteration
        any_loop.call_soon(ran.append, "soon")
        any_loop.call_later(0.001, ran.append, "timer")
        any_loop.add_reader(a, ran.append, "reader")
        any_loop.close()
        time.sleep(0.01)
        assert ran == []
        assert any_loop.is_closed()
    finally:
        a.close()
        b.close()


def test_close_with_pending_executor_job(any_loop):
    started = threading.Event()
    release = threading.Event()

    def job():
        started.set()
        release.wait(5)
        return 1

    fut = any_loop.run_in_executor(None, job)
    assert started.wait(5)
    any_loop.close()  # the job is still running: close neither waits for it nor fails
    release.set()
    assert fut.done() is False or fut.cancelled() or fut.result() == 1
    time.sleep(0.05)  # the job ends after the close: nothing may raise in its thread


def test_stop_before_run_forever_runs_one_iteration(any_loop):
    ran = []
    any_loop.call_soon(ran.append, 1)
    any_loop.stop()
    any_loop.run_forever()
    assert ran == [1]
    any_loop.call_soon(ran.append, 2)
    any_loop.call_soon(any_loop.stop)
    any_loop.run_forever()
    assert ran == [1, 2]


def test_set_debug(any_loop):
    assert any_loop.get_debug() is False
    any_loop.set_debug(True)
    assert any_loop.get_debug() is True
    assert "debug=True" in repr(any_loop)
    # Debug mode checks the callback: a coroutine function is refused.
    with pytest.raises(TypeError):
        any_loop.call_soon(asyncio.sleep)
    any_loop.set_debug(False)
    assert any_loop.get_debug() is False


def test_exception_in_callback_goes_to_handler(any_loop):
    seen = []
    any_loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))

    def boom():
        raise ZeroDivisionError

    any_loop.call_soon(boom)
    any_loop.call_soon(any_loop.stop)
    any_loop.run_forever()
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], ZeroDivisionError)
    assert seen[0]["message"].startswith("Exception in callback")


def test_keyboard_interrupt_propagates_and_loop_stays_usable(any_loop):
    def interrupt():
        raise KeyboardInterrupt

    any_loop.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        any_loop.run_forever()
    assert not any_loop.is_running()
    assert run(any_loop, asyncio.sleep(0, "again")) == "again"


def test_asyncgens_are_shut_down(any_loop):
    closed = []

    async def gen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        g = gen()
        await g.__anext__()
        return g

    g = run(any_loop, main())
    any_loop.run_until_complete(any_loop.shutdown_asyncgens())
    assert closed == [True]
    del g


# -- rtpy.run, Runner, policy, install -------------------------------------------------------------


def test_run_returns_and_closes_its_loop():
    loops = []

    async def main(x):
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return x * 2

    assert rtpy.run(main(21)) == 42
    assert isinstance(loops[0], rtpy.Loop)
    assert loops[0].is_closed()


def test_run_debug_flag():
    async def debug():
        return asyncio.get_running_loop().get_debug()

    assert rtpy.run(debug(), debug=True) is True
    assert rtpy.run(debug(), debug=False) is False


def test_run_propagates_the_exception():
    async def fail():
        raise ValueError("from main")

    with pytest.raises(ValueError, match="from main"):
        rtpy.run(fail())


def test_run_cancels_leftover_tasks_and_waits_for_executor_jobs():
    cancelled = []
    job_done = []

    async def forever():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        asyncio.get_running_loop().create_task(forever())
        job = lambda: (time.sleep(0.1), job_done.append(1))  # noqa: E731
        asyncio.get_running_loop().run_in_executor(None, job)
        await asyncio.sleep(0)

    rtpy.run(main())
    assert cancelled == [True]
    assert job_done == [1]  # shutdown_default_executor waited for the blocking pool's job


@pytest.mark.parametrize("runner", [asyncio.run, rtpy.run], ids=["asyncio", "rtpy"])
def test_run_ctrl_c_while_waiting(runner):
    # SIGINT while the loop waits: KeyboardInterrupt out of run() (3.11+: the Runner cancels the
    # main task first), and the loop is cleaned up.
    seen = []

    async def main():
        # From another thread, so that the signal comes while the loop waits in the poller.
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner(main())
    assert time.monotonic() - t0 < 10
    if sys.version_info >= (3, 11):
        assert seen == ["cancelled"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_run_refused_inside_a_running_loop():
    async def outer():
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
                rtpy.run(coro)
        finally:
            coro.close()
        return True

    assert rtpy.run(outer())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is 3.11+")
def test_asyncio_runner_with_rtpy_factory():
    with asyncio.Runner(loop_factory=rtpy.new_event_loop) as runner:
        assert isinstance(runner.get_loop(), rtpy.Loop)
        assert runner.run(asyncio.sleep(0, "a")) == "a"
        assert runner.run(asyncio.sleep(0, "b")) == "b"


@pytest.fixture
def restore_policy():
    old = asyncio.get_event_loop_policy()
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(old)


def test_event_loop_policy_makes_rtpy_loops(restore_policy):
    policy = rtpy.EventLoopPolicy()
    assert isinstance(policy, asyncio.DefaultEventLoopPolicy)
    lp = policy.new_event_loop()
    try:
        assert isinstance(lp, rtpy.Loop)
    finally:
        lp.close()
    asyncio.set_event_loop_policy(policy)
    lp = asyncio.new_event_loop()
    try:
        assert isinstance(lp, rtpy.Loop)
    finally:
        lp.close()


def test_install_sets_the_policy(restore_policy):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rtpy.install()
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert bool(deprecations) == (sys.version_info >= (3, 12))
    assert isinstance(asyncio.get_event_loop_policy(), rtpy.EventLoopPolicy)

    async def kind():
        return type(asyncio.get_running_loop())

    assert asyncio.run(kind()) is rtpy.Loop


# -- run_for ---------------------------------------------------------------------------------------


def test_run_for_runs_ready_callbacks_and_returns(rt_loop):
    ran = []
    for i in range(5):
        rt_loop.call_soon(ran.append, i)
    rt_loop.call_soon(rt_loop.stop)
    t0 = time.monotonic()
    n = rt_loop.run_for(5.0)
    assert ran == [0, 1, 2, 3, 4]
    assert n == 6
    assert time.monotonic() - t0 < 2.5  # stop() ended it, not the budget
    assert not rt_loop.is_running()


def test_run_for_zero_budget_still_makes_progress(rt_loop):
    ran = []
    for i in range(3):
        rt_loop.call_soon(ran.append, i)
    t0 = time.monotonic()
    total = 0
    for _ in range(3):
        n = rt_loop.run_for(0)
        assert n >= 1
        total += n
        if total == 3:
            break
    assert ran == [0, 1, 2]
    assert time.monotonic() - t0 < 1.0


def test_run_for_starts_no_callback_once_the_budget_is_spent(rt_loop):
    ran = []

    def slow(i):
        ran.append(i)
        time.sleep(0.03)

    for i in range(10):
        rt_loop.call_soon(slow, i)
    t0 = time.monotonic()
    n = rt_loop.run_for(0.05)
    elapsed = time.monotonic() - t0
    assert 1 <= n < 10 and ran == list(range(n))
    assert elapsed < 0.05 + 0.03 + 0.5  # at most one callback past the budget (load margin)
    while len(ran) < 10:
        rt_loop.run_for(0.05)
    assert ran == list(range(10))  # the rest kept their order


def test_run_for_waits_at_most_its_budget(rt_loop):
    fired = []
    rt_loop.call_later(0.03, fired.append, "early")
    rt_loop.call_later(5.0, fired.append, "late")
    t0 = time.monotonic()
    rt_loop.run_for(0.1)
    elapsed = time.monotonic() - t0
    assert fired == ["early"]
    assert 0.1 <= elapsed < 1.0
    assert not rt_loop.is_running()


def test_run_for_returns_at_the_deadline_while_callbacks_keep_coming(rt_loop):
    count = [0]

    def again():
        count[0] += 1
        rt_loop.call_soon(again)

    rt_loop.call_soon(again)
    t0 = time.monotonic()
    rt_loop.run_for(0.05)
    assert 0.05 <= time.monotonic() - t0 < 1.0
    assert count[0] > 10


def test_run_for_max_callbacks_keeps_the_rest_in_order(rt_loop):
    ran = []
    for i in range(10):
        rt_loop.call_soon(ran.append, i)
    assert rt_loop.run_for(1.0, max_callbacks=3) == 3
    assert ran == [0, 1, 2]
    assert rt_loop.run_for(1.0, max_callbacks=4) == 4
    assert ran == list(range(7))
    rt_loop.call_soon(rt_loop.stop)
    assert rt_loop.run_for(5.0) == 4
    assert ran == list(range(10))


def test_run_for_max_callbacks_counts_over_iterations(rt_loop):
    ran = []

    def chain(i):
        ran.append(i)
        rt_loop.call_soon(chain, i + 1)

    rt_loop.call_soon(chain, 0)
    t0 = time.monotonic()
    assert rt_loop.run_for(5.0, max_callbacks=20) == 20
    assert ran == list(range(20))
    assert time.monotonic() - t0 < 2.5  # the count ends it, not the budget


def test_run_for_max_callbacks_zero_runs_nothing(rt_loop):
    ran = []
    rt_loop.call_soon(ran.append, 1)
    assert rt_loop.run_for(1.0, max_callbacks=0) == 0
    assert ran == []
    rt_loop.run_for(1.0, max_callbacks=1)
    assert ran == [1]


def test_run_for_stop_returns_early(rt_loop):
    ran = []
    rt_loop.call_later(0.01, rt_loop.stop)
    rt_loop.call_later(0.5, ran.append, "late")
    t0 = time.monotonic()
    rt_loop.run_for(5.0)
    assert time.monotonic() - t0 < 2.0
    assert ran == []
    # stop() only ended that call: the next one runs normally.
    rt_loop.call_soon(ran.append, "next")
    rt_loop.run_for(1.0, max_callbacks=1)
    assert ran == ["next"]


def test_run_for_infinite_budget_until_stop_or_count(rt_loop):
    ran = []
    rt_loop.call_later(0.02, rt_loop.stop)
    rt_loop.run_for(float("inf"))
    rt_loop.call_soon(ran.append, 1)
    rt_loop.call_soon(ran.append, 2)
    assert rt_loop.run_for(float("inf"), max_callbacks=2) == 2
    assert ran == [1, 2]


def test_run_for_drives_tasks_across_frames(rt_loop):
    async def worker():
        for _ in range(3):
            await asyncio.sleep(0.005)
        return asyncio.get_running_loop()

    task = rt_loop.create_task(worker())
    frames = 0
    while not task.done() and frames < 1000:
        rt_loop.run_for(0.002)
        frames += 1
    assert task.result() is rt_loop
    assert frames >= 2


def test_run_for_is_refused_while_running_and_when_closed(rt_loop):
    errors = []

    def nested():
        try:
            rt_loop.run_for(0.01)
        except RuntimeError as e:
            errors.append(str(e))

    rt_loop.call_soon(nested)
    rt_loop.run_for(1.0, max_callbacks=1)
    assert errors == ["This event loop is already running"]
    with pytest.raises(ValueError):
        rt_loop.run_for(-1)
    with pytest.raises(ValueError):
        rt_loop.run_for(float("nan"))
    with pytest.raises(ValueError):
        rt_loop.run_for(0, max_callbacks=-1)
    rt_loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        rt_loop.run_for(0)


def test_run_for_exception_propagates_and_loop_recovers(rt_loop):
    def interrupt():
        raise KeyboardInterrupt

    ran = []
    rt_loop.call_soon(interrupt)
    rt_loop.call_soon(ran.append, "after")
    with pytest.raises(KeyboardInterrupt):
        rt_loop.run_for(1.0)
    assert not rt_loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    rt_loop.run_for(1.0, max_callbacks=1)
    assert ran == ["after"]


# -- metrics ---------------------------------------------------------------------------------------


def test_metrics_snapshot(rt_loop):
    m0 = rt_loop.metrics()
    assert isinstance(m0, rtpy.LoopMetrics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m0.iterations = 5
    for i in range(10):
        rt_loop.call_soon(lambda: None)
    rt_loop.call_later(3600, lambda: None)
    rt_loop.call_later(0, lambda: None)
    assert rt_loop.metrics().ready_len == 10
    rt_loop.run_for(0.02)
    m1 = rt_loop.metrics()
    assert m1.callbacks_run - m0.callbacks_run >= 11
    assert m1.iterations > m0.iterations
    assert m1.timers_fired - m0.timers_fired >= 1
    assert m1.timers_pending >= 1
    assert m1.ready_len == 0
    a, b = socket.socketpair()
    try:
        rt_loop.add_reader(a, lambda: None)
        assert rt_loop.metrics().readers == 1
        rt_loop.remove_reader(a)
        assert rt_loop.metrics().readers == 0
    finally:
        a.close()
        b.close()


def test_metrics_threadsafe_calls(rt_loop):
    m0 = rt_loop.metrics()
    t = threading.Thread(target=lambda: rt_loop.call_soon_threadsafe(rt_loop.stop))
    t.start()
    rt_loop.run_forever()
    t.join()
    assert rt_loop.metrics().threadsafe_calls - m0.threadsafe_calls == 1


# -- executor --------------------------------------------------------------------------------------


def test_run_in_executor_default_runs_on_another_thread(any_loop):
    async def main():
        return await any_loop.run_in_executor(None, threading.get_ident)

    assert run(any_loop, main()) != threading.get_ident()


def test_run_in_executor_exception(any_loop):
    def fail():
        raise OSError("in the pool")

    async def main():
        await any_loop.run_in_executor(None, fail)

    with pytest.raises(OSError, match="in the pool"):
        run(any_loop, main())


def test_run_in_executor_many_jobs(any_loop):
    async def main():
        return await asyncio.gather(*[any_loop.run_in_executor(None, pow, i, 2) for i in range(50)])

    assert run(any_loop, main()) == [i * i for i in range(50)]


def test_set_default_executor_is_used(any_loop):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine") as ex:
        any_loop.set_default_executor(ex)

        async def main():
            return await any_loop.run_in_executor(None, lambda: threading.current_thread().name)

        assert run(any_loop, main()).startswith("mine")


def test_explicit_executor(any_loop):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="explicit") as ex:

        async def main():
            return await any_loop.run_in_executor(ex, lambda: threading.current_thread().name)

        assert run(any_loop, main()).startswith("explicit")


def test_shutdown_default_executor_waits_for_jobs_then_refuses_new_ones(any_loop):
    slow = SlowJob(0.1)

    async def main():
        any_loop.run_in_executor(None, slow)
        await asyncio.sleep(0)
        await any_loop.shutdown_default_executor()
        assert slow.finished == [True]
        with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
            any_loop.run_in_executor(None, print)

    run(any_loop, main())


def test_shutdown_default_executor_waits_for_a_cancelled_job(any_loop):
    slow = SlowJob(0.1)

    async def main():
        fut = any_loop.run_in_executor(None, slow)
        await any_loop.run_in_executor(None, slow.started.wait, 5)
        fut.cancel()  # the thread goes on: shutdown still waits for it
        await any_loop.shutdown_default_executor()
        assert slow.finished == [True]

    run(any_loop, main())


def test_run_in_executor_cancelled_before_start_never_runs(any_loop):
    ran = []
    gate = threading.Event()

    async def main():
        # Fill the pool so that the last job is still queued when it is cancelled.
        blockers = [any_loop.run_in_executor(None, gate.wait, 5) for _ in range(64)]
        fut = any_loop.run_in_executor(None, ran.append, 1)
        fut.cancel()
        for _ in range(3):  # the cancellation reaches the pool through done callbacks
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*blockers)
        await any_loop.shutdown_default_executor()

    run(any_loop, main())
    assert ran == []


def test_getaddrinfo(any_loop):
    async def main():
        return await any_loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)

    infos = run(any_loop, main())
    assert infos and infos[0][4] == ("127.0.0.1", 80)


# -- public fd hooks -------------------------------------------------------------------------------


def test_add_reader_writer_and_remove(any_loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    got = []
    try:

        def on_read():
            got.append(a.recv(100))
            any_loop.remove_reader(a)
            any_loop.stop()

        any_loop.add_reader(a.fileno(), on_read)
        any_loop.add_writer(b, lambda: (b.send(b"ping"), any_loop.remove_writer(b)))
        any_loop.call_later(5, any_loop.stop)
        any_loop.run_forever()
        assert got == [b"ping"]
        assert any_loop.remove_reader(a) is False
        assert any_loop.remove_writer(b.fileno()) is False
    finally:
        a.close()
        b.close()


def test_fd_hooks_bad_fd(any_loop):
    with pytest.raises(ValueError):
        any_loop.add_reader(object(), print)
    with pytest.raises(ValueError):
        any_loop.remove_writer("not a file")


def test_fd_hooks_refuse_a_transports_fd(any_loop):
    async def main():
        srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        fd = writer.get_extra_info("socket").fileno()
        for call in (
            lambda: any_loop.add_reader(fd, print),
            lambda: any_loop.add_writer(fd, print),
            lambda: any_loop.remove_reader(fd),
            lambda: any_loop.remove_writer(fd),
        ):
            with pytest.raises(RuntimeError, match="is used by transport"):
                call()
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(any_loop, main())


def test_stock_transport_repr_reads_the_fd_table(any_loop):
    # asyncio's pipe transports say "polling" / "idle" from loop._selector.
    r, w = os.pipe()

    async def main():
        transport, _ = await any_loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb", 0))
        assert "polling" in repr(transport)
        transport.pause_reading()
        assert "idle" in repr(transport)
        transport.close()
        await asyncio.sleep(0)

    try:
        run(any_loop, main())
    finally:
        os.close(w)
    any_loop.close()
    assert "closed" in repr(any_loop)


# -- servers, streams, unix sockets ----------------------------------------------------------------


async def _echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_tcp_server_echo_and_sockets_tuple(any_loop):
    async def main():
        srv = await asyncio.start_server(_echo, "127.0.0.1", 0)
        assert isinstance(srv.sockets, tuple) and len(srv.sockets) == 1
        assert srv.is_serving()
        port = srv.sockets[0].getsockname()[1]
        results = []
        for size in (1, 1000, 300_000):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert isinstance(writer.transport, asyncio.Transport)
            payload = os.urandom(size)
            writer.write(payload)
            writer.write_eof()
            results.append(await reader.read() == payload)
            writer.close()
            await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        assert not srv.is_serving()
        return results

    assert run(any_loop, main()) == [True, True, True]


def test_server_accepts_a_burst_of_connections(any_loop):
    async def main():
        srv = await asyncio.start_server(_echo, "127.0.0.1", 0, backlog=200)
        port = srv.sockets[0].getsockname()[1]

        async def one(i):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"%d" % i)
            writer.write_eof()
            data = await reader.read()
            writer.close()
            await writer.wait_closed()
            return data

        out = await asyncio.gather(*[one(i) for i in range(150)])
        srv.close()
        await srv.wait_closed()
        return out

    assert run(any_loop, main(), timeout=30) == [b"%d" % i for i in range(150)]


def test_server_not_started_then_serve_forever_cancelled(any_loop):
    async def main():
        srv = await asyncio.start_server(_echo, "127.0.0.1", 0, start_serving=False)
        assert not srv.is_serving()
        port = srv.sockets[0].getsockname()[1]
        task = asyncio.ensure_future(srv.serve_forever())
        await asyncio.sleep(0)
        assert srv.is_serving()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hi")
        writer.write_eof()
        assert await reader.read() == b"hi"
        writer.close()
        await writer.wait_closed()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not srv.is_serving()

    run(any_loop, main())


def test_protocol_server_connection_lost(any_loop):
    events = []
    done = any_loop.create_future()

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            events.append("made")
            self.transport = transport

        def data_received(self, data):
            events.append(data)
            self.transport.close()

        def connection_lost(self, exc):
            events.append(("lost", exc))
            done.set_result(None)

    async def main():
        srv = await any_loop.create_server(Proto, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"data")
            await asyncio.wait_for(done, 5)
        srv.close()
        await srv.wait_closed()

    run(any_loop, main())
    assert events == ["made", b"data", ("lost", None)]


async def _unix_echo_round_trip(srv, address, payload):
    """Sends `payload` (then EOF) to the echo server `srv` over a Unix
    connection to `address`, closes the connection and `srv`, and returns
    what the server sent back."""
    reader, writer = await asyncio.open_unix_connection(address)
    writer.write(payload)
    writer.write_eof()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    srv.close()
    await srv.wait_closed()
    return data


def test_unix_server_and_connection(any_loop):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.sock")

        async def main():
            srv = await asyncio.start_unix_server(_echo, path)
            assert srv.sockets[0].family == socket.AF_UNIX
            return await _unix_echo_round_trip(srv, path, b"over unix")

        assert run(any_loop, main()) == b"over unix"
        # 3.13 removes the socket file when the server closes (cleanup_socket=True).
        assert os.path.exists(path) == (sys.version_info < (3, 13))


def test_unix_server_replaces_a_stale_socket_file(any_loop):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "stale.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()  # the file stays

        async def main():
            srv = await any_loop.create_unix_server(asyncio.Protocol, path)
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(path)
            srv.close()
            await srv.wait_closed()

        run(any_loop, main())


def test_unix_server_on_an_accepted_sock_and_abstract(any_loop):
    async def main():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind("\0rtpy-test-%d-%d" % (os.getpid(), id(any_loop)))
        srv = await asyncio.start_unix_server(_echo, sock=sock)
        return await _unix_echo_round_trip(srv, sock.getsockname(), b"abstract")

    assert run(any_loop, main()) == b"abstract"


def test_unix_argument_errors(any_loop):
    async def main():
        with socket.socket(socket.AF_INET) as inet:
            with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
                await any_loop.create_unix_server(asyncio.Protocol, sock=inet)
            with pytest.raises(ValueError, match="A UNIX Domain Stream Socket was expected"):
                await any_loop.create_unix_connection(asyncio.Protocol, sock=inet)
        with socket.socket(socket.AF_UNIX) as s:
            with pytest.raises(ValueError, match="path and sock can not be specified"):
                await any_loop.create_unix_server(asyncio.Protocol, "/tmp/x", sock=s)
        with pytest.raises(ValueError):
            await any_loop.create_unix_server(asyncio.Protocol)
        with pytest.raises(ValueError):
            await any_loop.create_unix_connection(asyncio.Protocol)
        with pytest.raises(ValueError, match="only meaningful with ssl"):
            await any_loop.create_unix_connection(asyncio.Protocol, "/tmp/x", server_hostname="h")
        with pytest.raises(TypeError):
            await any_loop.create_unix_server(asyncio.Protocol, "/tmp/x", ssl=True)
        with pytest.raises(FileNotFoundError):
            await any_loop.create_unix_connection(asyncio.Protocol, "/nonexistent/rtpy.sock")

    run(any_loop, main())


def test_unix_server_address_in_use(any_loop):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "busy.sock")

        async def main():
            srv = await any_loop.create_unix_server(asyncio.Protocol, path)
            try:
                # A live listener is a socket file too: asyncio replaces it (its stale-file rule
                # cannot tell them apart) and binds; both loops behave the same.
                srv2 = await any_loop.create_unix_server(asyncio.Protocol, path)
                srv2.close()
                await srv2.wait_closed()
            finally:
                srv.close()
                await srv.wait_closed()

        run(any_loop, main())


def test_close_loop_with_server_still_open(any_loop):
    async def main():
        return await asyncio.start_server(_echo, "127.0.0.1", 0)

    srv = run(any_loop, main())
    sock = srv.sockets[0]
    srv.close()
    any_loop.run_until_complete(srv.wait_closed())
    any_loop.close()
    assert sock.fileno() == -1


# -- sendfile --------------------------------------------------------------------------------------


def test_sendfile_over_a_transport(any_loop):
    payload = os.urandom(200_000)
    with tempfile.TemporaryFile() as f:
        f.write(payload)
        f.flush()
        f.seek(0)

        async def main():
            got = bytearray()
            done = any_loop.create_future()

            async def sink(reader, writer):
                got.extend(await reader.read())
                writer.close()
                done.set_result(None)

            srv = await asyncio.start_server(sink, "127.0.0.1", 0)
            port = srv.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            sent = await any_loop.sendfile(writer.transport, f, offset=1000, count=150_000)
            writer.write(b"tail")
            writer.write_eof()
            await asyncio.wait_for(done, 10)
            writer.close()
            await writer.wait_closed()
            srv.close()
            await srv.wait_closed()
            return sent, bytes(got), f.tell()

        sent, got, pos = run(any_loop, main())
        assert sent == 150_000
        assert got == payload[1000:151_000] + b"tail"
        assert pos == 151_000
