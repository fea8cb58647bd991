"""A busy loop (callbacks ready in every iteration) still serves I/O: rtpy's
run_forever polls epoll at most every 100 µs while busy rather than in every
iteration (asyncio's rule), and these tests hold it to what an application
sees on asyncio's loop: readiness is noticed within one CPU chunk of a task
that yields with `await asyncio.sleep(0)`, and a chain of `call_soon`s never
starves a reader."""

import asyncio
import socket
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
    import threading

    t = threading.Thread(target=from_thread)
    t.start()
    start = time.monotonic()
    loop.call_soon(tick, 0)
    loop.run_forever()
    t.join()
    assert fired == ["timer", "threadsafe"]
    assert time.monotonic() - start < 5.0
