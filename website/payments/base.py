"""One provider interface, the order status-transition table and the top-up price rules.

Every provider (Alipay, WeChat Pay v3, and the sandbox simulator which speaks
their exact wire formats) implements ``Provider``. The service layer never
branches on the provider's name; it calls these methods and moves orders only
through ``check_transition``.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Callable, Mapping

from core.money import cny_to_credits

# --- the status-transition table -------------------------------------------------

# current status -> statuses it may move to. A late payment of a closed order is
# still money received, so closed -> paid is allowed (the provider's query must agree).
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"paid", "closed"}),
    "closed": frozenset({"paid"}),
    "paid": frozenset({"refunded"}),
    "refunded": frozenset(),
}


class PaymentError(Exception):
    """A payment operation failed; the message is safe to log."""


class InvalidTransition(PaymentError):
    """The order cannot move from its status to the one asked."""


class DoublePayment(InvalidTransition):
    """The order has already been paid: crediting it again would pay twice."""


class NotifyRejected(PaymentError):
    """A notification failed verification; nothing may be credited."""


class ProviderError(PaymentError):
    """The provider answered with an error, an unverifiable answer, or not at all."""


def check_transition(current: str, target: str) -> None:
    """Raise unless ``current -> target`` is in the table; a second payment raises DoublePayment."""
    if target in TRANSITIONS.get(current, frozenset()):
        return
    if target == "paid" and current in ("paid", "refunded"):
        raise DoublePayment(f"order already {current}")
    raise InvalidTransition(f"order cannot go from {current} to {target}")


def sources_of(target: str) -> tuple[str, ...]:
    """The statuses from which ``target`` may be reached (for conditional UPDATEs)."""
    return tuple(sorted(s for s, targets in TRANSITIONS.items() if target in targets))


# --- wire-independent data ---------------------------------------------------------


@dataclass(frozen=True)
class OrderRef:
    """What a provider needs to know about an order."""

    out_trade_no: str
    amount_fen: int
    description: str


@dataclass(frozen=True)
class Created:
    code_url: str | None = None  # WeChat code_url or Alipay precreate qr_code
    pay_url: str | None = None  # Alipay page.pay redirect


@dataclass(frozen=True)
class TradeState:
    """A provider's answer about one trade (from a query or a verified notification)."""

    out_trade_no: str
    state: str  # the provider's own word: SUCCESS, NOTPAY, TRADE_SUCCESS, ...
    paid: bool
    closed: bool
    trade_no: str | None = None
    amount_fen: int | None = None
    currency: str = "CNY"
    app_id: str | None = None
    merchant_id: str | None = None
    trade_type: str | None = None
    notify_id: str | None = None


Transport = Callable[[str, str, Mapping[str, str], bytes], "tuple[int, Mapping[str, str], bytes]"]


class Provider(abc.ABC):
    """A payment provider seen through its wire protocol."""

    name: str  # "alipay" | "wechatpay"
    sandbox: bool = False

    def __init__(
        self,
        cfg: Any,
        transport: Transport,
        *,
        sandbox: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.transport = transport
        self.sandbox = sandbox
        self.clock = clock

    @abc.abstractmethod
    def create(self, order: OrderRef) -> Created:
        """Open the order at the provider; return what the payer needs (QR text, redirect)."""

    @abc.abstractmethod
    def query(self, out_trade_no: str) -> TradeState:
        """Ask the provider for the trade's state; a trade it does not know is pending."""

    @abc.abstractmethod
    def close(self, out_trade_no: str) -> None:
        """Close an unpaid order at the provider."""

    @abc.abstractmethod
    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int) -> None:
        """Refund a paid trade in full; idempotent by ``out_refund_no``."""

    @abc.abstractmethod
    def verify_notification(self, headers: Mapping[str, str], body: bytes, now: int) -> TradeState:
        """Verify and decode a callback; raise NotifyRejected with the reason."""

    @abc.abstractmethod
    def expected_ids(self) -> tuple[str, str | None]:
        """The (app id, merchant id) a genuine notification must carry."""

    @abc.abstractmethod
    def ack(self) -> tuple[int, dict[str, str], bytes]:
        """The answer that tells the provider the notification was handled."""

    @abc.abstractmethod
    def nack(self) -> tuple[int, dict[str, str], bytes]:
        """The answer that makes the provider retry later."""


# --- prices: bonus ladder and plans -------------------------------------------------

MIN_TOPUP_CNY = Decimal("35.00")
MAX_TOPUP_CNY = Decimal("9000.00")

# (lowest USD value, bonus percent), highest first: bytespike-product.md §3.
BONUS_LADDER: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal("1000"), Decimal("11.2")),
    (Decimal("500"), Decimal("8")),
    (Decimal("100"), Decimal("5")),
    (Decimal("20"), Decimal("3")),
)
TIER_BONUS: dict[str, Decimal] = {"pro": Decimal("5"), "max": Decimal("11.2")}


@dataclass(frozen=True)
class Plan:
    id: str
    price_cny: Decimal | None  # None: by contract
    concurrency: int


PLANS: dict[str, Plan] = {
    "free": Plan("free", Decimal("0"), 5),
    "pro": Plan("pro", Decimal("149.00"), 25),
    "max": Plan("max", Decimal("1499.00"), 100),
    "enterprise": Plan("enterprise", None, 500),
}


@dataclass(frozen=True)
class Quote:
    amount_cny: Decimal
    cny_per_usd: Decimal
    credits: int
    bonus_credits: int
    bonus_percent: Decimal


def ladder_percent(usd: Decimal) -> Decimal:
    """The ladder's bonus percent for a top-up worth ``usd``."""
    for floor, percent in BONUS_LADDER:
        if usd >= floor:
            return percent
    return Decimal("0")


def quote(amount_cny: Decimal, cny_per_usd: Decimal, *, tier: str, plan: str | None = None) -> Quote:
    """Credits and bonus for a top-up (or the plan's price, without bonus, for a plan purchase)."""
    credits = cny_to_credits(amount_cny, cny_per_usd)
    if plan:
        return Quote(amount_cny, cny_per_usd, credits, 0, Decimal("0"))
    percent = ladder_percent(amount_cny / cny_per_usd) + TIER_BONUS.get(tier, Decimal("0"))
    bonus = int((Decimal(credits) * percent / 100).to_integral_value(rounding=ROUND_FLOOR))
    return Quote(amount_cny, cny_per_usd, credits, bonus, percent)


def to_fen(amount_cny: Decimal) -> int:
    """Yuan (two decimals) -> integer fen."""
    return int((amount_cny * 100).to_integral_value())


def fen_to_yuan(fen: int) -> str:
    """Integer fen -> the two-decimal yuan string Alipay expects."""
    return f"{Decimal(fen) / 100:.2f}"
