"""rt.watch on socketpairs: level-triggered readiness, HUP, modify, the close
guarantee, EEXIST / closed fds."""

import errno
import os
import socket
import threading
import time

import pytest

import rtpy
from conftest import drive, wait_until


def test_constants():
    assert (rtpy.READABLE, rtpy.WRITABLE, rtpy.HUP, rtpy.ERROR) == (1, 2, 4, 8)


def test_level_triggered_partial_reads_are_called_again(any_rt, pair):
    a, b = pair
    got = bytearray()
    calls = []

    def on_ready(events):
        calls.append(events)
        try:
            got.extend(b.recv(1))  # one byte per call: the rest must bring another call
        except BlockingIOError:
            pass

    w = any_rt.watch(b, rtpy.READABLE, on_ready)
    payload = bytes(range(50))
    a.sendall(payload)
    assert drive(any_rt, lambda: len(got) == len(payload), timeout=5)
    assert bytes(got) == payload
    assert all(ev & rtpy.READABLE for ev in calls)
    assert not any(ev & rtpy.WRITABLE for ev in calls), "WRITABLE reported to a READABLE-only watch"
    w.close()


def test_no_call_without_readiness(any_rt, pair):
    a, b = pair
    calls = []
    w = any_rt.watch(b, rtpy.READABLE, calls.append)
    drive(any_rt, lambda: False, timeout=0.1)
    assert calls == []
    a.send(b"x")
    assert drive(any_rt, lambda: calls, timeout=5)
    w.close()


def test_watch_accepts_fd_numbers_and_file_objects(mt, pair):
    a, b = pair
    w1 = mt.watch(b, rtpy.READABLE, lambda ev: None)
    assert isinstance(w1, rtpy.Watch)
    assert w1.fd == b.fileno()
    assert w1.events == rtpy.READABLE
    w1.close()
    w2 = mt.watch(b.fileno(), rtpy.READABLE | rtpy.WRITABLE, lambda ev: None)
    assert w2.fd == b.fileno()
    assert w2.events == rtpy.READABLE | rtpy.WRITABLE
    w2.close()


def test_hup_when_the_peer_closes(any_rt, pair):
    a, b = pair
    events = []
    eof = []

    def on_ready(ev):
        events.append(ev)
        data = b.recv(100)
        if data == b"":
            eof.append(ev)
            w.close()

    w = any_rt.watch(b, rtpy.READABLE, on_ready)
    a.close()
    assert drive(any_rt, lambda: eof, timeout=5)
    assert eof[0] & rtpy.HUP, f"peer close reported as {eof[0]:#x}, no HUP bit"
    n = len(events)
    drive(any_rt, lambda: False, timeout=0.05)
    assert len(events) == n, "called after closing itself"


def test_modify_changes_interest(any_rt, pair):
    a, b = pair
    events = []
    w = any_rt.watch(b, rtpy.READABLE, events.append)
    drive(any_rt, lambda: False, timeout=0.05)
    assert events == []  # nothing to read
    w.modify(rtpy.WRITABLE)
    assert w.events == rtpy.WRITABLE
    assert drive(any_rt, lambda: events, timeout=5)
    assert events[0] & rtpy.WRITABLE
    assert not events[0] & rtpy.READABLE
    w.modify(rtpy.READABLE)
    assert w.events == rtpy.READABLE
    drive(any_rt, lambda: False, timeout=0.05)  # let a call in flight finish
    events.clear()
    drive(any_rt, lambda: False, timeout=0.05)
    assert events == [], "still called for WRITABLE after modify(READABLE)"
    a.send(b"z")
    assert drive(any_rt, lambda: events, timeout=5)
    assert events[0] & rtpy.READABLE
    w.close()


def test_close_guarantee_from_another_thread(mt):
    """After close() returns the callback is not running and never runs again
    (data is left unread: a level-triggered watch keeps firing)."""
    for _ in range(10):
        a, b = socket.socketpair()
        b.setblocking(False)
        try:
            a.send(b"never read")
            inside = [0]
            calls = [0]
            running = threading.Event()

            def cb(ev):
                inside[0] += 1
                calls[0] += 1
                running.set()
                time.sleep(0.002)
                inside[0] -= 1

            w = mt.watch(b, rtpy.READABLE, cb)
            assert running.wait(5)
            w.close()
            assert inside[0] == 0, "callback still running after close() returned"
            n = calls[0]
            time.sleep(0.02)
            assert calls[0] == n, "called after close() returned"
        finally:
            a.close()
            b.close()


def test_close_from_inside_the_callback_returns_at_once(any_rt, pair):
    a, b = pair
    a.send(b"data")
    calls = []
    took = []
    box = {}

    def cb(ev):
        calls.append(ev)
        t0 = time.monotonic()
        box["w"].close()
        took.append(time.monotonic() - t0)

    box["w"] = any_rt.watch(b, rtpy.READABLE, cb)
    assert drive(any_rt, lambda: took, timeout=5)
    drive(any_rt, lambda: False, timeout=0.05)
    assert len(calls) == 1
    assert took[0] < 0.5


def test_close_twice_is_harmless(mt, pair):
    a, b = pair
    w = mt.watch(b, rtpy.READABLE, lambda ev: None)
    w.close()
    w.close()  # a second close does nothing (or says so), never crashes


def test_second_watch_of_one_fd_is_eexist(mt, pair):
    a, b = pair
    w = mt.watch(b, rtpy.READABLE, lambda ev: None)
    with pytest.raises(OSError) as ei:
        mt.watch(b, rtpy.WRITABLE, lambda ev: None)
    assert ei.value.errno == errno.EEXIST
    w.close()
    # Free again once closed.
    mt.watch(b, rtpy.WRITABLE, lambda ev: None).close()


def test_closed_fd_is_an_oserror(mt):
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(OSError):
        os.fstat(fd)  # really closed (nothing reused it)
    with pytest.raises(OSError) as ei:
        mt.watch(fd, rtpy.READABLE, lambda ev: None)
    assert ei.value.errno == errno.EBADF


def test_file_object_already_closed(mt):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.close()  # fileno() is now -1
    with pytest.raises((OSError, ValueError)):
        mt.watch(s, rtpy.READABLE, lambda ev: None)


def test_bad_events_are_value_errors(mt, pair):
    a, b = pair
    for ev in (0, rtpy.HUP, rtpy.ERROR, rtpy.HUP | rtpy.ERROR, 1 << 5, 0xFFFF):
        with pytest.raises(ValueError):
            mt.watch(b, ev, lambda e: None)
    w = mt.watch(b, rtpy.READABLE, lambda e: None)
    for ev in (0, 1 << 5):
        with pytest.raises(ValueError):
            w.modify(ev)
    assert w.events == rtpy.READABLE
    w.close()


def test_non_callable_and_non_fd(mt, pair):
    a, b = pair
    with pytest.raises(TypeError):
        mt.watch(b, rtpy.READABLE, "not callable")
    with pytest.raises(TypeError):
        mt.watch("not an fd", rtpy.READABLE, lambda e: None)
    # The failed calls left no registration behind.
    mt.watch(b, rtpy.READABLE, lambda e: None).close()


def test_modify_and_close_after_close(mt, pair):
    a, b = pair
    w = mt.watch(b, rtpy.READABLE, lambda e: None)
    w.close()
    with pytest.raises((OSError, ValueError, RuntimeError)):
        w.modify(rtpy.WRITABLE)


def test_add_reader_and_add_writer(mt, pair):
    a, b = pair
    got = []
    wr = mt.add_reader(b, lambda tag: got.append(tag), "r")
    assert isinstance(wr, rtpy.Watch) and wr.events == rtpy.READABLE
    a.send(b"1")
    assert wait_until(lambda: got, 5)
    wr.close()
    assert got[0] == "r"
    b.recv(10)
    gotw = []
    ww = mt.add_writer(a, lambda tag: gotw.append(tag), "w")
    assert ww.events == rtpy.WRITABLE
    assert wait_until(lambda: gotw, 5)
    ww.close()
    assert gotw[0] == "w"


def test_watch_many_socketpairs(mt):
    pairs = [socket.socketpair() for _ in range(100)]
    base = mt.metrics().io_registrations
    try:
        seen = set()
        lock = threading.Lock()
        watches = []
        for i, (x, y) in enumerate(pairs):
            y.setblocking(False)

            def cb(ev, i=i, y=y):
                try:
                    y.recv(10)
                except BlockingIOError:
                    return
                with lock:
                    seen.add(i)

            watches.append(mt.watch(y, rtpy.READABLE, cb))
        for x, _ in pairs:
            x.send(b"!")
        assert wait_until(lambda: len(seen) == 100, 5)
        for w in watches:
            w.close()
        assert mt.metrics().io_registrations == base
    finally:
        for x, y in pairs:
            x.close()
            y.close()


def test_watch_counts_in_metrics(mt, pair):
    a, b = pair
    before = mt.metrics().io_registrations
    w = mt.watch(b, rtpy.READABLE, lambda e: None)
    assert mt.metrics().io_registrations == before + 1
    w.close()
    assert mt.metrics().io_registrations == before


def test_modify_from_inside_the_callback(any_rt, pair):
    a, b = pair
    a.send(b"r")
    events = []
    box = {}

    def cb(ev):
        events.append(ev)
        if len(events) == 1:
            b.recv(10)
            box["w"].modify(rtpy.WRITABLE)
        elif ev & rtpy.WRITABLE:
            box["w"].close()

    box["w"] = any_rt.watch(b, rtpy.READABLE, cb)
    assert drive(any_rt, lambda: len(events) >= 2, timeout=5)
    assert events[0] & rtpy.READABLE and not events[0] & rtpy.WRITABLE
    assert events[1] & rtpy.WRITABLE and not events[1] & rtpy.READABLE
    drive(any_rt, lambda: False, timeout=0.03)
    assert len(events) == 2


def test_fd_number_reused_after_a_close_without_watch_close(mt):
    """The contract is broken (fd closed while watched), but the effects are
    bounded: the number, reused by a new socket, can be watched again, and
    the old watch's close() does not touch the new one."""
    a, b = socket.socketpair()
    old_calls = []
    w_old = mt.watch(b, rtpy.READABLE, old_calls.append)
    num = b.fileno()
    b.close()
    a.close()
    x, y = socket.socketpair()
    try:
        # Make sure the number is reused by one of the new sockets.
        target = x if x.fileno() == num else y if y.fileno() == num else None
        if target is None:
            pytest.skip("the fd number was not reused")
        peer = y if target is x else x
        new_calls = []
        w_new = mt.watch(target, rtpy.READABLE, new_calls.append)
        w_old.close()  # must not deregister the new watch
        peer.send(b"z")
        assert wait_until(lambda: new_calls, 5), "the new watch of a reused fd number is dead"
        assert old_calls == [] or all(isinstance(e, int) for e in old_calls)
        w_new.close()
    finally:
        x.close()
        y.close()


def test_modify_storm_while_callbacks_fire(mt, pair):
    """A thread flips the interest 1000 times while the (always ready)
    callback fires on the workers: no crash, every call reports an event it
    could have been watching, close() ends it."""
    a, b = pair
    a.send(b"always readable")
    bad = []
    calls = [0]

    def cb(ev):
        calls[0] += 1
        if not ev & (rtpy.READABLE | rtpy.WRITABLE):
            bad.append(ev)

    w = mt.watch(b, rtpy.READABLE, cb)
    for i in range(1000):
        w.modify(rtpy.WRITABLE if i % 2 else rtpy.READABLE | rtpy.WRITABLE)
    w.modify(rtpy.READABLE)
    assert w.events == rtpy.READABLE
    w.close()
    n = calls[0]
    time.sleep(0.02)
    assert calls[0] == n
    assert not bad, bad[:5]


def test_accept_loop_over_loopback_tcp(mt):
    """A listening socket watched for READABLE accepts 50 connections; each
    connection's watch echoes one message."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.setblocking(False)
    conns = []
    watches = []
    lock = threading.Lock()

    def on_conn(c):
        def echo(ev):
            try:
                data = c.recv(100)
            except BlockingIOError:
                return
            if data:
                c.sendall(data.upper())

        return echo

    def on_accept(ev):
        while True:
            try:
                c, _ = srv.accept()
            except BlockingIOError:
                return
            c.setblocking(False)
            with lock:
                conns.append(c)
                watches.append(mt.watch(c, rtpy.READABLE, on_conn(c)))

    lw = mt.watch(srv, rtpy.READABLE, on_accept)
    clients = []
    try:
        for i in range(50):
            cl = socket.create_connection(srv.getsockname(), timeout=5)
            clients.append(cl)
            cl.sendall(b"hello %d" % i)
        for i, cl in enumerate(clients):
            assert cl.recv(100) == b"HELLO %d" % i
    finally:
        lw.close()
        with lock:
            for w in watches:
                w.close()
        for s in clients + conns + [srv]:
            s.close()
    assert len(conns) == 50
