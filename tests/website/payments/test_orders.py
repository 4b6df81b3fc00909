"""The transition table, prices, reconciliation, refunds, plans and renewals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import requests

from website.payments.base import (
    DoublePayment,
    InvalidTransition,
    check_transition,
    ladder_percent,
    quote,
    sources_of,
)


@pytest.mark.parametrize("current,target", [("pending", "paid"), ("pending", "closed"), ("closed", "paid"),
                                            ("paid", "refunded")])
def test_transition_allowed(current, target):
    check_transition(current, target)


@pytest.mark.parametrize("current", ["paid", "refunded"])
def test_transition_double_payment_raises(current):
    with pytest.raises(DoublePayment):
        check_transition(current, "paid")


@pytest.mark.parametrize("current,target", [("pending", "refunded"), ("refunded", "closed"), ("closed", "refunded")])
def test_transition_invalid_raises(current, target):
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


def test_transition_sources_of_paid():
    assert sources_of("paid") == ("closed", "pending")


@pytest.mark.parametrize("usd,percent", [("4.99", "0"), ("19.99", "0"), ("20", "3"), ("99.99", "3"), ("100", "5"),
                                         ("499.99", "5"), ("500", "8"), ("999.99", "8"), ("1000", "11.2"),
                                         ("1250", "11.2")])
def test_ladder_percent_boundaries(usd, percent):
    assert ladder_percent(Decimal(usd)) == Decimal(percent)


def test_quote_adds_the_tier_bonus_to_the_ladder():
    rate = Decimal("7.20")
    assert quote(Decimal("720"), rate, tier="free").bonus_credits == 5_000_000
    assert quote(Decimal("720"), rate, tier="pro").bonus_credits == 10_000_000  # 5% + 5%
    assert quote(Decimal("9000"), rate, tier="max").bonus_credits == 280_000_000  # 11.2% + 11.2% of $1,250
    plan = quote(Decimal("149"), rate, tier="max", plan="pro")
    assert plan.credits == 20_694_444 and plan.bonus_credits == 0


@pytest.mark.parametrize("body,param", [({"amount_cny": "34.99", "method": "sandbox"}, "amount_cny"),
                                        ({"amount_cny": "9000.01", "method": "sandbox"}, "amount_cny"),
                                        ({"amount_cny": "50.001", "method": "sandbox"}, "amount_cny"),
                                        ({"amount_cny": 50.5, "method": "sandbox"}, "amount_cny"),
                                        ({"amount_cny": "50", "method": "paypal"}, "method"),
                                        ({"method": "sandbox", "plan": "gold"}, "plan")])
def test_topup_api_rejects_bad_requests_in_openai_shape(served, body, param):
    _, key = served.account(f"bad-{param}-{len(str(body))}@example.com")
    r = requests.post(f"{served.url}/api/v1/me/billing/topup", json=body, headers={"x-api-key": key}, timeout=10)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error"


def test_topup_api_requires_a_key_and_hides_other_orgs_orders(served):
    r = requests.post(f"{served.url}/api/v1/me/billing/topup", json={"amount_cny": "50", "method": "alipay"}, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    _, key_a = served.account("orders-a@example.com")
    _, key_b = served.account("orders-b@example.com")
    order = served.topup(key_a, amount_cny="50", method="alipay")
    r = requests.get(f"{served.url}/api/v1/me/billing/topup/{order['order_id']}", headers={"x-api-key": key_b}, timeout=10)
    assert r.status_code == 404 and "out_trade_no" not in r.text


def test_reconcile_credits_a_paid_order_whose_notification_never_came(served):
    org_id, key = served.account("recon@example.com")
    paid = served.topup(key, amount_cny="720.00", method="wechatpay")
    waiting = served.topup(key, amount_cny="100.00", method="alipay")
    served.fakes.wechat.pay(paid["out_trade_no"])
    result = served.app.test_cli_runner().invoke(args=["reconcile-payments"])
    assert result.exit_code == 0, result.output
    assert "paid=1" in result.output
    assert served.balance(org_id) == 105_000_000
    again = served.app.test_cli_runner().invoke(args=["reconcile-payments"])
    assert "paid=0" in again.output and served.balance(org_id) == 105_000_000
    with served.app.app_context():
        from core import db as core_db
        from core.models import Order

        assert core_db.session().get(Order, waiting["order_id"]).status == "pending"


def test_reconcile_closes_expired_orders(served):
    _, key = served.account("recon-close@example.com")
    order = served.topup(key, amount_cny="100.00", method="wechatpay")
    from website.payments.reconcile import reconcile

    with served.app.app_context():
        counts = reconcile(now=dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=3))
        assert counts["closed"] >= 1
    assert served.fakes.wechat.trades[order["out_trade_no"]].state == "CLOSED"


def test_refund_reverses_the_credit(served):
    org_id, key = served.account("refund@example.com")
    order = served.topup(key, amount_cny="720.00", method="alipay")
    served.fakes.alipay.pay(order["out_trade_no"])
    requests.post(f"{served.url}/payments/alipay/notify", data=served.fakes.alipay.notification(order["out_trade_no"]),
                  timeout=10)
    assert served.balance(org_id) == 105_000_000
    result = served.app.test_cli_runner().invoke(args=["refund-order", order["order_id"], "--reason", "asked"])
    assert result.exit_code == 0, result.output
    assert served.balance(org_id) == 0
    refunds = served.entries(org_id, "refund")
    assert len(refunds) == 1 and refunds[0].amount_credits == -105_000_000
    assert served.fakes.alipay.trades[order["out_trade_no"]].state == "TRADE_CLOSED"
    r = requests.get(f"{served.url}/api/v1/me/billing/topup/{order['order_id']}", headers={"x-api-key": key}, timeout=10)
    assert r.json()["status"] == "refunded"
    # a refunded order cannot be paid or refunded again
    assert served.app.test_cli_runner().invoke(args=["refund-order", order["order_id"]]).exit_code != 0


def test_plan_purchase_raises_the_tier_and_renewal_charges_or_lapses(served):
    org_id, key = served.account("plan@example.com")
    order = served.topup(key, method="wechatpay", plan="pro")
    assert order["amount_cny"] == "149.00" and order["bonus_credits"] == 0
    served.fakes.wechat.pay(order["out_trade_no"])
    headers, body = served.fakes.wechat.notification(order["out_trade_no"])
    assert requests.post(f"{served.url}/payments/wechatpay/notify", data=body, headers=headers,
                         timeout=10).status_code == 204
    from core import db as core_db
    from core import ledger
    from core.models import Org
    from website.payments.subscriptions import renew_due

    with served.app.app_context():
        org = core_db.session().get(Org, org_id)
        assert org.tier == "pro" and org.tier_renews_at is not None
        assert ledger.balance(org_id)[0] == 0  # the principal paid the first month
        assert len(served.entries(org_id, "subscription_renew")) == 1
        due = org.tier_renews_at + dt.timedelta(minutes=1)
        ledger.credit(org_id, "admin_credit", 25_000_000, "test:fund", "funds for one renewal")
        assert renew_due(now=due)["renewed"] >= 1
        org = core_db.session().get(Org, org_id)
        assert org.tier == "pro" and ledger.balance(org_id)[0] == 25_000_000 - 20_694_444
        assert renew_due(now=org.tier_renews_at + dt.timedelta(minutes=1))["lapsed"] >= 1
        org = core_db.session().get(Org, org_id)
        assert org.tier == "free" and org.tier_renews_at is None
