"""Stopping a SAQ worker promptly: no new job once told to stop, and no wait beyond the jobs that are running.

SAQ 0.26's ``Worker.stop`` waits ``shutdown_grace_period_s`` for *all* its tasks: the running jobs, but also its
``concurrency`` dequeue loops, which block in Redis until a job arrives, and its upkeep loops, which never end. So an
idle worker took the whole grace (``WORKER_SHUTDOWN_GRACE_SECONDS``, 20 s: 21.3 s measured from SIGTERM to exit;
2.5 s with this) to exit, logging that its tasks "did not finish", and until then its idle loops still took new jobs
and started them — a stopping worker must not.

:class:`PromptStop` replaces the worker's ``stop``: it first cancels the loops that are waiting for a job (known by
being inside ``queue.dequeue``, which it wraps; a loop that reaches it after the stop began gets no job) and the
upkeep loops, then waits for the jobs that are running, up to the grace, then runs SAQ's own ``stop`` with what is
left of the grace (it cancels what overran the grace, retrying its job, and runs the shutdown hooks). A dequeue
cancelled just as Redis handed it a job leaves that job in the active list, where SAQ's sweep retries it: nothing is
lost. Instance attributes, not a subclass: litestar-saq constructs the orders worker itself (``stopping_promptly``
in ``app.events.worker``); the webhook worker uses it as well.
"""

from __future__ import annotations

import asyncio
from typing import Any

from saq import Worker

from app.core.background import cancel_and_wait

__all__ = ("PromptStop",)


class PromptStop:
    def __init__(self, worker: Worker[Any], *, grace: float) -> None:
        self._worker = worker
        self._grace = grace
        self._saq_stop = worker.stop
        self._saq_dequeue = worker.queue.dequeue
        self._waiting_for_jobs: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def install(self) -> None:
        self._worker.stop = self.stop  # type: ignore[method-assign]
        self._worker.queue.dequeue = self.dequeue  # type: ignore[method-assign]

    async def dequeue(self, *args: Any, **kwargs: Any) -> Any:
        if self._stopping:  # a loop that only now got to its dequeue: nothing more to take
            return None
        task = asyncio.current_task()
        assert task is not None
        self._waiting_for_jobs.add(task)
        try:
            return await self._saq_dequeue(*args, **kwargs)
        finally:
            self._waiting_for_jobs.discard(task)

    async def stop(self) -> None:
        worker = self._worker
        self._stopping = True
        worker.event.set()  # no new dequeue loop starts (SAQ checks it before starting one)
        await self._cancel_idle()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace
        while worker.job_task_contexts and loop.time() < deadline:  # noqa: ASYNC110 - SAQ has no such event
            await asyncio.sleep(0.05)
        await self._cancel_idle()  # loops whose job just ended went back to dequeue (and got None) or are done
        # SAQ's stop would give what is still running its whole grace again: a job overrunning an 8 s grace kept the
        # worker 18.2 s from SIGTERM to exit (10.0 s now); with the default 20 s, past the pod's 30 s
        # terminationGracePeriodSeconds, so SIGKILL. It gets what is left of the one grace, then SAQ cancels it and
        # retries its job. Private attribute, pinned by tests/unit/test_private_apis.py.
        # SAQ annotates it int; it only hands it to asyncio.wait_for, which takes a float.
        worker._shutdown_grace_period_s = max(0.0, deadline - loop.time())  # type: ignore[assignment]
        await self._saq_stop()

    async def _cancel_idle(self) -> None:
        """Cancel the loops waiting in ``dequeue`` and the upkeep loops, and wait until they have ended."""
        worker = self._worker
        idle = set(self._waiting_for_jobs) | {task for task in worker.tasks if task.get_name() != "process"}
        await asyncio.gather(*(cancel_and_wait(task) for task in idle), return_exceptions=True)
        worker.tasks.difference_update(idle)
