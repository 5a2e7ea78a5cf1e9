"""Orders service. ``app:app`` (or ``app.main:app``) is the ASGI application, built on first access."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Lets Litestar's CLI autodiscovery find the app without LITESTAR_APP, without import-time side effects.
    if name == "app":
        from app.main import app

        return app
    raise AttributeError(name)
