"""The account, key and pricing API through the Flask test client (API.md §4, §5)."""

from __future__ import annotations

import datetime as dt

import pytest

from core import accounts, keys, ledger
from tests.conftest import make_app
from tests.core.backends import BACKENDS, backend_url


@pytest.fixture(params=BACKENDS)
def api(request, tmp_path, pg_url):
    app = make_app(backend_url(request.param, tmp_path, pg_url))
    yield app, app.test_client()
    app.extensions["bytespike_db"].dispose()


@pytest.fixture
def sqlite_api(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'bytespike.db'}")
    yield app, app.test_client()
    app.extensions["bytespike_db"].dispose()


def new_account(app, email="owner@example.com", credits=1_000_000, **kw):
    with app.app_context():
        org_id, key = accounts.create_account(email, credits, **kw)
    return org_id, key.raw


def bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


def call(app, raw, rid, cost, **kw):
    """Reserve and settle one call the way the gateway does."""
    with app.app_context():
        p = keys.authenticate(raw, "127.0.0.1")
        hold = ledger.reserve(p, rid, max(cost, 1))
        rec = ledger.UsageRecord(rid, p.org_id, p.key_id, p.member_id, kw.pop("model", "claude-sonnet-4-6"),
                                 "anthropic", "ch", "anthropic", False, 200, **kw)
        return ledger.settle(hold, cost, rec)


def assert_openai_error(resp, status, code):
    assert resp.status_code == status
    err = resp.get_json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == code and err["message"]


def test_account_api_me_account(api):
    app, client = api
    org, raw = new_account(app, org_name="Acme", preset="global", tier="pro")
    resp = client.get("/api/v1/me/account", headers={"x-api-key": raw})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["email"] == "owner@example.com"
    assert body["org"] == {"id": org, "name": "Acme", "role": "owner"}
    assert (body["preset"], body["tier"], body["balance_credits"], body["reserved_credits"]) == (
        "global", "pro", 1_000_000, 0)
    key = body["key"]
    assert key["kind"] == "master" and key["quota_credits"] is None and key["spent_credits"] == 0
    for f in ("id", "name", "models", "rate_limit_5h", "rate_limit_1d", "rate_limit_7d", "rpm", "tpm", "expires_at"):
        assert f in key


def test_account_api_auth_shapes(sqlite_api):
    app, client = sqlite_api
    _, raw = new_account(app)
    assert client.get("/api/v1/me/account", headers=bearer(raw)).status_code == 200
    # x-api-key wins over Authorization
    both = {"x-api-key": raw, "Authorization": "Bearer sk-byts-wrong"}
    assert client.get("/api/v1/me/account", headers=both).status_code == 200
    both = {"x-api-key": "sk-byts-wrong", "Authorization": f"Bearer {raw}"}
    assert_openai_error(client.get("/api/v1/me/account", headers=both), 401, "invalid_api_key")
    assert_openai_error(client.get("/api/v1/me/account"), 401, "invalid_api_key")


def test_account_api_usage_rows_filters_and_groups(api):
    app, client = api
    _, raw = new_account(app)
    call(app, raw, "req_1", 1_000, input_tokens=100, output_tokens=10)
    call(app, raw, "req_2", 2_000, input_tokens=200, output_tokens=20, model="gpt-5-4")
    call(app, raw, "req_3", 3_000, input_tokens=300, output_tokens=30)
    rows = client.get("/api/v1/me/usage", headers=bearer(raw)).get_json()
    assert [r["id"] for r in rows["data"]][:1] and {r["id"] for r in rows["data"]} == {"req_1", "req_2", "req_3"}
    row = next(r for r in rows["data"] if r["id"] == "req_2")
    for f in ("id", "created_at", "model", "provider", "protocol", "stream", "status", "input_tokens",
              "output_tokens", "cache_write_tokens", "cache_read_tokens", "cost_credits", "billed", "latency_ms",
              "overhead_ms", "fallback_from", "error"):
        assert f in row
    assert (row["model"], row["cost_credits"], row["billed"], row["input_tokens"]) == ("gpt-5-4", 2000, True, 200)
    one = client.get("/api/v1/me/usage?limit=1", headers=bearer(raw)).get_json()
    assert len(one["data"]) == 1 and one["has_more"] is True
    by_model = client.get("/api/v1/me/usage?model=gpt-5.4", headers=bearer(raw)).get_json()
    assert [r["id"] for r in by_model["data"]] == ["req_2"]
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.get(f"/api/v1/me/usage?since={tomorrow}", headers=bearer(raw)).get_json()["data"] == []
    groups = client.get("/api/v1/me/usage?group_by=model", headers=bearer(raw)).get_json()
    sums = {g["model"]: (g["requests"], g["cost_credits"], g["input_tokens"]) for g in groups["data"]}
    assert sums == {"claude-sonnet-4-6": (2, 4000, 400), "gpt-5-4": (1, 2000, 200)}
    day = client.get("/api/v1/me/usage?group_by=day", headers=bearer(raw)).get_json()["data"]
    assert len(day) == 1 and day[0]["day"] == dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") and day[0]["requests"] == 3
    hour = client.get("/api/v1/me/usage?group_by=hour", headers=bearer(raw)).get_json()["data"]
    assert sum(h["cost_credits"] for h in hour) == 6000 and hour[0]["hour"].endswith(":00")
    assert_openai_error(client.get("/api/v1/me/usage?group_by=week", headers=bearer(raw)), 400, "invalid_param")
    got = client.get("/api/v1/me/usage/req_3", headers=bearer(raw))
    assert got.status_code == 200 and got.get_json()["cost_credits"] == 3000


def test_account_api_never_shows_another_orgs_data(api):
    app, client = api
    _, raw_a = new_account(app, "a@example.com")
    _, raw_b = new_account(app, "b@example.com")
    call(app, raw_a, "req_a", 500)
    assert client.get("/api/v1/me/usage", headers=bearer(raw_b)).get_json()["data"] == []
    assert_openai_error(client.get("/api/v1/me/usage/req_a", headers=bearer(raw_b)), 404, "not_found")
    tx = client.get("/api/v1/me/billing/transactions", headers=bearer(raw_b)).get_json()["data"]
    assert all(t["ref"] != "req_a" for t in tx)
    by_key = client.get("/api/v1/me/usage?group_by=api_key", headers=bearer(raw_b)).get_json()["data"]
    assert by_key == []


def test_account_api_sub_key_sees_only_its_own_usage(sqlite_api):
    app, client = sqlite_api
    _, raw = new_account(app)
    sub = client.post("/api/v1/keys", headers=bearer(raw), json={"name": "ci"}).get_json()
    call(app, raw, "req_master", 100)
    call(app, sub["key"], "req_sub", 200)
    mine = client.get("/api/v1/me/usage", headers=bearer(sub["key"])).get_json()["data"]
    assert [r["id"] for r in mine] == ["req_sub"]
    everything = client.get("/api/v1/me/usage", headers=bearer(raw)).get_json()["data"]
    assert {r["id"] for r in everything} == {"req_master", "req_sub"}
    only_sub = client.get(f"/api/v1/me/usage?api_key={sub['id']}", headers=bearer(raw)).get_json()["data"]
    assert [r["id"] for r in only_sub] == ["req_sub"]


def test_account_api_transactions_newest_first_paged(api):
    app, client = api
    org, raw = new_account(app, credits=0)
    with app.app_context():
        ledger.credit(org, "topup", 5_000_000, "ord_1", "35.00 CNY")
        ledger.credit(org, "bonus", 150_000, "ord_1")
    call(app, raw, "req_x", 1_234)
    body = client.get("/api/v1/me/billing/transactions", headers=bearer(raw)).get_json()
    kinds = [t["kind"] for t in body["data"]]
    assert kinds == ["settle", "bonus", "topup"]  # newest first; reserve/release holds are not listed
    settle = body["data"][0]
    assert (settle["amount_credits"], settle["ref"], settle["amount_usd"]) == (-1_234, "req_x", "-0.001234")
    page = client.get("/api/v1/me/billing/transactions?page_size=1&page=2", headers=bearer(raw)).get_json()
    assert [t["kind"] for t in page["data"]] == ["bonus"] and page["has_more"] is True
    assert_openai_error(client.get("/api/v1/me/billing/transactions?page_size=500", headers=bearer(raw)),
                        400, "invalid_param")


def test_account_api_create_key_with_every_control(api):
    app, client = api
    _, raw = new_account(app)
    req = {"name": "prod", "quota_credits": 5_000, "models": ["claude-sonnet-4.6", "deepseek-chat"],
           "rate_limit_5h": 100, "rate_limit_1d": 500, "rate_limit_7d": 2000, "rpm": 60, "tpm": 90000,
           "expires_in_days": 7, "ip_allow": ["127.0.0.0/8", "::1/128"], "ip_deny": ["10.0.0.0/8"]}
    resp = client.post("/api/v1/keys", headers={"x-api-key": raw}, json=req)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["key"].startswith("sk-byts-") and body["id"].startswith("key_") and body["kind"] == "sub"
    assert body["models"] == ["claude-sonnet-4-6", "deepseek-v4-flash"] and body["quota_credits"] == 5_000
    assert (body["rpm"], body["tpm"], body["rate_limit_7d"]) == (60, 90000, 2000) and body["expires_at"]
    me = client.get("/api/v1/me/account", headers=bearer(body["key"])).get_json()
    assert me["key"]["kind"] == "sub" and me["key"]["rpm"] == 60 and me["key"]["quota_credits"] == 5_000
    listed = client.get("/api/v1/keys", headers=bearer(raw)).get_json()["data"]
    assert {k["id"] for k in listed} >= {body["id"]} and all("key" not in k for k in listed)


@pytest.mark.parametrize(("payload", "param"), [
    ({}, "name"), ({"name": "x", "models": ["no-such"]}, "models"), ({"name": "x", "rpm": "fast"}, "rpm"),
    ({"name": "x", "ip_allow": ["300.1.1.1/8"]}, "ip_allow"), ({"name": "x", "colour": "red"}, "colour"),
])
def test_account_api_create_key_validates(sqlite_api, payload, param):
    app, client = sqlite_api
    _, raw = new_account(app)
    resp = client.post("/api/v1/keys", headers=bearer(raw), json=payload)
    assert_openai_error(resp, 400, "invalid_param")
    assert resp.get_json()["error"]["param"] == param


def test_account_api_sub_key_cannot_mint_or_revoke_others(sqlite_api):
    app, client = sqlite_api
    _, raw = new_account(app)
    a = client.post("/api/v1/keys", headers=bearer(raw), json={"name": "a"}).get_json()
    b = client.post("/api/v1/keys", headers=bearer(raw), json={"name": "b"}).get_json()
    assert_openai_error(client.post("/api/v1/keys", headers=bearer(a["key"]), json={"name": "c"}), 403,
                        "permission_denied")
    assert_openai_error(client.delete(f"/api/v1/keys/{b['id']}", headers=bearer(a["key"])), 404, "not_found")
    assert client.delete(f"/api/v1/keys/{a['id']}", headers=bearer(a["key"])).status_code == 200  # itself


def test_account_api_revoke(api):
    app, client = api
    _, raw = new_account(app, "a@example.com")
    _, other = new_account(app, "b@example.com")
    sub = client.post("/api/v1/keys", headers=bearer(raw), json={"name": "s"}).get_json()
    other_sub = client.post("/api/v1/keys", headers=bearer(other), json={"name": "s"}).get_json()
    assert_openai_error(client.delete(f"/api/v1/keys/{other_sub['id']}", headers=bearer(raw)), 404, "not_found")
    assert_openai_error(client.delete("/api/v1/keys/key_nope", headers=bearer(raw)), 404, "not_found")
    resp = client.delete(f"/api/v1/keys/{sub['id']}", headers=bearer(raw))
    assert resp.status_code == 200 and resp.get_json()["revoked"] is True
    assert_openai_error(client.get("/api/v1/me/account", headers=bearer(sub["key"])), 401, "invalid_api_key")
    # revoking the master takes the remaining sub-keys with it
    sub2 = client.post("/api/v1/keys", headers=bearer(raw), json={"name": "s2"}).get_json()
    me = client.get("/api/v1/me/account", headers=bearer(raw)).get_json()
    assert client.delete(f"/api/v1/keys/{me['key']['id']}", headers=bearer(raw)).status_code == 200
    for k in (raw, sub2["key"]):
        assert_openai_error(client.get("/api/v1/me/account", headers=bearer(k)), 401, "invalid_api_key")
    assert client.get("/api/v1/me/account", headers=bearer(other_sub["key"])).status_code == 200


def _invite_member(app, org_id, email, role="member"):
    """A second person in the org (as an accepted invite leaves it), with a master key of their own."""
    from core import db as core_db
    from core.models import Membership, User

    with app.app_context():
        s = core_db.session()
        user = User(email=email)
        s.add(user)
        s.flush()
        member = Membership(org_id=org_id, user_id=user.id, role=role)
        s.add(member)
        s.commit()
        with core_db.get_db().engine.begin() as conn:
            key = accounts.insert_key(conn, org_id=org_id, member_id=member.id, parent_id=None, kind="master",
                                      name=f"{role}-key")
    return key.id, key.raw


def test_account_api_member_key_reaches_only_its_own(api):
    """The reported escape: a member's key listed, revoked and read the owner's keys and calls."""
    app, client = api
    org_id, owner_raw = new_account(app)
    owner_key = client.get("/api/v1/me/account", headers=bearer(owner_raw)).get_json()["key"]["id"]
    member_key, member_raw = _invite_member(app, org_id, "member@example.com")
    call(app, owner_raw, "req_owner", 700)
    call(app, member_raw, "req_member", 300)
    me = bearer(member_raw)
    assert client.get("/api/v1/me/account", headers=me).get_json()["org"]["role"] == "member"
    assert [k["id"] for k in client.get("/api/v1/keys", headers=me).get_json()["data"]] == [member_key]
    assert_openai_error(client.delete(f"/api/v1/keys/{owner_key}", headers=me), 404, "not_found")
    assert_openai_error(client.get("/api/v1/me/usage/req_owner", headers=me), 404, "not_found")
    assert [r["id"] for r in client.get("/api/v1/me/usage", headers=me).get_json()["data"]] == ["req_member"]
    assert client.get(f"/api/v1/me/usage?api_key={owner_key}", headers=me).get_json()["data"] == []
    sums = client.get("/api/v1/me/usage?group_by=api_key", headers=me).get_json()["data"]
    assert [(g["api_key"], g["cost_credits"]) for g in sums] == [(member_key, 300)]
    day = client.get("/api/v1/me/usage?group_by=day", headers=me).get_json()["data"]
    assert [g["cost_credits"] for g in day] == [300]
    for method, path in (("GET", "/api/v1/me/billing/transactions"), ("POST", "/api/v1/me/billing/topup")):
        resp = client.open(path, method=method, json={"amount_cny": "35.00", "method": "alipay"}, headers=me)
        assert_openai_error(resp, 403, "permission_denied")
    sub = client.post("/api/v1/keys", headers=me, json={"name": "mine"}).get_json()
    assert {k["id"] for k in client.get("/api/v1/keys", headers=me).get_json()["data"]} == {member_key, sub["id"]}
    # the owner (and an admin) still reach everything, the owner's key was never revoked
    owner_view = client.get("/api/v1/me/usage?group_by=api_key", headers=bearer(owner_raw)).get_json()["data"]
    assert {(g["api_key"], g["cost_credits"]) for g in owner_view} == {(owner_key, 700), (member_key, 300)}
    _, admin_raw = _invite_member(app, org_id, "admin@example.com", role="admin")
    assert client.get("/api/v1/me/usage/req_member", headers=bearer(admin_raw)).status_code == 200
    assert client.get("/api/v1/me/billing/transactions", headers=bearer(admin_raw)).status_code == 200
    assert client.get("/api/v1/me/account", headers=bearer(owner_raw)).status_code == 200


@pytest.mark.parametrize("path,method,body,param", [
    ("/api/v1/keys", "post", {"name": "a\u0000b"}, None),
    ("/api/v1/me/webhooks", "put", {"url": "https://hooks.example/\u0000"}, "url"),
    ("/api/v1/me/webhooks", "put", {"url": "https://hooks .example/in"}, "url"),
])
def test_account_api_refuses_text_the_database_cannot_store(api, path, method, body, param):
    """NUL cannot be stored in a PostgreSQL text column: a 400 naming the field, on every backend, never a 500."""
    app, client = api
    _, raw = new_account(app, email="nul@example.com")
    resp = getattr(client, method)(path, json=body, headers=bearer(raw))
    assert_openai_error(resp, 400, resp.get_json()["error"]["code"])
    assert resp.get_json()["error"]["param"] == param or "name" in resp.get_json()["error"]["message"]
