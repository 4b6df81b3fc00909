"""Console sessions: flask-login, a session-bound CSRF token, password rules, login throttling, org access."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from flask import abort, current_app, g, request, session
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import select

from core import db as core_db
from core import roles
from core.models import Membership, Org, OrgInvite, PasswordReset, User, utcnow

log = logging.getLogger(__name__)
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


TokenRow = TypeVar("TokenRow", OrgInvite, PasswordReset)


def open_token(model: type[TokenRow], token: str) -> TokenRow | None:
    """The single-use row (an invite, a password reset) this token names, if it is unused and not expired."""
    found = core_db.session().get(model, token_hash(token))
    if found is None or found.used_at is not None or found.expires_at < utcnow():
        return None
    return found


# --- login throttling ---------------------------------------------------------------------------


# Take one attempt in the (IP, e-mail) sliding window, atomically: drop attempts past the window,
# refuse when MAX are already in it, else count this one. Judge and count are one step, so parallel
# requests can never all pass a check made before any of them was counted.
_TAKE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class LoginThrottle:
    """Log-in attempts per (IP, e-mail) in a sliding window: Redis when configured, else this process.

    ``take`` counts an attempt before the password is checked; a successful log-in clears the
    count, so only failures stay in the window and at most ``MAX_FAILURES`` passwords are ever
    checked in it, however many requests arrive at once.
    """

    def __init__(self) -> None:
        self._local: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._scripts: dict[str, Any] = {}

    def _key(self, ip: str, email: str) -> str:
        digest = hashlib.sha256(f"{ip}|{email.lower()}".encode()).hexdigest()[:32]
        return f"{current_app.config['BYTESPIKE_REDIS_PREFIX']}login:{digest}"

    def _redis(self) -> Any:
        url = current_app.config.get("BYTESPIKE_REDIS_URL")
        if not url:
            return None
        script = self._scripts.get(url)
        if script is None:
            script = self._scripts[url] = redis.Redis.from_url(url, socket_timeout=2).register_script(_TAKE_LUA)
        return script

    def take(self, ip: str, email: str) -> bool:
        """Count one log-in attempt; False (refuse, check nothing) when the window is full."""
        key, now = self._key(ip, email), time.time()
        script = self._redis()
        if script is not None:
            member = f"{now}:{secrets.token_hex(4)}"
            try:
                return bool(script(keys=[key], args=[now - FAILURE_WINDOW_S, now, MAX_FAILURES, member,
                                                     FAILURE_WINDOW_S]))
            except (redis.RedisError, OSError):
                log.warning("redis unavailable: log-in attempts are counted in this process")
        with self._lock:
            hits = [t for t in self._local.get(key, []) if t > now - FAILURE_WINDOW_S]
            if len(hits) >= MAX_FAILURES:
                self._local[key] = hits
                return False
            self._local[key] = [*hits, now]
            return True

    def clear(self, ip: str, email: str) -> None:
        key = self._key(ip, email)
        script = self._redis()
        if script is not None:
            try:
                script.registered_client.delete(key)
            except (redis.RedisError, OSError):
                log.warning("redis unavailable: a log-in count could not be cleared")
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


def current_actor() -> roles.Actor:
    """The signed-in person as the role table sees them, in the org this session works in (once per request)."""
    actor = g.get("console_actor")
    if actor is None:
        m = current_membership()
        actor = g.console_actor = roles.Actor(org_id=m.org_id, role=m.role, member_id=m.id)
    return actor


def authorize_route() -> None:
    """Judge the route's action by the role table (403); the same table as the account API's."""
    try:
        action = roles.route_action(request.endpoint)
    except roles.NoRule:
        abort(403)
    if action is None or not current_user.is_authenticated:
        return  # public pages; login_required sends the anonymous to the log-in page
    if not roles.allowed(current_actor(), action):
        abort(403)


def can(action: str) -> bool:
    """Whether the signed-in person may take ``action`` (an ``Action`` value) here: for hiding what they cannot use."""
    return current_user.is_authenticated and roles.allowed(current_actor(), roles.Action(action))


def can_open(endpoint: str) -> bool:
    """Whether the signed-in person may open the console route ``endpoint`` (the navigation shows only those)."""
    action = roles.ROUTES.get(endpoint)
    return action is None or can(action)


def org_choices() -> list[tuple[int, str, bool]]:
    """(org id, name, is current) for each org the signed-in person belongs to (the sidebar switcher)."""
    if not current_user.is_authenticated:
        return []
    current = current_membership().org_id
    s = core_db.session()
    return [(m.org_id, (s.get(Org, m.org_id) or Org(name="?")).name, m.org_id == current) for m in memberships()]
