"""A busy loop (callbacks ready in every iteration) still serves I/O and other
threads: rtpy's run_forever lets a few busy iterations skip their poll of
epoll after a poll that found nothing (asyncio polls in every iteration), and
these tests hold it to what an application sees on asyncio's loop: I/O ready
while a task spins on `await asyncio.sleep(0)` is seen within a few
iterations, readiness is noticed within one CPU chunk of a task, a chain of
`call_soon`s never starves a reader, and another Python thread gets the GIL
while the loop is busy (asyncio lets it go in every `select()`)."""

import asyncio
import socket
import sys
import threading
import time

from .support import run


def busy_for(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_io_is_served_between_cpu_chunks_that_yield_with_sleep_0(loop):
    rsock, wsock = socket.socketpair()
    read_in_chunk = []
    chunk = [0]
    try:

        def on_readable():
            rsock.recv(1)
            read_in_chunk.append(chunk[0])
            loop.remove_reader(rsock)

        loop.add_reader(rsock, on_readable)

        async def cpu_task():
            for i in range(20):
                chunk[0] = i
                busy_for(0.002)
                if i == 2:
                    wsock.send(b"x")
                await asyncio.sleep(0)

        run(loop, cpu_task())
        # asyncio: the poll after chunk 2 sees the byte; its reader runs
        # after the task's next step (chunk 3), before chunk 4.
        assert read_in_chunk and read_in_chunk[0] <= 3, read_in_chunk
    finally:
        loop.remove_reader(rsock)
        rsock.close()
        wsock.close()


def test_a_call_soon_chain_does_not_starve_a_reader(loop):
    rsock, wsock = socket.socketpair()
    state = {"n": 0, "written_at": None, "read_at": None}
    try:

        def on_readable():
            rsock.recv(1)
            state["read_at"] = time.monotonic()
            loop.remove_reader(rsock)

        def tick():
            state["n"] += 1
            if state["n"] == 1000:
                wsock.send(b"x")
                state["written_at"] = time.monotonic()
            if state["read_at"] is not None or state["n"] >= 20_000_000:
                loop.stop()
            else:
                loop.call_soon(tick)

        loop.add_reader(rsock, on_readable)
        loop.call_soon(tick)
        loop.run_forever()
        assert state["read_at"] is not None, "the reader never ran during %d callbacks" % state["n"]
        # Noticed within the poll interval (plus scheduling noise), never at
        # the end of the chain.
        assert state["read_at"] - state["written_at"] < 1.0
    finally:
        loop.remove_reader(rsock)
        rsock.close()
        wsock.close()


def test_a_chain_sees_a_timer_and_a_threadsafe_call_in_time(loop):
    fired = []

    def tick(n):
        if fired == ["timer", "threadsafe"] or n >= 20_000_000:
            loop.stop()
        else:
            loop.call_soon(tick, n + 1)

    def from_thread():
        time.sleep(0.01)
        loop.call_soon_threadsafe(fired.append, "threadsafe")

    loop.call_later(0.005, fired.append, "timer")
    t = threading.Thread(target=from_thread)
    t.start()
    start = time.monotonic()
    loop.call_soon(tick, 0)
    loop.run_forever()
    t.join()
    assert fired == ["timer", "threadsafe"]
    assert time.monotonic() - start < 5.0


def test_io_ready_while_a_task_spins_is_seen_within_a_few_iterations(loop):
    # A reply sent by one callback of the spinning chain is seen by the
    # reader within a few iterations (asyncio: the next one; rtpy: at most
    # 31 skipped polls after one that found nothing), for 200 round trips.
    rsock, wsock = socket.socketpair()
    ticks = [0]
    lags = []
    sent_at = []
    try:

        def on_readable():
            rsock.recv(1)
            lags.append(ticks[0] - sent_at[-1])

        def spin():
            ticks[0] += 1
            if len(lags) == len(sent_at):
                if len(lags) == 200 or ticks[0] > 1_000_000:
                    loop.stop()
                    return
                wsock.send(b"x")
                sent_at.append(ticks[0])
            loop.call_soon(spin)

        loop.add_reader(rsock, on_readable)
        loop.call_soon(spin)
        loop.run_forever()
        assert len(lags) == 200, "only %d replies seen in %d iterations" % (len(lags), ticks[0])
        assert max(lags) <= 34, sorted(lags)[-10:]
    finally:
        loop.remove_reader(rsock)
        rsock.close()
        wsock.close()


def test_another_thread_gets_the_gil_while_the_loop_is_busy(loop):
    # With a 10 s switch interval, a thread waiting for the GIL gets it only
    # when the loop lets it go: asyncio does in every select(); rtpy in
    # every poll, including a busy loop's zero-timeout ones.
    a, b = socket.socketpair()
    done = threading.Event()
    rounds = [0]

    def peer():
        # Each round needs the GIL twice (after each blocking call).
        try:
            while not done.is_set():
                b.sendall(b"x")
                if not b.recv(1):
                    return
                rounds[0] += 1
        except OSError:
            return

    a.setblocking(False)
    old = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    t = threading.Thread(target=peer)
    try:

        def echo():
            try:
                data = a.recv(1)
            except BlockingIOError:
                return
            if data:
                a.send(data)

        def spin():
            if rounds[0] >= 200:
                loop.stop()
            else:
                loop.call_soon(spin)

        loop.add_reader(a, echo)
        loop.call_soon(spin)
        stop = loop.call_later(3.0, loop.stop)
        t.start()
        loop.run_forever()
        stop.cancel()
    finally:
        sys.setswitchinterval(old)
        done.set()
        loop.remove_reader(a)
        a.close()
        t.join(5)
        b.close()
    assert rounds[0] >= 200, "the peer thread made %d round trips in 3 s" % rounds[0]
