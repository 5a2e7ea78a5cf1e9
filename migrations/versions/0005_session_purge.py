"""Indexes for the worker's purge of ended sessions: expired refresh tokens and families are found by expiry.

Every refresh adds a token row; without the purge the table grows with every refresh, and without these indexes each
purge batch would scan it whole.

Revision ID: 5a1e0c0de012
Revises: 9c1d4e2f7a10
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from alembic import op

# revision identifiers, used by Alembic.
revision = "5a1e0c0de012"
down_revision = "9c1d4e2f7a10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_refresh_tokens_expires_at"), "refresh_tokens", ["expires_at"], unique=False)
    op.create_index(
        op.f("ix_refresh_token_families_expires_at"), "refresh_token_families", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_refresh_token_families_expires_at"), table_name="refresh_token_families")
    op.drop_index(op.f("ix_refresh_tokens_expires_at"), table_name="refresh_tokens")
