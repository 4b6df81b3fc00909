"""Sign-up, log-in, throttling, CSRF, password reset and invite-only sign-up, through the real forms."""

from __future__ import annotations

import logging
import re

import pytest

from .conftest import PASSWORD, csrf_of, signup


@pytest.mark.parametrize("password,message", [("Sh0rt!", "12 characters"), ("no-numbers-here!", "number"),
                                              ("nosymbols12345", "symbol")])
def test_signup_password_rules(console_app, password, message):
    client = console_app.test_client()
    token = csrf_of(client.get("/en/console/signup").text)
    r = client.post("/en/console/signup", data={"csrf_token": token, "email": "p@example.com", "password": password})
    assert r.status_code == 400 and message in r.text


@pytest.mark.parametrize("lang,preset", [("en", "global"), ("zh", "china")])
def test_signup_applies_the_preset_of_the_language(console_app, lang, preset):
    from core import db as core_db
    from core.models import Org, User

    person = signup(console_app, f"preset-{lang}@example.com", lang)
    with console_app.app_context():
        org = core_db.session().get(Org, person.org_id(console_app))
        assert org.preset == preset and org.models is None  # the preset list, resolved per call
        user = core_db.session().query(User).filter_by(email=person.email).one()
        assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash
    assert person.get("/dashboard").status_code == 200


def test_signup_refuses_a_taken_email(console_app):
    signup(console_app, "taken@example.com")
    client = console_app.test_client()
    token = csrf_of(client.get("/en/console/signup").text)
    r = client.post("/en/console/signup", data={"csrf_token": token, "email": "taken@example.com", "password": PASSWORD})
    assert r.status_code == 400 and "already exists" in r.text


def test_forms_without_the_csrf_token_are_refused(console_app):
    person = signup(console_app, "csrf@example.com")
    assert person.client.post("/en/console/keys", data={"name": "x"}).status_code == 400
    assert person.client.post("/en/console/keys", data={"name": "x", "csrf_token": "forged"}).status_code == 400
    # the top-up JSON endpoint used with the session cookie wants the header
    r = person.client.post("/api/v1/me/billing/topup", json={"amount_cny": "50", "method": "sandbox"})
    assert r.status_code == 400
    r = person.client.post("/api/v1/me/billing/topup", json={"amount_cny": "50", "method": "sandbox"},
                           headers={"X-CSRF-Token": person.csrf})
    assert r.status_code == 201


def test_login_throttles_after_five_failures(console_app):
    signup(console_app, "throttle@example.com")
    client = console_app.test_client()
    token = csrf_of(client.get("/en/console/login").text)

    def attempt(email: str, password: str) -> int:
        return client.post("/en/console/login", data={"csrf_token": token, "email": email, "password": password}).status_code

    assert [attempt("throttle@example.com", "wrong-password-1!") for _ in range(5)] == [401] * 5
    assert attempt("throttle@example.com", PASSWORD) == 429  # even the right password waits
    assert attempt("someone-else@example.com", "wrong-password-1!") == 401  # per IP + e-mail


def test_login_logout_and_safe_next(console_app):
    signup(console_app, "login@example.com")
    client = console_app.test_client()
    token = csrf_of(client.get("/en/console/login").text)
    r = client.post("/en/console/login?next=//evil.example/x",
                    data={"csrf_token": token, "email": "login@example.com", "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/en/console/dashboard"
    assert client.get("/en/console/dashboard").status_code == 200
    client.post("/en/console/logout", data={"csrf_token": token})
    assert client.get("/en/console/dashboard").status_code == 302


def test_password_reset_token_flow(console_app, caplog):
    from core import db as core_db
    from core.models import PasswordReset

    signup(console_app, "reset@example.com")
    client = console_app.test_client()
    token = csrf_of(client.get("/en/console/reset").text)
    with caplog.at_level(logging.WARNING):
        r = client.post("/en/console/reset", data={"csrf_token": token, "email": "reset@example.com"})
        same = client.post("/en/console/reset", data={"csrf_token": token, "email": "nobody@example.com"})
    assert r.status_code == same.status_code == 200 and r.text == same.text
    links = re.findall(r"http://\S+/en/console/reset/([\w-]+)", caplog.text)
    assert len(links) == 1
    with console_app.app_context():
        stored = core_db.session().query(PasswordReset).one()
        assert stored.token_hash != links[0] and len(stored.token_hash) == 64
    new = "another-horse-77?"
    assert client.post(f"/en/console/reset/{links[0]}", data={"csrf_token": token, "password": "weak"}).status_code == 400
    assert client.post(f"/en/console/reset/{links[0]}", data={"csrf_token": token, "password": new}).status_code == 302
    assert client.post(f"/en/console/reset/{links[0]}", data={"csrf_token": token, "password": new}).status_code == 400
    r = client.post("/en/console/login", data={"csrf_token": token, "email": "reset@example.com", "password": new})
    assert r.status_code == 302


def test_invite_only_signup_needs_a_fresh_code(tmp_path):
    from core import db as core_db
    from core.models import InviteCode
    from tests.conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'invite.db'}", BYTESPIKE_INVITE_ONLY="1")
    with app.app_context():
        core_db.session().add(InviteCode(code="BS-SEED-0001"))
        core_db.session().commit()
    client = app.test_client()
    token = csrf_of(client.get("/en/console/signup").text)
    data = {"csrf_token": token, "email": "inv@example.com", "password": PASSWORD}
    assert client.post("/en/console/signup", data=data).status_code == 400
    inviter = signup(app, "first@example.com", invite_code="BS-SEED-0001")
    for _ in range(4):
        inviter.post("/invites")
    with app.app_context():
        mine = core_db.session().query(InviteCode).filter(InviteCode.code != "BS-SEED-0001").all()
    assert len(mine) == 3 and all(re.fullmatch(r"BS-[A-Z0-9]{4}-[A-Z0-9]{4}", c.code) for c in mine)
    assert client.post("/en/console/signup", data={**data, "invite_code": "BS-SEED-0001"}).status_code == 400
    assert client.post("/en/console/signup", data={**data, "invite_code": mine[0].code}).status_code == 302
    app.extensions["bytespike_db"].dispose()


def test_login_throttle_is_shared_through_redis(tmp_path, redis_prefix):
    """Two app instances (two workers) share the failure count through Redis."""
    from tests.conftest import REDIS_URL, make_app

    apps = [make_app(f"sqlite:///{tmp_path / 'shared.db'}", BYTESPIKE_REDIS_URL=REDIS_URL,
                     BYTESPIKE_REDIS_PREFIX=redis_prefix) for _ in range(2)]
    signup(apps[0], "shared@example.com")
    statuses = []
    for i in range(6):
        client = apps[i % 2].test_client()
        token = csrf_of(client.get("/en/console/login").text)
        statuses.append(client.post("/en/console/login", data={
            "csrf_token": token, "email": "shared@example.com", "password": "wrong-password-1!"}).status_code)
    assert statuses == [401] * 5 + [429]
    for app in apps:
        app.extensions["bytespike_db"].dispose()
