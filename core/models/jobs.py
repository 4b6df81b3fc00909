"""Leases of the scheduled jobs: who may run each one next, and when it last went through."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime


class JobLease(Base):
    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    # Nobody runs the job again before this time: taking the lease moves it one interval on.
    run_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    holder: Mapped[str | None] = mapped_column(String(120), default=None)
    last_ok_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
