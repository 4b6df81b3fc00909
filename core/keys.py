"""API keys: minting, hashing and authenticating a caller into a ``Principal``.

Only the SHA-256 of a key is stored. ``authenticate`` is one indexed SELECT
(key, org, wallet, member) compiled once and sent through the driver.

The chat gateway calls ``authenticate_cached``: the same row, kept per process
for a few minutes. It is never trusted on its own: the row carries the key's
``auth_version``, which every change to the key, its org or its member moves
(the ``before_flush`` hook below, and the few bulk UPDATEs that name it), and
``ledger.reserve`` refuses, under the row lock, a principal whose version is
no longer the key's (``StalePrincipal``). The caller then reads the key afresh
and judges the call again, so a revocation, a new IP rule or a narrowed model
list binds the very next call, on every worker.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from . import catalog
from . import db as core_db
from .errors import AuthError, ModelNotInGroup, PermissionDenied
from .live import Live
from .models.accounts import ApiKey, Membership, Org, User
from .models.base import utcnow
from .models.ledger import Wallet

KEY_PREFIX = "sk-byts-"
TIER_CONCURRENCY = {"free": 5, "pro": 25, "max": 100, "enterprise": 500}

_k, _o, _w = ApiKey.__table__, Org.__table__, Wallet.__table__
_m, _u = Membership.__table__, User.__table__


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its org and wallet, and every control on the key."""

    key_id: str
    org_id: int
    wallet_id: int
    member_id: int | None
    kind: str  # master | sub
    name: str
    tier: str
    models: tuple[str, ...] | None  # the key's list, else the org preset's; None = every model
    quota_credits: int | None
    rpm: int | None
    tpm: int | None
    rate_limit_5h: int | None
    rate_limit_1d: int | None
    rate_limit_7d: int | None
    expires_at: dt.datetime | None
    email: str | None
    parent_id: str | None = None
    preset: str = "global"
    role: str | None = None
    concurrency_cap: int = 5
    org_name: str = ""
    # The key's auth_version when this principal came from the cache; ledger.reserve checks it.
    version: int | None = None
    # This call's latest figures (key and wallet totals, window deltas), filled by limits.admit and the
    # ledger so the quota envelope needs no query of its own; never shared between calls.
    live: Live = field(default_factory=Live, compare=False, repr=False, hash=False)

    @property
    def has_windows(self) -> bool:
        return any(w is not None for w in (self.rate_limit_5h, self.rate_limit_1d, self.rate_limit_7d))


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A key's row as ``authenticate`` reads it: the key's controls, its org's and member's, its wallet."""

    id: str
    key_hash: str
    org_id: int
    member_id: int | None
    parent_id: str | None
    kind: str
    name: str
    quota_credits: int | None
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    rate_limit_5h: int | None
    rate_limit_1d: int | None
    rate_limit_7d: int | None
    ip_allow: list[str] | None
    ip_deny: list[str] | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    auth_version: int | None
    org_name: str
    tier: str
    preset: str
    org_models: list[str] | None
    concurrency_cap: int | None
    wallet_id: int
    role: str | None
    email: str | None


def generate_key() -> str:
    """Return a fresh key: the prefix and 43 URL-safe random characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def display_prefix(raw_key: str) -> str:
    return raw_key[: len(KEY_PREFIX) + 4]


_AUTH_SQL = (
    sa.select(
        _k.c.id, _k.c.key_hash, _k.c.org_id, _k.c.member_id, _k.c.parent_id, _k.c.kind, _k.c.name,
        _k.c.quota_credits, _k.c.models, _k.c.rpm, _k.c.tpm, _k.c.rate_limit_5h, _k.c.rate_limit_1d,
        _k.c.rate_limit_7d, _k.c.ip_allow, _k.c.ip_deny, _k.c.expires_at, _k.c.revoked_at, _k.c.auth_version,
        _o.c.name.label("org_name"), _o.c.tier, _o.c.preset, _o.c.models.label("org_models"),
        _o.c.concurrency_cap, _w.c.id.label("wallet_id"), _m.c.role, _u.c.email,
    )
    .select_from(
        _k.join(_o, _o.c.id == _k.c.org_id)
        .join(_w, _w.c.org_id == _k.c.org_id)
        .outerjoin(_m, _m.c.id == _k.c.member_id)
        .outerjoin(_u, _u.c.id == _m.c.user_id)
    )
    .where(_k.c.key_hash == sa.bindparam("h"))
)


def read_connection() -> sa.Connection:
    """A connection for a single read; on PostgreSQL in autocommit, which saves the BEGIN/ROLLBACK round trips."""
    engine = core_db.get_db().engine
    if engine.dialect.name == "sqlite":  # the driver sends no BEGIN for a SELECT anyway
        return engine.connect()
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def authenticate(raw_key: str, remote_ip: str) -> Principal:
    """Turn a raw key into a Principal; AuthError (401) or PermissionDenied (403, IP rules)."""
    digest = _digest(raw_key)
    return _judge(_fetch_key(digest), digest, remote_ip)


CACHE_TTL_S = 300.0
CACHE_MAX = 20_000
_cache: OrderedDict[tuple[int, str], tuple[float, KeyRow]] = OrderedDict()


def authenticate_cached(raw_key: str, remote_ip: str) -> Principal:
    """``authenticate`` from this process's copy of the key's row; the principal carries the row's version.

    Only a live key is kept. A copy is trusted to admit, never to refuse: a refusal
    (revoked, expired, IP rules) is judged again on a fresh read.
    """
    digest = _digest(raw_key)
    slot = _slot(digest)
    now = time.monotonic()
    hit = _cache.get(slot)
    if hit is not None and hit[0] > now:
        try:
            return _judge(hit[1], digest, remote_ip, version=int(hit[1].auth_version or 0))
        except (AuthError, PermissionDenied):
            pass
    row = _fetch_key(digest)
    _cache.pop(slot, None)
    if row is not None and row.revoked_at is None:
        _cache[slot] = (now + CACHE_TTL_S, row)
        if len(_cache) > CACHE_MAX:
            _cache.popitem(last=False)
    return _judge(row, digest, remote_ip, version=int(row.auth_version or 0) if row is not None else None)


def is_current(principal: Principal) -> bool:
    """Whether the key still has the version ``principal`` was judged on (one indexed read)."""
    with read_connection() as conn:
        version = conn.execute(sa.select(_k.c.auth_version).where(_k.c.id == principal.key_id)).scalar()
    return version is not None and int(version) == principal.version


def forget(raw_key: str) -> None:
    """Drop this process's copy of a key (its version moved)."""
    _cache.pop(_slot(hash_key(raw_key)), None)


def _slot(digest: str) -> tuple[int, str]:
    """A key's place in the cache: per database, so two apps in one process never share a row."""
    return id(core_db.get_db().engine), digest


def _digest(raw_key: str) -> str:
    if not raw_key or not raw_key.startswith(KEY_PREFIX):
        raise AuthError("Invalid API key: missing or malformed (keys start with sk-byts-).")
    return hash_key(raw_key)


def _judge(row: KeyRow | None, digest: str, remote_ip: str, version: int | None = None) -> Principal:
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise AuthError("Invalid API key.")
    if row.revoked_at is not None:
        raise AuthError("This API key has been revoked.")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise AuthError("This API key has expired.")
    if row.ip_allow or row.ip_deny:
        check_ip(remote_ip, row.ip_allow, row.ip_deny)
    return _principal(row, version)


@event.listens_for(Session, "before_flush")
def _move_versions(session: Session, _ctx: Any, _instances: Any) -> None:
    """Every ORM change to a key, an org or a membership moves the versions of the keys it governs."""
    orgs: set[int] = set()
    members: set[int] = set()
    for obj in list(session.dirty) + list(session.deleted):
        if obj in session.dirty and not session.is_modified(obj):
            continue
        if isinstance(obj, ApiKey) and obj not in session.deleted:
            obj.auth_version = (obj.auth_version or 0) + 1
        elif isinstance(obj, Org) and obj.id is not None:
            orgs.add(obj.id)
        elif isinstance(obj, Membership) and obj.id is not None:
            members.add(obj.id)
    if orgs:
        session.execute(_k.update().where(_k.c.org_id.in_(orgs)).values(version_bump()))
    if members:
        session.execute(_k.update().where(_k.c.member_id.in_(members)).values(version_bump()))


def version_bump() -> dict[str, Any]:
    """The values to add to a bulk UPDATE of api_keys that changes what the keys may do."""
    return {"auth_version": _k.c.auth_version + 1}


_AUTH_COLS = tuple(str(c.key) for c in _AUTH_SQL.selected_columns)
_AUTH_TEXT: dict[str, str] = {}


def _fetch_key(digest: str) -> KeyRow | None:
    """The key's row with its org, wallet and member, read through the driver (this runs on every call)."""
    with read_connection() as conn:
        name = conn.dialect.name
        text = _AUTH_TEXT.get(name)
        if text is None:
            text = _AUTH_TEXT[name] = str(_AUTH_SQL.compile(dialect=conn.dialect))
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(text, (digest,) if name == "sqlite" else {"h": digest})
            values = cur.fetchone()
        finally:
            cur.close()
    if values is None:
        return None
    row = dict(zip(_AUTH_COLS, values, strict=True))
    if name == "sqlite":  # the driver returns JSON and times as text
        for col in ("models", "org_models", "ip_allow", "ip_deny"):
            if isinstance(row[col], str):
                row[col] = json.loads(row[col])
        for col in ("expires_at", "revoked_at"):
            if isinstance(row[col], str):
                row[col] = dt.datetime.fromisoformat(row[col])
    return KeyRow(**row)


def _principal(row: KeyRow, version: int | None = None) -> Principal:
    models: Sequence[str] | None = row.models if row.models is not None else row.org_models
    if models is None:  # the org follows its preset as the card defines it now
        models = catalog.get_card().preset_models(row.preset) or None
    return Principal(
        key_id=row.id, org_id=row.org_id, wallet_id=row.wallet_id, member_id=row.member_id,
        kind=row.kind, name=row.name, tier=row.tier,
        models=tuple(models) if models is not None else None,
        quota_credits=row.quota_credits, rpm=row.rpm, tpm=row.tpm, rate_limit_5h=row.rate_limit_5h,
        rate_limit_1d=row.rate_limit_1d, rate_limit_7d=row.rate_limit_7d, expires_at=row.expires_at,
        email=row.email, parent_id=row.parent_id, preset=row.preset, role=row.role,
        concurrency_cap=row.concurrency_cap or TIER_CONCURRENCY.get(row.tier, 5), org_name=row.org_name,
        version=version,
    )


@functools.lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _contains(nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
              ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # an IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    for net in nets:
        if net.version == ip.version and ip in net:
            return True
        if mapped is not None and net.version == 4 and mapped in net:
            return True
    return False


def check_ip(remote_ip: str, allow: list[str] | None, deny: list[str] | None) -> None:
    """Refuse an address outside ``allow`` or inside ``deny`` (CIDR lists, IPv4 and IPv6)."""
    try:
        ip = ipaddress.ip_address(remote_ip.split("%", 1)[0])
    except ValueError:
        raise PermissionDenied("This API key may not be used from this address.") from None
    if deny and _contains(_networks(tuple(deny)), ip):
        raise PermissionDenied(f"This API key may not be used from {remote_ip} (ip_deny).")
    if allow and not _contains(_networks(tuple(allow)), ip):
        raise PermissionDenied(f"This API key may not be used from {remote_ip} (outside ip_allow).")


def validate_cidrs(cidrs: list[str] | None, field: str) -> list[str] | None:
    """Check a CIDR list from a caller; ValueError names the bad entry."""
    if cidrs is None:
        return None
    if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
        raise ValueError(f"{field} must be a list of CIDR strings")
    for c in cidrs:
        try:
            ipaddress.ip_network(c, strict=False)
        except ValueError:
            raise ValueError(f"{field}: not a CIDR: {c!r}") from None
    return list(cidrs)


def check_model(principal: Principal, model_id: str) -> None:
    """Refuse a model outside the key's list (or its org preset's): ModelNotInGroup (403)."""
    if principal.models is None or model_id in principal.models:
        return
    raise ModelNotInGroup(f"Model '{model_id}' is not in this key's model group (model_not_in_group).")
