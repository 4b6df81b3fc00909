"""Sign up, log in, log out, password reset, invite codes."""

from __future__ import annotations

import datetime as dt
import secrets
import string

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select, update

from core import accounts
from core import db as core_db
from core.models import InviteCode, PasswordReset, User, utcnow
from website.i18n import current_lang

from .auth import (
    ConsoleUser,
    check_password,
    end_all_sessions,
    hash_password,
    password_problem,
    safe_next,
    throttle,
    token_hash,
)
from .blueprint import bp

INVITES_PER_ACCOUNT = 3
RESET_TTL = dt.timedelta(hours=1)
_CODE_ALPHABET = string.ascii_uppercase.replace("O", "").replace("I", "") + "23456789"


def password_message(problem: str) -> str:
    return {
        "too_short": _("Use at least 12 characters."),
        "no_number": _("Include at least one number."),
        "no_symbol": _("Include at least one symbol, such as ! or #."),
    }[problem]


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    """The console's front door: the dashboard, or log in when anonymous."""
    if current_user.is_authenticated:
        return redirect(url_for("console.dashboard"))
    return redirect(url_for("console.login"))


@bp.route("/signup", methods=["GET", "POST"])
def signup():  # type: ignore[no-untyped-def]
    invite_only = bool(current_app.config.get("INVITE_ONLY"))
    if request.method == "GET":
        return render_template("console/signup.html", invite_only=invite_only, email="")
    email = (request.form.get("email") or "").strip().lower()
    password = request.form.get("password") or ""
    code = (request.form.get("invite_code") or "").strip().upper()
    error = _signup_error(email, password, code if invite_only else None)
    if error:
        return render_template("console/signup.html", invite_only=invite_only, email=email, error=error), 400
    lang = current_lang()
    preset = "china" if lang == "zh" else "global"
    accounts.create_account(email, org_name=email.split("@")[0], preset=preset,
                            password_hash=hash_password(password), key_name="console")
    s = core_db.session()
    user = s.scalar(select(User).where(User.email == email))
    assert user is not None
    user.locale = lang
    s.commit()
    if invite_only and not _use_invite(code, user.id):
        # Lost the race for the code after the account was made: keep the account, but say so.
        current_app.logger.warning("invite code %s was used twice; account %s kept", code, user.id)
    login_user(ConsoleUser(user))
    flash(_("Welcome to ByteSpike. Your account starts with the %(preset)s preset.",
            preset=_("China") if preset == "china" else _("Global")))
    return redirect(url_for("console.dashboard"))


def _signup_error(email: str, password: str, code: str | None) -> str | None:
    if "@" not in email or "." not in email.rsplit("@", 1)[-1] or len(email) > 320:
        return _("Enter a valid e-mail address.")
    problem = password_problem(password)
    if problem:
        return password_message(problem)
    s = core_db.session()
    if s.scalar(select(User.id).where(User.email == email)) is not None:
        return _("An account with this e-mail already exists. Log in instead.")
    if code is not None:
        invite = s.get(InviteCode, code)
        if invite is None or invite.used_by is not None:
            return _("This invite code is not valid or has been used.")
    return None


def _use_invite(code: str, user_id: int) -> bool:
    s = core_db.session()
    hit = s.execute(update(InviteCode).where(InviteCode.code == code, InviteCode.used_by.is_(None))
                    .values(used_by=user_id, used_at=utcnow()))
    s.commit()
    return hit.rowcount == 1  # type: ignore[attr-defined]


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("console/login.html", email="")
    email = (request.form.get("email") or "").strip().lower()
    password = request.form.get("password") or ""
    ip = request.remote_addr or ""
    if not throttle.take(ip, email):  # counted before the check: parallel guesses cannot all pass
        return render_template("console/error.html", code=429,
                               message=_("Too many failed log-ins. Wait 15 minutes and try again.")), 429
    user = core_db.session().scalar(select(User).where(User.email == email))
    if not check_password(user, password):
        return render_template("console/login.html", email=email, error=_("Wrong e-mail or password.")), 401
    assert user is not None
    throttle.clear(ip, email)
    login_user(ConsoleUser(user))
    return redirect(safe_next(request.args.get("next")) or url_for("console.dashboard"))


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        s = core_db.session()
        user = s.get(User, int(current_user.id))
        if user is not None:
            end_all_sessions(user)  # a cookie copied before this logout no longer opens anything
            s.commit()
    logout_user()
    session.clear()
    return redirect(url_for("console.login"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("console/reset_request.html", sent=False)
    email = (request.form.get("email") or "").strip().lower()
    s = core_db.session()
    user = s.scalar(select(User).where(User.email == email))
    if user is not None:
        token = secrets.token_urlsafe(32)
        s.add(PasswordReset(token_hash=token_hash(token), user_id=user.id, expires_at=utcnow() + RESET_TTL))
        s.commit()
        link = current_app.config["BYTESPIKE_PUBLIC_URL"].rstrip("/") + url_for("console.reset_confirm", token=token)
        _send_mail(email, _("Reset your ByteSpike password"),
                   _("Open this link within an hour to choose a new password: %(link)s", link=link))
    # The same answer whether or not the address has an account.
    return render_template("console/reset_request.html", sent=True)


def _send_mail(to: str, subject: str, body: str) -> None:
    """Send an e-mail; without BYTESPIKE_SMTP_URL it goes to the application log."""
    url = current_app.config.get("BYTESPIKE_SMTP_URL")
    if not url:
        current_app.logger.warning("e-mail to %s (no SMTP configured)\nSubject: %s\n\n%s", to, subject, body)
        return
    import smtplib
    from email.message import EmailMessage
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"no-reply@{parts.hostname}", to, subject
    msg.set_content(body)
    smtp_cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_cls(parts.hostname or "localhost", parts.port or (465 if parts.scheme == "smtps" else 25), timeout=10) as smtp:
        if parts.username:
            smtp.login(parts.username, parts.password or "")
        smtp.send_message(msg)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_confirm(token: str):  # type: ignore[no-untyped-def]
    s = core_db.session()
    reset = s.get(PasswordReset, token_hash(token))
    if reset is None or reset.used_at is not None or reset.expires_at < utcnow():
        return render_template("console/error.html", code=400,
                               message=_("This reset link is invalid or has expired.")), 400
    if request.method == "GET":
        return render_template("console/reset_confirm.html")
    password = request.form.get("password") or ""
    problem = password_problem(password)
    if problem:
        return render_template("console/reset_confirm.html", error=password_message(problem)), 400
    hit = s.execute(update(PasswordReset).where(PasswordReset.token_hash == reset.token_hash,
                                                PasswordReset.used_at.is_(None)).values(used_at=utcnow()))
    if hit.rowcount != 1:  # type: ignore[attr-defined]
        s.rollback()
        return render_template("console/error.html", code=400, message=_("This reset link was already used.")), 400
    user = s.get(User, reset.user_id)
    assert user is not None
    user.password_hash = hash_password(password)
    end_all_sessions(user)
    s.commit()
    flash(_("Password changed. Log in with the new one."))
    return redirect(url_for("console.login"))


def new_invite_code() -> str:
    pick = lambda: "".join(secrets.choice(_CODE_ALPHABET) for _ in range(4))  # noqa: E731
    return f"BS-{pick()}-{pick()}"


@bp.post("/invites")
@login_required
def mint_invite():  # type: ignore[no-untyped-def]
    s = core_db.session()
    uid = int(current_user.id)
    made = s.scalar(select(func.count()).select_from(InviteCode).where(InviteCode.created_by == uid)) or 0
    if made >= INVITES_PER_ACCOUNT:
        flash(_("You have minted all %(n)d of your invite codes.", n=INVITES_PER_ACCOUNT))
    else:
        s.add(InviteCode(code=new_invite_code(), created_by=uid))
        s.commit()
    return redirect(url_for("console.settings"))
