"""Stopping a background loop ends it even when a cancellation is swallowed on its way."""

from __future__ import annotations

import asyncio
import contextlib

from app.core.background import BackgroundLoop


class SwallowsOneCancel(BackgroundLoop):
    """A loop whose first cancellation is lost inside a step, as a library's ``wait_for`` race can lose it."""

    def __init__(self) -> None:
        super().__init__("swallows-one-cancel")
        self.swallowed = 0

    async def _run(self) -> None:
        while True:
            if not self.swallowed:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(3600)
                self.swallowed += 1
            await asyncio.sleep(3600)


async def test_stop_ends_a_loop_that_swallowed_the_first_cancel() -> None:
    loop = SwallowsOneCancel()
    loop.start()
    await asyncio.sleep(0)

    await asyncio.wait_for(loop.stop(), 5)

    assert loop.swallowed == 1
