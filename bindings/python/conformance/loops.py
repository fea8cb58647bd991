"""The loop factories the conformance runner knows, imported lazily by name."""

from __future__ import annotations

import importlib
import sys

#: name -> (module to import, attribute that builds a new loop, what to install if missing)
LOOPS = {
    "asyncio": ("asyncio", "SelectorEventLoop", "nothing: the stock loop"),
    "uvloop": ("uvloop", "new_event_loop", "pip install uvloop"),
    "rloop": ("rloop", "new_event_loop", "pip install rloop"),
    "rtpy": ("rtpy", "new_event_loop", "the rtpy package with rtpy.Loop (issue 12)"),
}

#: exit status when the chosen loop cannot be imported
UNAVAILABLE = 2


def load_factory(name: str):
    """Return a zero-argument callable building a new loop, or exit 2 saying why not."""
    if name in LOOPS:
        modname, attr, hint = LOOPS[name]
    elif ":" in name:
        # Any other factory, as "package.module:callable" (importable by the test interpreter).
        modname, attr = name.split(":", 1)
        hint = f"an importable {modname} with a {attr} callable"
    else:
        sys.exit(f"conformance: unknown loop {name!r} (known: {', '.join(LOOPS)}, or module:callable)")
    try:
        module = importlib.import_module(modname)
        factory = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        print(f"conformance: loop {name!r} unavailable: {modname}.{attr} cannot be loaded "
              f"({exc}); needs {hint}", file=sys.stderr)
        sys.exit(UNAVAILABLE)
    return factory
