"""Products of the catalog.

The orders domain reads these columns directly (it locks a product row, checks ``is_active`` and ``stock``, and
snapshots ``name`` and ``price_cents`` into order lines), so their names and types are part of the contract between
the two domains. ``stock >= 0`` is also a CHECK constraint: whatever a bug in application code does, PostgreSQL
refuses to oversell.
"""

from __future__ import annotations

from advanced_alchemy.base import UUIDv7AuditBase
from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("Product",)


class Product(UUIDv7AuditBase):
    __tablename__ = "products"
    __table_args__ = (
        # Names come from the metadata's convention: ck_products_<name>.
        CheckConstraint("price_cents >= 0", name="price_cents_non_negative"),
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        # The public list: active products, newest first; ``id`` breaks ties so pages are stable.
        Index("ix_products_is_active_created_at", "is_active", "created_at", "id"),
        # Case-insensitive substring search (``ILIKE '%q%'``) on name and sku uses these trigram indexes.
        Index(
            "ix_products_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index(
            "ix_products_sku_trgm",
            "sku",
            postgresql_using="gin",
            postgresql_ops={"sku": "gin_trgm_ops"},
        ),
    )

    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
