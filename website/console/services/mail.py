"""Outgoing e-mail from the console (password resets)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import urlsplit

from flask import current_app


def send_mail(to: str, subject: str, body: str) -> None:
    """Send an e-mail; without BYTESPIKE_SMTP_URL it goes to the application log."""
    url = current_app.config.get("BYTESPIKE_SMTP_URL")
    if not url:
        current_app.logger.warning("e-mail to %s (no SMTP configured)\nSubject: %s\n\n%s", to, subject, body)
        return
    parts = urlsplit(url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"no-reply@{parts.hostname}", to, subject
    msg.set_content(body)
    smtp_cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_cls(parts.hostname or "localhost", parts.port or (465 if parts.scheme == "smtps" else 25),
                  timeout=10) as smtp:
        if parts.username:
            smtp.login(parts.username, parts.password or "")
        smtp.send_message(msg)
