"""`rtpy.Loop.run_forever` on the core's native loop (`LoopCore._run_forever`):
asyncio's semantics (stop, exceptions, signals, re-entry refused), the
native `_stopping` flag, and the fallback to BaseEventLoop's loop when
`_run_once` is replaced."""

import asyncio
import os
import signal
import threading
import time

import pytest

import rtpy


@pytest.fixture
def loop():
    lp = rtpy.new_event_loop()
    yield lp
    lp.close()


def test_stop_ends_after_the_current_iteration(loop):
    out = []

    def first():
        out.append(1)
        loop.stop()
        loop.call_soon(out.append, 3)  # queued during the stopping iteration

    loop.call_soon(first)
    loop.call_soon(out.append, 2)
    loop.run_forever()
    assert out == [1, 2]
    assert loop._stopping is False
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [1, 2, 3]


def test_stop_before_run_forever_runs_one_iteration(loop):
    out = []
    loop.call_soon(out.append, 1)
    loop.stop()
    loop.run_forever()
    assert out == [1]
    assert not loop.is_running()


def test_native_stopping_flag(loop):
    assert loop._stopping is False
    loop._stopping = 1
    assert loop._stopping is True
    loop._stopping = []
    assert loop._stopping is False
    with pytest.raises((AttributeError, TypeError)):
        del loop._stopping
    assert "_stopping" not in loop.__dict__


def test_running_loop_and_bookkeeping(loop):
    seen = []

    def probe():
        seen.append((asyncio.get_running_loop() is loop, loop.is_running()))
        with pytest.raises(RuntimeError):
            loop.run_forever()
        loop.stop()

    loop.call_soon(probe)
    loop.run_forever()
    assert seen == [(True, True)]
    assert not loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_callback_exception_goes_to_the_handler_and_loop_goes_on(loop):
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx["exception"]))

    def boom():
        raise ValueError("x")

    loop.call_soon(boom)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert [type(e) for e in errors] == [ValueError]


def test_keyboard_interrupt_comes_out_and_pending_keep_their_place(loop):
    out = []

    def interrupt():
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    loop.call_soon(out.append, 1)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [1]


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread"
)
def test_signal_handler_runs_in_a_busy_loop():
    # A loop that never waits (always a callback ready): the signal's Python
    # handler still runs, and the loop goes on.
    loop = rtpy.new_event_loop()
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
    try:

        def spin():
            if got:
                loop.stop()
            else:
                loop.call_soon(spin_c)

        spin_c = lambda: loop.call_soon(spin)  # noqa: E731
        loop.call_soon(spin)
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        t0 = time.monotonic()
        loop.run_forever()
        assert got == [1]
        assert time.monotonic() - t0 < 10
    finally:
        signal.signal(signal.SIGUSR1, old)
        loop.close()


def test_replaced_run_once_is_called(loop):
    calls = []
    real = loop._run_once

    def counting(*a):
        calls.append(1)
        return real(*a)

    loop._run_once = counting
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert calls == [1]


def test_subclass_run_once_is_called():
    calls = []

    class Sub(rtpy.Loop):
        def _run_once(self, *a):  # type: ignore[override]
            calls.append(1)
            return super()._run_once(*a)

    loop = Sub()
    try:
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert calls == [1]
    finally:
        loop.close()


def test_run_until_complete_and_timers(loop):
    async def main():
        await asyncio.sleep(0.01)
        return 42

    assert loop.run_until_complete(main()) == 42


def test_closed_loop_refuses(loop):
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_forever()
