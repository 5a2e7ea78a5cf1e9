"""Standard Webhooks signatures (https://www.standardwebhooks.com): ``v1,<base64 HMAC-SHA256>``.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the key is the secret's base64 part, decoded.
While a rotated-out secret is still valid, each message carries one signature per secret, space-separated, so a
receiver that has either secret accepts it (the ``standardwebhooks`` library tries every signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Final

__all__ = ("SECRET_BYTES", "SECRET_PREFIX", "new_secret", "signature_header")

SECRET_PREFIX: Final = "whsec_"
#: 32 random bytes (the specification asks for 24 to 64).
SECRET_BYTES: Final = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature_header(secrets_in_use: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<signature>`` per secret, space-separated."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest()).decode()
        for secret in secrets_in_use
    )
