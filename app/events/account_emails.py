"""Account emails (password reset, email verification): outbox → relay → SAQ job → SMTP, like the order emails.

The request only writes a row to ``account_emails`` in its own transaction (no SMTP, no Redis). In each worker an
:class:`AccountEmailRelay` looks for unsent rows every ``POLL_INTERVAL`` (0.2 s; one indexed query on the partial
index of unsent rows) and hands each to the queue as a ``send_account_email`` job keyed by the row, so a row handed
over twice is still one job. The job, in one transaction holding the row's lock:

1. finds the recipient — for a reset, the *active* account with that address (none: the row is marked ``dropped``
   and nothing is sent, which is how ``forgot`` stays silent about unknown and inactive accounts); for a
   verification, the active, still unverified account;
2. makes a fresh one-time token (stored as its SHA-256) and commits it on a connection of its own, so the link
   works the moment the message arrives; renders the text and HTML message with a link from ``PUBLIC_BASE_URL``;
3. sends it, then marks the row ``sent`` and commits. If SMTP refuses, the undelivered token is deleted again and
   SAQ retries the job with backoff (``EMAIL_MAX_ATTEMPTS``).

Durable: a row stays unsent until a job has sent it. If Redis was down when the relay tried, it tries again; if
Redis (or a worker) lost the job, the relay hands the row over again after ``REHAND_AFTER`` (10 min; while the job
still exists, its key makes that a no-op). Rows older than ``GIVE_UP_AFTER`` (1 day) are left alone: a reset link
that late is of no use. The token appears only in the message: never in a row, a job's arguments or result, or a
log line (the SMTP sender logs recipient and subject).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

from litestar_saq import CronJob
from saq.types import Context
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.background import cancel_and_wait
from app.core.logging import get_logger
from app.domain.accounts.lifecycle import issue_one_time_token, withdraw_one_time_token
from app.domain.accounts.models import (
    EMAIL_VERIFICATION,
    PASSWORD_RESET,
    AccountEmail,
    AccountToken,
    TokenPurpose,
    User,
)
from app.events.email import OutgoingEmail
from app.events.templates import render_email

if TYPE_CHECKING:
    from saq import Queue

    from app.events.worker import WorkerResources

__all__ = (
    "ACCOUNT_EMAIL_JOB",
    "SCHEDULED_TASKS",
    "TASKS",
    "AccountEmailRelay",
    "purge_account_rows",
    "render_account_email",
    "send_account_email",
    "start_account_email_relay",
    "stop_account_email_relay",
)

logger = get_logger("app.account_emails")

ACCOUNT_EMAIL_JOB: Final = "send_account_email"
POLL_INTERVAL: Final = 0.2
BATCH: Final = 100
REHAND_AFTER: Final = timedelta(minutes=10)
GIVE_UP_AFTER: Final = timedelta(days=1)
JOB_TIMEOUT_S: Final = 60
_RELAY_KEY: Final = "account_email_relay"

_SUBJECTS: Final = {PASSWORD_RESET: "Reset your password", EMAIL_VERIFICATION: "Confirm your email address"}
_PAGES: Final = {PASSWORD_RESET: "/reset-password", EMAIL_VERIFICATION: "/verify-email"}


@dataclass(frozen=True, slots=True)
class AccountMessage:
    purpose: TokenPurpose
    to: str
    name: str
    token: str
    valid_for: timedelta


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day{'s' if seconds != 86400 else ''}"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour{'s' if seconds != 3600 else ''}"
    return f"{round(seconds / 60)} minutes"


def render_account_email(message: AccountMessage, public_base_url: str) -> OutgoingEmail:
    """The text and HTML email, with the link ``PUBLIC_BASE_URL`` + ``/reset-password?token=…`` (or verify-email)."""
    subject = _SUBJECTS[message.purpose]
    context = {
        "subject": subject,
        "name": message.name,
        "email": message.to,
        "link": f"{public_base_url}{_PAGES[message.purpose]}?{urlencode({'token': message.token})}",
        "valid_for": _duration(message.valid_for),
    }
    return render_email(message.purpose, message.to, subject, context)


# -------------------------------------------------------------------------------------------------------- job


async def send_account_email(ctx: Context, *, row_id: int) -> dict[str, Any]:
    """Send one outbox row's email (see the module docstring); a no-op for a row already done."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    settings = resources.settings
    async with resources.session_maker() as session:
        row = await session.get(AccountEmail, row_id, with_for_update=True)
        if row is None or row.sent_at is not None:
            return {"outcome": "done_before"}
        purpose: TokenPurpose = PASSWORD_RESET if row.kind == PASSWORD_RESET else EMAIL_VERIFICATION
        recipient = await _recipient(session, row)
        if recipient is None:
            await _finish(session, row, "dropped")
            return {"outcome": "dropped"}
        ttl = timedelta(
            seconds=settings.password_reset_ttl if purpose == PASSWORD_RESET else settings.email_verification_ttl
        )
        token = await _committed_token(resources.session_maker, recipient.id, purpose, ttl)
        message = AccountMessage(purpose, recipient.email, recipient.full_name or recipient.email, token, ttl)
        try:
            await resources.sender.send(render_account_email(message, settings.public_base_url))
        except BaseException:
            await _withdraw(resources.session_maker, token)
            raise
        await _finish(session, row, "sent")
    return {"outcome": "sent"}


async def _committed_token(
    session_maker: async_sessionmaker[AsyncSession], user_id: uuid.UUID, purpose: TokenPurpose, ttl: timedelta
) -> str:
    """A token committed on a connection of its own, before the email goes out: the recipient can use the link the
    moment it arrives (measured: under load the reset came in before a commit made after sending), while the job's
    own transaction keeps the outbox row locked until the row is marked sent."""
    async with session_maker() as session:
        token = await issue_one_time_token(session, user_id, purpose, ttl)
        await session.commit()
    return token


async def _withdraw(session_maker: async_sessionmaker[AsyncSession], token: str) -> None:
    """Delete a token whose email was not accepted (best effort: unsent, it is unknown to anyone and expires)."""
    with contextlib.suppress(Exception):
        async with session_maker() as session:
            await withdraw_one_time_token(session, token)
            await session.commit()


async def _recipient(session: AsyncSession, row: AccountEmail) -> User | None:
    if row.kind == PASSWORD_RESET:
        if row.email is None:
            return None
        condition = User.email == row.email
    else:
        condition = (User.id == row.user_id) & User.email_verified.is_(False)
    user: User | None = await session.scalar(select(User).where(condition, User.is_active.is_(True)))
    return user


async def _finish(session: AsyncSession, row: AccountEmail, outcome: str) -> None:
    row.sent_at = datetime.now(UTC)
    row.outcome = outcome
    await session.commit()


# ------------------------------------------------------------------------------------------------------ relay


class AccountEmailRelay:
    """Hands unsent outbox rows to the queue, every ``POLL_INTERVAL``; any number of workers may run one."""

    def __init__(
        self,
        session_maker: async_sessionmaker[AsyncSession],
        queue: Queue,
        settings: Settings,
        *,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._session_maker = session_maker
        self._queue = queue
        self._settings = settings
        self._poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="account-email-relay")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def relay(self) -> int:
        """One pass: lock a batch of rows to hand over (skipping rows another relay holds), enqueue, mark, commit."""
        now = datetime.now(UTC)
        async with self._session_maker() as session:
            ids = list(
                (
                    await session.scalars(
                        select(AccountEmail.id)
                        .where(
                            AccountEmail.sent_at.is_(None),
                            or_(AccountEmail.enqueued_at.is_(None), AccountEmail.enqueued_at < now - REHAND_AFTER),
                            AccountEmail.created_at > now - GIVE_UP_AFTER,
                        )
                        .order_by(AccountEmail.id)
                        .limit(BATCH)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            if not ids:
                return 0
            for row_id in ids:
                await self._queue.enqueue(
                    ACCOUNT_EMAIL_JOB,
                    key=f"account-email:{row_id}",
                    timeout=JOB_TIMEOUT_S,
                    retries=self._settings.email_max_attempts,
                    retry_delay=self._settings.email_retry_delay,
                    retry_backoff=self._settings.email_retry_backoff,
                    row_id=row_id,
                )
            await session.execute(update(AccountEmail).where(AccountEmail.id.in_(ids)).values(enqueued_at=now))
            await session.commit()
        return len(ids)

    async def _run(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                while await self.relay() == BATCH:
                    pass
                failures = 0
            except Exception as exc:  # noqa: BLE001 - Redis or the database down: keep trying, with backoff
                failures += 1
                logger.warning("account_email_relay_failed", error=type(exc).__name__, attempt=failures)
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))


async def start_account_email_relay(ctx: Context) -> None:
    """Worker startup hook (after the worker's own, which puts its resources in ``ctx``)."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    relay = AccountEmailRelay(resources.session_maker, ctx["worker"].queue, resources.settings)
    ctx[_RELAY_KEY] = relay  # type: ignore[typeddict-unknown-key]
    relay.start()


async def stop_account_email_relay(ctx: Context) -> None:
    relay: AccountEmailRelay | None = ctx.get(_RELAY_KEY)  # type: ignore[assignment]
    if relay is not None:
        await relay.stop()


# ---------------------------------------------------------------------------------------------------- upkeep

#: Rows per purge transaction and transactions per run, as for refresh tokens.
PURGE_BATCH: Final = 2000
PURGE_MAX_BATCHES: Final = 100
#: Done outbox rows and used or expired tokens are kept a day (to look into a complaint), then deleted.
KEEP_FOR: Final = timedelta(days=1)


async def purge_account_rows(ctx: Context) -> dict[str, Any]:
    """Delete done account emails and used or expired one-time tokens older than a day, in bounded batches."""
    resources: WorkerResources = ctx["orders"]  # type: ignore[typeddict-item]
    cutoff = datetime.now(UTC) - KEEP_FOR
    statements = (
        delete(AccountEmail).where(
            AccountEmail.id.in_(
                select(AccountEmail.id)
                .where(or_(AccountEmail.sent_at < cutoff, AccountEmail.created_at < cutoff - GIVE_UP_AFTER))
                .limit(PURGE_BATCH)
            )
        ),
        delete(AccountToken).where(
            AccountToken.id.in_(
                select(AccountToken.id)
                .where(or_(AccountToken.expires_at < cutoff, AccountToken.used_at < cutoff))
                .limit(PURGE_BATCH)
            )
        ),
    )
    deleted = 0
    for _ in range(PURGE_MAX_BATCHES):
        async with resources.session_maker() as session:
            counts = [int((await session.execute(s)).rowcount or 0) for s in statements]  # type: ignore[attr-defined]
            await session.commit()
        deleted += sum(counts)
        if max(counts) < PURGE_BATCH:
            break
    return {"deleted": deleted}


TASKS: Final = (send_account_email, purge_account_rows)
SCHEDULED_TASKS: Final = (CronJob(function=purge_account_rows, cron="29 * * * *", timeout=300),)
