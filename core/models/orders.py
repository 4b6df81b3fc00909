"""Top-up orders, payment notifications and outgoing webhooks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Credits, UTCDateTime, utcnow

ORDER_STATES = ("pending", "paid", "closed", "refunded")


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "ord_..."
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    out_trade_no: Mapped[str] = mapped_column(String(64), unique=True)
    method: Mapped[str] = mapped_column(String(20))  # alipay | wechatpay | sandbox
    amount_cny: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    cny_per_usd: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    credits: Mapped[int] = mapped_column(Credits)
    bonus_credits: Mapped[int] = mapped_column(Credits, default=0)
    plan: Mapped[str | None] = mapped_column(String(20), default=None)  # subscription purchase
    # The wire protocol that carries the order (alipay | wechatpay); "sandbox" orders use one too.
    provider: Mapped[str | None] = mapped_column(String(20), default=None)
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False)  # paid through the local simulator
    status: Mapped[str] = mapped_column(String(10), default="pending")
    provider_trade_no: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    code_url: Mapped[str | None] = mapped_column(String(500), default=None)
    pay_url: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    refunded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class PaymentEvent(Base):
    """Every notification or query result, accepted or not: the audit trail."""

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    provider: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))  # notify | query | refund | create
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(300), default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(128), default=None, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))  # balance.low | payment.received
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    url: Mapped[str] = mapped_column(String(500))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class SandboxTrade(Base):
    """A trade held by the local payment simulator (the sandbox's "provider side")."""

    __tablename__ = "sandbox_trades"

    out_trade_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))  # the provider's own word (NOTPAY, TRADE_SUCCESS, ...)
    trade_no: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
