"""Console pages: sub-key controls, usage filters and CSV, members' quotas, settings, both languages."""

from __future__ import annotations

import csv
import io
import re

from .conftest import signup


def _master_id(app, person) -> str:  # type: ignore[no-untyped-def]
    from core import db as core_db
    from core.models import ApiKey

    person.post("/keys", {"name": "primary"})
    with app.app_context():
        return core_db.session().query(ApiKey).filter_by(org_id=person.org_id(app), name="primary").one().id


def test_sub_key_carries_every_control(console_app):
    from core import db as core_db
    from core.models import ApiKey

    person = signup(console_app, "controls@example.com")
    parent = _master_id(console_app, person)
    r = person.post("/keys/sub", {
        "parent_id": parent, "name": "ci", "quota_usd": "12.5", "models": "claude-sonnet-4-6, gpt-5.4",
        "rate_limit_5h_usd": "5", "rate_limit_1d_usd": "20", "rate_limit_7d_usd": "50", "rpm": "60",
        "tpm": "100000", "expires_in_days": "30", "ip_allow": "10.0.0.0/8, 203.0.113.7/32", "ip_deny": "10.9.0.0/16"})
    assert r.status_code == 200
    raw = re.search(r'id="new-key" class="key">(sk-byts-[\w-]+)<', r.text).group(1)
    with console_app.app_context():
        key = core_db.session().query(ApiKey).filter_by(name="ci").one()
        assert key.kind == "sub" and key.parent_id == parent and raw.startswith(key.prefix)
        assert key.quota_credits == 12_500_000 and key.models == ["claude-sonnet-4-6", "gpt-5-4"]
        assert (key.rate_limit_5h, key.rate_limit_1d, key.rate_limit_7d) == (5_000_000, 20_000_000, 50_000_000)
        assert (key.rpm, key.tpm) == (60, 100000) and key.expires_at is not None
        assert key.ip_allow == ["10.0.0.0/8", "203.0.113.7/32"] and key.ip_deny == ["10.9.0.0/16"]
    bad = person.post("/keys/sub", {"parent_id": parent, "name": "bad", "ip_allow": "not-a-cidr"})
    assert bad.status_code == 400
    revoked = person.post(f"/keys/{parent}/revoke")
    assert revoked.status_code == 302
    with console_app.app_context():
        assert core_db.session().query(ApiKey).filter_by(name="ci").one().revoked_at is not None  # with its parent


def test_usage_filters_and_csv(console_app):
    from core import ledger

    person = signup(console_app, "usage@example.com")
    parent = _master_id(console_app, person)
    org_id = person.org_id(console_app)
    with console_app.app_context():
        for i, model in enumerate(["bytespike-echo", "claude-sonnet-4-6", "=cmd|' /C calc'!A0"]):
            ledger.log_call(ledger.UsageRecord(request_id=f"req_u{i}", org_id=org_id, api_key_id=parent, member_id=None,
                                               model=model, provider="demo", channel="echo", protocol="anthropic",
                                               stream=False, status=402))
    page = person.get("/usage?model=claude-sonnet-4-6").text
    assert "req_u1" in page and "req_u0" not in page
    assert "req_u0" not in person.get("/usage?since=2000-01-01&until=2000-01-02").text
    rows = list(csv.reader(io.StringIO(person.get(f"/usage.csv?key={parent}").text)))
    assert rows[0][:3] == ["id", "created_at", "model"] and len(rows) == 4
    assert any(r[2].startswith("'=") for r in rows[1:])  # a formula-looking cell is defused


def test_member_quotas_and_settings(console_app):
    from core import db as core_db
    from core.models import Membership, Org

    person = signup(console_app, "settings@example.com")
    with console_app.app_context():
        mid = core_db.session().query(Membership.id).filter_by(org_id=person.org_id(console_app)).scalar()
    assert person.post(f"/members/{mid}", {"role": "owner", "quota_usd": "100", "monthly_quota_usd": "25"}).status_code == 302
    assert person.post("/settings/preset", {"preset": "china"}).status_code == 302
    assert person.post("/settings/notifications", {"low_balance_usd": "5", "webhook_url": "https://example.com/h"}).status_code == 302
    with console_app.app_context():
        s = core_db.session()
        m = s.get(Membership, mid)
        org = s.get(Org, person.org_id(console_app))
        assert (m.quota_credits, m.monthly_quota_credits) == (100_000_000, 25_000_000)
        assert org.preset == "china" and org.low_balance_credits == 5_000_000
        assert org.webhook_url == "https://example.com/h" and org.webhook_secret.startswith("whsec_")
    dash = person.get("/dashboard").text
    assert "below your alert threshold" in dash  # balance 0 < $5: the banner


PAGES = ("/dashboard", "/usage", "/keys", "/members", "/billing", "/billing/transactions", "/webhooks", "/audit",
         "/settings")


def test_pages_render_in_chinese(console_app):
    person = signup(console_app, "zh-pages@example.com", "zh")
    for page in PAGES:
        r = person.get(page)
        assert r.status_code == 200, page
        h1 = re.search(r"<h1>(.*?)</h1>", r.text, re.S).group(1)
        assert re.search(r"[\u4e00-\u9fff]", h1), (page, h1)
        assert r.headers["Cache-Control"] == "no-store"
