"""Console sessions: flask-login, a session-bound CSRF token, password rules, login throttling, org access."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from functools import wraps
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from flask import abort, current_app, request, session
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import select

from core import db as core_db
from core.models import Membership, User

login_manager = LoginManager()
login_manager.login_view = "console.login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60


class ConsoleUser(UserMixin):
    """The signed-in person, as flask-login sees them."""

    def __init__(self, user: User) -> None:
        self.id = str(user.id)
        self.email = user.email
        self.locale = user.locale
        self.session_version = int(user.session_version or 0)

    def get_id(self) -> str:
        """What the session cookie stores: the user and the session version it was signed in under."""
        return f"{self.id}:{self.session_version}"


@login_manager.user_loader
def _load_user(session_id: str) -> ConsoleUser | None:
    uid, _, version = session_id.partition(":")
    if not uid.isdigit() or not version.isdigit():
        return None  # a cookie from before session versions, or forged: sign in again
    user = core_db.session().get(User, int(uid))
    if user is None or int(user.session_version or 0) != int(version):
        return None  # logged out (or password changed) since this session began
    return ConsoleUser(user)


def end_all_sessions(user: User) -> None:
    """Invalidate every session of ``user`` signed in so far (the caller commits)."""
    user.session_version = int(user.session_version or 0) + 1


# --- redirects ------------------------------------------------------------------------------

_UNSAFE_NEXT = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (never an open redirect).

    Accepts only ``/`` followed by a non-slash: no scheme, no host (``//``,
    ``/\\``), no control characters, spaces or backslashes in the text as
    given; the path is judged again after percent-decoding (browsers and
    proxies may undo it), the query string only as given.
    """
    if not target or _UNSAFE_NEXT.search(target):
        return None
    path = target.split("?", 1)[0].split("#", 1)[0]
    for _ in range(3):
        if not path.startswith("/") or path.startswith("//") or _UNSAFE_NEXT.search(path):
            return None
        parts = urlsplit(path)
        if parts.scheme or parts.netloc:
            return None
        decoded = unquote(path)
        if decoded == path:
            return target
        path = decoded
    return None  # encoded three deep: no honest link looks like that


# --- CSRF ---------------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok(sent: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(str(expected), str(sent)))


def check_csrf() -> None:
    """Refuse a state-changing request whose form field or header lacks this session's token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if not _csrf_ok(request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)):
        abort(400, description="CSRF token missing or wrong; reload the page and try again.")


def check_csrf_header() -> None:
    """The JSON endpoints the console calls with its session cookie: token in the header."""
    if not _csrf_ok(request.headers.get(CSRF_HEADER)):
        abort(400, description="CSRF token missing or wrong.")


# --- passwords --------------------------------------------------------------------------------

_SYMBOL = re.compile(r"[^A-Za-z0-9]")


def password_problem(password: str) -> str | None:
    """Name what the password lacks (12+ characters, a number, a symbol), or None."""
    if len(password) < 12:
        return "too_short"
    if not re.search(r"\d", password):
        return "no_number"
    if not _SYMBOL.search(password):
        return "no_symbol"
    return None


def hash_password(password: str) -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password, method="scrypt")


def check_password(user: User | None, password: str) -> bool:
    from werkzeug.security import check_password_hash

    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)  # same work whether or not the e-mail exists
        return False
    return check_password_hash(user.password_hash, password)


_DUMMY_HASH = "scrypt:32768:8:1$0000000000000000$" + "0" * 128


def token_hash(token: str) -> str:
    """Tokens (password reset, org invites) are stored as their SHA-256 only."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- login throttling ---------------------------------------------------------------------------


class LoginThrottle:
    """Failures per (IP, e-mail) in a sliding window: Redis when configured, else this process."""

    def __init__(self) -> None:
        self._local: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _key(self, ip: str, email: str) -> str:
        digest = hashlib.sha256(f"{ip}|{email.lower()}".encode()).hexdigest()[:32]
        return f"{current_app.config['BYTESPIKE_REDIS_PREFIX']}login:{digest}"

    def _redis(self) -> Any:
        url = current_app.config.get("BYTESPIKE_REDIS_URL")
        if not url:
            return None
        import redis

        return redis.Redis.from_url(url, socket_timeout=2)

    def blocked(self, ip: str, email: str) -> bool:
        key, now = self._key(ip, email), time.time()
        r = self._redis()
        if r is not None:
            r.zremrangebyscore(key, 0, now - FAILURE_WINDOW_S)
            return int(r.zcard(key)) >= MAX_FAILURES
        with self._lock:
            hits = [t for t in self._local.get(key, []) if t > now - FAILURE_WINDOW_S]
            self._local[key] = hits
            return len(hits) >= MAX_FAILURES

    def fail(self, ip: str, email: str) -> None:
        key, now = self._key(ip, email), time.time()
        r = self._redis()
        if r is not None:
            r.zadd(key, {f"{now}:{secrets.token_hex(4)}": now})
            r.expire(key, FAILURE_WINDOW_S)
            return
        with self._lock:
            self._local.setdefault(key, []).append(now)

    def clear(self, ip: str, email: str) -> None:
        key = self._key(ip, email)
        r = self._redis()
        if r is not None:
            r.delete(key)
            return
        with self._lock:
            self._local.pop(key, None)


throttle = LoginThrottle()


# --- the current org and roles -------------------------------------------------------------------


def memberships() -> list[Membership]:
    s = core_db.session()
    return list(s.scalars(select(Membership).where(Membership.user_id == int(current_user.id)).order_by(Membership.id)))


def current_membership() -> Membership:
    """The membership of the org this session works in (the first one by default)."""
    mine = memberships()
    if not mine:
        abort(403)
    wanted = session.get("org_id")
    for m in mine:
        if m.org_id == wanted:
            return m
    session["org_id"] = mine[0].org_id
    return mine[0]


def current_org_id() -> int:
    return current_membership().org_id


def require_role(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Allow the view only to members of the current org holding one of ``roles``."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if current_membership().role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return inner

    return wrap


def org_choices() -> list[tuple[int, str, bool]]:
    """(org id, name, is current) for each org the signed-in person belongs to (the sidebar switcher)."""
    from core.models import Org

    if not current_user.is_authenticated:
        return []
    current = current_membership().org_id
    s = core_db.session()
    return [(m.org_id, (s.get(Org, m.org_id) or Org(name="?")).name, m.org_id == current) for m in memberships()]
