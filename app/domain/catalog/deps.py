"""Dependency providers of the catalog domain."""

from __future__ import annotations

from litestar.di import Provide

from app.db.providers import provide_service
from app.domain.catalog.services import ProductService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {
    "products": provide_service(ProductService),
}
