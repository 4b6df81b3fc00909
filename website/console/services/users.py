"""People: sign-up, log-in, log-out, password resets and invite codes."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
import string

from flask import current_app
from sqlalchemy import func, select, update

from core import accounts
from core import db as core_db
from core.models import InviteCode, PasswordReset, User, utcnow

from ..auth import (
    check_password,
    end_all_sessions,
    hash_password,
    open_token,
    password_problem,
    throttle,
    token_hash,
)

INVITES_PER_ACCOUNT = 3
RESET_TTL = dt.timedelta(hours=1)
_CODE_ALPHABET = string.ascii_uppercase.replace("O", "").replace("I", "") + "23456789"
_invites = InviteCode.__table__


class Refused(enum.Enum):
    """Why a log-in was refused."""

    THROTTLED = "throttled"  # too many failures from this address for this e-mail
    WRONG = "wrong"  # no such account, or the wrong password


def signup_problem(email: str, password: str, code: str | None) -> str | None:
    """Name what stops this sign-up (``bad_email``, a ``password_problem``, ``taken``, ``bad_invite``), or None."""
    if "@" not in email or "." not in email.rsplit("@", 1)[-1] or len(email) > 320:
        return "bad_email"
    problem = password_problem(password)
    if problem:
        return problem
    s = core_db.session()
    if s.scalar(select(User.id).where(User.email == email)) is not None:
        return "taken"
    if code is not None:
        invite = s.get(InviteCode, code)
        if invite is None or invite.used_by is not None:
            return "bad_invite"
    return None


def sign_up(email: str, password: str, *, preset: str, locale: str, invite_code: str | None) -> User:
    """Open the person's account and org (no key: the first is made where it can be shown) and use the code.

    A code taken by someone else in the meantime keeps the account; the double use is logged.
    """
    with core_db.get_db().engine.begin() as conn:
        opened = accounts.open_account(conn, email, org_name=email.split("@")[0], preset=preset,
                                       password_hash=hash_password(password), locale=locale)
        if invite_code is not None:
            hit = conn.execute(_invites.update().where(_invites.c.code == invite_code, _invites.c.used_by.is_(None))
                               .values(used_by=opened.user_id, used_at=utcnow()))
            if hit.rowcount != 1:
                current_app.logger.warning("invite code %s was used twice; account %s kept", invite_code, opened.user_id)
    user = core_db.session().get(User, opened.user_id)
    assert user is not None
    return user


def log_in(email: str, password: str, ip: str) -> User | Refused:
    """Check a log-in, counted per (IP, e-mail) before the check, so parallel guesses cannot all pass."""
    if not throttle.take(ip, email):
        return Refused.THROTTLED
    user = core_db.session().scalar(select(User).where(User.email == email))
    if not check_password(user, password):
        return Refused.WRONG
    assert user is not None
    throttle.clear(ip, email)
    return user


def log_out(user_id: int) -> None:
    """End every session of the person: a cookie copied before this no longer opens anything."""
    s = core_db.session()
    user = s.get(User, user_id)
    if user is not None:
        end_all_sessions(user)
        s.commit()


def request_password_reset(email: str) -> str | None:
    """Store a reset for the account with this e-mail; return its token (None: no such account)."""
    s = core_db.session()
    user = s.scalar(select(User).where(User.email == email))
    if user is None:
        return None
    token = secrets.token_urlsafe(32)
    s.add(PasswordReset(token_hash=token_hash(token), user_id=user.id, expires_at=utcnow() + RESET_TTL))
    s.commit()
    return token


def open_reset(token: str) -> PasswordReset | None:
    """The reset this token names, if it is unused and not expired."""
    return open_token(PasswordReset, token)


def reset_password(reset: PasswordReset, password: str) -> bool:
    """Use the reset once: set the password and end every session; False when it was used meanwhile."""
    s = core_db.session()
    hit = s.execute(update(PasswordReset).where(PasswordReset.token_hash == reset.token_hash,
                                                PasswordReset.used_at.is_(None)).values(used_at=utcnow()))
    if hit.rowcount != 1:  # type: ignore[attr-defined]
        s.rollback()
        return False
    user = s.get(User, reset.user_id)
    assert user is not None
    user.password_hash = hash_password(password)
    end_all_sessions(user)
    s.commit()
    return True


def new_invite_code() -> str:
    """A fresh invite code, ``BS-XXXX-XXXX`` (no O or I, no 0 or 1)."""
    return f"BS-{_pick4()}-{_pick4()}"


def _pick4() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(4))


def mint_invite_code(user_id: int) -> bool:
    """Mint one invite code for the person; False when they have made all of theirs."""
    s = core_db.session()
    made = s.scalar(select(func.count()).select_from(InviteCode).where(InviteCode.created_by == user_id)) or 0
    if made >= INVITES_PER_ACCOUNT:
        return False
    s.add(InviteCode(code=new_invite_code(), created_by=user_id))
    s.commit()
    return True

