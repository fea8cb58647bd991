"""The event loops under test, by name, and how to make one.

Every loop is made through its package's own `new_event_loop()`; a loop whose
package is missing (or, for rtpy, has no `new_event_loop` yet) is reported as
unavailable with the reason, never replaced by another loop.
"""

import asyncio
import importlib
import sys

#: The loops in the order the tables list them. The first three are the peers
#: (the anchors issue 12 measures rtpy against).
LOOPS = ("asyncio", "uvloop", "rloop", "rtpy")
PEERS = ("asyncio", "uvloop", "rloop")


def factory(name):
    """Return a zero-argument callable that makes a new loop of kind `name`.

    Raises `LookupError` with a one-line reason when the loop is unavailable.
    """
    if name == "asyncio":
        return asyncio.new_event_loop
    if name not in LOOPS:
        raise LookupError(f"unknown loop {name!r}")
    try:
        mod = importlib.import_module(name)
    except ImportError as e:
        raise LookupError(f"{name} is not installed ({e})") from None
    make = getattr(mod, "new_event_loop", None)
    if make is None:
        raise LookupError(f"{name} has no new_event_loop (not built yet)")
    return make


def factory_or_exit(name):
    """`factory(name)` for a child process: when the loop is unavailable, prints
    "UNAVAILABLE <reason>" (what run.py looks for) and exits with status 3."""
    try:
        return factory(name)
    except LookupError as e:
        print("UNAVAILABLE", e, flush=True)
        sys.exit(3)


def version(name):
    """The package version of loop `name`, or the Python version for asyncio."""
    if name == "asyncio":
        import platform

        return "Python " + platform.python_version()
    try:
        from importlib.metadata import version as v

        return v(name)
    except Exception:  # noqa: BLE001 - a version is only informative
        try:
            return str(importlib.import_module(name).__version__)
        except Exception:  # noqa: BLE001
            return "?"
