"""Async tasks (video, batched images): submit, query, cancel."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Credits, UTCDateTime, utcnow

TASK_STATES = ("pending", "running", "completed", "failed", "cancelled")


class AsyncTask(Base):
    __tablename__ = "async_tasks"
    __table_args__ = (UniqueConstraint("org_id", "out_task_id", name="uq_task_org_out"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "task_..."
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    out_task_id: Mapped[str | None] = mapped_column(String(120), default=None)
    model: Mapped[str] = mapped_column(String(120))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    params_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12), default="pending")
    estimated_credits: Mapped[int] = mapped_column(Credits, default=0)
    credits_used: Mapped[int | None] = mapped_column(Credits, default=None)
    seconds_rendered: Mapped[int] = mapped_column(default=0)
    callback_url: Mapped[str | None] = mapped_column(String(500), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Where the job runs and what holds its money (gateway/media_tasks.py).
    request_id: Mapped[str | None] = mapped_column(String(40), default=None)  # the reservation's id
    wallet_id: Mapped[int | None] = mapped_column(default=None)
    member_id: Mapped[int | None] = mapped_column(default=None)
    channel: Mapped[str | None] = mapped_column(String(120), default=None)
    key_index: Mapped[int] = mapped_column(default=0)
    upstream_model: Mapped[str | None] = mapped_column(String(120), default=None)
    upstream_id: Mapped[str | None] = mapped_column(String(200), default=None)
    provider: Mapped[str | None] = mapped_column(String(60), default=None)
    seconds_total: Mapped[int] = mapped_column(default=0)  # the length asked for (or reported)
    progress: Mapped[int] = mapped_column(default=0)  # 0-100, as the upstream reports it
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    callback_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
