"""Regression tests of the binding review (branch review-rtpy): each failed
before its fix."""

import gc
import weakref

import pytest

import rtpy
from conftest import run_child


def test_forked_child_refuses_work_on_the_parents_runtime() -> None:
    """After os.fork() the parent's runtime has no thread in the child: work
    handed to it there would never run (futures never completed, timers
    never fired). It refuses it with ShutdownError, and says it is shut
    down."""
    p = run_child(
        """
        import os, socket, sys, rtpy
        rt = rtpy.Runtime("multi_thread", workers=1)
        host = rtpy.Runtime("current_thread")
        pid = os.fork()
        if pid == 0:
            import signal
            signal.alarm(20)
            a, b = socket.socketpair()
            refused = []
            for name, call in [
                ("spawn", lambda: rt.spawn(print)),
                ("run_blocking", lambda: rt.run_blocking(print)),
                ("call_later", lambda: rt.call_later(0, print)),
                ("call_every", lambda: rt.call_every(1, print)),
                ("watch", lambda: rt.watch(a, rtpy.READABLE, print)),
                ("add_reader", lambda: rt.add_reader(a, print)),
                ("queue", lambda: rt.queue()),
                ("host spawn", lambda: host.spawn(print)),
                ("host run", lambda: host.run("nowait")),
                ("host run_budget", lambda: host.run_budget(0.01)),
            ]:
                try:
                    call()
                except rtpy.ShutdownError:
                    refused.append(name)
            print("refused:", len(refused), refused)
            print("is_shutdown:", rt.is_shutdown, host.is_shutdown)
            rt.shutdown()  # a no-op in the child
            os._exit(0 if len(refused) == 10 and rt.is_shutdown and host.is_shutdown else 3)
        _, st = os.waitpid(pid, 0)
        assert rt.spawn(lambda: 7).result(timeout=10) == 7, "the parent's runtime works on"
        rt.shutdown(timeout=10)
        host.shutdown(timeout=10)
        sys.exit(os.waitstatus_to_exitcode(st))
        """
    )
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]


def test_interpreter_exit_waits_for_calls_a_timed_out_shutdown_left_running() -> None:
    """A shutdown that timed out leaves Python calls running; interpreter
    exit waits for them (as it does for a later shutdown()) rather than
    finalizing under them, which cut them off mid-call."""
    p = run_child(
        """
        import sys, threading, time, rtpy
        rt = rtpy.Runtime("multi_thread", workers=1)
        started = threading.Event()
        def slow():
            started.set()
            time.sleep(0.5)
            sys.stdout.write("slow call finished\\n")
            sys.stdout.flush()
        rt.spawn(slow)
        assert started.wait(10)
        try:
            rt.shutdown(timeout=0.01)
            print("no timeout")
        except TimeoutError:
            print("timed out")
        """
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "timed out" in p.stdout
    assert "slow call finished" in p.stdout, p.stdout


def test_a_runtime_made_after_exit_began_refuses_rather_than_hangs() -> None:
    """rtpy's atexit hook shuts every runtime down and stops calling Python
    from runtime threads. A runtime made after it (in an atexit handler
    registered before `import rtpy`) could never run a Python call: its
    futures would never complete. Creating it raises ShutdownError."""
    p = run_child(
        """
        import atexit
        def late():
            import rtpy
            try:
                rt = rtpy.Runtime("multi_thread", workers=1)
            except rtpy.ShutdownError:
                print("refused")
                return
            try:
                print("result", rt.spawn(lambda: 1).result(timeout=2))
            except Exception as e:
                print("lost", repr(e))
        atexit.register(late)
        import rtpy
        """
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "refused" in p.stdout, p.stdout


def test_exception_handler_cycle_through_the_runtime_is_collected() -> None:
    """A handler that refers back to its runtime (a bound method of an object
    holding it) makes a cycle through the native Runtime: the garbage
    collector must see it (the runtime is then shut down and freed)."""

    class Service:
        def __init__(self) -> None:
            self.rt = rtpy.Runtime("current_thread")
            self.rt.exception_handler = self.on_error

        def on_error(self, exc: BaseException, context: dict) -> None:
            pass

    s = Service()
    ref = weakref.ref(s.rt)
    del s
    gc.collect()
    assert ref() is None, "the runtime stayed alive in an uncollectable cycle"

    # While a timer of the runtime lives, the handler is in use: not garbage.
    s = Service()
    timer = s.rt.call_every(60, print)
    service = weakref.ref(s)
    del s
    gc.collect()
    assert service() is not None, "the handler of a runtime still in use was collected"
    timer.cancel()
    del timer
    gc.collect()
    assert service() is None


class _HugeFileno:
    def fileno(self) -> int:
        return 2**70


@pytest.mark.parametrize(
    "call",
    [
        lambda rt: rt.call_later(10**400, print),
        lambda rt: rt.call_every(-(10**400), print),
        lambda rt: rt.run_budget(10**400),
        lambda rt: rt.shutdown(timeout=10**400),
        lambda rt: rt.watch(_HugeFileno(), rtpy.READABLE, print),
    ],
)
def test_numbers_out_of_range_are_value_errors(call) -> None:  # type: ignore[no-untyped-def]
    """As the integer arguments: an out-of-range number is a ValueError, not
    an OverflowError from the conversion."""
    with rtpy.Runtime("current_thread") as rt:
        with pytest.raises(ValueError):
            call(rt)


def test_ctrl_c_inside_a_callback_of_run_budget_comes_out_of_it() -> None:
    """A game loop runs the runtime a slice per frame: a Ctrl-C landing
    inside one of its callbacks (where the time goes) must end the frame's
    run_budget with KeyboardInterrupt, not be reported and forgotten."""
    p = run_child(
        """
        import os, signal, threading, time, rtpy
        signal.signal(signal.SIGINT, signal.default_int_handler)
        rt = rtpy.Runtime("current_thread")
        def busy():
            t = time.monotonic()
            while time.monotonic() - t < 1:
                pass
        for _ in range(4):
            rt.call_later(0, busy)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 10:
                rt.run_budget(0.05)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", rt.exceptions_count)
        rt.shutdown()
        """
    )
    assert p.stdout.split() == ["interrupted", "0"], p.stdout + p.stderr[-2000:]


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_base_exceptions_of_drained_calls_come_out_of_drain(exc: type) -> None:
    """sys.exit() (or a KeyboardInterrupt) in a call the host drains ends the
    drain and is raised out of it; the calls after it stay queued."""
    with rtpy.Runtime("current_thread") as rt:
        q = rt.queue()
        ran: list = []

        def stop() -> None:
            raise exc(3)

        q.post(ran.append, 1)
        q.post(stop)
        q.post(ran.append, 2)
        with pytest.raises(exc):
            q.drain()
        assert ran == [1] and len(q) == 1
        assert rt.exceptions_count == 0
        assert q.drain() == 1 and ran == [1, 2]
        q.close()


@pytest.mark.parametrize("mode", ["nowait", "default"])
def test_system_exit_in_a_callback_of_run_comes_out_of_it(mode: str) -> None:
    """As asyncio's run_forever: sys.exit() in a callback the host's run
    calls ends the run with SystemExit (a spawned call's future gets it
    too); the callbacks after it are left for a later run."""
    with rtpy.Runtime("current_thread") as rt:
        ran: list = []

        def stop() -> None:
            raise SystemExit(5)

        fut = rt.spawn(stop)
        later = rt.spawn(ran.append, 1)
        with pytest.raises(SystemExit):
            rt.run(mode)  # type: ignore[arg-type]
        assert isinstance(fut.exception(0), SystemExit)
        assert not later.done() and ran == []
        assert rt.run("nowait") == 1
        assert later.done() and ran == [1]


def test_watch_close_in_a_forked_child_leaves_the_parents_watch_alone() -> None:
    """The child shares the parent's epoll set: a Watch.close() there (a
    `with` block unwinding, a cleanup) removed the parent's registration,
    and the parent's watch went deaf."""
    p = run_child(
        """
        import os, socket, sys, threading, rtpy
        rt = rtpy.Runtime("multi_thread", workers=1)
        a, b = socket.socketpair()
        a.setblocking(False)
        got = threading.Event()
        def on_read(events):
            a.recv(100)
            got.set()
        w = rt.watch(a, rtpy.READABLE, on_read)
        pid = os.fork()
        if pid == 0:
            w.close()
            os._exit(0 if not w.active else 3)
        _, st = os.waitpid(pid, 0)
        b.send(b"x")
        ok = got.wait(5)
        print("child", os.waitstatus_to_exitcode(st), "parent's watch fired", ok)
        w.close()
        rt.shutdown(timeout=10)
        """
    )
    assert p.stdout.split() == ["child", "0", "parent's", "watch", "fired", "True"], p.stdout + p.stderr[-2000:]


def test_future_result_refuses_to_wait_for_itself_inside_a_host_run() -> None:
    """Inside a callback of run() / run_budget() of a current-thread runtime,
    waiting for a call spawned on that runtime could never end (only this
    thread runs it): DeadlockError at once, as Task.join. Blocking work, a
    finished call and a zero timeout are fine."""
    with rtpy.Runtime("current_thread") as rt:
        seen: list = []

        def callback() -> None:
            fut = rt.spawn(lambda: 1)
            for wait in (lambda: fut.result(timeout=2), lambda: fut.exception(timeout=2), fut.result):
                try:
                    wait()
                    seen.append("returned")
                except rtpy.DeadlockError:
                    seen.append("deadlock")
                except TimeoutError:
                    seen.append("timeout")
            try:
                fut.result(timeout=0)
            except TimeoutError:
                seen.append("timeout 0")
            seen.append(rt.run_blocking(lambda: 2).result(timeout=10))

        rt.spawn(callback)
        rt.run_budget(30)
        assert seen == ["deadlock", "deadlock", "deadlock", "timeout 0", 2]
        done = rt.spawn(lambda: 3)
        rt.run("nowait")
        rt.spawn(lambda: seen.append(done.result()))
        rt.run("nowait")
        assert seen[-1] == 3

    with rtpy.Runtime("multi_thread", workers=2) as mt:
        # A worker may wait for another worker's call.
        assert mt.spawn(lambda: mt.spawn(lambda: 4).result(timeout=10)).result(timeout=10) == 4


def test_exit_of_a_forked_child_of_a_busy_runtime_is_prompt() -> None:
    """Interpreter exit waits for the uses of Python under way on runtime
    threads (gil.rs); a forked child has none of those threads, so its exit
    must not wait for the parent's."""
    p = run_child(
        """
        import os, sys, time, rtpy
        rt = rtpy.Runtime("multi_thread", workers=4)
        for _ in range(8):
            rt.call_every(0.001, lambda: sum(range(2000)))
        time.sleep(0.2)
        worst = 0.0
        for _ in range(5):
            t0 = time.monotonic()
            pid = os.fork()
            if pid == 0:
                sys.exit(0)
            os.waitpid(pid, 0)
            worst = max(worst, time.monotonic() - t0)
        rt.shutdown(timeout=10)
        print("worst %.3f" % worst)
        """
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert float(p.stdout.split()[1]) < 1.5, p.stdout
