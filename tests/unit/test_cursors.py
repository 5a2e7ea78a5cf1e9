"""Cursors are opaque and tamper-proof: only the service that signed one reads it back, as the struct it made."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from app.core.cursors import CursorCodec, InvalidCursor
from app.domain.orders.services import OrderCursor

KEY = "s" * 40
POSITION = OrderCursor(
    own=True,
    user_id=uuid.uuid4(),
    status="paid",
    per_page=20,
    created_at=datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC),
    id=uuid.uuid4(),
)


class Other(msgspec.Struct, array_like=True):
    name: str


def test_a_cursor_reads_back_as_the_position_it_was_made_from() -> None:
    codec = CursorCodec(KEY)

    assert codec.decode(codec.encode(POSITION), OrderCursor) == POSITION


def test_a_cursor_is_url_safe_and_short() -> None:
    cursor = CursorCodec(KEY).encode(POSITION)

    assert len(cursor) < 130
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_every_changed_character_is_refused() -> None:
    codec = CursorCodec(KEY)
    cursor = codec.encode(POSITION)

    for index in range(len(cursor)):
        changed = cursor[:index] + ("B" if cursor[index] == "A" else "A") + cursor[index + 1 :]
        with pytest.raises(InvalidCursor):
            codec.decode(changed, OrderCursor)


def test_a_cursor_signed_with_another_secret_is_refused() -> None:
    cursor = CursorCodec("t" * 40).encode(POSITION)

    with pytest.raises(InvalidCursor):
        CursorCodec(KEY).decode(cursor, OrderCursor)


def test_a_signed_cursor_of_another_kind_is_refused() -> None:
    codec = CursorCodec(KEY)

    with pytest.raises(InvalidCursor) as raised:
        codec.decode(codec.encode(Other(name="x")), OrderCursor)

    assert raised.value.code == "invalid_cursor"
    assert raised.value.status_code == 422


@pytest.mark.parametrize("bad", ["", "A", "====", "not a cursor", "é" * 10, "A" * 1000])
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(InvalidCursor):
        CursorCodec(KEY).decode(bad, OrderCursor)
