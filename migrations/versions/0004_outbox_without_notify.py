"""The outbox dispatcher polls instead of listening: drop the NOTIFY trigger on order_events.

PostgreSQL serialises every committing transaction that issued a NOTIFY on one global lock, held through the commit's
WAL flush; with a NOTIFY per event, every order placement committed one at a time under load.

Revision ID: 9c1d4e2f7a10
Revises: 55bd01d376e6
Create Date: 2026-11-26 08:00:00
"""

from __future__ import annotations

from alembic import op

# revision identifiers, used by Alembic.
revision = "9c1d4e2f7a10"
down_revision = "55bd01d376e6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS order_events_notify ON order_events")
    op.execute("DROP FUNCTION IF EXISTS notify_order_events()")


def downgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_order_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('order_events', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER order_events_notify AFTER INSERT ON order_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION notify_order_events()"
    )
