"""rt.queue(): posts from any thread, drained on the host's thread, fileno
readable exactly while non-empty."""

import select
import threading
import time

import pytest

import rtpy
from conftest import collect_until_dead, join_threads, readable, start_threads, wait_until


def test_post_and_drain(mt):
    q = mt.queue()
    assert isinstance(q, rtpy.Queue)
    out = []
    q.post(out.append, 1)
    q.post(lambda a, b: out.append(a + b), 2, 3)
    assert len(q) == 2
    assert out == []  # nothing runs until drained
    assert q.drain() == 2
    assert out == [1, 5]
    assert len(q) == 0
    assert q.drain() == 0
    q.close()


def test_four_producers_keep_per_producer_order(mt):
    q = mt.queue()
    per = 5000
    out = []
    start = threading.Barrier(5)

    def producer(t):
        start.wait()
        for i in range(per):
            q.post(out.append, (t, i))

    ths = start_threads(4, producer, indexed=True)
    start.wait()
    deadline = time.monotonic() + 20
    while len(out) < 4 * per and time.monotonic() < deadline:
        if readable(q.fileno(), 0.01):
            q.drain()
    join_threads(ths)
    q.drain()
    assert len(out) == 4 * per
    for t in range(4):
        assert [i for (tt, i) in out if tt == t] == list(range(per)), f"producer {t} out of order"
    q.close()


def test_posts_from_runtime_callbacks_reach_the_host(mt):
    q = mt.queue()
    out = []
    futs = [mt.spawn(lambda i=i: q.post(out.append, i)) for i in range(200)]
    for f in futs:
        f.result(timeout=5)
    assert len(q) == 200
    assert q.drain() == 200
    assert sorted(out) == list(range(200))
    q.close()


def test_fileno_readable_exactly_while_non_empty(mt):
    q = mt.queue()
    fd = q.fileno()
    assert isinstance(fd, int) and fd >= 0
    assert not readable(fd)
    q.post(lambda: None)
    assert readable(fd)
    q.post(lambda: None)
    assert q.drain(max=1) == 1
    assert readable(fd), "not readable with one entry left"
    assert q.drain() == 1
    assert not readable(fd), "readable with the queue empty"
    # From another thread too.
    th = threading.Thread(target=q.post, args=(lambda: None,))
    th.start()
    th.join()
    assert readable(fd, 1.0)
    q.drain()
    assert not readable(fd)
    q.close()


def test_drain_max_and_posts_made_while_draining(mt):
    q = mt.queue()
    out = []

    def repost(i):
        out.append(i)
        q.post(out.append, 100 + i)  # runs on a later drain

    for i in range(5):
        q.post(repost, i)
    assert q.drain(max=2) == 2
    assert out == [0, 1]
    # The ones queued when it started (2, 3, 4, 100, 101), not the 102..104 they post.
    assert q.drain() == 5
    assert out == [0, 1, 2, 3, 4, 100, 101]
    assert len(q) == 3
    assert q.drain() == 3
    assert out[7:] == [102, 103, 104]
    q.close()


def test_drain_runs_on_the_calling_thread(mt):
    q = mt.queue()
    where = []
    mt.spawn(lambda: q.post(lambda: where.append(threading.get_ident()))).result(timeout=5)
    q.drain()
    assert where == [threading.get_ident()]
    q.close()


def test_a_raising_entry_does_not_stop_the_drain(mt):
    q = mt.queue()
    seen = []
    mt.exception_handler = lambda exc, ctx: seen.append(exc)
    out = []
    q.post(out.append, 1)
    q.post(lambda: 1 / 0)
    q.post(out.append, 3)
    n = q.drain()
    assert out == [1, 3]
    assert n == 3
    assert len(seen) == 1 and isinstance(seen[0], ZeroDivisionError)
    q.close()


def test_close_cancels_remaining_entries_and_releases_them(mt):
    q = mt.queue()

    class Arg:
        pass

    import weakref

    calls = []
    arg = Arg()
    ref = weakref.ref(arg)
    q.post(calls.append, arg)
    del arg
    q.close()
    assert calls == [], "a closed queue's entry was run"
    assert collect_until_dead(ref), "a cancelled queue entry's argument leaked"


def test_post_non_callable_is_type_error(mt):
    q = mt.queue()
    with pytest.raises(TypeError):
        q.post(5)
    assert len(q) == 0
    q.close()


def test_drain_bad_max(mt):
    q = mt.queue()
    with pytest.raises((ValueError, OverflowError)):
        q.drain(max=-1)
    q.close()


def test_queue_on_a_current_thread_runtime(ct):
    q = ct.queue()
    out = []
    ct.spawn(lambda: q.post(out.append, "x"))
    ct.run("nowait")
    assert q.drain() == 1 and out == ["x"]
    q.close()


def test_queue_fd_and_backend_fd_in_one_select(ct):
    """The game-loop pattern: a worker thread posts results while the host
    waits on both fds."""
    q = ct.queue()
    got = []

    def worker():
        for i in range(20):
            time.sleep(0.002)
            q.post(got.append, i)

    th = threading.Thread(target=worker)
    th.start()
    fds = [ct.backend_fd(), q.fileno()]
    deadline = time.monotonic() + 10
    while len(got) < 20 and time.monotonic() < deadline:
        select.select(fds, [], [], 0.1)
        ct.run("nowait")
        q.drain()
    th.join()
    assert got == list(range(20))
    q.close()


def test_drain_from_inside_a_drained_callback(mt):
    q = mt.queue()
    out = []

    def reenter():
        out.append("outer")
        q.post(out.append, "posted inside")
        out.append(("inner drain", q.drain()))

    q.post(reenter)
    q.post(out.append, "second")
    assert q.drain(max=1) == 1
    q.drain()
    assert out[0] == "outer"
    assert "second" in out and "posted inside" in out
    q.close()


def test_fileno_state_after_concurrent_posts_and_drains(mt):
    """2 posters and 2 drainers at once: every entry runs exactly once, and at
    the end the fd is unreadable exactly when the queue is empty."""
    q = mt.queue()
    ran = []
    per = 5000
    stop = threading.Event()

    def poster(k):
        for i in range(per):
            q.post(ran.append, (k, i))

    def drainer():
        while not stop.is_set():
            if readable(q.fileno(), 0.005):
                q.drain(max=50)

    ps = [threading.Thread(target=poster, args=(k,)) for k in range(2)]
    ds = [threading.Thread(target=drainer) for _ in range(2)]
    for t in ps + ds:
        t.start()
    for t in ps:
        t.join(20)
    assert wait_until(lambda: len(q) == 0, 10)
    stop.set()
    for t in ds:
        t.join(10)
    assert sorted(ran) == sorted((k, i) for k in range(2) for i in range(per))
    assert not readable(q.fileno()), "fd readable with the queue empty"
    q.post(lambda: None)
    assert readable(q.fileno())
    q.drain()
    assert not readable(q.fileno())
    q.close()
