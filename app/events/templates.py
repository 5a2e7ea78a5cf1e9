"""Emails (order and account): a plain-text and an HTML rendering of the same content.

Jinja2 (installed with Litestar) renders them with autoescaping on for HTML, so product names or addresses
containing markup are shown, not interpreted. One environment serves every email (``render_email``), so the
account emails (``app.events.account_emails``) and the order emails share its settings and its template cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.events.email import OutgoingEmail

__all__ = ("EmailLine", "OrderEmail", "render_email", "render_order_email")

_TEMPLATES: Final = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    auto_reload=False,  # the templates ship with the code: no stat() of each file on every email
)

_STATUS_WORDS: Final = {
    "paid": "has been paid",
    "shipped": "is on its way",
    "delivered": "has been delivered",
    "cancelled": "has been cancelled",
    "pending": "is pending",
}


@dataclass(frozen=True, slots=True)
class EmailLine:
    name: str
    quantity: int
    unit_price: str
    line_total: str


@dataclass(frozen=True, slots=True)
class OrderEmail:
    kind: str  # "order_created" | "order_status_changed"
    to: str
    recipient_name: str
    order_id: str
    status: str
    previous_status: str | None
    lines: list[EmailLine]
    total: str
    reason: str | None = None  # "payment_timeout": cancelled by the system, worded as such


#: Changes the system made on its own have their own wording (and template): the customer did nothing this time.
_REASON_SUBJECTS: Final = {"payment_timeout": "was cancelled: payment not received in time"}


def render_order_email(data: OrderEmail) -> OutgoingEmail:
    short_id = data.order_id.split("-")[0]
    if data.kind == "order_created":
        subject = f"Order confirmation #{short_id}"
        template = "order_created"
    elif data.reason in _REASON_SUBJECTS:
        subject = f"Your order #{short_id} {_REASON_SUBJECTS[data.reason]}"
        template = f"order_{data.reason}"
    else:
        subject = f"Your order #{short_id} {_STATUS_WORDS.get(data.status, 'was updated')}"
        template = "order_status_changed"
    context = {"order": data, "status_words": _STATUS_WORDS.get(data.status, data.status), "subject": subject}
    return render_email(template, data.to, subject, context)


def render_email(template: str, to: str, subject: str, context: dict[str, Any]) -> OutgoingEmail:
    """The email of ``templates/<template>.txt`` and ``.html``, both rendered with ``context``."""
    return OutgoingEmail(
        to=to,
        subject=subject,
        text=_TEMPLATES.get_template(f"{template}.txt").render(context),
        html=_TEMPLATES.get_template(f"{template}.html").render(context),
    )
