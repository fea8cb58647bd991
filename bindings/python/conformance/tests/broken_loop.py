"""A deliberately broken loop for the runner's self-test: call_later fires at once."""

import asyncio


class EagerTimerLoop(asyncio.SelectorEventLoop):
    """Runs every call_later/call_at callback as soon as possible (timers fire early)."""

    def call_at(self, when, callback, *args, context=None):
        return super().call_at(self.time(), callback, *args, context=context)


def new_event_loop():
    return EagerTimerLoop()


class HangingLoop(asyncio.SelectorEventLoop):
    """Never finishes shutting down its default executor (every asyncio.Runner close hangs)."""

    async def shutdown_default_executor(self):
        import time

        time.sleep(3600)


def new_hanging_loop():
    return HangingLoop()
