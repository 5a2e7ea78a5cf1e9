"""Dependency providers of the accounts domain, declared once and reused by every controller that needs them."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar.di import Provide

from app.domain.accounts.services import SessionService, UserService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {
    "users": Provide(create_service_provider(UserService)),
    "sessions": Provide(create_service_provider(SessionService)),
}
