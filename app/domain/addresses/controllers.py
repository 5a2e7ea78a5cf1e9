"""Routes of ``/addresses``: the caller's own shipping addresses."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from app.core.auth import Principal
from app.core.openapi import problems
from app.domain.addresses.schemas import AddressCreate, AddressRead, AddressUpdate
from app.domain.addresses.services import AddressService

__all__ = ("AddressController",)


class AddressController(Controller):
    """Every route acts on the caller's addresses only; another user's address is 404, like a missing one."""

    path = "/addresses"
    tags = ["addresses"]

    @get("/", responses=problems(401))
    async def list_addresses(
        self, request: Request[Principal, Any, Any], addresses: NamedDependency[AddressService]
    ) -> list[AddressRead]:
        """The caller's addresses, newest first (not paginated; an account keeps at most 100)."""
        return await addresses.list_own(request.user.id)

    @post("/", status_code=HTTP_201_CREATED, responses=problems(401, 413, 422))
    async def create_address(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[AddressCreate],
        addresses: NamedDependency[AddressService],
    ) -> AddressRead:
        """Add an address. ``country`` is an ISO 3166-1 alpha-2 code; more than 100 addresses is 422."""
        return await addresses.add_own(request.user.id, data)

    @get("/{address_id:uuid}", responses=problems(401, 404))
    async def get_address(
        self,
        request: Request[Principal, Any, Any],
        address_id: FromPath[uuid.UUID],
        addresses: NamedDependency[AddressService],
    ) -> AddressRead:
        """One of the caller's addresses."""
        return await addresses.read_own(request.user.id, address_id)

    @patch("/{address_id:uuid}", responses=problems(401, 404, 413, 422))
    async def update_address(
        self,
        request: Request[Principal, Any, Any],
        address_id: FromPath[uuid.UUID],
        data: JSONBody[AddressUpdate],
        addresses: NamedDependency[AddressService],
    ) -> AddressRead:
        """Change any subset of fields; ``null`` clears line2, region or phone. Past orders are not affected."""
        return await addresses.update_own(request.user.id, address_id, data)

    @delete("/{address_id:uuid}", status_code=HTTP_204_NO_CONTENT, responses=problems(401, 404))
    async def delete_address(
        self,
        request: Request[Principal, Any, Any],
        address_id: FromPath[uuid.UUID],
        addresses: NamedDependency[AddressService],
    ) -> None:
        """Delete the address. Past orders keep the address they were shipped to."""
        await addresses.delete_own(request.user.id, address_id)
