"""One way to write numbers and money on every page, in both languages, through Babel.

Credits are whole numbers with thousands separators. Money (USD and CNY alike) has
thousands separators, at least two decimals and up to six, trailing zeros past the
second dropped: ``$3.00``, ``$0.0625``, ``¥1,296.00``, ``¥0.72``. The symbol is the
plain ``$`` / ``¥`` in both languages (Babel's Chinese locale would write ``US$``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Flask
from flask_babel import format_decimal

MONEY_PATTERN = "#,##0.00####"
SYMBOLS = {"USD": "$", "CNY": "¥"}
MICRO = Decimal(1_000_000)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def number(value: Any) -> str:
    """A count (credits, tokens, requests) with the locale's thousands separator."""
    if value is None:
        return "—"
    return str(format_decimal(_decimal(value), format="#,##0.######"))


def signed_number(value: Any) -> str:
    """A count with an explicit sign: ``+1,000`` / ``-250``."""
    text = number(abs(_decimal(value)))
    return ("-" if _decimal(value) < 0 else "+") + text


def money(value: Any, currency: str = "USD") -> str:
    """An amount of ``currency`` (``USD`` or ``CNY``) written by the one money rule."""
    if value is None:
        return "—"
    amount = _decimal(value)
    text = str(format_decimal(abs(amount), format=MONEY_PATTERN))
    return ("-" if amount < 0 else "") + SYMBOLS[currency] + text


def usd_of_credits(credits: int | None) -> str:
    """Credits (micro-dollars) as an exact USD amount."""
    return "—" if credits is None else money(Decimal(credits) / MICRO, "USD")


def init_app(app: Flask) -> None:
    """Register the filters; ``usd`` takes credits, ``usd_amount`` / ``cny`` take amounts."""
    app.jinja_env.filters.update({
        "num": number, "signed": signed_number, "usd": usd_of_credits,
        "usd_amount": lambda v: money(v, "USD"), "cny": lambda v: money(v, "CNY"),
    })
