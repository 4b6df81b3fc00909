"""Authorization code + PKCE in-process: consent, the exchange, and every refusal RFC 6749 names."""

from __future__ import annotations

import datetime as dt
import html
import logging

import pytest
import sqlalchemy as sa

from core import db as core_db
from core.models import ApiKey, Membership, OAuthCode, OAuthConnection, User

from .conftest import LOOPBACK, authorize_query, consent, exchange, pkce, redirect_params, register, signup


def _echo(app, key: str):  # type: ignore[no-untyped-def]
    return app.test_client().post("/v1/messages", headers={"x-api-key": key}, json={
        "model": "bytespike-echo", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})


def _connected(console_app, person, redirect_uri: str = "http://127.0.0.1:49152/callback", **fields: str):  # type: ignore[no-untyped-def]
    client_id = register(console_app, LOOPBACK)[-1]
    verifier, challenge = pkce()
    params = redirect_params(consent(person, authorize_query(client_id, redirect_uri, challenge), **fields))
    return client_id, verifier, params


def test_oauth_flow_mints_sub_key_with_the_chosen_limits(console_app):
    person = signup(console_app, "owner@example.com")
    client_id, verifier, params = _connected(console_app, person, quota_usd="0.5", rate_limit_1d_usd="0.2",
                                             models="bytespike-echo", expires_in_days="30")
    assert params["state"] == "st-1"
    resp = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    token = resp.json
    assert token["token_type"] == "Bearer" and token["access_token"].startswith("sk-byts-")
    assert token["scope"] == "inference"
    with console_app.app_context():
        key = core_db.session().get(ApiKey, token["key_id"])
        assert key.kind == "sub" and key.quota_credits == 500_000 and key.rate_limit_1d == 200_000
        assert key.models == ["bytespike-echo"] and key.rate_limit_5h is None
        assert dt.timedelta(days=29) < key.expires_at - dt.datetime.utcnow() <= dt.timedelta(days=30)
        assert token["access_token"] not in str(key.key_hash)
        code = core_db.session().scalars(sa.select(OAuthCode)).one()
        assert code.expires_at - code.created_at == dt.timedelta(seconds=60)  # one minute's life
        assert params["code"] not in code.code_hash  # stored as its hash only
        assert core_db.session().scalars(sa.select(OAuthConnection)).one().key_id == key.id
    assert _echo(console_app, token["access_token"]).status_code == 200
    page = person.get("/apps")
    assert "Desk Agent" in page.text and key.prefix in page.text


def test_oauth_code_replay_is_refused_and_revokes_the_key(console_app):
    person = signup(console_app, "replay@example.com")
    client_id, verifier, params = _connected(console_app, person)
    first = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id)
    assert first.status_code == 200
    again = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id)
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"
    assert _echo(console_app, first.json["access_token"]).status_code == 401  # RFC 6749 4.1.2: tokens revoked


def test_oauth_wrong_verifier_is_invalid_grant_and_uses_the_code_up(console_app):
    person = signup(console_app, "verifier@example.com")
    client_id, verifier, params = _connected(console_app, person)
    wrong = exchange(console_app, params["code"], pkce()[0], "http://127.0.0.1:49152/callback", client_id)
    assert wrong.status_code == 400 and wrong.json["error"] == "invalid_grant"
    right = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id)
    assert right.status_code == 400 and right.json["error"] == "invalid_grant"
    client_id, _verifier, params = _connected(console_app, person)
    missing = exchange(console_app, params["code"], None, "http://127.0.0.1:49152/callback", client_id)
    assert missing.status_code == 400 and missing.json["error"] == "invalid_request"


def test_oauth_wrong_redirect_uri_at_the_exchange_is_invalid_grant(console_app):
    person = signup(console_app, "redirect@example.com")
    client_id, verifier, params = _connected(console_app, person)
    resp = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49153/callback", client_id)
    assert resp.status_code == 400 and resp.json["error"] == "invalid_grant"


def test_oauth_expired_code_is_invalid_grant(console_app):
    console_app.config["BYTESPIKE_OAUTH_CODE_TTL_S"] = 0
    person = signup(console_app, "expired@example.com")
    client_id, verifier, params = _connected(console_app, person)
    resp = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id)
    assert resp.status_code == 400 and resp.json["error"] == "invalid_grant"


def test_oauth_declined_consent_redirects_with_access_denied_and_state(console_app):
    person = signup(console_app, "decline@example.com")
    client_id = register(console_app, LOOPBACK)[-1]
    resp = consent(person, authorize_query(client_id, "http://127.0.0.1:5000/callback", pkce()[1], state="s&t"),
                   decision="deny")
    assert resp.headers["Location"].startswith("http://127.0.0.1:5000/callback?")
    params = redirect_params(resp)
    assert params["error"] == "access_denied" and params["state"] == "s&t" and "code" not in params


@pytest.mark.parametrize("redirect_uri, ok", [
    ("http://127.0.0.1:61000/callback", True),
    ("http://127.0.0.1/callback", True),
    ("http://127.0.0.1:61000/other", False),
    ("http://localhost:61000/callback", False),  # a different loopback host than the one registered
    ("https://evil.example/callback", False),
])
def test_oauth_loopback_redirect_matches_any_port_only(console_app, redirect_uri, ok):
    person = signup(console_app, "loop@example.com")
    client_id = register(console_app, LOOPBACK)[-1]
    page = person.get(f"/oauth/authorize?{authorize_query(client_id, redirect_uri, pkce()[1])}")
    assert page.status_code == (200 if ok else 400)
    if not ok:
        assert "invalid_request" in page.text and "Location" not in page.headers


def test_oauth_non_loopback_redirect_must_match_exactly(console_app):
    person = signup(console_app, "exact@example.com")
    client_id = register(console_app, "https://app.example.com/cb")[-1]
    ok = person.get(f"/oauth/authorize?{authorize_query(client_id, 'https://app.example.com/cb', pkce()[1])}")
    assert ok.status_code == 200 and "https://app.example.com/cb" in ok.text
    for uri in ("https://app.example.com/cb?x=1", "https://app.example.com:444/cb", "https://app.example.com/cb/"):
        assert person.get(f"/oauth/authorize?{authorize_query(client_id, uri, pkce()[1])}").status_code == 400


def test_oauth_unknown_client_is_refused_without_redirect(console_app):
    person = signup(console_app, "unknown@example.com")
    page = person.get(f"/oauth/authorize?{authorize_query('bsapp_nope', LOOPBACK, pkce()[1])}")
    assert page.status_code == 400 and "invalid_client" in page.text
    resp = exchange(console_app, "x" * 48, pkce()[0], LOOPBACK, "bsapp_nope")
    assert resp.status_code in (400, 401) and resp.json["error"] == "invalid_client"


def test_oauth_confidential_client_needs_its_secret(console_app):
    person = signup(console_app, "server@example.com")
    lines = register(console_app, "https://app.example.com/cb", confidential=True)
    client_id, secret = lines[-3].split(": ")[1], lines[-1]
    query = authorize_query(client_id, "https://app.example.com/cb", None)  # PKCE is optional with a secret
    params = redirect_params(consent(person, query))
    bad = exchange(console_app, params["code"], None, "https://app.example.com/cb", client_id, client_secret="bss_x")
    assert bad.status_code in (400, 401) and bad.json["error"] == "invalid_client"
    none = exchange(console_app, params["code"], None, "https://app.example.com/cb", client_id)
    assert none.status_code in (400, 401) and none.json["error"] == "invalid_client"
    basic = console_app.test_client().post("/oauth/token", auth=(client_id, "bss_wrong"), data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": "https://app.example.com/cb"})
    assert basic.status_code == 401 and basic.json["error"] == "invalid_client"
    params = redirect_params(consent(person, query))
    good = console_app.test_client().post("/oauth/token", auth=(client_id, secret), data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": "https://app.example.com/cb"})
    assert good.status_code == 200 and good.json["access_token"].startswith("sk-byts-")


def test_oauth_pkce_is_s256_only_and_required_of_public_apps(console_app):
    person = signup(console_app, "pkce@example.com")
    client_id = register(console_app, LOOPBACK)[-1]
    for extra in ({"code_challenge": pkce()[1], "code_challenge_method": "plain"}, {"code_challenge": pkce()[1]}, {}):
        query = authorize_query(client_id, "http://127.0.0.1:5000/callback", None, **extra)
        params = redirect_params(person.get(f"/oauth/authorize?{query}"))
        assert params["error"] == "invalid_request" and params["state"] == "st-1" and "code" not in params


def test_oauth_token_endpoint_errors(console_app):
    resp = console_app.test_client().post("/oauth/token", data={"grant_type": "password", "username": "x"})
    assert resp.status_code == 400 and resp.json["error"] == "unsupported_grant_type"


def test_oauth_consent_needs_the_console_csrf_token(console_app):
    person = signup(console_app, "csrf@example.com")
    client_id = register(console_app, LOOPBACK)[-1]
    query = authorize_query(client_id, "http://127.0.0.1:5000/callback", pkce()[1])
    resp = person.client.post(f"/en/console/oauth/authorize?{query}", data={"decision": "allow", "org_id": "1"})
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_oauth_anonymous_visitor_logs_in_first_and_comes_back(console_app):
    client_id = register(console_app, LOOPBACK)[-1]
    query = authorize_query(client_id, "http://127.0.0.1:5000/callback", pkce()[1])
    entry = console_app.test_client().get(f"/oauth/authorize?{query}", headers={"Accept-Language": "zh-CN"})
    assert entry.status_code == 302 and entry.headers["Location"] == f"/zh/console/oauth/authorize?{query}"
    person = signup(console_app, "zh@example.com", lang="zh")
    page = person.get(f"/oauth/authorize?{query}")
    assert "想要一个 ByteSpike 密钥" in page.text and "允许" in page.text
    assert html.escape(f"/en/console/oauth/authorize?{query}") in page.text  # the language switch keeps the request
    anon = console_app.test_client().get(f"/en/console/oauth/authorize?{query}")
    assert anon.status_code == 302 and "/en/console/login" in anon.headers["Location"]


def test_oauth_bad_limits_show_the_consent_page_again(console_app):
    person = signup(console_app, "limits@example.com")
    client_id = register(console_app, LOOPBACK)[-1]
    query = authorize_query(client_id, "http://127.0.0.1:5000/callback", pkce()[1])
    resp = consent(person, query, models="no-such-model")
    assert resp.status_code == 400 and "no-such-model" in resp.text


def test_oauth_code_and_key_never_reach_a_log(console_app, caplog):
    caplog.set_level(logging.DEBUG)
    person = signup(console_app, "logs@example.com")
    client_id, verifier, params = _connected(console_app, person)
    token = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id).json
    exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id)  # a replay
    assert params["code"] not in caplog.text and token["access_token"] not in caplog.text


def test_oauth_apps_registered_and_revoked_in_the_console(console_app):
    owner = signup(console_app, "apps-owner@example.com")
    page = owner.post("/apps", {"name": "Web Tool", "redirect_uris": "https://tool.example.com/cb",
                                "client_type": "confidential", "logo_url": "https://tool.example.com/logo.png"})
    assert page.status_code == 200 and 'id="new-client-secret"' in page.text
    client_id = page.text.split('id="new-client-id">')[1].split("<")[0]
    assert owner.get("/apps").text.count("bss_") == 0  # the secret is shown once
    bad = owner.post("/apps", {"name": "x", "redirect_uris": "http://tool.example.com/cb"})
    assert bad.status_code == 400
    params = redirect_params(consent(owner, authorize_query(client_id, "https://tool.example.com/cb", pkce()[1])))
    assert params["code"]
    with console_app.app_context():
        conn_id = core_db.session().scalars(sa.select(OAuthConnection.id)).all()
    assert conn_id == []  # no key until the exchange
    uid_key = _connected(console_app, owner)
    token = exchange(console_app, uid_key[2]["code"], uid_key[1], "http://127.0.0.1:49152/callback", uid_key[0]).json
    assert _echo(console_app, token["access_token"]).status_code == 200
    with console_app.app_context():
        conn_id = core_db.session().scalars(sa.select(OAuthConnection.id)).one()
    assert owner.post(f"/apps/connections/{conn_id}/revoke").status_code == 302
    assert _echo(console_app, token["access_token"]).status_code == 401
    assert "revoked" in owner.get("/apps").text


def test_oauth_members_connect_apps_but_only_owners_and_admins_register_them(console_app):
    owner = signup(console_app, "team-owner@example.com")
    member = signup(console_app, "team-member@example.com")
    org_id = owner.org_id(console_app)
    with console_app.app_context():
        s = core_db.session()
        uid = s.scalars(sa.select(User.id).where(User.email == member.email)).one()
        s.add(Membership(org_id=org_id, user_id=uid, role="member"))
        s.commit()
    assert member.post("/org/switch", {"org_id": str(org_id)}).status_code == 302
    page = member.get("/apps")
    assert page.status_code == 200 and "register-app-form" not in page.text
    assert member.post("/apps", {"name": "Mine", "redirect_uris": LOOPBACK}).status_code == 403
    client_id = register(console_app, LOOPBACK)[-1]
    query = authorize_query(client_id, "http://127.0.0.1:5000/callback", pkce()[1])
    assert f'<option value="{org_id}" selected>' in member.get(f"/oauth/authorize?{query}").text  # the current org
    params = redirect_params(member.post(f"/oauth/authorize?{query}", {"decision": "allow", "org_id": str(org_id)}))
    assert params["code"]
    other = signup(console_app, "stranger@example.com")
    resp = other.post(f"/oauth/authorize?{query}", {"decision": "allow", "org_id": str(org_id)})
    assert resp.status_code == 400 and "Location" not in resp.headers  # not an org this person belongs to


def test_oauth_member_who_leaves_takes_codes_and_app_keys_along(console_app):
    owner = signup(console_app, "org-owner@example.com")
    member = signup(console_app, "leaver@example.com")
    org_id = owner.org_id(console_app)
    with console_app.app_context():
        s = core_db.session()
        uid = s.scalars(sa.select(User.id).where(User.email == member.email)).one()
        s.add(Membership(org_id=org_id, user_id=uid, role="member"))
        s.commit()
        member_id = s.scalars(sa.select(Membership.id).where(Membership.user_id == uid,
                                                             Membership.org_id == org_id)).one()
    member.post("/org/switch", {"org_id": str(org_id)})
    client_id, verifier, params = _connected(console_app, member, org_id=str(org_id))
    key = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id).json
    verifier2, challenge2 = pkce()
    pending = redirect_params(consent(member, authorize_query(client_id, LOOPBACK, challenge2), org_id=str(org_id)))
    assert owner.post(f"/members/{member_id}/remove").status_code == 302
    assert _echo(console_app, key["access_token"]).status_code == 401
    late = exchange(console_app, pending["code"], verifier2, LOOPBACK, client_id)
    assert late.status_code == 400 and late.json["error"] == "invalid_grant"
    assert "Desk Agent" in owner.get("/apps").text  # the connection stays listed, its key revoked


def test_oauth_metadata_names_the_endpoints_and_s256(console_app):
    meta = console_app.test_client().get("/.well-known/oauth-authorization-server").json
    assert meta["authorization_endpoint"].endswith("/oauth/authorize") and meta["token_endpoint"].endswith("/oauth/token")
    assert meta["code_challenge_methods_supported"] == ["S256"] and meta["scopes_supported"] == ["inference"]
