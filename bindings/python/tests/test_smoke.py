"""Smoke test of the rtpy build: the package imports, a runtime runs a call
and shuts down. The thorough tests are the other files of this directory."""

import concurrent.futures
import time

import pytest

import rtpy
from conftest import run_child


def test_package_exports() -> None:
    assert rtpy.READABLE == 1 and rtpy.WRITABLE == 2 and rtpy.HUP == 4 and rtpy.ERROR == 8
    assert issubclass(rtpy.ShutdownError, RuntimeError)
    assert issubclass(rtpy.DeadlockError, RuntimeError)
    assert issubclass(rtpy.Future, concurrent.futures.Future)
    assert isinstance(rtpy.__version__, str)


@pytest.mark.parametrize("flavor", ["multi_thread", "current_thread"])
def test_runtime_runs_a_call_then_shuts_down(flavor: str) -> None:
    with rtpy.Runtime(flavor) as rt:
        assert rt.flavor == flavor
        fut = rt.run_blocking(lambda a, b: a + b, 2, 3)
        assert isinstance(fut, rtpy.Future)
        assert fut.result(timeout=10) == 5
        metrics = rt.metrics()
        assert isinstance(metrics, rtpy.Metrics)
        assert metrics.workers >= 1
    assert rt.is_shutdown
    rt.shutdown()  # idempotent
    with pytest.raises(rtpy.ShutdownError):
        rt.spawn(print)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        rtpy.Runtime("no_such_flavor")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rtpy.Runtime(workers=0)
    with rtpy.Runtime(workers=1) as rt:
        with pytest.raises(TypeError):
            rt.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            rt.shutdown(timeout=-1)


def test_blocking_pool_default_cap_is_thread_pool_executors() -> None:
    import os
    import threading

    cap = min(32, (os.cpu_count() or 1) + 4)
    release = threading.Event()
    with rtpy.Runtime("current_thread") as rt:
        futs = [rt.run_blocking(release.wait, 10) for _ in range(cap + 8)]
        deadline = time.monotonic() + 10
        while rt.metrics().blocking_threads < cap and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        metrics = rt.metrics()
        assert metrics.blocking_threads == cap
        assert metrics.blocking_queue_depth == 8
        release.set()
        assert all(f.result(timeout=10) is True for f in futs)


def test_integers_out_of_range_are_value_errors() -> None:
    with pytest.raises(ValueError):
        rtpy.Runtime(workers=10**30)
    with rtpy.Runtime("current_thread") as rt:
        with pytest.raises(ValueError):
            rt.watch(10**30, rtpy.READABLE, print)
        with pytest.raises(ValueError):
            rt.run_budget(0.001, -(10**30))


def test_a_python_signal_handler_runs_while_run_blocks() -> None:
    """Not only SIGINT: any Python handler runs at once (the run goes on if
    it does not raise)."""
    p = run_child(
        """
        import os, signal, threading, time, rtpy
        rt = rtpy.Runtime("current_thread")
        got = []
        signal.signal(signal.SIGUSR1, lambda *a: (got.append(time.monotonic()), rt.stop()))
        rt.call_later(30, print)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        t0 = time.monotonic()
        rt.run()
        assert got and got[0] - t0 < 1.0, got
        assert signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL
        rt.shutdown()
        print("ok")
        """
    )
    assert p.returncode == 0 and p.stdout.split() == ["ok"], p.stderr


def test_exit_with_a_runtime_dropped_inside_its_own_callback() -> None:
    """Its last reference goes on a worker: it is dropped on a thread of its
    own, which interpreter exit waits for (its final calls call Python)."""
    p = run_child(
        """
        import time, rtpy
        def make():
            rt = rtpy.Runtime()
            box = [rt]
            rt.call_later(100, print, "never")
            for _ in range(10):
                rt.spawn(time.sleep, 0.01)
            rt.spawn(box.clear)
        make()
        print("ok")
        """
    )
    assert p.returncode == 0 and p.stdout.split() == ["ok"], p.stderr


def test_ctrl_c_inside_a_spawned_call_ends_the_run_and_completes_its_future() -> None:
    p = run_child(
        """
        import os, signal, threading, time, rtpy
        signal.signal(signal.SIGINT, signal.default_int_handler)
        rt = rtpy.Runtime("current_thread")
        def busy():
            t = time.monotonic()
            while time.monotonic() - t < 5:
                pass
        futs = [rt.spawn(busy) for _ in range(3)]
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            rt.run()
        except KeyboardInterrupt:
            assert time.monotonic() - t0 < 2
        else:
            raise AssertionError("run() returned")
        assert isinstance(futs[0].exception(0), KeyboardInterrupt)
        assert not futs[1].done()
        rt.shutdown()
        assert futs[1].cancelled() and futs[2].cancelled()
        print("ok")
        """
    )
    assert p.returncode == 0 and p.stdout.split() == ["ok"], p.stderr
