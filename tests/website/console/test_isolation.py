"""Two orgs: user B tries every console URL and id of user A's org and never sees A's data."""

from __future__ import annotations

import re

from .conftest import signup


def _seed_a(app, a):  # type: ignore[no-untyped-def]
    """Give A a key, a sub-key, an order, a usage row, a member invite and a webhook delivery."""
    from core import db as core_db
    from core import ledger
    from core.models import ApiKey, Membership, Order, Org, WebhookDelivery

    a.post("/keys", {"name": "a-master"})
    with app.app_context():
        s = core_db.session()
        org_id = a.org_id(app)
        master = s.query(ApiKey).filter_by(org_id=org_id, name="a-master").one()
    a.post("/keys/sub", {"parent_id": master.id, "name": "a-sub", "quota_usd": "5"})
    r = a.post("/billing/topup", {"amount_cny": "100", "method": "sandbox"})
    order_id = r.headers["Location"].rsplit("/", 1)[-1]
    with app.app_context():
        s = core_db.session()
        sub = s.query(ApiKey).filter_by(org_id=org_id, name="a-sub").one()
        ledger.log_call(ledger.UsageRecord(
            request_id="req_secret_of_a", org_id=org_id, api_key_id=sub.id, member_id=None, model="bytespike-echo",
            provider="demo", channel="echo", protocol="openai", stream=False, status=402, error="secret-a-error"))
        org = s.get(Org, org_id)
        org.webhook_url, org.webhook_secret = "http://127.0.0.1:9/a-secret-hook", "whsec_a_secret"
        s.add(WebhookDelivery(org_id=org_id, event="balance.low", payload={"secret": "a-payload"},
                              url="http://127.0.0.1:9/a-secret-hook"))
        s.commit()
        delivery_id = s.query(WebhookDelivery.id).filter_by(org_id=org_id).scalar()
        member_id = s.query(Membership.id).filter_by(org_id=org_id).scalar()
        assert s.get(Order, order_id) is not None
    return {"org": org_id, "master": master.id, "sub": sub.id, "order": order_id, "delivery": delivery_id,
            "member": member_id, "out_trade_no": None}


def test_console_isolation_between_orgs(console_app):
    from core import db as core_db
    from core.models import ApiKey, Membership, Order

    a = signup(console_app, "alice@example.com")
    ids = _seed_a(console_app, a)
    b = signup(console_app, "bob@example.com", "zh")
    secrets = ("alice@example.com", ids["master"], ids["sub"], ids["order"], "req_secret_of_a", "secret-a-error",
               "a-secret-hook", "whsec_a_secret", "a-payload", "a-master", "a-sub")

    gets = [f"/billing/orders/{ids['order']}", f"/webhooks/{ids['delivery']}", f"/usage?key={ids['sub']}",
            f"/usage.csv?key={ids['sub']}", "/usage", "/usage.csv", "/keys", "/members", "/billing",
            "/billing/transactions", "/webhooks", "/settings", "/dashboard"]
    for path in gets:
        r = b.get(path)
        assert r.status_code in (200, 403, 404), path
        # head and footer echo the requested URL (hreflang, language switch); the page itself must not
        body = r.text.split("<main", 1)[-1].split("</main>", 1)[0]
        for secret in secrets:
            if secret not in path:  # a filter form may echo what B typed; nothing else of A's may appear
                assert secret not in body, (path, secret)
    for path in gets[:2]:
        assert b.get(path).status_code == 404, path

    posts = [(f"/keys/{ids['master']}/revoke", {}), (f"/keys/{ids['sub']}/revoke", {}),
             (f"/keys/{ids['sub']}/rename", {"name": "pwned"}),
             ("/keys/sub", {"parent_id": ids["master"], "name": "stolen"}),
             (f"/members/{ids['member']}", {"role": "member", "quota_usd": "0"}),
             (f"/members/{ids['member']}/remove", {}),
             (f"/billing/orders/{ids['order']}/simulate", {}),
             ("/org/switch", {"org_id": str(ids["org"])})]
    for path, data in posts:
        r = b.post(path, data)
        assert r.status_code in (403, 404), (path, r.status_code)
    api = b.client.get(f"/api/v1/me/billing/topup/{ids['order']}")
    assert api.status_code == 404 and "out_trade_no" not in api.text and "amount_cny" not in api.text

    with console_app.app_context():
        s = core_db.session()
        assert s.get(ApiKey, ids["master"]).revoked_at is None
        assert s.get(ApiKey, ids["sub"]).revoked_at is None and s.get(ApiKey, ids["sub"]).name == "a-sub"
        assert s.query(ApiKey).filter_by(name="stolen").count() == 0
        assert s.get(Membership, ids["member"]).role == "owner"
        assert s.get(Order, ids["order"]).status == "pending"
    # A still sees all of it
    assert "a-sub" in a.get("/keys").text and re.search("req_secret_of_a", a.get("/usage").text)


def test_member_role_cannot_manage_the_org(console_app):
    from core import db as core_db
    from core.models import Membership

    owner = signup(console_app, "owner@example.com")
    r = owner.post("/members/invite", {"role": "member"})
    assert r.status_code == 302
    link = re.search(r'id="invite-link">([^<]+)<', owner.get("/members").text).group(1)
    joiner = signup(console_app, "joiner@example.com")
    token_path = link.split("/console", 1)[1]
    assert joiner.get(token_path).status_code == 200
    assert joiner.post(token_path).status_code == 302
    assert owner.get("/members").text.count("data-member-id") == 2
    # the member now works in the owner's org, but cannot manage it
    owner_member = None
    with console_app.app_context():
        owner_member = core_db.session().query(Membership).filter_by(role="owner", org_id=owner.org_id(console_app)).one()
    assert joiner.post(f"/members/{owner_member.id}", {"role": "member"}).status_code == 403
    assert joiner.post("/members/invite", {"role": "admin"}).status_code == 403
    assert joiner.post("/settings/preset", {"preset": "china"}).status_code == 403
    # the link is single-use
    third = signup(console_app, "third@example.com")
    assert third.get(token_path).status_code == 404
