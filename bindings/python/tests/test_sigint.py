"""Ctrl-C (SIGINT) while blocked in rt.run() raises KeyboardInterrupt
promptly; the runtime stays usable. Each case runs in a child process."""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import rtpy

    how, mode, busy = sys.argv[1], sys.argv[2], sys.argv[3] == "busy"
    rt = rtpy.Runtime("current_thread")
    fired = []
    rt.call_later(3, fired.append, "late")  # keeps run("default") blocked for 3 s
    if busy:
        rt.call_every(0.005, lambda: None)  # Python callbacks keep running meanwhile
    DELAY = 0.3
    if how == "kill":
        threading.Timer(DELAY, os.kill, (os.getpid(), signal.SIGINT)).start()
    else:
        def on_alarm(signum, frame):
            raise KeyboardInterrupt
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, DELAY)
    t0 = time.monotonic()
    try:
        rt.run(mode)
    except KeyboardInterrupt:
        print("interrupted after %.3f" % (time.monotonic() - t0))
    else:
        print("run returned without KeyboardInterrupt after %.3f" % (time.monotonic() - t0))
        sys.exit(3)
    # Still usable: the armed timer was not lost, new work runs.
    out = []
    rt.spawn(out.append, 1)
    assert rt.run("nowait") >= 1, "nothing ran after the interrupt"
    assert out == [1]
    assert fired == []
    rt.shutdown(timeout=5)
    print("ok")
    """
)

CASES = [
    ("kill", "default", "idle"),
    ("kill", "once", "idle"),
    ("kill", "default", "busy"),
    ("setitimer", "default", "idle"),
]


@pytest.mark.parametrize("how,mode,busy", CASES)
def test_sigint_while_blocked_in_run(how, mode, busy):
    p = subprocess.run([sys.executable, "-c", CHILD, how, mode, busy], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    lines = p.stdout.split()
    assert "ok" in lines, p.stdout
    took = float(p.stdout.split("interrupted after ")[1].split()[0])
    # Signal sent at 0.3 s; "promptly" = well under a second after it.
    assert 0.25 <= took < 0.3 + 0.5, f"KeyboardInterrupt {took - 0.3:.3f}s after the signal"


def test_sigint_while_blocked_in_future_result_of_a_spawn():
    """A Ctrl-C on the main thread while a worker runs Python code does not
    crash the process or the worker."""
    code = textwrap.dedent(
        """
        import os, signal, threading, time, rtpy
        with rtpy.Runtime("multi_thread", workers=2) as rt:
            ev = threading.Event()
            fut = rt.spawn(lambda: (ev.wait(2), "done")[1])
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
            try:
                time.sleep(5)
            except KeyboardInterrupt:
                pass
            ev.set()
            assert fut.result(timeout=5) == "done"
            assert rt.spawn(lambda: 2).result(timeout=5) == 2
        print("ok")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr


def test_sigint_dispositions_are_respected_and_restored():
    """SIG_IGN ignores it; the default handler is back after an interrupted
    run; a Python handler that calls stop() ends the run; one that neither
    raises nor stops lets the run go on."""
    code = textwrap.dedent(
        """
        import os, signal, threading, time, rtpy
        rt = rtpy.Runtime("current_thread")
        def kill_soon():
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        t0 = time.monotonic()  # before the timer: it never fires early, so run() lasts >= 0.4 s from here
        rt.call_later(0.4, lambda: None)
        kill_soon()
        assert rt.run() == 1 and time.monotonic() - t0 >= 0.39, "SIG_IGN interrupted the run"
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN

        signal.signal(signal.SIGINT, signal.default_int_handler)
        t = rt.call_later(3, lambda: None)
        kill_soon()
        try:
            rt.run()
            raise SystemExit("not interrupted")
        except KeyboardInterrupt:
            pass
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        kill_soon()
        try:
            time.sleep(2)
            raise SystemExit("Python's own SIGINT handling not restored")
        except KeyboardInterrupt:
            pass

        hits = []
        def stopper(s, f):
            hits.append(s)
            rt.stop()
        signal.signal(signal.SIGINT, stopper)
        kill_soon()
        t0 = time.monotonic()
        rt.run()
        assert hits == [signal.SIGINT] and time.monotonic() - t0 < 1.5, "a handler's stop() did not end the run"

        t.cancel()
        hits.clear()
        signal.signal(signal.SIGINT, lambda s, f: hits.append(s))
        rt.call_later(0.4, lambda: None)
        kill_soon()
        t0 = time.monotonic()
        assert rt.run() == 1 and time.monotonic() - t0 >= 0.39, "a handler that did not raise ended the run"
        assert hits == [signal.SIGINT]
        rt.shutdown(timeout=5)
        print("ok")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout + p.stderr[-2000:]


def test_sigint_while_blocked_in_shutdown_waiting_for_a_stuck_callback():
    """Beyond rt.run(): leaving `with rtpy.Runtime()` while a callback is
    stuck blocks in shutdown(); Ctrl-C must still get the user out
    (KeyboardInterrupt promptly, as Task.join and run() do)."""
    code = textwrap.dedent(
        """
        import os, signal, threading, time, rtpy
        rt = rtpy.Runtime("multi_thread", workers=1)
        ev = threading.Event()
        started = threading.Event()
        rt.spawn(lambda: (started.set(), ev.wait(5)))
        started.wait(5)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            rt.shutdown()
            print("returned after %.3f" % (time.monotonic() - t0))
        except KeyboardInterrupt:
            print("interrupted after %.3f" % (time.monotonic() - t0))
        ev.set()
        rt.shutdown(timeout=10)
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "interrupted after" in p.stdout, f"no KeyboardInterrupt while shutdown() waited: {p.stdout.strip()}"
    took = float(p.stdout.split("interrupted after ")[1].split()[0])
    assert took < 0.2 + 0.5, f"KeyboardInterrupt {took - 0.2:.3f}s after the signal"
