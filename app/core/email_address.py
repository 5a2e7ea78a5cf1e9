"""What an email address is here: one plain ``local@domain`` address (contract §2).

A string that a mail relay could read as something else — a display name (``x <victim@evil.com>``), a comment
(``(1)victim@example.com``), a list (``root,me@example.com``), a quoted local part, spaces or control characters — can
make a message go to someone other than the account's owner, so it is refused outright (422 naming the field), not
"cleaned up". The request structs' pattern already refuses most of these and documents the shape in the OpenAPI
schema; ``email-validator`` (syntax only: no DNS lookup in a request) is the full check, run by the services on every
body that stores an address or mails one: labels of at most 63 characters, a real top-level domain, no special-use
domains (``localhost``, ``.test``, ``.invalid``…), no trailing dot.

Login does not run it: an address that fails the check can belong to no account registered since this rule, and an
account registered before it must still be able to log in (existing rows are not rewritten), so login answers a
malformed address the way it answers an unknown one, 401 ``invalid_credentials``.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from app.core.errors import FieldError, InvalidRequest

__all__ = ("plain_email",)


def plain_email(value: str, *, field: str = "email") -> str:
    """``value`` lower-cased if it is one plain address; otherwise 422 ``validation_failed`` naming ``field``."""
    try:
        validate_email(
            value,
            check_deliverability=False,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_empty_local=False,
            strict=True,  # also the 64-character limit of the local part (RFC 5321)
        )
    except EmailNotValidError as exc:
        raise InvalidRequest([FieldError(field=field, message=f"Not a plain email address: {exc}")]) from None
    return value.lower()
