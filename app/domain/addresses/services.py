"""Address book rules: every operation is scoped to the owner, and someone else's address is simply not found.

Ownership is part of every query (``WHERE id = :id AND user_id = :caller AND deleted_at IS NULL``) rather than a check
after loading, so there is no code path where another user's row is read and then forgotten to be filtered.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, select, update

from app.core.errors import DomainError, NotFound
from app.db.services import Service, apply_changes
from app.domain.addresses.models import Address
from app.domain.addresses.schemas import AddressCreate, AddressRead, AddressUpdate

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

__all__ = ("MAX_ADDRESSES_PER_USER", "AddressService", "to_address_read")

#: The address list is not paginated, so its length is bounded here instead.
MAX_ADDRESSES_PER_USER: Final = 100

_READ_COLUMNS: Final = tuple(getattr(Address, name) for name in AddressRead.__struct_fields__)


def to_address_read(address: Address) -> AddressRead:
    return AddressRead(*(getattr(address, name) for name in AddressRead.__struct_fields__))


def _owned(user_id: uuid.UUID, address_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    return Address.id == address_id, Address.user_id == user_id, Address.deleted_at.is_(None)


class AddressService(Service[Address]):
    """A user's shipping addresses. Deleting is soft, so rows that orders refer to stay."""

    class Repo(SQLAlchemyAsyncRepository[Address]):
        model_type = Address

    repository_type = Repo

    async def list_own(self, user_id: uuid.UUID) -> list[AddressRead]:
        """The caller's addresses, newest first (at most :data:`MAX_ADDRESSES_PER_USER`)."""
        rows = await self.session.execute(
            select(*_READ_COLUMNS)
            .where(Address.user_id == user_id, Address.deleted_at.is_(None))
            .order_by(Address.created_at.desc(), Address.id.desc())
        )
        return [AddressRead(*row) for row in rows]

    async def read_own(self, user_id: uuid.UUID, address_id: uuid.UUID) -> AddressRead:
        row = (await self.session.execute(select(*_READ_COLUMNS).where(*_owned(user_id, address_id)))).first()
        if row is None:
            raise NotFound("Address")
        return AddressRead(*row)

    async def add_own(self, user_id: uuid.UUID, data: AddressCreate) -> AddressRead:
        """Add an address. More than :data:`MAX_ADDRESSES_PER_USER` live addresses is 422 ``address_limit_reached``.

        The limit is a bound on an unpaginated list, not an invariant: two concurrent creates at the limit can both
        pass the count, which overshoots by one request's worth and is harmless.
        """
        session = self.session
        count = await session.scalar(
            select(func.count()).select_from(Address).where(Address.user_id == user_id, Address.deleted_at.is_(None))
        )
        if (count or 0) >= MAX_ADDRESSES_PER_USER:
            raise DomainError(
                "address_limit_reached",
                f"An account can keep at most {MAX_ADDRESSES_PER_USER} addresses; delete one first",
            )
        address = Address(user_id=user_id, **msgspec.structs.asdict(data))
        session.add(address)
        await session.flush()
        created = to_address_read(address)
        await session.commit()
        return created

    async def update_own(self, user_id: uuid.UUID, address_id: uuid.UUID, data: AddressUpdate) -> AddressRead:
        """Change any subset of the caller's address; someone else's (or a deleted one) is 404 and stays untouched."""
        address = await self.repository.get_one_or_none(*_owned(user_id, address_id), with_for_update=True)
        if address is None:
            raise NotFound("Address")
        apply_changes(address, data)
        await self.session.flush()
        updated = to_address_read(address)
        await self.session.commit()
        return updated

    async def delete_own(self, user_id: uuid.UUID, address_id: uuid.UUID) -> None:
        """Soft-delete the caller's address. Past orders keep their snapshot; a second delete is 404 (it is gone)."""
        now = datetime.now(UTC)
        result = await self.session.execute(
            update(Address)
            .where(*_owned(user_id, address_id))
            .values(deleted_at=now, updated_at=now)
            .returning(Address.id)
        )
        if result.first() is None:
            raise NotFound("Address")
        await self.session.commit()
