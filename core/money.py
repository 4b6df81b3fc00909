"""Credits and Decimal helpers. 1 credit = 0.000001 USD; no float ever touches money."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

CREDITS_PER_USD = 1_000_000
CREDIT_USD = Decimal("0.000001")
PER_MILLION = Decimal(1_000_000)


def to_decimal(value: str | int | Decimal) -> Decimal:
    """Parse a price; floats are refused so a binary fraction never becomes money."""
    if isinstance(value, float):  # pragma: no cover - a programming error
        raise TypeError("money must not be a float")
    return Decimal(value) if not isinstance(value, Decimal) else value


def ceil_credits(usd: Decimal) -> int:
    """USD amount -> whole credits, rounded up (a fraction of a credit is a credit)."""
    return int((usd * CREDITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def token_cost_credits(tokens: int, usd_per_million: Decimal) -> Decimal:
    """Exact (unrounded) credits for ``tokens`` at a price in USD per 1M tokens."""
    # USD = tokens * p / 1e6; credits = USD * 1e6 = tokens * p.
    return Decimal(tokens) * usd_per_million


def credits_to_usd(credits: int) -> Decimal:
    return (Decimal(credits) * CREDIT_USD).quantize(CREDIT_USD)


def usd_str(credits: int) -> str:
    """Credits as a USD decimal string with six places, e.g. ``"0.001234"``."""
    return format(credits_to_usd(credits), "f")


def usd_to_credits(usd: Decimal) -> int:
    return int((usd * CREDITS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


def cny_to_credits(cny: Decimal, cny_per_usd: Decimal) -> int:
    """A CNY amount at the given rate, in whole credits (rounded down: never credit more than paid)."""
    usd = cny / cny_per_usd
    return int((usd * CREDITS_PER_USD).to_integral_value(rounding="ROUND_FLOOR"))


def credits_to_cny(credits: int, cny_per_usd: Decimal) -> Decimal:
    return (credits_to_usd(credits) * cny_per_usd).quantize(Decimal("0.01"))
