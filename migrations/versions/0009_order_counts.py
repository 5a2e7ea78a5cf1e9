"""Exact order counts without counting: ``order_counts`` per (user, status), kept by triggers on ``orders``.

Every order list answers with its ``total``; counting a million orders cost 100-250 ms per request. The triggers are
statement-level with transition tables: one ``INSERT … ON CONFLICT`` per writing statement, whatever its size (a
seed batch of 2,000 orders costs the same one upsert as a single order), and they fire for every writer — the API's
statements, COPY, jobs, psql. Rows are upserted in key order, so two statements can never deadlock on them.

The backfill counts under a SHARE ROW EXCLUSIVE lock on ``orders``: order writes wait while it runs (about 1.5 s at a
million orders, see the README), and not one is counted twice or missed.

Revision ID: 8d0f1a0e0015
Revises: 7c0b4f0e0018
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op

sa.GUID = GUID  # type: ignore[attr-defined]

# revision identifiers, used by Alembic.
revision = "8d0f1a0e0015"
down_revision = "7c0b4f0e0018"
branch_labels = None
depends_on = None

#: ``delta`` rows per (user, status) → added to the counts, in key order (a fixed lock order: no deadlocks).
_APPLY = """
    INSERT INTO order_counts AS c (user_id, status, orders)
    SELECT user_id, status, sum(delta) FROM ({deltas}) AS d
    GROUP BY user_id, status HAVING sum(delta) <> 0
    ORDER BY user_id, status
    ON CONFLICT (user_id, status) DO UPDATE SET orders = c.orders + excluded.orders
"""
_FUNCTIONS = {
    "order_counts_inserted": _APPLY.format(deltas="SELECT user_id, status, 1 AS delta FROM new_orders"),
    "order_counts_deleted": _APPLY.format(deltas="SELECT user_id, status, -1 AS delta FROM old_orders"),
    "order_counts_updated": _APPLY.format(
        deltas="SELECT user_id, status, 1 AS delta FROM new_orders "
        "UNION ALL SELECT user_id, status, -1 AS delta FROM old_orders"
    ),
}
_TRIGGERS = {
    "order_counts_inserted": "AFTER INSERT ON orders REFERENCING NEW TABLE AS new_orders",
    "order_counts_deleted": "AFTER DELETE ON orders REFERENCING OLD TABLE AS old_orders",
    "order_counts_updated": "AFTER UPDATE ON orders REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders",
}


def upgrade() -> None:
    op.create_table(
        "order_counts",
        sa.Column("user_id", sa.GUID(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "status", name=op.f("pk_order_counts")),
    )
    for name, body in _FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER {name} {_TRIGGERS[name]} FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    op.execute(
        "CREATE FUNCTION order_counts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN DELETE FROM order_counts; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER order_counts_truncated AFTER TRUNCATE ON orders "
        "FOR EACH STATEMENT EXECUTE FUNCTION order_counts_truncated()"
    )
    # Writers wait from here to the commit; readers do not. The triggers count every write after the lock.
    op.execute("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "INSERT INTO order_counts (user_id, status, orders) "
        "SELECT user_id, status, count(*) FROM orders GROUP BY user_id, status"
    )


def downgrade() -> None:
    for name in (*_FUNCTIONS, "order_counts_truncated"):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON orders")
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("order_counts")
