"""Database URL helpers."""

from __future__ import annotations

from sqlalchemy.engine import make_url

__all__ = ("asyncpg_dsn",)


def asyncpg_dsn(database_url: str) -> str:
    """A plain ``postgresql://`` DSN for asyncpg (keeps a unix-socket ``?host=`` as asyncpg understands it)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
