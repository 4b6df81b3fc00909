"""The usage log: one row per call, written with the call's ledger entry."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Credits, UTCDateTime, utcnow


class UsageLog(Base):
    __tablename__ = "usage_log"
    __table_args__ = (
        Index("ix_usage_org_created", "org_id", "created_at"),
        Index("ix_usage_key_created", "api_key_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the request id
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    org_id: Mapped[int] = mapped_column(Integer)
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    member_id: Mapped[int | None] = mapped_column(Integer, default=None)
    model: Mapped[str] = mapped_column(String(120), default="")
    provider: Mapped[str | None] = mapped_column(String(60), default=None)
    channel: Mapped[str | None] = mapped_column(String(120), default=None)
    protocol: Mapped[str] = mapped_column(String(20), default="")  # the caller's protocol
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[int] = mapped_column(Integer, default=200)  # HTTP status the caller saw
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    estimated_credits: Mapped[int] = mapped_column(Credits, default=0)
    cost_credits: Mapped[int] = mapped_column(Credits, default=0)
    billed: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    overhead_ms: Mapped[int] = mapped_column(Integer, default=0)
    fallback_from: Mapped[str | None] = mapped_column(String(120), default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
