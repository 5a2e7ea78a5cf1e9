"""Dependency providers of the orders domain."""

from __future__ import annotations

from litestar.di import Provide

from app.db.providers import provide_service
from app.domain.orders.services import OrderService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {"orders": provide_service(OrderService)}
