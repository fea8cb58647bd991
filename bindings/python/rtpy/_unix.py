"""The Unix half of ``rtpy.Loop``: signals, pipes, subprocesses, datagrams and the ``sock_*`` methods.

Filled in by issue 12's UNIX work; ``Loop`` inherits ``UnixMixin``.
"""

from __future__ import annotations


class UnixMixin:
    """Unix-specific methods of ``rtpy.Loop`` (a mixin before ``asyncio.BaseEventLoop`` in the MRO)."""
