"""The sandbox simulator (same signing code paths) and the signed outgoing webhooks."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import free_port, make_app

from .conftest import provider_config


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that records what it gets."""
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()


def _account(app, email: str, credits: int = 0):
    from core import accounts

    with app.app_context():
        org_id, key = accounts.create_account(email, credits)
    return org_id, key.raw


@pytest.fixture
def alipay_wire_sandbox(tmp_path, sandbox_instance, pay_keys, fakes):
    """Real WeChat Pay (the fake) configured and the sandbox on: the simulator takes Alipay's wire."""
    wechat = {k: v for k, v in provider_config(pay_keys, fakes).items() if k.startswith("BYTESPIKE_WECHATPAY_")}
    app = make_app(f"sqlite:///{tmp_path / 'pay.db'}", BYTESPIKE_PAYMENTS_SANDBOX="1", **wechat)
    app.instance_path = sandbox_instance
    yield app
    app.extensions["bytespike_db"].dispose()


@pytest.mark.parametrize("wire", ["wechatpay", "alipay"])
def test_sandbox_order_is_paid_through_the_real_notify_route(request, wire):
    from core import ledger
    from website.payments.sandbox import simulate_payment

    sandbox_app = request.getfixturevalue("sandbox_app" if wire == "wechatpay" else "alipay_wire_sandbox")
    provider = wire
    org_id, key = _account(sandbox_app, f"sb-{wire}@example.com")
    client = sandbox_app.test_client()
    r = client.post("/api/v1/me/billing/topup", json={"amount_cny": "720.00", "method": "sandbox"},
                    headers={"x-api-key": key})
    assert r.status_code == 201, r.text
    order = r.get_json()
    assert order["sandbox"] is True and order["method"] == "sandbox"
    assert (order.get("code_url") or order.get("qr_code"))
    assert simulate_payment(sandbox_app, order["out_trade_no"]) in (200, 204)
    assert simulate_payment(sandbox_app, order["out_trade_no"]) in (200, 204)  # a second delivery: no double credit
    with sandbox_app.app_context():
        assert ledger.balance(org_id)[0] == 105_000_000
        from core import db as core_db
        from core.models import Order, PaymentEvent

        s = core_db.session()
        assert s.get(Order, order["order_id"]).provider == provider
        reasons = [e.reason for e in s.query(PaymentEvent).filter_by(order_id=order["order_id"])]
        assert any(r.startswith("paid") for r in reasons) and any("replay" in r for r in reasons)
    keys = sorted(p.name for p in (Path(sandbox_app.instance_path) / "sandbox").iterdir())
    assert keys == ["alipay_app.pem", "alipay_platform.pem", "apiv3_key", "wechat_merchant.pem", "wechat_platform.pem"]
    assert oct((Path(sandbox_app.instance_path) / "sandbox" / "apiv3_key").stat().st_mode & 0o777) == "0o600"


def test_sandbox_notification_forged_with_another_key_is_refused(sandbox_app):
    """The simulator's notify route verifies like the real one: a key not the simulator's fails."""
    from website.payments.sandbox import SimulatedWeChatPay, load_keys
    from website.payments.sandbox import _get as get_trade

    from .fake_providers import new_key

    org_id, key = _account(sandbox_app, "sb-forge@example.com")
    client = sandbox_app.test_client()
    order = client.post("/api/v1/me/billing/topup", json={"amount_cny": "100", "method": "sandbox"},
                        headers={"x-api-key": key}).get_json()
    keys = load_keys(sandbox_app.instance_path)
    forged = SimulatedWeChatPay(keys.__class__(keys.alipay_app, keys.alipay_platform, keys.wechat_merchant,
                                               new_key(), keys.apiv3_key))
    with sandbox_app.app_context():
        trade = get_trade(order["out_trade_no"])
        headers, body = forged.notification(trade)
    assert client.post("/payments/wechatpay/notify", data=body, headers=headers).status_code == 400


def test_webhook_payment_received_is_signed(sandbox_app, receiver):
    from core import db as core_db
    from core.models import Org, WebhookDelivery
    from website.payments import webhooks
    from website.payments.sandbox import simulate_payment

    url, got = receiver
    org_id, key = _account(sandbox_app, "hook@example.com")
    with sandbox_app.app_context():
        org = core_db.session().get(Org, org_id)
        org.webhook_url, org.webhook_secret = url, "whsec_test"
        core_db.session().commit()
    order = sandbox_app.test_client().post("/api/v1/me/billing/topup", json={"amount_cny": "35", "method": "sandbox"},
                                           headers={"x-api-key": key}).get_json()
    simulate_payment(sandbox_app, order["out_trade_no"])
    webhooks.flush()
    assert len(got) == 1
    headers, body = got[0]
    assert webhooks.verify("whsec_test", body, headers["X-ByteSpike-Signature"], int(time.time()))
    assert not webhooks.verify("whsec_other", body, headers["X-ByteSpike-Signature"], int(time.time()))
    assert not webhooks.verify("whsec_test", body + b" ", headers["X-ByteSpike-Signature"], int(time.time()))
    event = json.loads(body)
    assert event["type"] == "payment.received" and event["data"]["order_id"] == order["order_id"]
    with sandbox_app.app_context():
        row = core_db.session().query(WebhookDelivery).filter_by(org_id=org_id).one()
        assert row.status_code == 204 and row.delivered_at is not None


def test_low_balance_notifies_once_and_rearms(sandbox_app, receiver):
    from core import db as core_db
    from core import ledger
    from core.models import Org
    from website.payments import webhooks

    url, got = receiver
    org_id, _ = _account(sandbox_app, "low@example.com", credits=3_000_000)
    with sandbox_app.app_context():
        org = core_db.session().get(Org, org_id)
        org.webhook_url, org.webhook_secret, org.low_balance_credits = url, "whsec_low", 5_000_000
        core_db.session().commit()
        assert webhooks.check_low_balance(org_id) is True
        assert webhooks.check_low_balance(org_id) is True  # already told: no second delivery
        webhooks.flush()
        assert [json.loads(b)["type"] for _, b in got] == ["balance.low"]
        ledger.credit(org_id, "admin_credit", 10_000_000, "test:refill")
        assert webhooks.check_low_balance(org_id) is False
        ledger.credit(org_id, "admin_debit", -12_000_000, "test:spend")
        assert webhooks.check_low_balance(org_id) is True
        webhooks.flush()
    assert [json.loads(b)["type"] for _, b in got] == ["balance.low", "balance.low"]


def test_failed_webhook_is_retried_by_the_sweeper(sandbox_app):
    from core import db as core_db
    from core.models import Org, WebhookDelivery
    from website.payments import webhooks

    port = free_port()
    org_id, _ = _account(sandbox_app, "retry@example.com")
    with sandbox_app.app_context():
        org = core_db.session().get(Org, org_id)
        org.webhook_url, org.webhook_secret = f"http://127.0.0.1:{port}/hook", "whsec_retry"
        core_db.session().commit()
        delivery_id = webhooks.send(org_id, "webhook.test", {"n": 1}, background=False)
        row = core_db.session().get(WebhookDelivery, delivery_id)
        assert row.delivered_at is None and row.error and row.attempts == 1
    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = sandbox_app.test_cli_runner().invoke(args=["reconcile-payments"])
        assert "webhooks_redelivered=1" in result.output, result.output
    finally:
        server.shutdown()
    assert json.loads(got[0])["data"] == {"n": 1}
