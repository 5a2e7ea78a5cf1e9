"""Index ``orders (user_id, status, created_at, id)``, built CONCURRENTLY: order writes go on while it builds.

The customer's list filtered by status (and the admin list by user and status) reads its page from this index
alone, at any depth; without it, PostgreSQL walked all of the user's orders and checked each one's status.

``CREATE INDEX CONCURRENTLY`` cannot run inside a transaction, hence the autocommit block (the revisions before it
are committed first; ``migrations/env.py`` holds its advisory lock across that commit). A build that failed half-way
leaves an INVALID index behind, which ``IF NOT EXISTS`` would keep: it is dropped first. About 4 s at a million
orders on a 2-core machine (README, Operations).

Revision ID: 8d0f1a0e0115
Revises: 8d0f1a0e0015
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "8d0f1a0e0115"
down_revision = "8d0f1a0e0015"
branch_labels = None
depends_on = None

_INDEX = "ix_orders_user_id_status_created_at"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        invalid = op.get_bind().execute(
            sa.text("SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid"), {"name": _INDEX}
        )
        if invalid.first() is not None:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_INDEX}")
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_INDEX} ON orders (user_id, status, created_at, id)")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_INDEX}")
