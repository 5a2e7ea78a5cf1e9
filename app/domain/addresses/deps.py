"""Dependency providers of the addresses domain."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar.di import Provide

from app.domain.addresses.services import AddressService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {
    "addresses": Provide(create_service_provider(AddressService)),
}
