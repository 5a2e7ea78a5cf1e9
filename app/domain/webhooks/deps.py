"""Dependency providers of the webhooks domain."""

from __future__ import annotations

from litestar.di import Provide

from app.db.providers import provide_service
from app.domain.webhooks.services import WebhookService

__all__ = ("dependencies",)

dependencies: dict[str, Provide] = {
    "webhooks": provide_service(WebhookService),
}
