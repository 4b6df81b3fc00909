"""Org members: invite links, joining, roles and quotas, removal; each audited."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import Any

from sqlalchemy import func, select, update

from core import audit, keys
from core import db as core_db
from core.models import ApiKey, Membership, OrgInvite, User, utcnow

from ..auth import open_token, token_hash

INVITE_TTL = dt.timedelta(days=7)
ROLES = ("owner", "admin", "member")


class Joined(enum.Enum):
    """What accepting an invite came to."""

    JOINED = "joined"
    ALREADY = "already"  # a member of that org already: the invite stays unused
    GONE = "gone"  # someone used the invite first


class LastOwner(Exception):
    """The change would leave the org without an owner."""


def member_of_org(org_id: int, member_id: int) -> Membership | None:
    """The membership if it belongs to this org."""
    target = core_db.session().get(Membership, member_id)
    return target if target is not None and target.org_id == org_id else None


def roster(org_id: int) -> tuple[list[Any], list[OrgInvite]]:
    """The org's (membership, e-mail) rows and its open invites."""
    s = core_db.session()
    rows = s.execute(select(Membership, User.email).join(User, User.id == Membership.user_id)
                     .where(Membership.org_id == org_id).order_by(Membership.id)).all()
    invites = s.scalars(select(OrgInvite).where(OrgInvite.org_id == org_id, OrgInvite.used_at.is_(None),
                                                OrgInvite.expires_at > utcnow())).all()
    return list(rows), list(invites)


def invite(org_id: int, role: str, email: str | None, created_by: int) -> str:
    """Store an invite (its hash only) and return the token for the link, shown once."""
    if role not in ("admin", "member"):
        raise ValueError(f"cannot invite as {role!r}")
    token = secrets.token_urlsafe(24)
    s = core_db.session()
    s.add(OrgInvite(token_hash=token_hash(token), org_id=org_id, role=role, email=email, created_by=created_by,
                    expires_at=utcnow() + INVITE_TTL))
    s.commit()
    audit.record("member.invited", org_id=org_id, target=email, details={"role": role})
    return token


def open_invite(token: str) -> OrgInvite | None:
    """The invite this token names, if it is unused and not expired."""
    return open_token(OrgInvite, token)


def accept_invite(found: OrgInvite, user_id: int, email: str) -> Joined:
    """Use the invite once and make the person a member with its role."""
    s = core_db.session()
    if s.scalar(select(Membership.id).where(Membership.org_id == found.org_id,
                                            Membership.user_id == user_id)) is not None:
        return Joined.ALREADY
    hit = s.execute(update(OrgInvite).where(OrgInvite.token_hash == found.token_hash, OrgInvite.used_at.is_(None))
                    .values(used_at=utcnow()))
    if hit.rowcount != 1:  # type: ignore[attr-defined]
        s.rollback()
        return Joined.GONE
    s.add(Membership(org_id=found.org_id, user_id=user_id, role=found.role))
    s.commit()
    audit.record("member.joined", org_id=found.org_id, target=email, details={"role": found.role})
    return Joined.JOINED


def may_set_role(me: Membership, target: Membership, role: str) -> bool:
    """Only an owner makes or unmakes an owner; the role must be one of ROLES."""
    return role in ROLES and (me.role == "owner" or (role != "owner" and target.role != "owner"))


def keeps_an_owner(target: Membership, role: str) -> bool:
    """Whether the org still has an owner once ``target`` has ``role``."""
    return not (target.role == "owner" and role != "owner" and owner_count(target.org_id) <= 1)


def update_member(me: Membership, target: Membership, role: str, quota_credits: int | None,
                  monthly_quota_credits: int | None) -> None:
    """Set the member's role and quotas; PermissionError or LastOwner when the change is not allowed."""
    if not may_set_role(me, target, role):
        raise PermissionError(role)
    if not keeps_an_owner(target, role):
        raise LastOwner
    fields = ("role", "quota_credits", "monthly_quota_credits")
    before = {f: getattr(target, f) for f in fields}
    target.role, target.quota_credits, target.monthly_quota_credits = role, quota_credits, monthly_quota_credits
    core_db.session().commit()
    changed = {f: {"from": before[f], "to": getattr(target, f)} for f in fields if before[f] != getattr(target, f)}
    if changed:
        audit.record("member.updated", org_id=me.org_id, target=email_of(target), details=changed)


def may_remove(me: Membership, target: Membership) -> bool:
    """Only an owner removes an owner, and never the last one."""
    return target.role != "owner" or (me.role == "owner" and owner_count(me.org_id) > 1)


def remove_member(me: Membership, target: Membership) -> None:
    """Remove the member; their keys stop working with them (the rows stay for the usage log)."""
    if not may_remove(me, target):
        raise PermissionError("cannot remove this owner")
    s = core_db.session()
    s.execute(update(ApiKey).where(ApiKey.member_id == target.id)
              .values(revoked_at=func.coalesce(ApiKey.revoked_at, utcnow()), member_id=None, **keys.version_bump()))
    who, role = email_of(target), target.role
    s.delete(target)
    s.commit()
    audit.record("member.removed", org_id=me.org_id, target=who, details={"role": role})


def email_of(member: Membership) -> str | None:
    return core_db.session().scalar(select(User.email).where(User.id == member.user_id))


def owner_count(org_id: int) -> int:
    return len(core_db.session().scalars(select(Membership.id).where(Membership.org_id == org_id,
                                                                     Membership.role == "owner")).all())
