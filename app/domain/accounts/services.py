"""Accounts: registration, credentials, roles, and refresh-token sessions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from advanced_alchemy.exceptions import IntegrityError
from advanced_alchemy.filters import OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import DateTime, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import selectinload

from app.core.auth import Principal
from app.core.email_address import plain_email
from app.core.errors import AuthenticationFailed, Conflict, NotFound, is_unique_violation
from app.core.pagination import Page, PageParams
from app.core.security import PasswordHashing, hash_refresh_token, new_refresh_token
from app.db.prepared import Prepared
from app.db.services import Service
from app.domain.accounts.models import (
    EMAIL_VERIFICATION,
    PASSWORD_RESET,
    AccountEmail,
    RefreshToken,
    RefreshTokenFamily,
    Role,
    User,
    user_roles,
)
from app.domain.accounts.schemas import Registration, Session, UserRead, UserUpdate

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy.engine import CursorResult
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = (
    "DEFAULT_ROLE",
    "IssuedRefreshToken",
    "SessionService",
    "UserService",
    "queue_password_reset_email",
    "queue_verification_email",
    "to_user_read",
)

DEFAULT_ROLE: Final = "customer"


_PRINCIPAL: Final = Prepared(
    select(User.email, Role.name.label("role"), Role.permissions)
    .outerjoin(user_roles, user_roles.c.user_id == User.id)
    .outerjoin(Role, Role.name == user_roles.c.role_name)
    .where(
        User.id == bindparam("user_id"),
        User.is_active.is_(True),
        # A token issued before the last password change is refused (contract §2).
        or_(
            User.password_changed_at.is_(None),
            User.password_changed_at <= bindparam("issued_at", type_=DateTime(timezone=True)),
        ),
    )
)


def _now() -> datetime:
    return datetime.now(UTC)


def _permissions_of(roles: Iterable[Role]) -> list[str]:
    return sorted({permission for role in roles for permission in role.permissions})


async def queue_verification_email(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Put a verification email for ``user_id`` in the outbox (part of the caller's transaction; no commit)."""
    await session.execute(insert(AccountEmail).values(kind=EMAIL_VERIFICATION, user_id=user_id))


async def queue_password_reset_email(session: AsyncSession, email: str) -> None:
    """Put a reset email for whoever owns ``email`` in the outbox (no commit): the worker looks the account up."""
    await session.execute(insert(AccountEmail).values(kind=PASSWORD_RESET, email=plain_email(email)))


def to_user_read(user: User) -> UserRead:
    """The public shape of a user (its ``roles`` must be loaded)."""
    return UserRead(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified,
        full_name=user.full_name,
        is_active=user.is_active,
        roles=[role.name for role in user.roles],
        permissions=_permissions_of(user.roles),
        created_at=user.created_at,
    )


class UserService(Service[User]):
    """Users and their roles. Emails are stored lower-cased; the unique index decides duplicates."""

    class Repo(SQLAlchemyAsyncRepository[User]):
        model_type = User

    repository_type = Repo
    loader_options = (selectinload(User.roles),)

    async def register(self, data: Registration, passwords: PasswordHashing) -> UserRead:
        """Create a customer account. A concurrent registration of the same email loses on the unique index → 409."""
        email = plain_email(data.email)
        password_hash = await passwords.hash(data.password)
        try:
            user = await self.repository.add(
                User(
                    email=email,
                    full_name=data.full_name,
                    password_hash=password_hash,
                )
            )
        except IntegrityError as exc:
            if is_unique_violation(exc, "uq_users_email"):
                raise Conflict("email_taken", "An account with this email already exists") from None
            raise
        user_id = user.id  # read before commit: a session that expires on commit would reload it outside greenlet
        await self._set_roles(user_id, [DEFAULT_ROLE])
        await queue_verification_email(self.session, user_id)  # sent by the worker once this commits
        await self.session.commit()
        return await self.read(user_id)

    async def create_with_roles(
        self,
        *,
        email: str,
        password: str,
        roles: Sequence[str],
        passwords: PasswordHashing,
        full_name: str | None,
    ) -> UserRead:
        """Create (or, for an existing email, update password and roles of) a user: bootstraps admins from the CLI."""
        email = email.strip().lower()
        existing = await self.repository.get_one_or_none(User.email == email)
        if existing is None:
            email = plain_email(email)  # an existing row keeps its address (it predates the rule), a new one may not
        password_hash = await passwords.hash(password)
        if existing is None:
            existing = await self.repository.add(User(email=email, full_name=full_name, password_hash=password_hash))
        else:
            existing.password_hash = password_hash
            existing.is_active = True
        await self._set_roles(existing.id, roles)
        await self.session.commit()
        return await self.read(existing.id)

    async def authenticate(self, email: str, password: str, passwords: PasswordHashing) -> User:
        """Check credentials. Unknown email, wrong password and inactive account fail identically (and take as long)."""
        user: User | None = await self.repository.get_one_or_none(User.email == email.strip().lower())
        ok, new_hash = await passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or not user.is_active:
            raise AuthenticationFailed("invalid_credentials", "Invalid email or password")
        if new_hash is not None:
            user.password_hash = new_hash
            await self.session.commit()
        return user

    async def read(self, user_id: uuid.UUID) -> UserRead:
        user = await self.repository.get_one_or_none(User.id == user_id, load=self.loader_options)
        if user is None:
            raise NotFound("User")
        return to_user_read(user)

    async def list_users(self, q: str | None, paging: PageParams) -> Page[UserRead]:
        filters = []
        if q:
            # autoescape: a "%" or "_" the caller types is a character to find, not a LIKE wildcard.
            term = q.strip()
            filters.append(
                or_(User.email.icontains(term, autoescape=True), User.full_name.icontains(term, autoescape=True))
            )
        users, total = await self.repository.get_many_and_count(
            *filters,
            OrderBy("created_at", "desc"),
            OrderBy("id", "desc"),
            paging.limit_offset,
            load=self.loader_options,
            count_with_window_function=False,
        )
        return Page.of([to_user_read(u) for u in users], total, paging)

    async def update_user(self, actor_id: uuid.UUID, user_id: uuid.UUID, data: UserUpdate) -> UserRead:
        """Admin change. Deactivating takes effect on the user's very next request (checked per request)."""
        user = await self.repository.get_one_or_none(User.id == user_id, with_for_update=True)
        if user is None:
            raise NotFound("User")
        if data.is_active is False and user_id == actor_id:
            raise Conflict("cannot_deactivate_self", "You cannot deactivate your own account")
        if isinstance(data.is_active, bool):
            user.is_active = data.is_active
        if isinstance(data.roles, list):
            await self._set_roles(user_id, data.roles)
        if data.is_active is False:
            # Access tokens stop working through the per-request check; refresh sessions are ended for good.
            await SessionService(session=self.session).revoke_all(user_id, reason="user_deactivated")
        await self.session.commit()
        self.session.expire(user)
        return await self.read(user_id)

    async def load_principal(self, user_id: uuid.UUID, *, issued_at: datetime) -> Principal | None:
        """The caller behind an access token issued at ``issued_at``, or None if the account is gone or inactive, or
        its password changed after the token was issued.

        Runs on every authenticated request, so it is one prepared statement (the user's row joined to their roles),
        not an ORM query.
        """
        rows = await _PRINCIPAL.fetch(self.direct, user_id=user_id, issued_at=issued_at)
        if not rows:
            return None
        roles = tuple(sorted(row["role"] for row in rows if row["role"]))
        permissions = frozenset(p for row in rows if row["permissions"] for p in row["permissions"])
        return Principal(id=user_id, email=rows[0]["email"], roles=roles, permissions=permissions)

    async def _set_roles(self, user_id: uuid.UUID, roles: Iterable[str]) -> None:
        session = self.session
        await session.execute(delete(user_roles).where(user_roles.c.user_id == user_id))
        wanted = sorted(set(roles))
        if wanted:
            await session.execute(
                insert(user_roles),
                [{"user_id": user_id, "role_name": r} for r in wanted],
            )


@dataclass(frozen=True, slots=True)
class IssuedRefreshToken:
    token: str
    family_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime


class SessionService(Service[RefreshTokenFamily]):
    """Refresh-token families: one per login, rotated on every refresh, revoked on reuse, logout or by the user."""

    class Repo(SQLAlchemyAsyncRepository[RefreshTokenFamily]):
        model_type = RefreshTokenFamily

    repository_type = Repo

    async def start(
        self, user_id: uuid.UUID, user_agent: str | None, ttl: timedelta, *, max_age: timedelta
    ) -> IssuedRefreshToken:
        """A new session (family); its tokens never outlive ``max_age`` (``REFRESH_SESSION_MAX_AGE``) from now."""
        now = _now()
        family = await self.repository.add(
            RefreshTokenFamily(
                user_id=user_id,
                user_agent=(user_agent or None) and user_agent[:512],
                created_at=now,
                last_used_at=now,
                expires_at=now + min(ttl, max_age),
            )
        )
        issued = await self._issue(family.id, user_id, now, min(ttl, max_age))
        await self.session.commit()
        return issued

    async def rotate(self, presented: str, ttl: timedelta, *, max_age: timedelta) -> IssuedRefreshToken:
        """Exchange a refresh token for a new one in the same family.

        A family ends ``max_age`` after its login however often it is rotated (30 days by default): each new token
        expires at the earlier of ``now + ttl`` and that end, and a token presented after it is refused, so a stolen
        cookie that is refreshed every day still dies with its session.

        The race between two refreshes of one token is decided by a conditional ``UPDATE … WHERE rotated_at IS NULL``:
        PostgreSQL's row lock makes the second wait for the first, then re-check the condition and match nothing. The
        loser is treated as a reuse, which revokes the family — the winner's new token included, as the contract
        wants: a stolen token that races its owner ends the session for both.
        """
        session = self.session
        now = _now()
        token_hash = hash_refresh_token(presented)
        claimed = (
            await session.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.token_hash == token_hash,
                    RefreshToken.rotated_at.is_(None),
                )
                .values(rotated_at=now)
                .returning(RefreshToken.family_id, RefreshToken.expires_at)
            )
        ).one_or_none()
        if claimed is None:
            family_id = await session.scalar(
                select(RefreshToken.family_id).where(RefreshToken.token_hash == token_hash)
            )
            if family_id is None:
                raise AuthenticationFailed("invalid_refresh_token", "Unknown refresh token")
            await self._revoke(RefreshTokenFamily.id == family_id, now, reason="reuse")
            await session.commit()
            raise AuthenticationFailed(
                "refresh_token_reused",
                "Refresh token already used; the session was revoked",
            )
        family_id, expires_at = claimed
        family = (
            await session.execute(
                select(
                    RefreshTokenFamily.user_id,
                    RefreshTokenFamily.revoked_at,
                    RefreshTokenFamily.created_at,
                    User.is_active,
                )
                .join(User, User.id == RefreshTokenFamily.user_id)
                .where(RefreshTokenFamily.id == family_id)
                .with_for_update(of=RefreshTokenFamily)
            )
        ).one()
        if family.revoked_at is not None or not family.is_active:
            await session.rollback()
            raise AuthenticationFailed("session_revoked", "This session has been revoked")
        session_ends = family.created_at + max_age
        if expires_at <= now or session_ends <= now:
            await session.rollback()
            raise AuthenticationFailed("refresh_token_expired", "Refresh token expired; log in again")
        issued = await self._issue(family_id, family.user_id, now, min(ttl, session_ends - now))
        await session.execute(
            update(RefreshTokenFamily)
            .where(RefreshTokenFamily.id == family_id)
            .values(last_used_at=now, expires_at=issued.expires_at)
        )
        await session.commit()
        return issued

    async def family_of(self, presented: str | None) -> uuid.UUID | None:
        if not presented:
            return None
        family_id: uuid.UUID | None = await self.session.scalar(
            select(RefreshToken.family_id).where(RefreshToken.token_hash == hash_refresh_token(presented))
        )
        return family_id

    async def end(self, presented: str) -> None:
        """Logout: revoke the presented token's family. Unknown or already-revoked tokens are a no-op."""
        family_id = await self.family_of(presented)
        if family_id is not None:
            await self._revoke(RefreshTokenFamily.id == family_id, _now(), reason="logout")
            await self.session.commit()

    async def list_active(self, user_id: uuid.UUID, current_family: uuid.UUID | None) -> list[Session]:
        families = await self.repository.get_many(
            RefreshTokenFamily.user_id == user_id,
            RefreshTokenFamily.revoked_at.is_(None),
            RefreshTokenFamily.expires_at > _now(),
            order_by=[
                (RefreshTokenFamily.created_at, True),
                (RefreshTokenFamily.id, True),
            ],
        )
        return [
            Session(
                id=f.id,
                created_at=f.created_at,
                last_used_at=f.last_used_at,
                user_agent=f.user_agent,
                current=f.id == current_family,
            )
            for f in families
        ]

    async def revoke_for_user(self, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        """Revoke one of the caller's sessions; someone else's or an unknown id is a 404."""
        revoked = await self._revoke(
            (RefreshTokenFamily.id == family_id) & (RefreshTokenFamily.user_id == user_id),
            _now(),
            reason="revoked",
        )
        if not revoked:
            exists = await self.repository.exists(
                RefreshTokenFamily.id == family_id,
                RefreshTokenFamily.user_id == user_id,
            )
            if not exists:
                raise NotFound("Session")
        await self.session.commit()

    async def revoke_all(self, user_id: uuid.UUID, *, reason: str, except_session: uuid.UUID | None = None) -> None:
        """Revoke every session of a user but ``except_session`` (no commit: part of the caller's transaction)."""
        condition = RefreshTokenFamily.user_id == user_id
        if except_session is not None:
            condition &= RefreshTokenFamily.id != except_session
        await self._revoke(condition, _now(), reason=reason)

    async def purge_ended(self, *, limit: int) -> tuple[int, int]:
        """Delete at most ``limit`` ended sessions and ``limit`` expired tokens, in one transaction (committed).

        Ended: revoked, or past the expiry of its newest token; its tokens go with it (ON DELETE CASCADE). A live
        session's rotated tokens are kept until they expire, so replaying one is still detected as reuse until
        then; after that it is an unknown token (401 all the same). Returns (sessions, tokens) deleted; the caller
        repeats while a batch comes back full, so each transaction stays short (locks, WAL) whatever the backlog.
        """
        now = _now()
        sessions = await self.session.execute(
            delete(RefreshTokenFamily).where(
                RefreshTokenFamily.id.in_(
                    select(RefreshTokenFamily.id)
                    .where(or_(RefreshTokenFamily.revoked_at.is_not(None), RefreshTokenFamily.expires_at <= now))
                    .limit(limit)
                )
            )
        )
        tokens = await self.session.execute(
            delete(RefreshToken).where(
                RefreshToken.id.in_(select(RefreshToken.id).where(RefreshToken.expires_at <= now).limit(limit))
            )
        )
        await self.session.commit()
        return (
            int(cast("CursorResult[Any]", sessions).rowcount or 0),
            int(cast("CursorResult[Any]", tokens).rowcount or 0),
        )

    async def _revoke(self, condition: object, now: datetime, *, reason: str) -> int:
        result = await self.session.execute(
            update(RefreshTokenFamily)
            .where(condition, RefreshTokenFamily.revoked_at.is_(None))  # type: ignore[arg-type]
            .values(revoked_at=now, revoked_reason=reason)
        )
        return int(cast("CursorResult[Any]", result).rowcount or 0)

    async def _issue(
        self, family_id: uuid.UUID, user_id: uuid.UUID, now: datetime, ttl: timedelta
    ) -> IssuedRefreshToken:
        token = new_refresh_token()
        expires_at = now + ttl
        await self.session.execute(
            insert(RefreshToken).values(
                id=uuid.uuid4(),
                family_id=family_id,
                token_hash=hash_refresh_token(token),
                created_at=now,
                expires_at=expires_at,
            )
        )
        return IssuedRefreshToken(token=token, family_id=family_id, user_id=user_id, expires_at=expires_at)
