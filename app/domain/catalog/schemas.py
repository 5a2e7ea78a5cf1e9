"""Request and response bodies of ``/products``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final

import msgspec

__all__ = (
    "MAX_PRICE_CENTS",
    "MAX_STOCK",
    "ProductCreate",
    "ProductRead",
    "ProductUpdate",
)

#: One million dollars: far above any real unit price, low enough that a total of 50 lines x 100 units fits easily.
MAX_PRICE_CENTS: Final = 100_000_000
#: Well inside PostgreSQL's ``integer`` (the ``stock`` column).
MAX_STOCK: Final = 1_000_000_000

# Single-line text: at least one visible character and no control characters (PostgreSQL rejects NUL outright).
# The pattern cannot backtrack badly: the leading run of spaces and the first visible character are disjoint.
# \x85 and \ufeff: where Python's \s (the check) and JSON Schema's (the documented pattern) differ.
_LINE = r"^ *[^\s\x00-\x1f\x7f\x85\ufeff][^\x00-\x1f\x7f]*$"
# Free text: line breaks and tabs are fine, other control characters are not.
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

Sku = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Stock-keeping unit: letters, digits, '.', '_' and '-', starting with a letter or digit. "
        "Unique (case-sensitive).",
        examples=["SKU-MUG-0001"],
    ),
]
ProductName = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=200, pattern=_LINE, examples=["Enamel camping mug"]),
]
Description = Annotated[str, msgspec.Meta(max_length=5000, pattern=_TEXT)]
PriceCents = Annotated[
    int,
    msgspec.Meta(ge=0, le=MAX_PRICE_CENTS, description="Unit price in cents.", examples=[1299]),
]
Stock = Annotated[int, msgspec.Meta(ge=0, le=MAX_STOCK, description="Units available to order.")]


class ProductCreate(msgspec.Struct, forbid_unknown_fields=True):
    sku: Sku
    name: ProductName
    price_cents: PriceCents
    stock: Stock
    description: Description = ""


class ProductUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Any subset of a product's fields; omitted fields stay as they are. ``is_active: true`` un-archives."""

    sku: Sku | msgspec.UnsetType = msgspec.UNSET
    name: ProductName | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    price_cents: PriceCents | msgspec.UnsetType = msgspec.UNSET
    stock: Stock | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class ProductRead(msgspec.Struct):
    """A product. The field order is the column order of the read queries (built positionally from rows)."""

    id: uuid.UUID
    sku: str
    name: str
    description: str
    price_cents: int
    stock: int
    is_active: bool
    created_at: datetime
    updated_at: datetime
