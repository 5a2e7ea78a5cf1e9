"""Sending email: an ``EmailSender`` protocol with an SMTP implementation (aiosmtplib) and a console one for dev.

Senders raise on failure; the SAQ job that calls them turns a failure into a retry with backoff.
"""

from __future__ import annotations

import sys
from email.message import EmailMessage
from typing import Protocol, TextIO

import aiosmtplib

from app.config import Settings
from app.core.logging import get_logger

__all__ = ("ConsoleEmailSender", "EmailSender", "OutgoingEmail", "SMTPEmailSender", "email_sender_for")

logger = get_logger("app.email")


class OutgoingEmail:
    __slots__ = ("html", "subject", "text", "to")

    def __init__(self, *, to: str, subject: str, text: str, html: str) -> None:
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html

    def to_message(self, sender: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


class EmailSender(Protocol):
    async def send(self, email: OutgoingEmail) -> None: ...


class SMTPEmailSender:
    """Delivers over SMTP; ``tls`` is ``starttls`` (port 587), ``tls`` (implicit, 465) or ``none``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        tls: str = "starttls",
        timeout: float = 20.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._tls = tls
        self._timeout = timeout

    async def send(self, email: OutgoingEmail) -> None:
        await aiosmtplib.send(
            email.to_message(self._sender),
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._tls == "tls",
            start_tls=self._tls == "starttls",
            timeout=self._timeout,
        )
        logger.info("email_sent", to=email.to, subject=email.subject)


class ConsoleEmailSender:
    """Prints the message (development): what would have been sent, readable in the terminal."""

    def __init__(self, sender: str, stream: TextIO | None = None) -> None:
        self._sender = sender
        self._stream = stream or sys.stdout

    async def send(self, email: OutgoingEmail) -> None:
        rule = "-" * 72
        self._stream.write(
            f"\n{rule}\nEmail from {self._sender} to {email.to}\nSubject: {email.subject}\n\n{email.text}\n{rule}\n"
        )
        self._stream.flush()


def email_sender_for(settings: Settings) -> EmailSender:
    if settings.email_backend == "smtp":
        assert settings.smtp_host is not None  # Settings.from_env requires it for the smtp backend
        return SMTPEmailSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.email_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            tls=settings.smtp_tls,
        )
    return ConsoleEmailSender(settings.email_from)
