"""Reads skips.toml: the tests the runner leaves out, each with a category and a reason."""

from __future__ import annotations

import tomllib

CATEGORIES = {"windows-only", "selector-internals", "fake-loop", "no-loop", "duplicate"}


def load_skips(path: str) -> dict[str, dict]:
    """Return {target: entry}; refuse entries without a known category or a reason."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    skips = {}
    for entry in data.get("skip", []):
        target = entry.get("target", "")
        if not target or entry.get("category") not in CATEGORIES or not entry.get("reason", "").strip():
            raise ValueError(f"{path}: skip entry needs target, a category in {sorted(CATEGORIES)} "
                             f"and a reason: {entry!r}")
        if target in skips:
            raise ValueError(f"{path}: duplicate skip entry {target!r}")
        skips[target] = entry
    return skips


def matches(skips: dict[str, dict], test_id: str) -> dict | None:
    """The entry covering ``test_id`` (``module.Class.test``), by test, class or module."""
    parts = test_id.split(".")
    for n in range(len(parts), 0, -1):
        entry = skips.get(".".join(parts[:n]))
        if entry is not None:
            return entry
    return None


def module_skipped(skips: dict[str, dict], module: str) -> dict | None:
    """The entry skipping a whole module, if any."""
    return skips.get(module)
