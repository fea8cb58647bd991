"""DEVELOPMENT ONLY (issue 12): a pure-Python stand-in for ``_rtpy.LoopCore``.

It has the Python-visible API of the native LoopCore (see /work/notes/issue12-api.md §2), built on
``selectors`` and ``heapq``, so that the Python side of ``rtpy.Loop`` can be written and run against
CPython's suite before the native core is merged. The lead deletes this file at integration; nothing
may ship that imports it.
"""

from __future__ import annotations

import collections
import contextvars
import heapq
import os
import selectors
import time

from asyncio import events


def _fileobj_to_fd(fileobj):
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class DevLoopCore:
    """The stand-in. Subclass it exactly as ``_rtpy.LoopCore`` (first base of ``Loop``)."""

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._dc_ready = collections.deque()
        self._dc_timers = []
        self._dc_sel = selectors.EpollSelector()
        self._dc_rfd, self._dc_wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._dc_sel.register(self._dc_rfd, selectors.EVENT_READ, (None, None))
        self._dc_closed = False
        self._dc_debug = False
        return self

    # -- scheduling ---------------------------------------------------------------------------
    def time(self):
        return time.monotonic()

    def _dc_check(self, callback, method):
        if self._dc_closed:
            raise RuntimeError("Event loop is closed")
        if self._dc_debug:
            self._check_thread()
        self._check_callback(callback, method)

    def call_soon(self, callback, *args, context=None):
        self._dc_check(callback, "call_soon")
        h = events.Handle(callback, args, self, context)
        self._dc_ready.append(h)
        return h

    def call_soon_threadsafe(self, callback, *args, context=None):
        if self._dc_closed:
            raise RuntimeError("Event loop is closed")
        self._check_callback(callback, "call_soon_threadsafe")
        h = events.Handle(callback, args, self, context)
        self._dc_ready.append(h)
        self._wake()
        return h

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError("delay must not be None")
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError("when cannot be None")
        self._dc_check(callback, "call_at")
        h = events.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._dc_timers, h)
        h._scheduled = True
        return h

    def _timer_handle_cancelled(self, handle):
        pass

    # -- fds ------------------------------------------------------------------------------------
    def _dc_set(self, fd, idx, handle):
        fd = _fileobj_to_fd(fd)
        try:
            key = self._dc_sel.get_key(fd)
        except KeyError:
            if handle is None:
                return False
            pair = [None, None]
            pair[idx] = handle
            self._dc_sel.register(fd, 1 << idx, tuple(pair))
            return True
        pair = list(key.data)
        old = pair[idx]
        pair[idx] = handle
        mask = (selectors.EVENT_READ if pair[0] else 0) | (selectors.EVENT_WRITE if pair[1] else 0)
        if mask:
            self._dc_sel.modify(fd, mask, tuple(pair))
        else:
            self._dc_sel.unregister(fd)
        if old is not None:
            old.cancel()
            return True
        return False

    def _add_reader(self, fd, callback, *args):
        if self._dc_closed:
            raise RuntimeError("Event loop is closed")
        self._dc_set(fd, 0, events.Handle(callback, args, self, None))

    def _remove_reader(self, fd):
        if self._dc_closed:
            return False
        return self._dc_set(fd, 0, None)

    def _add_writer(self, fd, callback, *args):
        if self._dc_closed:
            raise RuntimeError("Event loop is closed")
        self._dc_set(fd, 1, events.Handle(callback, args, self, None))

    def _remove_writer(self, fd):
        if self._dc_closed:
            return False
        return self._dc_set(fd, 1, None)

    def _has_reader(self, fd):
        try:
            h = self._dc_sel.get_key(_fileobj_to_fd(fd)).data[0]
        except KeyError:
            return False
        return h is not None and not h.cancelled()

    def _has_writer(self, fd):
        try:
            h = self._dc_sel.get_key(_fileobj_to_fd(fd)).data[1]
        except KeyError:
            return False
        return h is not None and not h.cancelled()

    # -- running ------------------------------------------------------------------------------
    def _wake(self):
        try:
            os.write(self._dc_wfd, b"\0")
        except (BlockingIOError, OSError):
            pass

    def _run_once(self, deadline=None, max_callbacks=None):
        timers = self._dc_timers
        while timers and timers[0]._cancelled:
            heapq.heappop(timers)
        if self._dc_ready or self._stopping:
            timeout = 0
        elif timers:
            timeout = max(0.0, timers[0]._when - self.time())
        else:
            timeout = None
        if deadline is not None:
            left = max(0.0, deadline - self.time())
            timeout = left if timeout is None else min(timeout, left)
        for key, mask in self._dc_sel.select(timeout):
            if key.fd == self._dc_rfd:
                try:
                    while os.read(self._dc_rfd, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            r, w = key.data
            if mask & selectors.EVENT_READ and r is not None:
                self._dc_ready.append(r)
            if mask & selectors.EVENT_WRITE and w is not None:
                self._dc_ready.append(w)
        now = self.time()
        while timers and timers[0]._when <= now:
            h = heapq.heappop(timers)
            h._scheduled = False
            self._dc_ready.append(h)
        n = len(self._dc_ready)
        if max_callbacks is not None:
            n = min(n, max_callbacks)
        ran = 0
        for _ in range(n):
            h = self._dc_ready.popleft()
            if h._cancelled:
                continue
            ran += 1
            if self._dc_debug:
                self._current_handle = h
                try:
                    h._run()
                finally:
                    self._current_handle = None
            else:
                h._run()
        return ran

    def _set_debug_core(self, enabled):
        self._dc_debug = bool(enabled)

    def _close_core(self):
        if self._dc_closed:
            return
        self._dc_closed = True
        self._dc_ready.clear()
        self._dc_timers.clear()
        self._dc_sel.close()
        os.close(self._dc_rfd)
        os.close(self._dc_wfd)

    def _run_in_pool(self, func, *args):
        import concurrent.futures

        if not hasattr(self, "_dc_pool"):
            self._dc_pool = concurrent.futures.ThreadPoolExecutor()
        from asyncio import futures

        return futures.wrap_future(self._dc_pool.submit(func, *args), loop=self)

    def _core_metrics(self):
        return {"ready": len(self._dc_ready), "timers": len(self._dc_timers)}
