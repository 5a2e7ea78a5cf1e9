"""Loops that run beside the app for as long as it runs (the outbox's dispatch loop, the payment-timeout sweep)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ("BackgroundLoop", "backoff", "cancel_and_wait")


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row: 0.4 s, 0.8 s, 1.6 s, … at most 5 s.

    Short enough that an outage of a second costs about a second of delay, long enough that a down database or Redis
    gets at most one attempt per loop every 5 s (and one warning in the log each time).
    """
    return min(0.2 * 2.0**failures, 5.0)


#: How often :func:`cancel_and_wait` repeats its cancel while the task runs on.
RECANCEL_S = 0.5


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again every ``RECANCEL_S`` until it has.

    One cancel is not always enough: library code can swallow a cancellation (on Python 3.11 ``asyncio.wait_for``
    returns the result when its inner future completes in the same step as the cancel, CPython gh-86296), and the
    loop then goes on to its next sleep. Seen in CI: the webhook pump, cancelled once, slept on for good, so its
    worker's stop, and the app's shutdown behind it, never ended.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
    with contextlib.suppress(asyncio.CancelledError):
        await task


class BackgroundLoop:
    """Runs :meth:`_run` as one named task from :meth:`start` until :meth:`stop` cancels it and waits for it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        raise NotImplementedError
