"""The audit log: actions in the console and the account API leave rows (actor, org, IP, time, no secret);
owners and admins read them (API and console page, both languages); the webhook endpoint API."""

from __future__ import annotations

import re

from tests.website.console.conftest import signup


def _mint(person) -> str:  # type: ignore[no-untyped-def]
    html = person.post("/keys", {"name": "ops key"}).text
    return re.search(r"sk-byts-[A-Za-z0-9_\-]+", html).group(0)


def _join(app, owner, email: str):  # type: ignore[no-untyped-def]
    owner.post("/members/invite", {"role": "member"})
    link = re.search(r'id="invite-link">([^<]+)<', owner.get("/members").text).group(1)
    person = signup(app, email)
    assert person.post(link.split("/console", 1)[1]).status_code == 302
    return person


def _audit(app, key: str, **args: str):  # type: ignore[no-untyped-def]
    r = app.test_client().get("/api/v1/me/audit", query_string=args, headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    return r.get_json()


def test_console_and_api_actions_are_audited(console_app):
    from core import db as core_db
    from core.models import Membership

    owner = signup(console_app, "owner@example.com")
    key = _mint(owner)
    member = _join(console_app, owner, "joiner@example.com")
    with console_app.app_context():
        mid = core_db.session().query(Membership).filter_by(role="member").one().id
    assert owner.post(f"/members/{mid}", {"role": "admin", "quota_usd": "5"}).status_code == 302
    owner.post("/settings/notifications", {"low_balance_usd": "2", "webhook_url": "https://hooks.example.com/x"})
    client = console_app.test_client()
    made = client.post("/api/v1/keys", json={"name": "api-made"}, headers={"x-api-key": key},
                       environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert made.status_code == 201
    sub_id, sub_raw = made.get_json()["id"], made.get_json()["key"]
    assert client.delete(f"/api/v1/keys/{sub_id}", headers={"x-api-key": key}).status_code == 200
    owner.post(f"/members/{mid}/remove")

    rows = _audit(console_app, key)["data"]
    actions = [r["action"] for r in rows]
    for want in ("key.created", "member.invited", "member.joined", "member.updated", "org.notifications_changed",
                 "webhook.updated", "webhook.secret_rotated", "key.revoked", "member.removed"):
        assert want in actions, (want, actions)
    assert actions[0] == "member.removed"  # newest first
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids, reverse=True)
    api_made = next(r for r in rows if r["action"] == "key.created" and r["target"] == sub_id)
    assert api_made["actor"]["key_id"] and api_made["ip"] == "203.0.113.7"
    assert api_made["created_at"].endswith("Z")
    updated = next(r for r in rows if r["action"] == "member.updated")
    assert updated["actor"]["email"] == "owner@example.com" and updated["target"] == "joiner@example.com"
    assert updated["details"]["role"] == {"from": "member", "to": "admin"}
    assert updated["details"]["quota_credits"]["to"] == 5_000_000
    text = str(rows)
    assert key not in text and sub_raw not in text and "whsec_" not in text  # no secret in the log

    page1 = _audit(console_app, key, limit="3")
    assert len(page1["data"]) == 3 and page1["has_more"]
    page2 = _audit(console_app, key, limit="3", before=str(page1["next_before"]))
    assert page2["data"][0]["id"] < page1["data"][-1]["id"]

    # The console page, in both languages (tests/website/test_roles.py refuses it to a member).
    en = owner.get("/audit")
    assert en.status_code == 200 and "member.updated" in en.text and "Audit log" in en.text
    zh = signup(console_app, "zh-owner@example.com", lang="zh")
    assert "审计日志" in zh.get("/audit").text
    # The removed person is back in their own org: its log, not this one's.
    assert "member.updated" not in member.get("/audit").text


def test_webhook_endpoint_api(console_app):
    owner = signup(console_app, "hooks@example.com")
    key = _mint(owner)
    c = console_app.test_client()
    h = {"x-api-key": key}
    first = c.get("/api/v1/me/webhooks", headers=h).get_json()
    assert first["url"] is None and first["secret_set"] is False and "payment.received" in first["events"]
    put = c.put("/api/v1/me/webhooks", headers=h, json={"url": "https://hooks.example.com/in",
                                                          "events": ["balance.low"]})
    assert put.status_code == 200, put.text
    body = put.get_json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["balance.low"]
    again = c.get("/api/v1/me/webhooks", headers=h).get_json()
    assert "secret" not in again and again["secret_set"] and again["url"] == "https://hooks.example.com/in"
    kept = c.put("/api/v1/me/webhooks", headers=h, json={"events": ["balance.low"]}).get_json()
    assert "secret" not in kept  # no rotation asked: the secret stays
    rotated = c.put("/api/v1/me/webhooks", headers=h, json={"rotate_secret": True}).get_json()
    assert rotated["secret"] != body["secret"]
    for bad in ({"url": "ftp://x"}, {"events": ["nope"]}, {"colour": "red"}, {"rotate_secret": "yes"}):
        r = c.put("/api/v1/me/webhooks", headers=h, json=bad)
        assert r.status_code == 400 and r.get_json()["error"]["type"], bad
    # The console shows the same URL; the audit log has the changes, never the secret.
    assert "https://hooks.example.com/in" in owner.get("/settings").text
    rows = _audit(console_app, key)["data"]
    assert [r["action"] for r in rows].count("webhook.secret_rotated") == 2
    assert body["secret"] not in str(rows) and rotated["secret"] not in str(rows)


def test_unsubscribed_event_is_not_sent(console_app):
    from core import db as core_db
    from core.models import Org
    from website.payments import webhooks

    owner = signup(console_app, "quiet@example.com")
    org_id = owner.org_id(console_app)
    with console_app.app_context():
        org = core_db.session().get(Org, org_id)
        org.webhook_url, org.webhook_secret, org.webhook_events = "http://127.0.0.1:9/x", "whsec_t", ["balance.low"]
        core_db.session().commit()
        assert webhooks.send(org_id, "payment.received", {}, background=False) is None


def test_orders_and_payments_are_audited(console_app):
    owner = signup(console_app, "payer@example.com")
    key = _mint(owner)
    r = owner.post("/billing/topup", {"amount_cny": "72", "method": "sandbox"})
    assert r.status_code == 302, r.text
    order_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    owner.post(f"/billing/orders/{order_id}/simulate")
    rows = _audit(console_app, key)["data"]
    created = next(r for r in rows if r["action"] == "order.created")
    assert created["target"] == order_id and created["actor"]["email"] == "payer@example.com"
    assert created["details"]["method"] == "sandbox" and created["details"]["amount_cny"] == "72.00"
    paid = next(r for r in rows if r["action"] == "payment.received")
    assert paid["target"] == order_id and paid["actor"] == {"user_id": None, "email": None, "key_id": None}
    assert paid["details"]["credits"] > 0


def test_client_address_behind_a_trusted_proxy(tmp_path):
    """With BYTESPIKE_TRUSTED_PROXIES=1 the address recorded is the client's, from X-Forwarded-For."""
    from tests.conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'proxy.db'}", BYTESPIKE_TRUSTED_PROXIES="1")
    try:
        owner = signup(app, "proxied@example.com")
        key = _mint(owner)
        r = app.test_client().post("/api/v1/keys", json={"name": "via proxy"}, headers={
            "x-api-key": key, "X-Forwarded-For": "198.51.100.23"}, environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert r.status_code == 201
        row = next(x for x in _audit(app, key)["data"] if x["target"] == r.get_json()["id"])
        assert row["ip"] == "198.51.100.23"
    finally:
        app.extensions["bytespike_db"].dispose()


def test_console_events_match_the_api(console_app):
    owner = signup(console_app, "events@example.com")
    key = _mint(owner)
    owner.post("/settings/notifications", {"low_balance_usd": "", "webhook_url": "https://hooks.example.com/e",
                                           "events_shown": "1", "events": "balance.low"})
    h = {"x-api-key": key}
    got = console_app.test_client().get("/api/v1/me/webhooks", headers=h).get_json()
    assert got["url"] == "https://hooks.example.com/e" and got["events"] == ["balance.low"]
    page = owner.get("/settings").text
    assert 'value="balance.low" checked' in page and 'value="payment.received" checked' not in page
    owner.post("/settings/notifications", {"webhook_url": "https://hooks.example.com/e", "events_shown": "1",
                                           "events": ["balance.low", "payment.received"]})
    assert console_app.test_client().get("/api/v1/me/webhooks", headers=h).get_json()["events"] == [
        "payment.received", "balance.low"]
    zh = signup(console_app, "events-zh@example.com", lang="zh")
    assert "推送的事件" in zh.get("/settings").text
