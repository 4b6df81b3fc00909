"""The audit log: who did what to an org, from where and when. Rows are only ever added."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow

AuditId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only an INTEGER key


class AuditEvent(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_org_id_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"), default=None)
    # The actor: a signed-in person (user id and e-mail as they were), an API key, or the system.
    actor_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor_email: Mapped[str | None] = mapped_column(String(320), default=None)
    actor_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    action: Mapped[str] = mapped_column(String(64))  # key.created, member.role_changed, webhook.updated, ...
    target: Mapped[str | None] = mapped_column(String(200), default=None)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # never a secret
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
