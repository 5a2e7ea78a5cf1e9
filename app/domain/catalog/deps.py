"""Dependency providers of the catalog domain."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar.di import Provide

from app.domain.catalog.services import ProductService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {
    "products": Provide(create_service_provider(ProductService)),
}
