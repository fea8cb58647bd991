"""Smoke test of the rtpy build: the package imports, a runtime runs a call
and shuts down. The thorough tests are the other files of this directory."""

import concurrent.futures

import pytest

import rtpy


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
