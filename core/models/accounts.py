"""Organisations, people, memberships and API keys."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Credits, UTCDateTime, utcnow

TIERS = ("free", "pro", "max", "enterprise")
PRESETS = ("global", "china")
ROLES = ("owner", "admin", "member")


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(20), default="free")
    preset: Mapped[str] = mapped_column(String(20), default="global")
    # The preset's model list, editable; None means every model on the card.
    models: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    concurrency_cap: Mapped[int | None] = mapped_column(Integer, default=None)  # overrides the tier's
    tier_renews_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    low_balance_credits: Mapped[int | None] = mapped_column(Credits, default=None)
    low_balance_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    webhook_url: Mapped[str | None] = mapped_column(String(500), default=None)
    webhook_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    webhook_events: Mapped[list[str] | None] = mapped_column(JSON, default=None)  # None: every event
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300), default=None)
    locale: Mapped[str] = mapped_column(String(8), default="en")
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Moved by logout and a password change: every session signed in before it stops working.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Membership(Base):
    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(10), default="member")
    quota_credits: Mapped[int | None] = mapped_column(Credits, default=None)  # lifetime cap
    monthly_quota_credits: Mapped[int | None] = mapped_column(Credits, default=None)
    spent_credits: Mapped[int] = mapped_column(Credits, default=0)
    reserved_credits: Mapped[int] = mapped_column(Credits, default=0)
    month: Mapped[str | None] = mapped_column(String(7), default=None)  # "2026-11": month_spent's month
    month_spent_credits: Mapped[int] = mapped_column(Credits, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "key_..."
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("memberships.id"), default=None)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), default=None, index=True)
    kind: Mapped[str] = mapped_column(String(10), default="master")  # master | sub
    name: Mapped[str] = mapped_column(String(200), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the full key
    prefix: Mapped[str] = mapped_column(String(20))  # "sk-byts-AbCd" for display
    quota_credits: Mapped[int | None] = mapped_column(Credits, default=None)
    spent_credits: Mapped[int] = mapped_column(Credits, default=0)
    reserved_credits: Mapped[int] = mapped_column(Credits, default=0)
    models: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    rate_limit_5h: Mapped[int | None] = mapped_column(Credits, default=None)
    rate_limit_1d: Mapped[int | None] = mapped_column(Credits, default=None)
    rate_limit_7d: Mapped[int | None] = mapped_column(Credits, default=None)
    rpm: Mapped[int | None] = mapped_column(Integer, default=None)
    tpm: Mapped[int | None] = mapped_column(Integer, default=None)
    ip_allow: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    ip_deny: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Moves on every change to what a call may do with this key (its own controls, its org's or its
    # member's): a gateway's cached copy of the key is checked against it by the reservation.
    auth_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class InviteCode(Base):
    __tablename__ = "invite_codes"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)  # BS-XXXX-XXXX
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class PasswordReset(Base):
    __tablename__ = "password_resets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class OrgInvite(Base):
    """An invite link to join an org with a role."""

    __tablename__ = "org_invites"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    role: Mapped[str] = mapped_column(String(10), default="member")
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
