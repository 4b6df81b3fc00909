"""Sign up, log in, log out, password reset, invite codes."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from website.i18n import current_lang

from .auth import ConsoleUser, password_problem, safe_next
from .blueprint import bp
from .services import users
from .services.mail import send_mail


def password_message(problem: str) -> str:
    return {
        "too_short": _("Use at least 12 characters."),
        "no_number": _("Include at least one number."),
        "no_symbol": _("Include at least one symbol, such as ! or #."),
    }[problem]


def _signup_message(problem: str) -> str:
    if problem == "bad_email":
        return _("Enter a valid e-mail address.")
    if problem == "taken":
        return _("An account with this e-mail already exists. Log in instead.")
    if problem == "bad_invite":
        return _("This invite code is not valid or has been used.")
    return password_message(problem)


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
    code = (request.form.get("invite_code") or "").strip().upper() if invite_only else None
    problem = users.signup_problem(email, password, code)
    if problem:
        return render_template("console/signup.html", invite_only=invite_only, email=email,
                               error=_signup_message(problem)), 400
    lang = current_lang()
    preset = "china" if lang == "zh" else "global"
    user = users.sign_up(email, password, preset=preset, locale=lang, invite_code=code)
    login_user(ConsoleUser(user))
    flash(_("Welcome to ByteSpike. Your account starts with the %(preset)s preset.",
            preset=_("China") if preset == "china" else _("Global")))
    return redirect(url_for("console.dashboard"))


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("console/login.html", email="")
    email = (request.form.get("email") or "").strip().lower()
    user = users.log_in(email, request.form.get("password") or "", request.remote_addr or "")
    if user is users.Refused.THROTTLED:
        return render_template("console/error.html", code=429,
                               message=_("Too many failed log-ins. Wait 15 minutes and try again.")), 429
    if user is users.Refused.WRONG:
        return render_template("console/login.html", email=email, error=_("Wrong e-mail or password.")), 401
    login_user(ConsoleUser(user))
    return redirect(safe_next(request.args.get("next")) or url_for("console.dashboard"))


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        users.log_out(int(current_user.id))
    logout_user()
    session.clear()
    return redirect(url_for("console.login"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return render_template("console/reset_request.html", sent=False)
    email = (request.form.get("email") or "").strip().lower()
    token = users.request_password_reset(email)
    if token is not None:
        link = current_app.config["BYTESPIKE_PUBLIC_URL"].rstrip("/") + url_for("console.reset_confirm", token=token)
        send_mail(email, _("Reset your ByteSpike password"),
                  _("Open this link within an hour to choose a new password: %(link)s", link=link))
    # The same answer whether or not the address has an account.
    return render_template("console/reset_request.html", sent=True)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_confirm(token: str):  # type: ignore[no-untyped-def]
    reset = users.open_reset(token)
    if reset is None:
        return render_template("console/error.html", code=400,
                               message=_("This reset link is invalid or has expired.")), 400
    if request.method == "GET":
        return render_template("console/reset_confirm.html")
    password = request.form.get("password") or ""
    problem = password_problem(password)
    if problem:
        return render_template("console/reset_confirm.html", error=password_message(problem)), 400
    if not users.reset_password(reset, password):
        return render_template("console/error.html", code=400, message=_("This reset link was already used.")), 400
    flash(_("Password changed. Log in with the new one."))
    return redirect(url_for("console.login"))


@bp.post("/invites")
@login_required
def mint_invite():  # type: ignore[no-untyped-def]
    if not users.mint_invite_code(int(current_user.id)):
        flash(_("You have minted all %(n)d of your invite codes.", n=users.INVITES_PER_ACCOUNT))
    return redirect(url_for("console.settings"))
