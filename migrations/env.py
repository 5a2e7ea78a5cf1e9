"""Alembic environment: the target metadata is every model of the app (``app.models``).

Migrations run in one transaction (PostgreSQL has transactional DDL, so a failing migration leaves nothing half
applied) under an advisory lock, so two deploys starting at once apply each revision exactly once. The lock is a
transaction lock held by a second connection for the whole run: a revision that must run outside a transaction
(``CREATE INDEX CONCURRENTLY``, in an ``autocommit_block``) commits the revisions before it, so the lock cannot live
in the migrating transaction, and a session lock would stay behind on a server connection of a transaction-pooling
proxy (``DB_POOL_MODE=transaction``), which only keeps a client on one server connection while a transaction is open.
"""

import asyncio
from typing import TYPE_CHECKING, cast

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

from app.models import metadata

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig
    from sqlalchemy.engine import Connection

config: "AlembicCommandConfig" = context.config  # type: ignore[assignment]

#: Any constant shared by every deploy of this service; it names the advisory lock that serialises migrations.
MIGRATION_LOCK_ID = 0x6F72646572  # "order"


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=False,
        version_table=getattr(config, "version_table_name", "alembic_versions"),
        version_table_schema=getattr(config, "version_table_schema", None),
        user_module_prefix="sa.",
        render_as_batch=False,
        transaction_per_migration=False,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    _configure(url=config.db_url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: "Connection") -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = getattr(config, "engine", None)
    if engine is None:
        section = config.get_section(config.config_ini_section) or {}
        section["sqlalchemy.url"] = config.db_url
        engine = async_engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    connectable = cast("AsyncEngine", engine)
    async with connectable.connect() as lock:
        # Sent as one simple-protocol query: a prepared statement's portal would stay open with its snapshot until the
        # transaction ends, and CREATE INDEX CONCURRENTLY waits for every transaction that holds a snapshot.
        holder = (await lock.get_raw_connection()).driver_connection
        await holder.execute(f"BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        try:
            async with connectable.connect() as connection:
                await connection.run_sync(do_run_migrations)
        finally:
            await holder.execute("ROLLBACK")
    await connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
