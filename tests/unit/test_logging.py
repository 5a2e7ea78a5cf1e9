"""Secrets never reach the logs: ``redact`` and the filter on the stdlib log handler."""

from __future__ import annotations

import json
import logging
import sys
from urllib.parse import quote

import jwt
import pytest
import structlog

from app.core.logging import (
    SecretScrubber,
    _RedactingFilter,
    _ScrubbingFormatter,
    _tracebacks,
    redact,
    register_secrets,
)

JWT = jwt.encode({"sub": "8a1f2d3c-0000-4000-8000-000000000001", "type": "access"}, "k" * 32, algorithm="HS256")


@pytest.mark.parametrize(
    "text",
    [
        f"/ws/orders?token={JWT}",
        f"/ws/admin/orders?since=4&token={JWT}",
        f"GET /ws/orders?token={JWT}&since=0 HTTP/1.1",
        f"Authorization: Bearer {JWT}",
        f"authorization: bearer {JWT}",
        f"decoded {JWT} while parsing",
    ],
)
def test_redact_removes_tokens(text: str) -> None:
    redacted = redact(text)

    assert JWT not in redacted
    assert JWT.split(".")[1] not in redacted
    assert "[REDACTED]" in redacted


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("/auth/callback?password=hunter2&next=/", "hunter2"),
        ("/x?refresh_token=opaque-refresh-value", "opaque-refresh-value"),
        ("/x?access_token=opaque-access-value", "opaque-access-value"),
        ("Bearer opaque_non_jwt_token", "opaque_non_jwt_token"),
    ],
)
def test_redact_removes_passwords_and_opaque_tokens(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_keeps_the_rest_of_the_url() -> None:
    assert redact(f"/ws/orders?since=42&token={JWT}") == "/ws/orders?since=42&token=[REDACTED]"


def test_redact_leaves_innocent_text_alone() -> None:
    text = "GET /products?q=tokenizer&page=2 200"

    assert redact(text) == text


def test_filter_redacts_uvicorn_style_websocket_record() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:50000", f"/ws/orders?token={JWT}"),
        None,
    )

    assert _RedactingFilter().filter(record) is True
    message = record.getMessage()
    assert JWT not in message
    assert message == '127.0.0.1:50000 - "WebSocket /ws/orders?token=[REDACTED]" [accepted]'


def test_filter_redacts_a_preformatted_message() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, f"header was Bearer {JWT}", None, None)

    _RedactingFilter().filter(record)

    assert JWT not in record.getMessage()


SECRET = 'pa:ss/wörd"' + "x" * 12  # URL-special, JSON-special and non-ASCII characters


def _scrubber() -> SecretScrubber:
    scrubber = SecretScrubber()
    scrubber.register([SECRET, None, "short"])
    return scrubber


@pytest.mark.parametrize(
    "spelling",
    [SECRET, quote(SECRET, safe=""), json.dumps(SECRET)[1:-1], json.dumps(SECRET, ensure_ascii=False)[1:-1]],
    ids=["plain", "percent-encoded", "json-ascii", "json-utf8"],
)
def test_scrubber_replaces_every_spelling_of_a_secret(spelling: str) -> None:
    line = f'{{"event": "connect", "url": "postgresql://app:{spelling}@db/orders"}}'

    scrubbed = _scrubber().scrub_text(line)

    assert spelling not in scrubbed
    assert "postgresql://app:[REDACTED]@db/orders" in scrubbed
    assert _scrubber().scrub_bytes(line.encode()) == scrubbed.encode()


def test_scrubber_ignores_values_too_short_to_tell_from_ordinary_words() -> None:
    assert _scrubber().scrub_text("GET /orders short") == "GET /orders short"


def test_library_records_are_scrubbed_after_their_traceback_is_rendered() -> None:
    register_secrets(SECRET)
    formatter = _ScrubbingFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _tracebacks, _render_json],
    )
    try:
        raise RuntimeError(f"could not log in with {SECRET}")
    except RuntimeError:
        record = logging.LogRecord("saq", logging.ERROR, __file__, 1, "Error processing job %s", (SECRET,), None)
        record.exc_info = sys.exc_info()

    line = formatter.format(record)

    assert json.loads(line)["exception"][0]["frames"]  # the traceback is there, frames named
    assert SECRET not in line
    assert json.dumps(SECRET)[1:-1] not in line
    assert '"locals"' not in line


def _render_json(_: object, __: str, event_dict: structlog.types.EventDict) -> str:
    return json.dumps(event_dict)
