"""Host-driven mode on a current-thread runtime: run modes, run_budget,
stop / wake, backend_fd / backend_timeout."""

import threading
import time

import pytest

import rtpy
from conftest import join_threads, readable, start_threads


def test_flavor_property(ct, mt):
    assert ct.flavor == "current_thread"
    assert mt.flavor == "multi_thread"


def test_run_budget_keeps_fifo_order_and_max_callbacks(ct):
    n = 10_000
    order = []
    for i in range(n):
        ct.spawn(order.append, i)
    runs = []
    while len(order) < n:
        before = len(order)
        ran = ct.run_budget(10.0, max_callbacks=1000)
        assert ran == len(order) - before, "return value is not the number of callbacks run"
        assert ran <= 1000, f"max_callbacks=1000 but {ran} ran"
        runs.append(ran)
        assert len(runs) < 100, "run_budget makes no progress"
    assert order == list(range(n))
    assert runs == [1000] * 10
    assert ct.run_budget(1.0) == 0


def test_run_budget_stops_at_its_time_budget(ct):
    spin = 0.0002  # 200 us of CPU per callback

    def work():
        end = time.perf_counter() + spin
        while time.perf_counter() < end:
            pass

    n = 2000  # 0.4 s of work in all
    for _ in range(n):
        ct.spawn(work)
    budget = 0.005
    rounds = 0
    done = 0
    over = []
    while done < n:
        c0, t0 = time.thread_time(), time.perf_counter()
        ran = ct.run_budget(budget)
        cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
        done += ran
        rounds += 1
        assert ran >= 1, "a run_budget call with ready work ran nothing"
        # Checked before each callback: overrun by at most one callback (and slack for a loaded machine).
        if cpu > budget + spin + 0.004:
            over.append((ran, cpu, wall))
        assert rounds < n + 1
    assert done == n
    assert rounds >= 0.4 / (budget + 0.01), f"only {rounds} rounds: the budget was not honoured"
    assert len(over) <= rounds // 10, f"{len(over)} of {rounds} rounds overran the budget: {over[:5]}"


def test_run_budget_never_blocks(ct):
    ct.call_later(5.0, lambda: None)  # work exists, but none is ready
    t0 = time.monotonic()
    assert ct.run_budget(2.0) == 0
    assert time.monotonic() - t0 < 0.5


def test_run_nowait_runs_only_what_is_ready_now(ct):
    out = []

    def first():
        out.append(1)
        ct.spawn(out.append, 2)  # scheduled by a callback: runs on the next call

    ct.spawn(first)
    assert ct.run("nowait") == 1
    assert out == [1]
    assert ct.run("nowait") == 1
    assert out == [1, 2]
    t0 = time.monotonic()
    assert ct.run("nowait") == 0
    assert time.monotonic() - t0 < 0.5


def test_run_default_runs_until_no_work_is_left(ct):
    out = []
    ct.spawn(out.append, "a")
    ct.call_later(0.02, out.append, "t1")
    ct.call_later(0.05, lambda: ct.spawn(out.append, "b"))
    t0 = time.monotonic()
    n = ct.run("default")
    assert time.monotonic() - t0 >= 0.05
    assert out == ["a", "t1", "b"]
    assert n == 4
    # Nothing left: returns at once.
    t0 = time.monotonic()
    assert ct.run() == 0
    assert time.monotonic() - t0 < 0.5


def test_run_once_blocks_until_a_callback_ran(ct):
    out = []
    ct.call_later(0.05, out.append, 1)
    t0 = time.monotonic()
    assert ct.run("once") == 1
    assert time.monotonic() - t0 >= 0.05 - 1e-6
    assert out == [1]


def test_run_once_woken_by_a_spawn_from_another_thread(ct):
    out = []
    th = threading.Timer(0.05, lambda: ct.spawn(out.append, "remote"))
    th.start()
    t0 = time.monotonic()
    n = ct.run("once")
    took = time.monotonic() - t0
    th.join()
    assert out == ["remote"] and n == 1
    assert took < 2.0


def test_wake_ends_a_blocking_run_once(ct):
    th = threading.Timer(0.05, ct.wake)
    th.start()
    t0 = time.monotonic()
    assert ct.run("once") == 0
    took = time.monotonic() - t0
    th.join()
    assert 0.04 <= took < 2.0


def test_stop_from_inside_a_callback_ends_run_default(ct):
    calls = []

    def tick():
        calls.append(1)
        if len(calls) == 5:
            ct.stop()

    t = ct.call_every(0.002, tick)
    n = ct.run("default")  # would run forever: the repeat keeps work alive
    assert len(calls) == 5 and n == 5
    t.cancel()


def test_stop_from_another_thread_ends_run_default(ct):
    t = ct.call_every(0.01, lambda: None)
    th = threading.Timer(0.1, ct.stop)
    th.start()
    t0 = time.monotonic()
    ct.run("default")
    took = time.monotonic() - t0
    th.join()
    t.cancel()
    assert 0.09 <= took < 2.0


def test_pending_stop_makes_the_next_run_return_at_once(ct):
    ct.stop()
    ct.stop()  # repeated stops count once
    ct.spawn(lambda: None)
    assert ct.run("default") == 0
    assert ct.run("default") == 1


def test_bad_run_mode(ct):
    for mode in ("forever", "", "ONCE"):
        with pytest.raises(ValueError):
            ct.run(mode)


def test_run_budget_bad_arguments(ct):
    with pytest.raises(ValueError):
        ct.run_budget(-1.0)
    with pytest.raises(ValueError):
        ct.run_budget(float("nan"))
    with pytest.raises((ValueError, OverflowError)):
        ct.run_budget(0.01, max_callbacks=-1)


def test_host_calls_on_a_multi_thread_runtime_are_value_errors(mt):
    for call in (lambda: mt.run(), lambda: mt.run("nowait"), lambda: mt.run_budget(0.01), mt.stop, mt.backend_fd,
                 mt.backend_timeout, mt.wake):
        with pytest.raises(ValueError):
            call()


def test_run_from_inside_a_callback_is_a_deadlock_error(ct):
    errs = []

    def nested():
        for call in (lambda: ct.run("nowait"), lambda: ct.run_budget(0.001)):
            try:
                call()
            except rtpy.DeadlockError as e:
                errs.append(e)

    ct.spawn(nested)
    ct.run("nowait")
    assert len(errs) == 2
    assert issubclass(rtpy.DeadlockError, RuntimeError)


def test_backend_timeout(ct):
    assert ct.backend_timeout() is None  # nothing armed
    t = ct.call_later(0.2, lambda: None)
    bt = ct.backend_timeout()
    assert isinstance(bt, float)
    assert 0.18 <= bt <= 0.21
    ct.spawn(lambda: None)
    assert ct.backend_timeout() == 0
    ct.run("nowait")
    t.cancel()


def test_backend_fd_with_select_wakes_for_a_timer_and_only_then(ct):
    fd = ct.backend_fd()
    assert isinstance(fd, int) and fd >= 0
    assert ct.backend_fd() == fd
    assert not readable(fd), "backend fd of a fresh runtime readable"
    out = []
    t0 = time.monotonic()
    ct.call_later(0.05, lambda: out.append(time.monotonic()))
    # Arming may leave a stale wake; a run that leaves nothing to do clears it.
    assert ct.run("nowait") == 0
    assert not readable(fd), "backend fd readable with nothing to run"
    timeout = ct.backend_timeout()
    assert timeout is not None
    woke = readable(fd, timeout + 1.0)
    assert woke
    assert time.monotonic() - t0 >= 0.05 - 0.001, "backend fd readable well before the deadline"
    n = ct.run("nowait")
    if n == 0:  # a stale wake is allowed once; the timer must then be due at the next readiness
        assert readable(fd, 1.0)
        n = ct.run("nowait")
    assert n == 1 and len(out) == 1
    assert out[0] >= t0 + 0.05
    # The run consumed all work: the fd is no longer readable.
    assert not readable(fd), "backend fd still readable after a run that left nothing to do"
    assert ct.backend_timeout() is None


def test_backend_fd_readable_for_a_remote_spawn_and_wake(ct):
    fd = ct.backend_fd()
    assert not readable(fd)
    th = threading.Thread(target=lambda: ct.spawn(lambda: None))
    th.start()
    th.join()
    assert readable(fd, 2.0)
    assert ct.run("nowait") == 1
    assert not readable(fd)
    ct.wake()
    assert readable(fd, 2.0)
    ct.run("nowait")
    assert not readable(fd)


def test_backend_fd_readable_for_work_left_by_run_budget(ct):
    fd = ct.backend_fd()
    for _ in range(10):
        ct.spawn(lambda: None)
    assert ct.run_budget(1.0, max_callbacks=3) == 3
    assert readable(fd, 1.0)
    assert ct.run_budget(1.0) == 7
    assert not readable(fd)


def test_game_style_loop_with_select(ct):
    """A host loop: select on backend_fd with backend_timeout, then run nowait."""
    fd = ct.backend_fd()
    hits = []
    ct.call_every(0.01, lambda: hits.append(time.monotonic()))
    deadline = time.monotonic() + 0.3
    wakes = 0
    while time.monotonic() < deadline:
        to = ct.backend_timeout()
        readable(fd, 0.05 if to is None else min(to, 0.05))
        ct.run("nowait")
        wakes += 1
    assert 20 <= len(hits) <= 31
    assert wakes < 200, f"{wakes} wakes for ~30 timer deadlines: the host is busy-looping"


def test_remote_spawns_into_a_running_host_each_once_in_per_producer_order(ct):
    """4 threads spawn into a current-thread runtime while its host runs it:
    each call runs exactly once, on the host thread, in FIFO order per producer."""
    per = 5000
    out = []
    where = set()
    go = threading.Barrier(5)

    def record(item):
        where.add(threading.get_ident())
        out.append(item)

    def producer(k):
        go.wait()
        for i in range(per):
            ct.spawn(record, (k, i))

    ths = start_threads(4, producer, indexed=True)
    go.wait()
    deadline = time.monotonic() + 30
    while len(out) < 4 * per and time.monotonic() < deadline:
        if ct.run_budget(0.005) == 0:
            readable(ct.backend_fd(), 0.01)
    join_threads(ths)
    ct.run("nowait")
    assert len(out) == 4 * per
    assert where == {threading.get_ident()}
    for k in range(4):
        assert [i for kk, i in out if kk == k] == list(range(per)), f"producer {k} out of order"


def test_host_may_be_any_thread_and_every_callback_runs_on_it(ct):
    import socket

    a, b = socket.socketpair()
    b.setblocking(False)
    seen = {}

    def note(kind):
        seen.setdefault(kind, set()).add(threading.get_ident())

    def host():
        ct.spawn(note, "spawn")
        ct.call_later(0.01, note, "timer")

        def on_read(ev):
            note("watch")
            b.recv(10)
            w.close()

        w = ct.watch(b, rtpy.READABLE, on_read)
        a.send(b"x")
        seen["host"] = threading.get_ident()
        seen["ran"] = ct.run("default")

    th = threading.Thread(target=host)
    th.start()
    th.join(10)
    a.close()
    b.close()
    assert not th.is_alive()
    assert seen["ran"] == 3
    for kind in ("spawn", "timer", "watch"):
        assert seen[kind] == {seen["host"]}, kind


def test_backend_timeout_is_zero_for_a_due_timer_not_yet_run(ct):
    ct.call_later(0.01, lambda: None)
    ct.run("nowait")
    time.sleep(0.03)
    assert ct.backend_timeout() == 0
    assert readable(ct.backend_fd())
    assert ct.run("nowait") == 1
    assert ct.backend_timeout() is None
