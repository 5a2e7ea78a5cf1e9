"""Dependency providers of the addresses domain."""

from __future__ import annotations

from litestar.di import Provide

from app.db.providers import provide_service
from app.domain.addresses.services import AddressService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {
    "addresses": provide_service(AddressService),
}
