"""SharedReads: concurrent identical reads share runs, and no caller gets a run that started before it asked."""

from __future__ import annotations

import asyncio

import pytest

from app.db.shared_reads import SharedReads


class Source:
    """A read whose runs are numbered and held open until released, so a test decides when each one ends."""

    def __init__(self) -> None:
        self.runs = 0
        self.gates: dict[int, asyncio.Event] = {}
        self.fail_next = False

    def _gate(self, run: int) -> asyncio.Event:
        return self.gates.setdefault(run, asyncio.Event())

    async def load(self) -> int:
        self.runs += 1
        run = self.runs
        await self._gate(run).wait()
        if self.fail_next:
            self.fail_next = False
            raise LookupError(f"run {run} failed")
        return run

    async def release(self, run: int) -> None:
        self._gate(run).set()
        await _settle()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_arriving_during_a_run_share_the_next_run_not_that_one() -> None:
    shared, source = SharedReads(), Source()
    first = asyncio.create_task(shared.read("page", source.load))
    await _settle()  # run 1 is in flight
    later = [asyncio.create_task(shared.read("page", source.load)) for _ in range(10)]
    await _settle()

    await source.release(1)
    assert await first == 1
    await source.release(2)

    assert [await task for task in later] == [2] * 10  # all got run 2, which started after they asked
    assert source.runs == 2


async def test_a_lone_read_runs_at_once_and_leaves_nothing_behind() -> None:
    shared, source = SharedReads(), Source()
    task = asyncio.create_task(shared.read("page", source.load))
    await source.release(1)
    assert await task == 1

    again = asyncio.create_task(shared.read("page", source.load))
    await source.release(2)
    assert await again == 2  # a new run: nothing was kept from the last one


async def test_different_keys_never_share() -> None:
    shared, source = SharedReads(), Source()
    a = asyncio.create_task(shared.read("page 1", source.load))
    b = asyncio.create_task(shared.read("page 2", source.load))
    await _settle()

    assert source.runs == 2
    await source.release(1)
    await source.release(2)
    assert {await a, await b} == {1, 2}


async def test_a_failure_reaches_every_caller_of_that_run_and_the_next_run_is_fresh() -> None:
    shared, source = SharedReads(), Source()
    first = asyncio.create_task(shared.read("page", source.load))
    await _settle()
    waiting = [asyncio.create_task(shared.read("page", source.load)) for _ in range(3)]
    await _settle()
    await source.release(1)
    assert await first == 1

    source.fail_next = True
    await source.release(2)
    for task in waiting:
        with pytest.raises(LookupError):
            await task

    retry = asyncio.create_task(shared.read("page", source.load))
    await source.release(3)
    assert await retry == 3


async def test_a_caller_that_gives_up_does_not_cancel_the_run_for_the_others() -> None:
    shared, source = SharedReads(), Source()
    leaving = asyncio.create_task(shared.read("page", source.load))
    await _settle()
    staying = asyncio.create_task(shared.read("page", source.load))
    await _settle()

    leaving.cancel()
    await source.release(1)
    await source.release(2)

    assert await staying == 2
    with pytest.raises(asyncio.CancelledError):
        await leaving
