"""Opaque, tamper-proof page cursors: a msgspec struct, serialised, and signed with HMAC-SHA256.

A cursor names a position in a list (the last row a page showed) and the filters it was made for. Clients must not
read or build them, and a forged one must not move a reader somewhere it could not go by following cursors — so the
payload is signed with a key derived from ``JWT_SECRET`` (a key of its own: a cursor can never pass for a token or
the other way round), and anything that does not verify, or does not decode to exactly the expected struct, is
``invalid_cursor`` (422). The signature is truncated to 128 bits: forging one still takes ~2^128 tries, and a cursor
stays about 110 characters long.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final, TypeVar

import msgspec

from app.core.errors import DomainError, FieldError

__all__ = ("CursorCodec", "InvalidCursor")

S = TypeVar("S", bound=msgspec.Struct)

_CONTEXT: Final = b"orders-service/page-cursor/v1"
_MAC_BYTES: Final = 16
_ENCODER: Final = msgspec.msgpack.Encoder(uuid_format="bytes")
#: Longer than any cursor this service makes; refused before any decoding work.
_MAX_LENGTH: Final = 512


class InvalidCursor(DomainError):
    """A cursor that was not made by this service for this list and these filters (422 ``invalid_cursor``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "invalid_cursor",
            f"The cursor is not valid here ({reason}); start again with `?cursor=`",
            errors=[FieldError(field="cursor", message=reason)],
        )


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs and verifies cursors; one per app, keyed by the app's JWT secret."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, position: msgspec.Struct) -> str:
        payload = _ENCODER.encode(position)
        return _b64encode(payload + self._mac(payload))

    def decode(self, cursor: str, type_: type[S]) -> S:
        """The struct ``cursor`` carries, or :class:`InvalidCursor` if it is malformed, forged or of another kind."""
        if len(cursor) > _MAX_LENGTH or not cursor.isascii():
            raise InvalidCursor("malformed")
        try:
            raw = _b64decode(cursor)
        except (binascii.Error, ValueError):
            raise InvalidCursor("malformed") from None
        if _b64encode(raw) != cursor:  # stray characters or padding bits: only the exact text we made is accepted
            raise InvalidCursor("malformed")
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursor("signature does not match")
        try:
            return msgspec.msgpack.decode(payload, type=type_)
        except msgspec.DecodeError:  # signed by us, but another struct (another version or list)
            raise InvalidCursor("not a cursor of this list") from None
