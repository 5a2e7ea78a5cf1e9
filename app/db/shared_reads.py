"""Identical reads in flight at the same time share their round trips, and nobody gets data older than their request.

The public product page is the hottest read of a shop: many clients ask for exactly the same rows at once. A cache
would answer some of them with rows read before a write they already saw committed (place an order, then list the
products: the stock must have gone down). This does not: a read that finds the same read *already running* does not
join it (that read started before this request arrived and may miss a write committed in between). It waits for the
*next* run, which starts the moment the current one ends and answers every request that arrived meanwhile. Each
caller thus gets rows read after it asked, exactly what a query of its own would return, while any number of
concurrent identical requests cost about two round trips instead of one each. With no concurrency, nothing changes:
one request, one query, no waiting.

A failure reaches every caller of that run. A caller that gives up (client gone) does not cancel the run for the
others: the run is a task of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

__all__ = ("SharedReads",)

T = TypeVar("T")


_Load = Callable[[], Awaitable[Any]]


class _Key:
    __slots__ = ("next", "task")

    def __init__(self) -> None:
        #: The running read (held so the event loop keeps it alive).
        self.task: asyncio.Task[None] | None = None
        #: The next run: its result, and how to load it (any of its callers' loads: they are the same read).
        self.next: tuple[asyncio.Future[Any], _Load] | None = None


class SharedReads:
    """Runs at most one read per key at a time; callers arriving during a run share the one after it."""

    def __init__(self) -> None:
        self._keys: dict[Hashable, _Key] = {}

    async def read(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key()
            state.task = loop.create_task(self._run(key, state, load, future))
        elif state.next is None:
            state.next = (future, load)
        else:
            future = state.next[0]
        return await asyncio.shield(future)

    async def _run(self, key: Hashable, state: _Key, load: _Load, future: asyncio.Future[Any]) -> None:
        try:
            while True:
                try:
                    future.set_result(await load())
                except Exception as exc:  # noqa: BLE001 - handed to every caller of this run
                    future.set_exception(exc)
                    future.add_done_callback(_retrieve)  # no "exception never retrieved" if every caller left
                if state.next is None:
                    return
                (future, load), state.next = state.next, None
        finally:
            del self._keys[key]
            # Cancelled (the loop is closing): nobody may wait for good.
            for pending in (future, state.next[0] if state.next else None):
                if pending is not None and not pending.done():
                    pending.cancel()


def _retrieve(future: asyncio.Future[Any]) -> None:
    with contextlib.suppress(BaseException):
        future.exception()
