"""Who may do what in an org: one table for the console and the account API (API.md §4, Roles).

Two questions, asked in this order by every view of both surfaces:

1. **May this role take this action at all?** ``TABLE`` says. A role outside
   the action's set gets 403 ``permission_denied``, before any id is looked at.
2. **Is this object the actor's?** ``scope`` says which of the org's keys and
   usage rows the actor reaches: the whole org (owner, admin), the member's own
   keys (member), or the one key (a sub-key, whatever its member's role). An
   id outside the scope is answered exactly like an id that does not exist
   (404), so nobody learns what another member holds.

Callers that act through a sub-key are narrowed further: a sub-key is a
spending credential, so it may only read itself and its own usage, and
revoke itself (``SUB_KEY_ACTIONS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from .errors import PermissionDenied
from .models.accounts import ApiKey
from .models.usage import UsageLog

OWNER, ADMIN, MEMBER = "owner", "admin", "member"
ROLES = (OWNER, ADMIN, MEMBER)
MANAGERS = frozenset({OWNER, ADMIN})
EVERYONE = frozenset(ROLES)


class Action(StrEnum):
    """Everything the console and the account API let a signed-in caller do inside an org."""

    ACCOUNT_READ = "account.read"  # the caller's own key or membership, the wallet's balance, the dashboard
    USAGE_READ = "usage.read"  # usage rows and sums, in scope
    KEYS_READ = "keys.read"  # list keys, in scope
    KEYS_CREATE = "keys.create"  # mint a key (for oneself) or a sub-key under a key in scope
    KEYS_MANAGE = "keys.manage"  # rename or revoke a key in scope
    MEMBERS_READ = "members.read"  # the member list: e-mails, roles, quotas, open invites
    MEMBERS_MANAGE = "members.manage"  # invite, change a role or quota, remove
    ORG_SETTINGS = "org.settings"  # preset, low-balance alert, webhook URL and secret, deliveries
    BILLING_READ = "billing.read"  # orders, plans, the wallet's ledger entries
    BILLING_PAY = "billing.pay"  # open a top-up or plan order, play the sandbox payer
    ORG_JOIN = "org.join"  # accept an invite, switch between one's own orgs
    STATUS_READ = "status.read"  # channel health (the same document /api/status publishes)
    AUDIT_READ = "audit.read"  # the org's audit log: who changed keys, members, webhooks, payments


TABLE: dict[Action, frozenset[str]] = {
    Action.ACCOUNT_READ: EVERYONE,
    Action.USAGE_READ: EVERYONE,
    Action.KEYS_READ: EVERYONE,
    Action.KEYS_CREATE: EVERYONE,
    Action.KEYS_MANAGE: EVERYONE,
    Action.MEMBERS_READ: MANAGERS,
    Action.MEMBERS_MANAGE: MANAGERS,
    Action.ORG_SETTINGS: MANAGERS,
    Action.BILLING_READ: MANAGERS,
    Action.BILLING_PAY: MANAGERS,
    Action.ORG_JOIN: EVERYONE,
    Action.STATUS_READ: EVERYONE,
    Action.AUDIT_READ: MANAGERS,
}

WHAT = {
    Action.ACCOUNT_READ: "read the account", Action.USAGE_READ: "read usage", Action.KEYS_READ: "list keys",
    Action.KEYS_CREATE: "create keys", Action.KEYS_MANAGE: "manage keys", Action.MEMBERS_READ: "list members",
    Action.MEMBERS_MANAGE: "manage members", Action.ORG_SETTINGS: "change the org's settings",
    Action.BILLING_READ: "read billing", Action.BILLING_PAY: "pay for top-ups or plans",
    Action.ORG_JOIN: "join or switch orgs", Action.STATUS_READ: "read channel status",
    Action.AUDIT_READ: "read the audit log",
}
SUB_KEY_ACTIONS = frozenset({Action.ACCOUNT_READ, Action.USAGE_READ, Action.KEYS_READ, Action.KEYS_MANAGE})


@dataclass(frozen=True)
class Actor:
    """Who acts: a console membership, or the member behind an API key (``key_id`` set for a sub-key)."""

    org_id: int
    role: str | None
    member_id: int | None
    sub_key_id: str | None = None

    @property
    def scope(self) -> str:
        """``org``, ``member`` or ``key``: how far this actor's keys and usage reach."""
        if self.sub_key_id is not None:
            return "key"
        return "org" if self.role in MANAGERS else "member"


def from_principal(p: Any) -> Actor:
    """The actor behind an API key (a ``core.keys.Principal``)."""
    return Actor(org_id=p.org_id, role=p.role, member_id=p.member_id,
                 sub_key_id=p.key_id if p.kind == "sub" else None)


def allowed(actor: Actor, action: Action) -> bool:
    """Whether the actor's role (and key kind) permits ``action`` at all."""
    if actor.role not in TABLE[action]:
        return False
    return actor.sub_key_id is None or action in SUB_KEY_ACTIONS


def owns_key(actor: Actor, key: Any) -> bool:
    """Whether ``key`` (a row with org_id, member_id, id) is in the actor's scope."""
    if key is None or key.org_id != actor.org_id:
        return False
    if actor.scope == "org":
        return True
    if actor.scope == "key":
        return bool(key.id == actor.sub_key_id)
    return actor.member_id is not None and key.member_id == actor.member_id


def key_scope(actor: Actor) -> list[Any]:
    """WHERE clauses on ``api_keys`` for the keys in the actor's scope."""
    k = ApiKey.__table__.c
    cond: list[Any] = [k.org_id == actor.org_id]
    if actor.scope == "key":
        cond.append(k.id == actor.sub_key_id)
    elif actor.scope == "member":
        cond.append(k.member_id == actor.member_id if actor.member_id is not None else sa.false())
    return cond


def usage_scope(actor: Actor) -> list[Any]:
    """WHERE clauses on ``usage_log`` for the rows of the keys in the actor's scope."""
    u = UsageLog.__table__.c
    cond: list[Any] = [u.org_id == actor.org_id]
    if actor.scope == "key":
        cond.append(u.api_key_id == actor.sub_key_id)
    elif actor.scope == "member":
        own = sa.select(ApiKey.__table__.c.id).where(*key_scope(actor))
        cond.append(u.api_key_id.in_(own))
    return cond


# Every route of the account API and the console, by endpoint: the action it takes, or PUBLIC (no org
# role involved: sign-in pages, the caller's own session, payment callbacks, the public rate card).
# A route missing here is refused (fail closed), and tests/website/test_roles.py fails until it is added.
PUBLIC = None
ROUTES: dict[str, Action | None] = {
    # account API (API-key auth)
    "account_api.me_account": Action.ACCOUNT_READ,
    "account_api.me_usage": Action.USAGE_READ,
    "account_api.me_usage_one": Action.USAGE_READ,
    "account_api.me_transactions": Action.BILLING_READ,
    "account_api.create_key": Action.KEYS_CREATE,
    "account_api.list_keys": Action.KEYS_READ,
    "account_api.revoke_key": Action.KEYS_MANAGE,
    "account_api.pricing": PUBLIC,
    "account_api.me_audit": Action.AUDIT_READ,
    "account_api.get_webhooks": Action.ORG_SETTINGS,
    "account_api.put_webhooks": Action.ORG_SETTINGS,
    "payments.create_topup": Action.BILLING_PAY,
    "payments.get_topup": Action.BILLING_READ,
    "payments.alipay_notify": PUBLIC,
    "payments.wechatpay_notify": PUBLIC,
    # console (session auth)
    "console.index": PUBLIC,
    "console.signup": PUBLIC,
    "console.login": PUBLIC,
    "console.logout": PUBLIC,
    "console.reset_request": PUBLIC,
    "console.reset_confirm": PUBLIC,
    "console.static": PUBLIC,
    "console.mint_invite": PUBLIC,  # the person's own sign-up codes, not the org's
    "console.join": Action.ORG_JOIN,
    "console.switch_org": Action.ORG_JOIN,
    "console.dashboard": Action.ACCOUNT_READ,
    "console.settings": Action.ACCOUNT_READ,  # the org's part of the page needs ORG_SETTINGS
    "console.status": Action.STATUS_READ,
    "console.usage": Action.USAGE_READ,
    "console.usage_csv": Action.USAGE_READ,
    "console.keys": Action.KEYS_READ,
    "console.mint_key": Action.KEYS_CREATE,
    "console.mint_sub_key": Action.KEYS_CREATE,
    "console.revoke_key": Action.KEYS_MANAGE,
    "console.rename_key": Action.KEYS_MANAGE,
    "console.members": Action.MEMBERS_READ,
    "console.invite_member": Action.MEMBERS_MANAGE,
    "console.update_member": Action.MEMBERS_MANAGE,
    "console.remove_member": Action.MEMBERS_MANAGE,
    "console.billing": Action.BILLING_READ,
    "console.order": Action.BILLING_READ,
    "console.transactions": Action.BILLING_READ,
    "console.topup": Action.BILLING_PAY,
    "console.simulate": Action.BILLING_PAY,
    "console.set_preset": Action.ORG_SETTINGS,
    "console.set_notifications": Action.ORG_SETTINGS,
    "console.webhook_test": Action.ORG_SETTINGS,
    "console.deliveries": Action.ORG_SETTINGS,
    "console.delivery": Action.ORG_SETTINGS,
    "console.audit_log": Action.AUDIT_READ,
}


class NoRule(PermissionDenied):
    """A route that the table does not list: refused rather than guessed."""


def route_action(endpoint: str | None) -> Action | None:
    """The action behind ``endpoint`` (PUBLIC is None); NoRule (403) when the table lacks the route."""
    if (endpoint or "") not in ROUTES:
        raise NoRule("This route has no role rule; refused.")
    return ROUTES[endpoint or ""]


def check(actor: Actor, action: Action) -> None:
    """Raise 403 ``permission_denied`` unless the actor's role (and key kind) permits ``action``."""
    if not allowed(actor, action):
        who = "A sub-key" if actor.sub_key_id else f"The {actor.role or 'missing'} role"
        needs = "an owner's or admin's key" if actor.role in TABLE[action] else "owner or admin"
        raise PermissionDenied(f"{who} may not {WHAT[action]}; this needs {needs}.")
