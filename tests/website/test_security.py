"""Sessions, redirects, page headers and proxy hops, as a browser and an attacker meet them."""

from __future__ import annotations

import pytest

from tests.conftest import make_app
from tests.website.console.conftest import PASSWORD, csrf_of, signup


@pytest.fixture
def console_app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'console.db'}")
    yield app
    app.extensions["bytespike_db"].dispose()


EVIL_NEXT = [
    "//evil.example", "//evil.example/x", "/%09/evil.example", "/\t/evil.example", "/\\evil.example",
    "/%5Cevil.example", "/%2F/evil.example", "/%2f%2fevil.example", "/%252F%252Fevil.example",
    "https://evil.example", "http:/evil.example", "javascript:alert(1)", "evil.example",
    "/%0d%0aSet-Cookie:%20x=1", " /evil", "/ /evil.example", "\\\\evil.example",
]


def _login(app, email: str, next_: str | None = None):  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = csrf_of(client.get("/en/console/login").text)
    url = "/en/console/login"
    r = client.post(url, query_string={"next": next_} if next_ is not None else None,
                    data={"csrf_token": token, "email": email, "password": PASSWORD})
    return client, r


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_login_next_never_leaves_the_site(console_app, target):
    signup(console_app, "n@example.com")
    _, r = _login(console_app, "n@example.com", target)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/en/console/"), r.headers["Location"]


def test_login_next_keeps_a_local_path_with_its_query(console_app):
    signup(console_app, "n@example.com")
    _, r = _login(console_app, "n@example.com", "/en/console/usage?model=a%20b")
    assert r.headers["Location"] == "/en/console/usage?model=a%20b"


def test_session_cookie_is_lax_and_http_only(console_app):
    signup(console_app, "c@example.com")
    _, r = _login(console_app, "c@example.com")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_behind_https(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'db.db'}", BYTESPIKE_PUBLIC_URL="https://bytespike.example")
    signup(app, "s@example.com")
    client = app.test_client()
    token = csrf_of(client.get("/en/console/login", base_url="https://localhost").text)
    r = client.post("/en/console/login", base_url="https://localhost",
                    data={"csrf_token": token, "email": "s@example.com", "password": PASSWORD})
    assert "Secure" in r.headers["Set-Cookie"] and "SameSite=Lax" in r.headers["Set-Cookie"]
    page = client.get("/en/", base_url="https://localhost")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")


def _cookie(client) -> str:  # type: ignore[no-untyped-def]
    return client.get_cookie("session").value


def test_logout_ends_a_session_saved_before_it(console_app):
    person = signup(console_app, "l@example.com")
    saved = _cookie(person.client)
    assert person.get("/keys").status_code == 200
    other, _ = _login(console_app, "l@example.com")  # a second browser, signed in too
    assert person.post("/logout").status_code == 302
    thief = console_app.test_client()
    thief.set_cookie("session", saved)
    r = thief.get("/en/console/keys")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert other.get("/en/console/keys").status_code == 302  # logout ends every session of that person


def test_password_reset_ends_earlier_sessions(console_app):
    person = signup(console_app, "r@example.com")
    assert person.get("/keys").status_code == 200
    from core import db as core_db
    from core.models import User
    from website.console.auth import end_all_sessions

    with console_app.app_context():
        s = core_db.session()
        user = s.query(User).filter(User.email == "r@example.com").one()
        end_all_sessions(user)  # what a password change does
        s.commit()
    assert person.get("/keys").status_code == 302


def test_pages_carry_security_headers_and_the_api_keeps_its_own(site):
    for path in ("/en/", "/zh/pricing/", "/en/console/login"):
        r = site.get(path)
        assert "script-src 'self'" in r.headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in r.headers  # plain http public URL
    api = site.get("/api/pricing")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in api.headers


def test_pages_have_no_inline_script(site):
    import re

    for path in ("/en/", "/en/pricing/", "/zh/docs/", "/en/console/login", "/en/playground/"):
        html = site.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son(submit|click|change|load)=", html), path


def test_trusted_proxies_default_ignores_forwarded_for(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'db.db'}")
    seen = {}

    @app.get("/_peer")
    def _peer():  # type: ignore[no-untyped-def]
        from flask import request

        seen["ip"] = request.remote_addr
        return "ok"

    app.test_client().get("/_peer", headers={"X-Forwarded-For": "203.0.113.9"})
    assert seen["ip"] == "127.0.0.1"


def test_trusted_proxies_take_the_visitor_address_for_login_throttle(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'db.db'}", BYTESPIKE_TRUSTED_PROXIES="1")
    signup(app, "p@example.com")
    client = app.test_client()
    token = csrf_of(client.get("/en/console/login").text)

    def attempt(ip: str) -> int:
        return client.post("/en/console/login", headers={"X-Forwarded-For": ip},
                           data={"csrf_token": token, "email": "p@example.com", "password": "wrong"}).status_code

    for _ in range(5):
        assert attempt("203.0.113.9") == 401
    assert attempt("203.0.113.9") == 429
    # Another visitor behind the same proxy is judged on its own address, not the proxy's.
    assert attempt("198.51.100.7") == 401


def test_without_trusted_proxies_every_forwarded_address_is_the_proxy(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'db.db'}")
    signup(app, "q@example.com")
    client = app.test_client()
    token = csrf_of(client.get("/en/console/login").text)
    codes = [client.post("/en/console/login", headers={"X-Forwarded-For": f"203.0.113.{i}"},
                         data={"csrf_token": token, "email": "q@example.com", "password": "wrong"}).status_code
             for i in range(6)]
    assert codes[-1] == 429  # the header is not trusted: all six came from one peer


def test_trusted_proxies_setting_is_validated():
    from core import config

    with pytest.raises(config.ConfigError, match="BYTESPIKE_TRUSTED_PROXIES"):
        config.load({"BYTESPIKE_TRUSTED_PROXIES": "many"}, environ={})


def test_consent_page_policy_names_only_the_apps_origin():
    from website.security import CSP, csp_allowing_form_target

    assert "form-action 'self' http://127.0.0.1:53682;" in csp_allowing_form_target("http://127.0.0.1:53682/cb?x=1")
    for bad in ("javascript:alert(1)", "http://a.example; script-src *", "ftp://x.example/", "/relative"):
        assert csp_allowing_form_target(bad) == CSP


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://[::1]/h", "http://169.254.169.254/latest",
                                 "http://10.0.0.8/h", "http://localhost:5432/"])
def test_webhook_url_inside_the_network_is_refused_and_never_called(console_app, url):
    from core import db as core_db
    from core.models import Org

    person = signup(console_app, "w@example.com")
    r = person.post("/settings/notifications", {"low_balance_usd": "5", "webhook_url": url})
    assert r.status_code == 302
    with console_app.app_context():
        assert core_db.session().get(Org, person.org_id(console_app)).webhook_url is None
    assert "public internet address" in person.get("/settings").text


def test_webhook_to_a_name_that_resolves_inside_is_refused_at_delivery(console_app, monkeypatch):
    import socket

    from core import db as core_db
    from core.models import Org, WebhookDelivery

    person = signup(console_app, "d@example.com")
    assert person.post("/settings/notifications", {"webhook_url": "https://hooks.sneaky.example/in"}).status_code == 302
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
    person.post("/settings/webhook-test")
    with console_app.app_context():
        s = core_db.session()
        org = s.get(Org, person.org_id(console_app))
        delivery = s.query(WebhookDelivery).filter(WebhookDelivery.org_id == org.id).one()
        assert delivery.status_code is None and delivery.error.startswith("refused:")
        assert "127.0.0.1" in delivery.error


@pytest.mark.parametrize("field,value", [("low_balance_usd", "NaN"), ("low_balance_usd", "Infinity"),
                                         ("low_balance_usd", "1e30"), ("low_balance_usd", "-5")])
def test_console_numbers_out_of_range_are_refused_not_crashed(console_app, field, value):
    person = signup(console_app, "n@example.com")
    r = person.post("/settings/notifications", {field: value})
    assert r.status_code == 302  # back to the form with a message, never a 500


@pytest.mark.parametrize("body", [{"name": "k", "rpm": 2**31}, {"name": "k", "tpm": 10**12},
                                  {"name": "k", "quota_credits": 2**60}, {"name": "k", "expires_in_days": 10**9}])
def test_key_limits_out_of_range_answer_400(console_app, body):
    from core import accounts

    with console_app.app_context():
        key = accounts.create_account("lim@example.com", 10**6)[1].raw
    r = console_app.test_client().post("/api/v1/keys", json=body, headers={"x-api-key": key})
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("name", ["a\u0000b", "tab\there", "x" * 201])
def test_key_names_with_control_characters_or_too_long_answer_400(console_app, name):
    """PostgreSQL cannot store NUL, and a name is at most 200 characters: refused by name, never a 500."""
    from core import accounts

    with console_app.app_context():
        key = accounts.create_account("names@example.com", 10**6)[1].raw
    r = console_app.test_client().post("/api/v1/keys", json={"name": name}, headers={"x-api-key": key})
    assert r.status_code == 400 and "name" in r.json["error"]["message"], r.text


def test_console_key_names_with_control_characters_answer_400(console_app):
    from core import db as core_db
    from core.models import ApiKey

    person = signup(console_app, "names.console@example.com")
    assert person.post("/keys", {"name": "a\u0000b"}).status_code == 400
    assert person.post("/keys", {"name": "laptop"}).status_code == 200
    with console_app.app_context():
        key_id = core_db.session().query(ApiKey).filter(ApiKey.name == "laptop").one().id
    assert person.post(f"/keys/{key_id}/rename", {"name": "bad\u0000name"}).status_code == 400
    with console_app.app_context():
        assert core_db.session().get(ApiKey, key_id).name == "laptop"


def test_site_hooks_skip_the_key_paths_and_still_run_on_pages(console_app):
    """The locale reset and the gettext domain run on pages, through one dispatcher; a /v1 call skips them."""
    from flask_babel import refresh

    from website import i18n

    hooks = console_app.before_request_funcs[None]
    assert refresh not in hooks and i18n.pick_domain not in hooks
    dispatch = next(f for f in hooks if f.__qualname__.endswith("_pages_only.<locals>.before"))
    site = next(c.cell_contents for c in dispatch.__closure__ or () if isinstance(c.cell_contents, list))
    assert site == [refresh, i18n.pick_domain]
    calls: list[str] = []
    site[:] = [lambda h=h: (calls.append(h.__name__), h())[1] for h in site]
    client = console_app.test_client()
    r = client.post("/v1/chat/completions", json={"model": "x", "messages": []})
    assert r.status_code == 401 and "Set-Cookie" not in r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert calls == []
    page = client.get("/zh/console/login")
    assert page.status_code == 200 and 'lang="zh' in page.text
    assert calls == ["refresh", "pick_domain"]
