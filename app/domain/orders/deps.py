"""Dependency providers of the orders domain."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar.di import Provide

from app.domain.orders.services import OrderService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {"orders": Provide(create_service_provider(OrderService))}
