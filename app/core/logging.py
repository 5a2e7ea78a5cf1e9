"""Structured JSON logs on stdout, one object per line, with secrets redacted.

Our own events go through structlog's native pipeline straight to stdout (rendered with msgspec): the request log
writes a line for every request, so it avoids the standard library's handler/formatter machinery, which cost about
five times as much per line. Records from libraries (uvicorn, SAQ, SQLAlchemy) still arrive through ``logging`` and
are rendered to the same JSON shape by structlog's ``ProcessorFormatter``.

uvicorn logs WebSocket paths *with* their query string (``/ws/orders?token=…``) even with its access log off, so
a filter rewrites ``token=…`` (and any bearer token, JWT or password that slips into a message) before a record is
formatted; our own events are redacted the same way.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Final

import msgspec
import structlog

__all__ = ("configure_logging", "get_logger", "redact")

_SECRET_QUERY: Final = re.compile(r"((?:^|[?&\s])(?:token|access_token|refresh_token|password)=)[^&\s\"']+", re.I)
_BEARER: Final = re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*", re.I)
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_MAYBE_SECRET: Final = re.compile(r"token|password|bearer|eyJ", re.I)


def redact(text: str) -> str:
    """Replace token/password values in URLs and bearer credentials with ``[REDACTED]``."""
    if not _MAYBE_SECRET.search(text):  # the common case: nothing to redact, one cheap scan
        return text
    text = _SECRET_QUERY.sub(r"\1[REDACTED]", text)
    text = _BEARER.sub(r"\1[REDACTED]", text)
    return _JWT.sub("[REDACTED]", text)


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry ``"logger": name`` (like the standard-library records do)."""
    return structlog.get_logger(logger_name=name)


def _logger_field(_: Any, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    # ``logger`` is a reserved argument of structlog's get_logger, hence the detour through ``logger_name``.
    if "logger_name" in event_dict:
        event_dict["logger"] = event_dict.pop("logger_name")
    return event_dict


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def _redact_event(_: Any, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


_encoder: Final = msgspec.json.Encoder(enc_hook=str)


def _render(_: Any, __: str, event_dict: structlog.types.EventDict) -> bytes:
    return _encoder.encode(event_dict)


_configured: dict[str, str] = {}


def configure_logging(level: str = "INFO") -> None:
    """Install the JSON pipeline (once per process and level; loggers bind their level when first used)."""
    if _configured.get("level") == level:
        return
    _configured["level"] = level
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_event,
    ]
    structlog.configure(
        processors=[*shared, _logger_field, structlog.processors.dict_tracebacks, _render],
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.dict_tracebacks,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.addFilter(_RedactingFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "saq", "litestar"):
        # uvicorn installs its own handlers before it imports the app; send everything through ours instead.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # We write one structured line per request ourselves; uvicorn's access log would duplicate it at a real cost.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    if level != "DEBUG":
        # SAQ writes an INFO line when it starts and finishes every job; failures and retries are WARNING or above.
        logging.getLogger("saq").setLevel(logging.WARNING)
