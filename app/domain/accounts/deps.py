"""Dependency providers of the accounts domain, declared once and reused by every controller that needs them."""

from __future__ import annotations

from litestar.di import Provide

from app.db.providers import provide_service
from app.domain.accounts.lifecycle import AccountService
from app.domain.accounts.services import SessionService, UserService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {
    "users": provide_service(UserService),
    "sessions": provide_service(SessionService),
    "accounts": provide_service(AccountService),
}
