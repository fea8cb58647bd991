"""Handles and the garbage collector: cycles through handles (pending, run,
cancelled; held by user objects or only by the loop) are collected, and a
pending callback the loop alone keeps alive is never collected before it
runs.

rtpy's loop leaves the handles only its queues hold untracked by the
collector (bindings/python/src/event_loop/untracked.rs); these tests pin
that this stays invisible: every expectation is what asyncio's own loop
(whose handles are always tracked) does, and each test runs on both.
"""

import contextvars
import gc
import random
import warnings
import weakref

import pytest


class Cb:
    """A callable that records its calls and can hold anything."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1


def test_a_pending_callback_only_the_loop_holds_survives_a_collection(loop):
    cb = Cb()
    cb.me = cb  # a cycle whose only way in is the loop's queue
    arg = Cb()
    arg.me = arg
    refs = weakref.ref(cb), weakref.ref(arg)
    loop.call_soon(cb, arg)
    loop.call_later(0.001, cb, arg)
    del cb, arg
    for _ in range(3):
        gc.collect()
    assert all(r() is not None for r in refs), "a pending callback was collected"
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert refs[0]().calls == 2
    gc.collect()
    assert [r() for r in refs] == [None, None], "run handles kept their cycles alive"


def test_a_pending_handle_held_by_its_callback_is_kept_then_collected(loop):
    refs = []
    for schedule in (loop.call_soon, lambda cb: loop.call_later(0.001, cb), lambda cb: loop.call_at(loop.time(), cb)):
        cb = Cb()
        cb.handle = schedule(cb)  # cb -> handle -> cb, and the loop -> handle
        refs.append(weakref.ref(cb))
        del cb
    gc.collect()
    assert all(r() is not None for r in refs), "a pending handle's callback was collected"
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert [r().calls for r in refs] == [1, 1, 1]
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_a_handle_kept_by_a_user_object_is_tracked_at_the_next_collection(loop):
    h = loop.call_soon(print)
    t = loop.call_later(3600, print)
    gc.collect()
    assert gc.is_tracked(h) and gc.is_tracked(t)
    h.cancel()
    t.cancel()


def test_a_cancelled_handle_in_a_cycle_through_its_context_is_collected(loop):
    var = contextvars.ContextVar("var")
    refs = []
    for schedule in (loop.call_soon, lambda cb, context: loop.call_later(0.001, cb, context=context)):
        owner = Cb()
        ctx = contextvars.copy_context()
        ctx.run(var.set, owner)  # owner -> handle -> context -> owner
        owner.handle = schedule(owner, context=ctx)
        owner.handle.cancel()  # drops the callback, keeps the context
        refs.append(weakref.ref(owner))
        del owner, ctx
    loop.call_later(0.005, loop.stop)
    loop.run_forever()
    gc.collect()
    assert [r() for r in refs] == [None, None], "a cancelled handle kept its cycle alive"


class _Owner:
    def cb(self):
        pass


def _assert_abandoned_with_owner_collected(loop_factory, setup):
    """A new loop and an owner that refers to it: ``setup(loop, owner)`` ties
    them up with handles, then both are dropped (the loop unclosed) and must
    be collected."""
    lp = loop_factory()
    owner = _Owner()
    owner.loop = lp
    setup(lp, owner)
    refs = weakref.ref(lp), weakref.ref(owner)
    del lp, owner
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # "unclosed event loop"
        gc.collect()
    assert [r() for r in refs] == [None, None], "the loop or its owner was not collected"


def test_an_abandoned_loop_whose_pending_handles_users_keep_is_collected(loop_factory):
    def setup(lp, owner):
        # Kept by the owner, and (pending) by the loop: loop -> handle ->
        # owner -> handle, and handle -> loop.
        owner.handles = [lp.call_soon(owner.cb), lp.call_later(3600, owner.cb), lp.call_at(1e9, owner.cb)]
        owner.soon = lp.call_soon(owner.cb)  # the last handle made before the loop is dropped

    _assert_abandoned_with_owner_collected(loop_factory, setup)


def test_a_pending_handle_taken_back_through_a_weakref_is_collected_in_a_cycle(loop_factory):
    # Only a weak reference is left when a collection starts; a strong one
    # taken through it afterwards must still let the cycle be found.
    def setup(lp, owner):
        weak_handle = weakref.ref(lp.call_later(3600, owner.cb))
        gc.collect()
        owner.handle = weak_handle()  # owner -> handle -> owner.cb -> owner
        assert owner.handle is not None

    _assert_abandoned_with_owner_collected(loop_factory, setup)


def test_a_handle_the_exception_handler_keeps_is_collected(loop):
    kept = []

    class Bad:
        def __call__(self):
            raise ValueError("boom")

    loop.set_exception_handler(lambda lp, ctx: kept.append(ctx))
    for debug in (False, True):
        loop.set_debug(debug)
        bad = Bad()
        bad.kept = kept  # bad -> kept -> context -> handle -> bad
        loop.call_soon(bad)
        del bad
        gc.collect()  # the handle is settled while only the loop holds it
        loop.call_later(0.005, loop.stop)
        loop.run_forever()
    loop.set_debug(False)
    assert [type(c["exception"]) for c in kept] == [ValueError, ValueError]
    ref = weakref.ref(kept[0]["handle"])
    del kept
    loop.set_exception_handler(None)
    gc.collect()
    assert ref() is None


def test_many_handles_dropped_in_any_order_before_a_collection(loop):
    # Handles are freed in a random order while the collector is off (the
    # list of handles handed to Python then only shrinks by their own
    # release), some are kept: after the run they are tracked and alive.
    rng = random.Random(7)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        cb = Cb()
        hs = [loop.call_soon(cb) if i % 2 else loop.call_later(rng.random() * 0.002, cb) for i in range(5000)]
        rng.shuffle(hs)
        kept = hs[:100]
        del hs[100:]
        for h in kept[:50]:
            h.cancel()
        loop.call_later(0.02, loop.stop)
        loop.run_forever()
        assert cb.calls == 4950
    finally:
        if was_enabled:
            gc.enable()
    gc.collect()
    assert all(gc.is_tracked(h) for h in kept)
    assert sum(h.cancelled() for h in kept) == 50


@pytest.mark.parametrize("n", [50_000])
def test_a_burst_of_callbacks_with_collections_in_between(loop, n):
    # Collections start while handles are pending, running and freed: every
    # callback runs once and its argument is released after.
    args = []
    out = []

    def cb(arg, i):
        out.append(i)
        if i % 997 == 0:
            gc.collect(0)

    for i in range(n):
        a = Cb()
        a.me = a
        if i % 1000 == 0:
            args.append(weakref.ref(a))
        loop.call_soon(cb, a, i)
    del a
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == list(range(n))
    gc.collect()
    assert all(r() is None for r in args)


def test_a_context_value_only_a_pending_handle_reaches_survives_collections(loop):
    var = contextvars.ContextVar("var")
    seen = []

    def read():
        seen.append(var.get().me.tag)

    value = Cb()
    value.me = value  # a cycle only the handle's copied context reaches
    value.tag = "kept"
    token = var.set(value)
    loop.call_soon(read)
    loop.call_later(0.001, read)
    var.reset(token)
    ref = weakref.ref(value)
    del value, token
    for _ in range(3):
        gc.collect()
    assert ref() is not None, "a context value of a pending handle was collected"
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert seen == ["kept", "kept"]
    gc.collect()
    assert ref() is None, "the run handles' contexts kept their value alive"


def test_a_context_taken_from_a_handle_in_a_cycle_is_collected(loop):
    var = contextvars.ContextVar("var")
    refs = []
    for taken in ("get_context", "_context"):
        for schedule in (loop.call_soon, lambda cb: loop.call_later(0.001, cb)):
            owner = Cb()
            token = var.set(owner)
            h = schedule(owner)
            var.reset(token)
            gc.collect()  # the handle is settled first: only the loop holds it
            # owner -> ctx -> owner (asyncio's Handle has get_context from 3.12)
            owner.ctx = h.get_context() if taken == "get_context" and hasattr(h, taken) else h._context
            assert owner.ctx.get(var) is owner
            refs.append(weakref.ref(owner))
            del owner, token, h
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    gc.collect()
    assert [r() for r in refs] == [None] * 4, "a context taken from a handle kept its cycle alive"


def test_a_run_handle_kept_in_a_cycle_through_its_context_is_collected(loop):
    var = contextvars.ContextVar("var")
    refs = []
    for schedule in (loop.call_soon, lambda cb: loop.call_later(0.001, cb)):
        owner = Cb()
        token = var.set(owner)
        owner.handle = schedule(owner)  # owner -> handle -> context -> owner
        var.reset(token)
        refs.append(weakref.ref(owner))
        del owner, token
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    gc.collect()
    assert [r() for r in refs] == [None, None]


def test_an_abandoned_loop_whose_pending_handle_context_a_user_keeps_is_collected(loop_factory):
    var = contextvars.ContextVar("var")
    lp = loop_factory()
    owner = Cb()
    owner.loop = lp
    token = var.set(owner)
    h = lp.call_later(3600, owner)
    var.reset(token)
    gc.collect()  # the handle is settled: only the loop holds it
    owner.ctx = h._context  # loop -> handle -> context -> owner -> context, owner -> loop
    refs = weakref.ref(lp), weakref.ref(owner)
    del lp, owner, token, h
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # "unclosed event loop"
        gc.collect()
    assert [r() for r in refs] == [None, None], "the loop or the context's owner was not collected"
