"""Account services: an org with its owner, wallet and master key; sub-keys; revocation; presets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import db as core_db
from . import keys, ledger
from .catalog import get_card
from .keys import display_prefix, generate_key, hash_key, validate_cidrs
from .models.accounts import PRESETS, TIERS, ApiKey, Membership, Org, User
from .models.base import new_id, utcnow
from .models.ledger import Wallet

_k, _o, _w, _m, _u = (t.__table__ for t in (ApiKey, Org, Wallet, Membership, User))

DEMO_EMAIL = "demo@bytespike.local"
DEMO_CREDITS = 1_000_000  # $1.00 of free credits; the demo model itself costs nothing


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``raw`` is shown once and never stored."""

    id: str
    raw: str
    row: dict[str, Any]


def preset_models(preset: str) -> list[str]:
    """The model list a preset grants (defined in the rate card file); an org follows it until edited."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    return list(get_card().preset_models(preset))


def create_account(email: str, credits: int = 0, *, org_name: str | None = None, preset: str = "global",
                   tier: str = "free", password_hash: str | None = None, key_name: str = "master") -> tuple[int, NewKey]:
    """Create (or join) the user, a new org they own, its wallet and a master key; return (org_id, key)."""
    with core_db.get_db().engine.begin() as conn:
        opened = open_account(conn, email, org_name=org_name, preset=preset, tier=tier, password_hash=password_hash)
        key = insert_key(conn, org_id=opened.org_id, member_id=opened.member_id, parent_id=None, kind="master",
                         name=key_name)
    if credits:
        ledger.credit(opened.org_id, "admin_credit", credits, f"opening:{opened.org_id}", "opening credit")
    return opened.org_id, key


@dataclass(frozen=True)
class Opened:
    """The rows ``open_account`` made (or, for the user, found)."""

    user_id: int
    org_id: int
    member_id: int


def open_account(conn: sa.Connection, email: str, *, org_name: str | None = None, preset: str = "global",
                 tier: str = "free", password_hash: str | None = None, locale: str = "en") -> Opened:
    """Create (or join) the user and a new org they own, with its wallet, in the caller's transaction; no key."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r} (known: {', '.join(TIERS)})")
    preset_models(preset)  # validates the name
    email = email.strip().lower()
    if "@" not in email:
        raise ValueError(f"not an e-mail address: {email!r}")
    now = utcnow()
    uid = conn.execute(sa.select(_u.c.id).where(_u.c.email == email)).scalar()
    if uid is None:
        uid = conn.execute(_u.insert().values(email=email, password_hash=password_hash, locale=locale,
                                              is_operator=False, created_at=now)).inserted_primary_key[0]  # type: ignore[index]
    org_id = conn.execute(_o.insert().values(
        name=org_name or email.split("@")[0], tier=tier, preset=preset, models=None, created_at=now,
    )).inserted_primary_key[0]  # type: ignore[index]
    conn.execute(_w.insert().values(org_id=org_id, balance_credits=0, reserved_credits=0))
    mid = conn.execute(_m.insert().values(
        org_id=org_id, user_id=uid, role="owner", spent_credits=0, reserved_credits=0,
        month_spent_credits=0, created_at=now,
    )).inserted_primary_key[0]  # type: ignore[index]
    return Opened(int(uid), int(org_id), int(mid))


NAME_MAX = 200  # api_keys.name


def clean_name(raw: object, limit: int = NAME_MAX) -> str:
    """A display name (a key's, an app's), stripped; ValueError when it is empty, longer than ``limit`` or holds
    control characters (NUL included, which PostgreSQL cannot store)."""
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        raise ValueError("name is required")
    if len(name) > limit:
        raise ValueError(f"name must be at most {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("name must not contain control characters")
    return name


def insert_key(conn: sa.Connection, *, org_id: int, member_id: int | None, parent_id: str | None, kind: str,
                name: str, **controls: Any) -> NewKey:
    name = clean_name(name)
    raw = generate_key()
    key_id = new_id("key")
    row: dict[str, Any] = {
        "id": key_id, "org_id": org_id, "member_id": member_id, "parent_id": parent_id, "kind": kind,
        "name": name[:200], "key_hash": hash_key(raw), "prefix": display_prefix(raw), "spent_credits": 0,
        "reserved_credits": 0, "created_at": utcnow(),
        **{f: controls.get(f) for f in ("quota_credits", "models", "rate_limit_5h", "rate_limit_1d", "rate_limit_7d",
                                         "rpm", "tpm", "ip_allow", "ip_deny", "expires_at")},
    }
    conn.execute(_k.insert().values(**row))
    public = {k: v for k, v in row.items() if k != "key_hash"}
    return NewKey(key_id, raw, public)


def create_master_key(org_id: int, member_id: int, name: str) -> NewKey:
    """Mint a master key for a member of the org, in its own transaction."""
    with core_db.get_db().engine.begin() as conn:
        return insert_key(conn, org_id=org_id, member_id=member_id, parent_id=None, kind="master", name=name)


INT32_MAX = 2**31 - 1  # rpm, tpm and days are stored as 32-bit integers
CREDITS_MAX = 2**53  # credit limits: far above any wallet, within every database's bigint


def _int_or_none(v: Any, field: str, minimum: int = 0, maximum: int = CREDITS_MAX) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= maximum:
        raise ValueError(f"{field} must be an integer from {minimum} to {maximum}")
    return v


def create_sub_key(parent_key_id: str, name: str, *, quota_credits: int | None = None, models: list[str] | None = None,
                   rate_limit_5h: int | None = None, rate_limit_1d: int | None = None, rate_limit_7d: int | None = None,
                   rpm: int | None = None, tpm: int | None = None, expires_in_days: int | None = None,
                   ip_allow: list[str] | None = None, ip_deny: list[str] | None = None) -> NewKey:
    """Mint a sub-key under a master key; it spends from the same wallet within its own limits."""
    name = clean_name(name)
    controls: dict[str, Any] = {
        "quota_credits": _int_or_none(quota_credits, "quota_credits"),
        "rate_limit_5h": _int_or_none(rate_limit_5h, "rate_limit_5h"),
        "rate_limit_1d": _int_or_none(rate_limit_1d, "rate_limit_1d"),
        "rate_limit_7d": _int_or_none(rate_limit_7d, "rate_limit_7d"),
        "rpm": _int_or_none(rpm, "rpm", 1, INT32_MAX), "tpm": _int_or_none(tpm, "tpm", 1, INT32_MAX),
        "ip_allow": validate_cidrs(ip_allow, "ip_allow"), "ip_deny": validate_cidrs(ip_deny, "ip_deny"),
    }
    days = _int_or_none(expires_in_days, "expires_in_days", 1, 36_500)
    if days is not None:
        controls["expires_at"] = utcnow() + dt.timedelta(days=days)
    if models is not None:
        controls["models"] = canonical_models(models)
    with core_db.get_db().engine.begin() as conn:
        parent = conn.execute(sa.select(_k).where(_k.c.id == parent_key_id)).first()
        if parent is None or parent.revoked_at is not None:
            raise LookupError("parent key not found")
        if parent.kind != "master":
            raise PermissionError("a sub-key cannot mint keys")
        return insert_key(conn, org_id=parent.org_id, member_id=parent.member_id, parent_id=parent.id,
                           kind="sub", name=name, **controls)


def canonical_models(models: list[str]) -> list[str]:
    """The models' canonical ids, each once, in order; ValueError names an unknown one."""
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ValueError("models must be a list of model ids")
    card, out = get_card(), []
    for name in models:
        m = card.resolve(name)
        if m is None:
            raise ValueError(f"models: unknown model {name!r}")
        if m.id not in out:
            out.append(m.id)
    return out


def revoke_key(org_id: int, key_id: str) -> bool:
    """Revoke a key of this org (a master takes its sub-keys with it); False when not this org's key."""
    now = utcnow()
    with core_db.get_db().engine.begin() as conn:
        hit = conn.execute(_k.update().where(_k.c.id == key_id, _k.c.org_id == org_id)
                           .values(revoked_at=sa.func.coalesce(_k.c.revoked_at, now), **keys.version_bump()))
        if hit.rowcount != 1:
            return False
        conn.execute(_k.update().where(_k.c.parent_id == key_id, _k.c.revoked_at.is_(None))
                     .values(revoked_at=now, **keys.version_bump()))
    return True


def master_key_of(email: str) -> str | None:
    """The id of the newest live master key of an org this user owns."""
    with core_db.get_db().engine.connect() as conn:
        return conn.execute(
            sa.select(_k.c.id).select_from(_k.join(_m, _m.c.id == _k.c.member_id).join(_u, _u.c.id == _m.c.user_id))
            .where(_u.c.email == email.strip().lower(), _k.c.kind == "master", _k.c.revoked_at.is_(None),
                   _m.c.role == "owner")
            .order_by(_k.c.created_at.desc()).limit(1)
        ).scalar()


def ensure_demo_account(password_hash: str | None = None) -> tuple[int, NewKey]:
    """Make sure the demo account exists (with its free credits) and mint a fresh demo key for it.

    The demo keys minted before are revoked, so only the key printed last works; ``password_hash``
    (when given) becomes the demo user's console password.
    """
    with core_db.get_db().engine.connect() as conn:
        org_id = conn.execute(
            sa.select(_m.c.org_id).join(_u, _u.c.id == _m.c.user_id)
            .where(_u.c.email == DEMO_EMAIL, _m.c.role == "owner").order_by(_m.c.id).limit(1)
        ).scalar()
    if org_id is None:
        org_id, key = create_account(DEMO_EMAIL, DEMO_CREDITS, org_name="ByteSpike demo", key_name="demo",
                                     password_hash=password_hash)
        return org_id, key
    with core_db.get_db().engine.begin() as conn:
        mid = conn.execute(sa.select(_m.c.id).where(_m.c.org_id == org_id, _m.c.role == "owner")).scalar()
        conn.execute(_k.update().where(_k.c.org_id == org_id, _k.c.name == "demo", _k.c.revoked_at.is_(None))
                     .values(revoked_at=utcnow(), **keys.version_bump()))
        if password_hash is not None:
            conn.execute(_u.update().where(_u.c.email == DEMO_EMAIL).values(password_hash=password_hash))
        key = insert_key(conn, org_id=org_id, member_id=mid, parent_id=None, kind="master", name="demo")
    return int(org_id), key
