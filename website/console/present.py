"""How the console writes stored values for people: ledger kinds and memos, payment methods,
order states and the payment service's messages, in the page's language.

The database keeps plain English tokens and memos (``topup``, ``order ord_…: 720.00 CNY at
7.2000 CNY/USD``); these filters turn them into the reader's words at render time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from website.numbers import money

KINDS = {
    "topup": _l("Top-up"), "bonus": _l("Bonus"), "subscription_renew": _l("Plan fee"), "refund": _l("Refund"),
    "admin_credit": _l("Credit from ByteSpike"), "admin_debit": _l("Debit by ByteSpike"), "settle": _l("API calls"),
    "payment_refund": _l("Payment refund"), "reserve": _l("Reservation"), "release": _l("Reservation released"),
}
METHODS = {"alipay": _l("Alipay"), "wechatpay": _l("WeChat Pay"), "sandbox": _l("Sandbox simulator")}
ORDER_STATES = {"pending": _l("waiting for payment"), "paid": _l("paid"), "closed": _l("closed"),
                "refunded": _l("refunded")}
PLANS = {"free": _l("Free"), "pro": _l("Pro"), "max": _l("Max"), "enterprise": _l("Enterprise")}

_ORDER = r"order (?P<order>\S+?): (?P<amount>[\d.]+) CNY at (?P<rate>[\d.]+) CNY/USD"


def _order_memo(m: re.Match[str]) -> str:
    return _("Order %(order)s: %(amount)s at %(rate)s per US dollar", order=m["order"],
             amount=money(Decimal(m["amount"]), "CNY"), rate=money(Decimal(m["rate"]), "CNY"))


_MEMOS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(f"^{_ORDER}$"), _order_memo),
    (re.compile(f"^bonus on {_ORDER}$"), lambda m: _("Bonus on %(memo)s", memo=_order_memo(m))),
    (re.compile(r"^(?P<plan>\w+) plan, first month \(order (?P<order>\S+)\)$"),
     lambda m: _("%(plan)s plan, first month (order %(order)s)", plan=plan_name(m["plan"]), order=m["order"])),
    (re.compile(r"^(?P<plan>\w+) plan, month from (?P<day>[\d-]+)$"),
     lambda m: _("%(plan)s plan, the month from %(day)s", plan=plan_name(m["plan"]), day=m["day"])),
    (re.compile(r"^refund of order (?P<order>\S+)(?: (?P<reason>.*))?$"),
     lambda m: _("Refund of order %(order)s", order=m["order"]) + (f" ({m['reason']})" if m["reason"] else "")),
    (re.compile(r"^opening credit$"), lambda m: _("Opening credit")),
    (re.compile(r"^provider refused the refund$"), lambda m: _("The payment provider refused the refund")),
)

_MESSAGES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^amount_cny must be between (?P<lo>[\d.]+) and (?P<hi>[\d.]+)$"),
     lambda m: _("Enter an amount from %(lo)s to %(hi)s.", lo=money(Decimal(m["lo"]), "CNY"),
                 hi=money(Decimal(m["hi"]), "CNY"))),
    (re.compile(r"^amount_cny has at most two decimals$"), lambda m: _("Enter the amount with at most two decimals.")),
    (re.compile(r"^amount_cny is required$"), lambda m: _("Enter an amount in CNY, such as 100.")),
    (re.compile(r"^payment method .* is not available$"), lambda m: _("This payment method is not available.")),
    (re.compile(r"^the (?P<plan>\w+) plan costs (?P<price>[\d.]+) CNY$"),
     lambda m: _("The %(plan)s plan costs %(price)s.", plan=plan_name(m["plan"]),
                 price=money(Decimal(m["price"]), "CNY"))),
)


def _rewrite(text: str, rules: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...]) -> str:
    for pattern, render in rules:
        match = pattern.match(text or "")
        if match:
            return render(match)
    return text


def ledger_kind(kind: str) -> str:
    return str(KINDS[kind]) if kind in KINDS else kind


def ledger_memo(memo: str) -> str:
    """A ledger memo in the reader's language (model names and free text stay as written)."""
    return _rewrite(memo, _MEMOS)


def service_message(message: str) -> str:
    """A payment-service message (written for API callers) in the reader's language."""
    return _rewrite(str(message), _MESSAGES)


def payment_method(method: str) -> str:
    return str(METHODS[method]) if method in METHODS else method


def order_state(state: str) -> str:
    return str(ORDER_STATES[state]) if state in ORDER_STATES else state


def plan_name(plan: str | None) -> str:
    return str(PLANS[plan]) if plan in PLANS else (plan or "")


def ladder_cny(ladder: tuple[tuple[Decimal, Decimal], ...], rate: Decimal, lowest: Decimal,
               highest: Decimal) -> list[tuple[Decimal, Decimal, Decimal]]:
    """The USD bonus ladder ((floor, percent), highest first) as CNY bands at ``rate``."""
    steps = sorted(ladder)
    bands: list[tuple[Decimal, Decimal, Decimal]] = []
    floors = [Decimal(lowest)] + [(floor * rate).quantize(Decimal("0.01")) for floor, _p in steps]
    percents = [Decimal(0)] + [p for _f, p in steps]
    for i, (lo, pct) in enumerate(zip(floors, percents, strict=True)):
        hi = floors[i + 1] - Decimal("0.01") if i + 1 < len(floors) else Decimal(highest)
        if lo <= hi and lo <= Decimal(highest):
            bands.append((lo, min(hi, Decimal(highest)), pct))
    return bands


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update({
        "ledger_kind": ledger_kind, "ledger_memo": ledger_memo, "service_message": service_message,
        "payment_method": payment_method, "order_state": order_state, "plan_name": plan_name,
        "ladder_cny": ladder_cny,
    })
