"""The migrated database schema equals the models' metadata: no model change is missing a migration."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import MIGRATIONS_VERSION_TABLE
from app.models import metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "version_table": MIGRATIONS_VERSION_TABLE},
    )
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        differences = await conn.run_sync(_differences)

    assert differences == []


async def test_migrations_seed_the_three_roles_with_their_permissions(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT name, permissions FROM roles ORDER BY name"))).all()

    assert {name: sorted(perms) for name, perms in rows} == {
        "admin": ["orders:manage", "products:manage", "users:manage", "webhooks:manage"],
        "customer": [],
        "staff": ["orders:manage", "products:manage"],
    }
