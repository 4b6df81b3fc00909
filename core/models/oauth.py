"""OAuth apps, their one-minute authorization codes, and the keys they hold (connected apps)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class OAuthClient(Base):
    """An app that may ask a user for a key: registered by an org's owner or admin, or by the operator."""

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)  # the client_id, "bsapp_..."
    name: Mapped[str] = mapped_column(String(120))
    logo_url: Mapped[str | None] = mapped_column(String(500), default=None)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    secret_hash: Mapped[str | None] = mapped_column(String(64), default=None)  # sha256 hex; shown once
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"), default=None, index=True)  # None: operator's
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class OAuthCode(Base):
    """An authorization code, stored as its SHA-256: single use, bound to client, redirect URI and challenge."""

    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))  # leaves with them
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(200), default="")
    code_challenge: Mapped[str | None] = mapped_column(String(128), default=None)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), default=None)
    # The limits the user chose on the consent page, in the controls create_sub_key takes.
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    key_id: Mapped[str | None] = mapped_column(String(40), default=None)  # the key it bought (revoked on replay)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OAuthConnection(Base):
    """An app connected to an org: the sub-key it was given, and who gave it."""

    __tablename__ = "oauth_connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.id"), index=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    # Who connected it; None once they leave the org (their keys are revoked as they go).
    member_id: Mapped[int | None] = mapped_column(ForeignKey("memberships.id", ondelete="SET NULL"), default=None)
    scope: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
