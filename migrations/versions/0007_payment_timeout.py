"""Payment timeout: ``order_events.reason``, and a partial index of pending orders by when they were placed.

The sweep that cancels unpaid orders reads ``WHERE status = 'pending' AND created_at <= :cutoff ORDER BY created_at,
id LIMIT n FOR UPDATE SKIP LOCKED``; the partial index holds only pending orders (a few minutes' worth), so each
batch starts at its first due row instead of scanning the whole status index.

Revision ID: 6b0e7d00e017
Revises: 5a1e0c0de016
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "6b0e7d00e017"
down_revision = "5a1e0c0de016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_events", sa.Column("reason", sa.String(length=32), nullable=True))
    op.create_index(
        "ix_orders_pending_created_at",
        "orders",
        ["created_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_pending_created_at", table_name="orders", postgresql_where=sa.text("status = 'pending'"))
    op.drop_column("order_events", "reason")
