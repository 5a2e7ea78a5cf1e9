"""Account lifecycle: profile changes, password change and reset, email verification (contract §2).

Tokens: 32 random bytes, only their SHA-256 stored (``account_tokens``), made by the worker when it sends the email
(``issue_one_time_token``), so the raw token exists only in the message. A use is a conditional
``UPDATE … SET used_at = now() WHERE used_at IS NULL AND expires_at > now()``: of two simultaneous uses, the second
waits for the first's row lock, re-checks, matches nothing, and gets 400 ``invalid_token`` — exactly one success.

A password change or reset ends the user's other credentials in the same transaction: every reset token, every
session (refresh-token family; a change keeps the caller's), and — through ``users.password_changed_at``, which
``UserService.load_principal`` compares with the token's ``iat`` — every access token issued before it. Open
WebSockets opened with such tokens are closed by the live-connections watchdog (``LIVE_CHECK_INTERVAL``, 5 s).

Emails are never sent here: the request writes a row to the ``account_emails`` outbox in its own transaction, and
the worker sends it (``app.events.account_emails``). ``forgot`` does exactly that and nothing else — no account
lookup — so an unknown, an inactive and an active account cost the same and answer the same.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.core.errors import Conflict, DomainError, NotFound
from app.core.security import PasswordHashing, hash_refresh_token, new_one_time_token
from app.db.services import Service, apply_changes
from app.domain.accounts.models import EMAIL_VERIFICATION, PASSWORD_RESET, AccountToken, TokenPurpose, User
from app.domain.accounts.schemas import PasswordChange, PasswordReset, ProfileUpdate, UserRead
from app.domain.accounts.services import (
    SessionService,
    queue_password_reset_email,
    queue_verification_email,
    to_user_read,
)

__all__ = ("AccountService", "issue_one_time_token", "withdraw_one_time_token")


def _now() -> datetime:
    return datetime.now(UTC)


def _invalid_token() -> DomainError:
    return DomainError("invalid_token", "The token is unknown, used or expired", status_code=400)


async def issue_one_time_token(session: AsyncSession, user_id: uuid.UUID, purpose: TokenPurpose, ttl: timedelta) -> str:
    """A new token for ``user_id`` (stored as its SHA-256; no commit). Called by the worker as it sends the email."""
    token = new_one_time_token()
    now = _now()
    await session.execute(
        insert(AccountToken).values(
            id=uuid.uuid4(),
            user_id=user_id,
            purpose=purpose,
            token_hash=hash_refresh_token(token),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


async def withdraw_one_time_token(session: AsyncSession, token: str) -> None:
    """Delete the token made by :func:`issue_one_time_token` (no commit): its email was not sent."""
    await session.execute(delete(AccountToken).where(AccountToken.token_hash == hash_refresh_token(token)))


class AccountService(Service[User]):
    """What users do to their own account."""

    class Repo(SQLAlchemyAsyncRepository[User]):
        model_type = User

    repository_type = Repo

    async def update_profile(self, user_id: uuid.UUID, data: ProfileUpdate) -> UserRead:
        user = await self.repository.get_one_or_none(User.id == user_id, with_for_update=True)
        if user is None:
            raise NotFound("User")
        apply_changes(user, data)
        await self.session.commit()
        return await self._read(user_id)

    async def change_password(
        self,
        user_id: uuid.UUID,
        data: PasswordChange,
        passwords: PasswordHashing,
        *,
        keep_session: uuid.UUID | None,
    ) -> None:
        """Check the current password (403 ``invalid_credentials`` if wrong), then set the new one.

        The user's row stays locked from the check to the commit, so two changes in a row are applied one after the
        other, each checked against the password the other left.
        """
        user = await self.repository.get_one_or_none(User.id == user_id, with_for_update=True)
        if user is None:
            raise NotFound("User")
        ok, _ = await passwords.verify(user.password_hash, data.current_password)
        if not ok:
            await self.session.rollback()
            raise DomainError("invalid_credentials", "The current password is wrong", status_code=403)
        await self._set_password(user_id, await passwords.hash(data.new_password), keep_session=keep_session)
        await self.session.commit()

    async def request_password_reset(self, email: str) -> None:
        """Queue a reset email for whoever owns ``email``: the worker finds out, not the request (no enumeration)."""
        await queue_password_reset_email(self.session, email)
        await self.session.commit()

    async def reset_password(self, data: PasswordReset, passwords: PasswordHashing) -> None:
        """Use a reset token (400 ``invalid_token`` unless live) and set the new password.

        A reset also verifies the address: the token came through it.
        """
        user_id = await self._use_token(data.token, PASSWORD_RESET)
        await self._set_password(user_id, await passwords.hash(data.new_password), keep_session=None)
        await self.session.execute(update(User).where(User.id == user_id).values(email_verified=True))
        await self.session.commit()

    async def request_verification(self, user_id: uuid.UUID) -> None:
        """Queue a verification email; 409 ``already_verified`` if there is nothing to verify."""
        verified = await self.session.scalar(select(User.email_verified).where(User.id == user_id))
        if verified is None:
            raise NotFound("User")
        if verified:
            raise Conflict("already_verified", "This email address is already verified")
        await queue_verification_email(self.session, user_id)
        await self.session.commit()

    async def verify_email(self, token: str) -> None:
        user_id = await self._use_token(token, EMAIL_VERIFICATION)
        await self.session.execute(update(User).where(User.id == user_id).values(email_verified=True))
        await self.session.commit()

    async def _use_token(self, token: str, purpose: TokenPurpose) -> uuid.UUID:
        """Mark the token used and return its user; 400 ``invalid_token`` if it is unknown, used, expired, or its
        account is inactive. The conditional UPDATE is the compare-and-set that makes it single-use."""
        now = _now()
        user_id: uuid.UUID | None = await self.session.scalar(
            update(AccountToken)
            .where(
                AccountToken.token_hash == hash_refresh_token(token),
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
                AccountToken.user_id.in_(select(User.id).where(User.is_active.is_(True))),
            )
            .values(used_at=now)
            .returning(AccountToken.user_id)
        )
        if user_id is None:
            await self.session.rollback()
            raise _invalid_token()
        return user_id

    async def _set_password(self, user_id: uuid.UUID, password_hash: str, *, keep_session: uuid.UUID | None) -> None:
        """New password; every reset token and every session but ``keep_session`` ends; older access tokens too."""
        now = _now()
        await self.session.execute(
            update(User).where(User.id == user_id).values(password_hash=password_hash, password_changed_at=now)
        )
        await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.purpose == PASSWORD_RESET,
                AccountToken.used_at.is_(None),
            )
            .values(used_at=now)
        )
        await SessionService(session=self.session).revoke_all(
            user_id, reason="password_changed", except_session=keep_session
        )

    async def _read(self, user_id: uuid.UUID) -> UserRead:
        self.session.expire_all()
        user = await self.repository.get_one_or_none(User.id == user_id, load=(selectinload(User.roles),))
        if user is None:
            raise NotFound("User")
        return to_user_read(user)
