"""Structured JSON logs on stdout, one object per line, with secrets redacted.

structlog renders our own events; the standard-library loggers (uvicorn, SAQ, SQLAlchemy) are routed through the
same renderer so an operator's log pipeline sees one format. uvicorn logs WebSocket paths *with* their query string
(``/ws/orders?token=<jwt>``) even with its access log off, so a filter rewrites ``token=…`` (and any bearer token
or password that slips into a message) before a record is formatted.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Final

import structlog

__all__ = ("configure_logging", "redact")

_SECRET_QUERY: Final = re.compile(
    r"((?:^|[?&\s])(?:token|access_token|refresh_token|password)=)[^&\s\"']+",
    re.IGNORECASE,
)
_BEARER: Final = re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    """Replace token/password values in URLs and bearer credentials with ``[REDACTED]``."""
    text = _SECRET_QUERY.sub(r"\1[REDACTED]", text)
    text = _BEARER.sub(r"\1[REDACTED]", text)
    return _JWT.sub("[REDACTED]", text)


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


_configured: dict[str, str] = {}


def configure_logging(level: str = "INFO") -> None:
    """Install the JSON pipeline once per process (safe to call again, e.g. once per app in tests)."""
    if _configured.get("level") == level:
        return
    _configured["level"] = level
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_event,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
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
