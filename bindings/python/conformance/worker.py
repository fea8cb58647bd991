"""Runs one module of CPython's ``test.test_asyncio`` on a chosen event loop (one subprocess).

Started by ``run.py``; not meant to be run by hand. It makes every loop the tests create the
chosen one, loads the module, drops the tests named by the skip list (and by ``--exclude``:
tests already reported by an earlier attempt), runs the rest in one ``unittest`` suite (so class
and module fixtures still run) and writes one JSON line per event to ``--out``:

- ``{"ev": "start", "id": ...}`` when a test starts (the parent uses it to spot a hanging test);
- ``{"ev": "end", "id": ..., "outcome": ..., "detail": ...}`` when it ends;
- ``{"ev": "done", "listed_skips": [...]}`` once the whole suite has run.

Outcomes: ``pass``, ``fail``, ``error``, ``skip`` (the test skipped itself), ``xfail``
(expected failure), ``xpass`` (unexpected success, counted as a failure).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import signal
import sys
import time
import traceback
import unittest

from loops import load_factory
from skiplist import load_skips, matches

DETAIL_LIMIT = 6000


def _install_policy(factory):
    """Make the event-loop policy hand out loops from ``factory``.

    Covers ``asyncio.new_event_loop()``, ``asyncio.run``, ``asyncio.Runner`` and
    ``IsolatedAsyncioTestCase``. The policy keeps the Unix default's child-watcher handling
    (the subprocess tests attach watchers through it). ``asyncio.DefaultEventLoopPolicy`` is
    rebound too, so that the ``set_event_loop_policy(None)`` calls in the test modules'
    ``tearDownModule`` / tests fall back to this policy, not to the stock loop.
    """
    base = asyncio.DefaultEventLoopPolicy

    class ConformancePolicy(base):
        def new_event_loop(self):
            return factory()

    asyncio.DefaultEventLoopPolicy = ConformancePolicy
    asyncio.events.DefaultEventLoopPolicy = ConformancePolicy  # harmless if unused
    asyncio.set_event_loop_policy(ConformancePolicy())


def _patch_close_loop(test_utils):
    """Let the suite's ``close_loop`` helper close loops without a ``_default_executor``.

    ``test_utils.TestCase.close_loop`` reads the stock loop's private ``_default_executor``;
    a loop without that attribute would error in every test's cleanup. For such a loop this
    does what the helper means through the public API: ``shutdown_default_executor()`` then
    ``close()``. Loops that have the attribute get the original helper unchanged.
    """
    original = test_utils.TestCase.close_loop

    def close_loop(loop):
        try:
            loop._default_executor  # noqa: B018 - probing the private attribute
        except AttributeError:
            if not loop.is_closed():
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            return
        original(loop)

    test_utils.TestCase.close_loop = staticmethod(close_loop)


def _route_factory_hooks(module, factory):
    """Point the mixins' loop factory hooks at ``factory``.

    ``create_event_loop`` (test_events' EventLoopTestsMixin, test_sock_lowlevel's
    BaseSockTestsMixin, test_sendfile's SendfileBase) and ``new_loop`` (functional.
    FunctionalTestCaseMixin: test_server, test_buffered_proto, test_sslproto; test_ssl) are
    overridden on every test class of the module that has them.
    """
    for obj in vars(module).values():
        if not (isinstance(obj, type) and issubclass(obj, unittest.TestCase)):
            continue
        for hook in ("create_event_loop", "new_loop"):
            if hasattr(obj, hook):
                setattr(obj, hook, lambda self: factory())


def _adapt_module(name, module, factory):
    """Per-module adaptations where a class hard-wires the stock loop outside a factory hook.

    Each one substitutes the loop under test and keeps the test's own logic unchanged.
    """
    if name == "test_runners":
        # BaseTest.new_loop builds a BaseEventLoop with a mocked selector only because
        # BaseEventLoop is abstract; the tests need a loop whose shutdown_asyncgens() records
        # that it ran (tearDown asserts loop.shutdown_ag_run). The loop under test gets the
        # same instrumentation (it must accept attributes, as asyncio's loop does).
        def new_loop(self):
            loop = factory()
            loop.shutdown_ag_run = False
            real = loop.shutdown_asyncgens

            async def shutdown_asyncgens():
                loop.shutdown_ag_run = True
                await real()

            loop.shutdown_asyncgens = shutdown_asyncgens
            return loop

        for cls in (module.BaseTest, module.RunTests, module.RunnerTests):
            cls.new_loop = new_loop
    elif name == "test_unix_events":
        # SelectorEventLoopUnixSocketTests.setUp does `self.loop = asyncio.SelectorEventLoop()`;
        # the tests themselves only use the public create_unix_server/connection API.
        from test.test_asyncio import utils as test_utils

        def setUp(self):
            test_utils.TestCase.setUp(self)
            self.loop = factory()
            self.set_event_loop(self.loop)

        module.SelectorEventLoopUnixSocketTests.setUp = setUp


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


class _JsonResult(unittest.TestResult):
    """Writes a start line and an end line per test, flushed at once."""

    def __init__(self, out):
        super().__init__()
        self._out = out
        self._outcome = {}

    def _emit(self, record):
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()

    def _set(self, test, outcome, detail=""):
        tid = test.id()
        # A test with several subtests fails if any of them fails; error beats fail.
        prev = self._outcome.get(tid)
        rank = {"pass": 0, "skip": 0, "xfail": 0, "fail": 1, "xpass": 1, "error": 2}
        if prev is None or rank[outcome] >= rank[prev[0]]:
            self._outcome[tid] = (outcome, (prev[1] + "\n" if prev and prev[1] else "") + detail)

    def startTest(self, test):
        super().startTest(test)
        self._emit({"ev": "start", "id": test.id(), "t": time.time()})

    def stopTest(self, test):
        super().stopTest(test)
        outcome, detail = self._outcome.pop(test.id(), ("pass", ""))
        self._emit({"ev": "end", "id": test.id(), "outcome": outcome, "detail": detail[:DETAIL_LIMIT]})

    def _fmt(self, test, err):
        return self._exc_info_to_string(err, test)

    def addSuccess(self, test):
        self._set(test, "pass")

    def addFailure(self, test, err):
        self._set(test, "fail", self._fmt(test, err))

    def addError(self, test, err):
        if isinstance(test, unittest.TestCase):
            self._set(test, "error", self._fmt(test, err))
        else:
            # Fixture errors (setUpClass, setUpModule...) arrive on an _ErrorHolder outside
            # startTest/stopTest: report them as their own error line.
            self._emit({"ev": "end", "id": test.id(), "outcome": "error",
                        "detail": self._fmt(test, err)[:DETAIL_LIMIT]})

    def addSkip(self, test, reason):
        if isinstance(test, unittest.TestCase):
            self._set(test, "skip", reason)
        else:
            self._emit({"ev": "end", "id": test.id(), "outcome": "skip", "detail": reason})

    def addExpectedFailure(self, test, err):
        self._set(test, "xfail", self._fmt(test, err))

    def addUnexpectedSuccess(self, test):
        self._set(test, "xpass", "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            self._set(test, kind, f"[{subtest.id()}]\n" + self._fmt(test, err))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", required=True)
    ap.add_argument("--loop", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--skips", required=True)
    ap.add_argument("--exclude", default=None, help="file with test ids to leave out, one a line")
    args = ap.parse_args(argv)

    # The runner may be started with SIGINT ignored (a background job, nohup, some CI shells);
    # Python then keeps it ignored and asyncio.Runner's Ctrl-C tests (test_runners'
    # test_interrupt_*, interrupt_main()) would wait forever. Restore what an interactive
    # `python -m test` sees.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    factory = load_factory(args.loop)  # exits 2 with a message if unavailable
    skips = load_skips(args.skips)
    exclude = set()
    if args.exclude:
        with open(args.exclude) as f:
            exclude = {line.strip() for line in f if line.strip()}

    _install_policy(factory)
    import test.test_asyncio  # noqa: F401 - the package's requires_working_socket check
    from test.test_asyncio import utils as test_utils

    _patch_close_loop(test_utils)
    module = importlib.import_module("test.test_asyncio." + args.module)
    _route_factory_hooks(module, factory)
    _adapt_module(args.module, module, factory)

    loaded = unittest.defaultTestLoader.loadTestsFromModule(module)
    kept, listed = [], []
    for test in _flatten(loaded):
        short = test.id().removeprefix("test.test_asyncio.")
        if matches(skips, short):
            listed.append(short)
        elif test.id() not in exclude:
            kept.append(test)

    with open(args.out, "a", buffering=1) as out:
        result = _JsonResult(out)
        try:
            unittest.TestSuite(kept).run(result)
        except BaseException:  # noqa: BLE001 - report, never lose the run
            out.write(json.dumps({"ev": "end", "id": f"{args.module} (suite)", "outcome": "error",
                                  "detail": traceback.format_exc()[:DETAIL_LIMIT]}) + "\n")
        out.write(json.dumps({"ev": "done", "listed_skips": listed}) + "\n")
        out.flush()
    # Leave without running interpreter teardown that a broken loop could hang in.
    sys.stdout.flush()
    sys.stderr.flush()
    import os
    os._exit(0)


if __name__ == "__main__":
    main()
