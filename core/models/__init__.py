"""Typed SQLAlchemy 2.x models: data only, no business logic."""

from .accounts import (
    PRESETS,
    ROLES,
    TIERS,
    ApiKey,
    InviteCode,
    Membership,
    Org,
    OrgInvite,
    PasswordReset,
    User,
)
from .audit import AuditEvent
from .base import Base, new_id, utcnow
from .channels import Channel
from .jobs import JobLease
from .ledger import ENTRY_KINDS, LedgerEntry, Reservation, Wallet
from .oauth import OAuthClient, OAuthCode, OAuthConnection
from .orders import ORDER_STATES, Order, PaymentEvent, SandboxTrade, WebhookDelivery
from .responses import StoredResponse
from .tasks import TASK_STATES, AsyncTask
from .usage import UsageLog

__all__ = [
    "PRESETS", "ROLES", "TIERS", "ENTRY_KINDS", "ORDER_STATES", "TASK_STATES",
    "ApiKey", "AsyncTask", "AuditEvent", "Base", "Channel", "InviteCode", "JobLease", "LedgerEntry", "Membership",
    "OAuthClient", "OAuthCode", "OAuthConnection",
    "Order", "Org", "OrgInvite", "PasswordReset", "PaymentEvent", "Reservation", "SandboxTrade", "StoredResponse", "UsageLog",
    "User", "Wallet", "WebhookDelivery", "new_id", "utcnow",
]
