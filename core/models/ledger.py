"""Wallets, the append-only ledger and open reservations.

``wallets.balance_credits`` and ``reserved_credits`` are running totals kept in
the same transaction as each entry; ``verify-ledger`` recomputes them from
``ledger_entries`` (balance = sum(amount_credits), reserved = sum(reserved_delta)).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from .. import ledger_fn
from .base import Base, Credits, UTCDateTime, utcnow

# Entry kinds. Balance-moving: topup, bonus, subscription_renew, refund,
# admin_credit, admin_debit, settle, payment_refund. Reservation-only:
# reserve, release (amount 0, reserved_delta +/-).
ENTRY_KINDS = (
    "topup",
    "bonus",
    "subscription_renew",
    "refund",
    "admin_credit",
    "admin_debit",
    "reserve",
    "release",
    "settle",
)


class Wallet(Base):
    __tablename__ = "wallets"
    # No floor on the balance: a vendor report above the hold is charged whole and may take it below zero
    # (API.md §3); reservations never go negative.
    __table_args__ = (CheckConstraint("reserved_credits >= 0", name="reserved_nonneg"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), unique=True)
    balance_credits: Mapped[int] = mapped_column(Credits, default=0)
    reserved_credits: Mapped[int] = mapped_column(Credits, default=0)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        # One settle/release per call, one credit per payment: idempotency by key.
        UniqueConstraint("wallet_id", "kind", "ref", name="uq_ledger_wallet_kind_ref"),
        Index("ix_ledger_wallet_created", "wallet_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    kind: Mapped[str] = mapped_column(String(24))
    amount_credits: Mapped[int] = mapped_column(Credits, default=0)  # signed: moves the balance
    reserved_delta: Mapped[int] = mapped_column(Credits, default=0)  # signed: moves the reservations
    ref: Mapped[str] = mapped_column(String(80))  # request id, order id, or an operator's reference
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    memo: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reservation(Base):
    """An open hold on a wallet; closed by exactly one settle or release entry."""

    __tablename__ = "reservations"

    request_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    member_id: Mapped[int | None] = mapped_column(default=None)
    amount_credits: Mapped[int] = mapped_column(Credits)
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | settled | released
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class KeySpendHour(Base):
    """Settled credits per key per UTC hour: the rolling spend windows (5h, 1d, 7d) sum these."""

    __tablename__ = "key_spend_hours"

    api_key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)  # start of the UTC hour
    credits: Mapped[int] = mapped_column(Credits, default=0)


# A schema made from the models (tests, an adopted database) gets the group reservation function too.
@event.listens_for(Base.metadata, "after_create")
def _reserve_function(_target: object, connection: Any, **_kw: Any) -> None:
    if connection.dialect.name == "postgresql":
        ledger_fn.install(connection)
