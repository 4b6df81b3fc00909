"""Stored Responses (``POST /v1/responses`` with ``store: true``): kept per account for 30 days."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class StoredResponse(Base):
    __tablename__ = "stored_responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "resp_...", as returned to the caller
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    model: Mapped[str] = mapped_column(String(120))
    previous_response_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The call's own input items (what input_items lists), the whole conversation sent upstream
    # (earlier turns included) and the response object as answered.
    input_items: Mapped[list[Any]] = mapped_column(JSON)
    conversation: Mapped[list[Any]] = mapped_column(JSON)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
