"""OAuth apps: register them, match their redirect URIs, keep codes single-use, connect and revoke keys.

Codes and client secrets are kept as their SHA-256 only. An app's key is minted
by ``core.accounts.create_sub_key`` (the path the console and the API use) and
revoked by ``core.accounts.revoke_key`` (which moves the key's auth_version, so
every worker refuses it from the next call).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from core import accounts, audit
from core import db as core_db
from core.models import ApiKey, Membership, OAuthClient, OAuthCode, OAuthConnection, new_id, utcnow

SCOPES = ("inference",)  # call models through the gateway with the limits the user chose
CLIENT_PREFIX = "bsapp_"
LIMIT_FIELDS = ("quota_credits", "rate_limit_5h", "rate_limit_1d", "rate_limit_7d", "models", "expires_in_days")

_c, _code, _conn, _k = (t.__table__ for t in (OAuthClient, OAuthCode, OAuthConnection, ApiKey))


@dataclass(frozen=True)
class NewApp:
    """A registered app: ``secret`` (confidential apps only) is shown once and never stored."""

    client_id: str
    secret: str | None


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- redirect URIs ------------------------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def validate_redirect_uri(uri: str) -> str:
    """An absolute URI an app may register: https, http on a loopback address, or a private-use scheme."""
    uri = uri.strip()
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"not a URI: {uri!r}") from None
    if parts.fragment or "#" in uri:
        raise ValueError(f"a redirect URI has no fragment: {uri!r}")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return uri
    if "." in parts.scheme and parts.scheme not in ("http", "https"):  # RFC 8252 7.1: com.example.app:/cb
        return uri
    raise ValueError(f"a redirect URI must be https, http on 127.0.0.1 / [::1] / localhost, "
                     f"or a reverse-domain scheme: {uri!r}")


def redirect_uri_allowed(registered: list[str], uri: str) -> bool:
    """Exact match, except that a loopback URI matches on any port (RFC 8252 section 7.3)."""
    if uri in registered:
        return True
    try:
        asked = urlsplit(uri)
        asked.port  # noqa: B018
    except ValueError:
        return False
    if asked.scheme != "http" or not _is_loopback(asked.hostname) or asked.fragment:
        return False
    for reg in registered:
        r = urlsplit(reg)
        if (r.scheme == "http" and r.hostname == asked.hostname and r.path == asked.path
                and r.query == asked.query and not asked.username and not asked.password):
            return True
    return False


# --- apps ---------------------------------------------------------------------------------------


def register_app(name: str, redirect_uris: list[str], *, confidential: bool, logo_url: str | None = None,
                 org_id: int | None = None, created_by: int | None = None) -> NewApp:
    """Register an app; ValueError names what is wrong with the input."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValueError("name is required (at most 120 characters)")
    name = accounts.clean_name(name, 120)  # no control characters: it also names the app's key
    uris = [validate_redirect_uri(u) for u in redirect_uris if u.strip()]
    if not uris:
        raise ValueError("at least one redirect URI is required")
    logo = (logo_url or "").strip() or None
    if logo is not None and (urlsplit(logo).scheme != "https" or len(logo) > 500):
        raise ValueError("the logo URL must be an https URL")
    client_id = new_id(CLIENT_PREFIX[:-1])
    secret = "bss_" + secrets.token_urlsafe(32) if confidential else None
    with core_db.get_db().engine.begin() as conn:
        conn.execute(_c.insert().values(
            id=client_id, name=name, logo_url=logo, redirect_uris=uris, confidential=confidential,
            secret_hash=digest(secret) if secret else None, org_id=org_id, created_by=created_by,
            created_at=utcnow()))
    return NewApp(client_id, secret)


def get_app(client_id: str | None) -> OAuthClient | None:
    if not client_id or not client_id.startswith(CLIENT_PREFIX):
        return None
    app = core_db.session().get(OAuthClient, client_id)
    return app if app is not None and app.revoked_at is None else None


def secret_matches(app: OAuthClient, secret: str | None) -> bool:
    return bool(app.secret_hash and secret and hmac.compare_digest(app.secret_hash, digest(secret)))


def org_apps(org_id: int) -> list[OAuthClient]:
    q = sa.select(OAuthClient).where(OAuthClient.org_id == org_id).order_by(OAuthClient.created_at.desc())
    return list(core_db.session().scalars(q))


def retire_app(org_id: int, client_id: str) -> bool:
    """Stop an org's app from asking for new keys (the keys it holds stay until revoked)."""
    with core_db.get_db().engine.begin() as conn:
        hit = conn.execute(_c.update().where(_c.c.id == client_id, _c.c.org_id == org_id, _c.c.revoked_at.is_(None))
                           .values(revoked_at=utcnow()))
    return hit.rowcount == 1


# --- codes --------------------------------------------------------------------------------------


def save_code(code: str, *, client_id: str, member_id: int, redirect_uri: str, scope: str, challenge: str | None,
              method: str | None, limits: dict[str, Any], ttl_s: float) -> None:
    now = utcnow()
    with core_db.get_db().engine.begin() as conn:
        conn.execute(_code.insert().values(
            code_hash=digest(code), client_id=client_id, member_id=member_id, redirect_uri=redirect_uri,
            scope=scope, code_challenge=challenge, code_challenge_method=method,
            limits={f: limits.get(f) for f in LIMIT_FIELDS},
            expires_at=now + dt.timedelta(seconds=ttl_s), created_at=now))


def claim_code(code: str, client_id: str) -> Any:
    """The code's row, claimed for this one exchange; None if unknown, another app's, expired or used.

    Any exchange uses the code up, even one that then fails (a wrong verifier gets one try).
    A code presented again revokes the key it bought (RFC 6749 section 4.1.2).
    """
    h, now = digest(code), utcnow()
    with core_db.get_db().engine.begin() as conn:
        hit = conn.execute(_code.update().where(_code.c.code_hash == h, _code.c.client_id == client_id,
                                                _code.c.used_at.is_(None), _code.c.expires_at > now)
                           .values(used_at=now))
        row = conn.execute(sa.select(_code).where(_code.c.code_hash == h)).first()
    if hit.rowcount == 1:
        return row
    if row is not None and row.used_at is not None and row.key_id and row.client_id == client_id:
        revoke_by_key(row.key_id)
    return None


# --- keys and connections -----------------------------------------------------------------------


def _parent_key(member: Membership) -> str:
    """The member's newest live master key in the org; one is made (never shown) when there is none."""
    with core_db.get_db().engine.begin() as conn:
        key_id = conn.execute(sa.select(_k.c.id).where(
            _k.c.org_id == member.org_id, _k.c.member_id == member.id, _k.c.kind == "master",
            _k.c.revoked_at.is_(None)).order_by(_k.c.created_at.desc()).limit(1)).scalar()
        if key_id is None:
            key_id = accounts.insert_key(conn, org_id=member.org_id, member_id=member.id, parent_id=None,
                                         kind="master", name="Connected apps").id
    return str(key_id)


def connect(code_row: Any, app: OAuthClient) -> accounts.NewKey:
    """Mint the app's sub-key with the limits chosen at consent, and record the connection."""
    member = core_db.session().get(Membership, code_row.member_id)
    if member is None:
        raise LookupError("the person who consented is no longer in the org")
    limits = {f: code_row.limits.get(f) for f in LIMIT_FIELDS}
    key = accounts.create_sub_key(_parent_key(member), f"App: {app.name}", **limits)
    with core_db.get_db().engine.begin() as conn:
        conn.execute(_conn.insert().values(client_id=app.id, key_id=key.id, org_id=member.org_id,
                                           member_id=member.id, scope=code_row.scope, created_at=utcnow()))
        conn.execute(_code.update().where(_code.c.code_hash == code_row.code_hash).values(key_id=key.id))
    # Recorded at the app's token exchange, on behalf of the person who consented.
    audit.record("oauth.app_connected", org_id=member.org_id, target=app.name,
                 details={"client_id": app.id, "key_id": key.id, "scope": code_row.scope},
                 actor=audit.Who(user_id=member.user_id))
    return key


def connections(member: Membership) -> list[Any]:
    """Connected apps of the org (owners, admins) or of this member: app, key figures and limits."""
    q = (sa.select(_conn.c.id, _conn.c.created_at, _conn.c.scope, _c.c.name.label("app_name"),
                   _c.c.logo_url, _k.c.id.label("key_id"), _k.c.prefix, _k.c.spent_credits, _k.c.quota_credits,
                   _k.c.rate_limit_5h, _k.c.rate_limit_1d, _k.c.rate_limit_7d, _k.c.models, _k.c.expires_at,
                   _k.c.last_used_at, _k.c.revoked_at)
         .select_from(_conn.join(_c, _c.c.id == _conn.c.client_id).join(_k, _k.c.id == _conn.c.key_id))
         .where(_conn.c.org_id == member.org_id).order_by(_conn.c.created_at.desc()))
    if member.role == "member":
        q = q.where(_conn.c.member_id == member.id)
    with core_db.get_db().engine.connect() as conn:
        return list(conn.execute(q))


def revoke_connection(member: Membership, connection_id: int) -> bool:
    """Revoke a connected app's key through the one revocation path; False when not this member's to revoke."""
    with core_db.get_db().engine.connect() as conn:
        row = conn.execute(sa.select(_conn).where(_conn.c.id == connection_id)).first()
    if row is None or row.org_id != member.org_id or (member.role == "member" and row.member_id != member.id):
        return False
    done = accounts.revoke_key(row.org_id, row.key_id)
    if done:
        audit.record("oauth.app_revoked", org_id=row.org_id, target=row.client_id, details={"key_id": row.key_id})
    return done


def revoke_by_key(key_id: str) -> None:
    with core_db.get_db().engine.connect() as conn:
        org_id = conn.execute(sa.select(_k.c.org_id).where(_k.c.id == key_id)).scalar()
    if org_id is not None:
        accounts.revoke_key(int(org_id), key_id)
