"""Loops that run beside the app for as long as it runs (the outbox's dispatch loop, the payment-timeout sweep)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ("BackgroundLoop", "backoff")


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row: 0.4 s, 0.8 s, 1.6 s, … at most 5 s.

    Short enough that an outage of a second costs about a second of delay, long enough that a down database or Redis
    gets at most one attempt per loop every 5 s (and one warning in the log each time).
    """
    return min(0.2 * 2.0**failures, 5.0)


class BackgroundLoop:
    """Runs :meth:`_run` as one named task from :meth:`start` until :meth:`stop` cancels it and waits for it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        raise NotImplementedError
