"""Request and response bodies of ``/addresses``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from app.domain.addresses.countries import CountryCode

__all__ = ("AddressCreate", "AddressRead", "AddressUpdate")

# Single-line text: at least one visible character and no control characters (PostgreSQL rejects NUL outright).
# \x85 and \ufeff: where Python's \s (the check) and JSON Schema's (the documented pattern) differ.
_LINE = r"^ *[^\s\x00-\x1f\x7f\x85\ufeff][^\x00-\x1f\x7f]*$"


def _line(max_length: int, *, description: str | None = None, example: str | None = None) -> msgspec.Meta:
    return msgspec.Meta(
        min_length=1,
        max_length=max_length,
        pattern=_LINE,
        description=description,
        examples=[example] if example else None,
    )


RecipientName = Annotated[str, _line(200, example="Ada Lovelace")]
Line1 = Annotated[str, _line(200, description="Street and number.", example="12 St James's Square")]
Line2 = Annotated[str, _line(200, description="Apartment, suite, building…", example="Flat 3")]
City = Annotated[str, _line(100, example="London")]
Region = Annotated[str, _line(100, description="State, province or county.", example="Greater London")]
PostalCode = Annotated[str, _line(20, example="SW1Y 4JH")]
Country = Annotated[
    CountryCode,
    msgspec.Meta(
        description="ISO 3166-1 alpha-2 code, upper-case (officially assigned codes only).",
        examples=["GB"],
    ),
]
Phone = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=32,
        # Digits, spaces, '-', '(' and ')', optionally after a leading '+'; ends with a digit.
        pattern=r"^\+?[0-9(][0-9 ()-]*[0-9]$",
        examples=["+44 20 7946 0958"],
    ),
]


class AddressCreate(msgspec.Struct, forbid_unknown_fields=True):
    recipient_name: RecipientName
    line1: Line1
    city: City
    postal_code: PostalCode
    country: Country
    line2: Line2 | None = None
    region: Region | None = None
    phone: Phone | None = None


class AddressUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Any subset of an address; omitted fields stay as they are, ``null`` clears an optional one."""

    recipient_name: RecipientName | msgspec.UnsetType = msgspec.UNSET
    line1: Line1 | msgspec.UnsetType = msgspec.UNSET
    line2: Line2 | msgspec.UnsetType | None = msgspec.UNSET
    city: City | msgspec.UnsetType = msgspec.UNSET
    region: Region | msgspec.UnsetType | None = msgspec.UNSET
    postal_code: PostalCode | msgspec.UnsetType = msgspec.UNSET
    country: Country | msgspec.UnsetType = msgspec.UNSET
    phone: Phone | msgspec.UnsetType | None = msgspec.UNSET


class AddressRead(msgspec.Struct):
    """An address. The field order is the column order of the read queries (built positionally from rows)."""

    id: uuid.UUID
    recipient_name: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str
    phone: str | None
    created_at: datetime
