"""``GET /admin/jobs``: what the worker has to do, and every email that has not gone out yet (with why).

SAQ keeps no index of failed jobs, but the outbox knows which events were published and not yet emailed; each is
matched with the email job that carries it among the queue's running and waiting jobs, so an operator sees attempts,
the last error and when the next retry is due — or no job at all (it used up its attempts and expired), in which
case nothing will re-send it: the row stays listed until someone handles it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar_saq import TaskQueues
from saq import Queue
from sqlalchemy import select

from app.core.auth import requires_permission
from app.core.openapi import problems
from app.core.permissions import ORDERS_MANAGE
from app.db.services import Service
from app.domain.orders.models import OrderEvent
from app.events.worker import EMAIL_JOB, QUEUE_NAME

__all__ = ("JobsController", "JobsService")

#: How many running and waiting jobs are scanned for the events they carry.
JOB_SCAN_LIMIT = 1000


class EmailJob(msgspec.Struct):
    status: str
    attempts: int
    retries: int
    error: str | None
    next_attempt_at: datetime | None


class UndeliveredEmail(msgspec.Struct):
    event_id: int | None
    type: str
    order_id: uuid.UUID
    dispatched_at: datetime | None
    job: EmailJob | None


class QueueState(msgspec.Struct):
    name: str
    queued: int
    active: int
    scheduled: int
    workers: int


class JobsOverview(msgspec.Struct):
    queue: QueueState
    undelivered_emails: list[UndeliveredEmail]


def _email_job(job: dict[str, Any] | None) -> EmailJob | None:
    if job is None:
        return None
    scheduled = datetime.fromtimestamp(job["scheduled"], UTC) if job.get("scheduled") else None
    error = job["error"].strip().splitlines()[-1] if job.get("error") else None  # the exception line, no traceback
    return EmailJob(
        status=str(job.get("status")),
        attempts=int(job.get("attempts") or 0),
        retries=int(job.get("retries") or 0),
        error=error,
        next_attempt_at=scheduled,
    )


class JobsService(Service[OrderEvent]):
    """Reads the outbox's unemailed events and matches each with the queued email job that carries it."""

    async def overview(self, queue: Queue, *, limit: int) -> JobsOverview:
        info = await queue.info()
        rows = (
            await self.session.execute(
                select(
                    OrderEvent.id, OrderEvent.event_id, OrderEvent.type, OrderEvent.order_id, OrderEvent.dispatched_at
                )
                .where(OrderEvent.emailed_at.is_(None))
                .order_by(OrderEvent.id)
                .limit(limit)
            )
        ).all()
        job_of: dict[int, dict[str, Any]] = {}
        if rows:
            waiting = (await queue.info(jobs=True, limit=JOB_SCAN_LIMIT))["jobs"]
            for job in waiting:
                if job.get("function") == EMAIL_JOB:
                    for row_id in (job.get("kwargs") or {}).get("event_row_ids", ()):
                        job_of[row_id] = job
        return JobsOverview(
            queue=QueueState(
                name=QUEUE_NAME,
                queued=info["queued"],
                active=info["active"],
                scheduled=info["scheduled"],
                workers=len(info["workers"]),
            ),
            undelivered_emails=[
                UndeliveredEmail(
                    event_id=row.event_id,
                    type=row.type,
                    order_id=row.order_id,
                    dispatched_at=row.dispatched_at,
                    job=_email_job(job_of.get(row.id)),
                )
                for row in rows
            ],
        )


class JobsController(Controller):
    path = "/admin/jobs"
    tags = ["admin"]
    guards = [requires_permission(ORDERS_MANAGE)]

    @get("/", responses=problems(401, 403, 422))
    async def jobs(
        self,
        jobs: NamedDependency[JobsService],
        task_queues: NamedDependency[TaskQueues],
        limit: Annotated[int, QueryParameter(ge=1, le=500, description="Undelivered emails to list.")] = 100,
    ) -> JobsOverview:
        """Queue depth and workers, and the oldest events whose email has not been accepted by the SMTP server."""
        return await jobs.overview(task_queues.get(QUEUE_NAME), limit=limit)
