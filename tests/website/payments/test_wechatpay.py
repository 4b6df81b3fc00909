"""WeChat Pay v3 end to end: the served app on PostgreSQL against a fake WeChat Pay on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from .fake_providers import FakeWeChat, new_key


def _order(served, email: str, amount: str = "720.00"):
    org_id, key = served.account(email)
    order = served.topup(key, amount_cny=amount, method="wechatpay")
    return org_id, key, order


def _notify(served, headers, body):
    return requests.post(f"{served.url}/payments/wechatpay/notify", data=body, headers=headers, timeout=15)


def test_wechatpay_native_order_is_signed_and_answer_verified(served):
    _, key, order = _order(served, "wx-create@example.com", "35.00")
    assert order["status"] == "pending" and order["method"] == "wechatpay"
    assert order["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert order["credits"] == 4_861_111 and order["bonus_credits"] == 0  # 35 / 7.20 USD, below the ladder
    assert served.fakes.wechat.bad_requests == 0
    assert ("POST", "/v3/pay/transactions/native") in served.fakes.wechat.requests
    trade = served.fakes.wechat.trades[order["out_trade_no"]]
    assert trade.total == 3500
    again = requests.get(f"{served.url}/api/v1/me/billing/topup/{order['order_id']}",
                         headers={"x-api-key": key}, timeout=10)
    assert again.json()["status"] == "pending"


def test_wechatpay_notification_credits_once_under_five_concurrent_deliveries(served):
    org_id, key, order = _order(served, "wx-five@example.com")
    assert order["credits"] == 100_000_000 and order["bonus_credits"] == 5_000_000  # $100: +5%
    served.fakes.wechat.pay(order["out_trade_no"])
    headers, body = served.fakes.wechat.notification(order["out_trade_no"])
    statuses: list[int] = []
    barrier = threading.Barrier(5)

    def deliver() -> None:
        barrier.wait()
        statuses.append(_notify(served, headers, body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [204] * 5
    assert served.balance(org_id) == 105_000_000
    topups, bonuses = served.entries(org_id, "topup"), served.entries(org_id, "bonus")
    assert len(topups) == 1 and len(bonuses) == 1
    trade_no = served.fakes.wechat.trades[order["out_trade_no"]].trade_no
    assert topups[0].ref == bonuses[0].ref == f"wechatpay:{trade_no}"
    paid = requests.get(f"{served.url}/api/v1/me/billing/topup/{order['order_id']}",
                        headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
    assert paid["status"] == "paid"
    accepted = [e for e in served.events(order["order_id"]) if e.accepted and e.kind == "notify"]
    assert len(accepted) == 1 and accepted[0].dedupe_key == f"paid:{order['order_id']}"
    # the first credit waited for the provider's own query
    assert any(t.startswith(f"/v3/pay/transactions/out-trade-no/{order['out_trade_no']}?mchid=")
               for _, t in served.fakes.wechat.requests)


def _tampered_body(served, no):
    headers, body = served.fakes.wechat.notification(no)
    return headers, body.replace(b'"EV-', b'"EX-', 1)  # any byte changed after signing


CASES = {
    "tampered_body": (lambda s, no: _tampered_body(s, no), "bad signature"),
    "tampered_amount": (lambda s, no: s.fakes.wechat.notification(
        no, tx=s.fakes.wechat.transaction(s.fakes.wechat.trades[no], amount={"total": 1, "currency": "CNY"})),
        "amount mismatch"),
    "bad_signature": (lambda s, no: s.fakes.wechat.notification(no, key=new_key()), "bad signature"),
    "stale_timestamp": (lambda s, no: s.fakes.wechat.notification(no, timestamp=int(time.time()) - 301),
                        "stale timestamp"),
    "unknown_serial": (lambda s, no: s.fakes.wechat.notification(no, serial="PUB_KEY_ID_OTHER"), "Wechatpay-Serial"),
    "wrong_mchid": (lambda s, no: s.fakes.wechat.notification(
        no, tx=s.fakes.wechat.transaction(s.fakes.wechat.trades[no], mchid="1900009999")), "merchant id mismatch"),
    "wrong_method": (lambda s, no: s.fakes.wechat.notification(
        no, tx=s.fakes.wechat.transaction(s.fakes.wechat.trades[no], trade_type="JSAPI")), "payment method mismatch"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_wechatpay_bad_notification_credits_nothing_and_is_logged(served, case):
    org_id, _, order = _order(served, f"wx-{case}@example.com")
    served.fakes.wechat.pay(order["out_trade_no"])
    make, reason = CASES[case]
    headers, body = make(served, order["out_trade_no"])
    before = len(served.events())
    resp = _notify(served, headers, body)
    assert resp.status_code >= 400 and json.loads(resp.content)["code"] == "FAIL"
    assert served.balance(org_id) == 0
    new = served.events()[before:]
    assert len(new) == 1 and not new[0].accepted and reason in new[0].reason


def test_wechatpay_unknown_order_credits_nothing(served):
    fake: FakeWeChat = served.fakes.wechat
    from .fake_providers import Trade

    fake.trades["BS20990101000000FFFFFFFFFFFF"] = Trade("BS20990101000000FFFFFFFFFFFF", 72000, "SUCCESS", "4200deadbeef")
    headers, body = fake.notification("BS20990101000000FFFFFFFFFFFF")
    before = len(served.events())
    assert _notify(served, headers, body).status_code == 400
    new = served.events()[before:]
    assert len(new) == 1 and "unknown order" in new[0].reason


def test_wechatpay_signtest_probe_is_refused(served):
    _, _, order = _order(served, "wx-probe@example.com")
    headers, body = served.fakes.wechat.notification(order["out_trade_no"])
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"][:40]
    assert _notify(served, headers, body).status_code >= 400


def test_wechatpay_query_must_agree_before_the_first_credit(served):
    org_id, _, order = _order(served, "wx-unpaid@example.com")
    fake = served.fakes.wechat
    trade = fake.trades[order["out_trade_no"]]
    # A correctly signed "SUCCESS" for a trade the provider itself still calls NOTPAY.
    headers, body = fake.notification(order["out_trade_no"], tx=fake.transaction(
        trade, trade_state="SUCCESS", transaction_id="4200forged"))
    assert _notify(served, headers, body).status_code == 400
    assert served.balance(org_id) == 0
    assert "order query disagrees" in served.events(order["order_id"])[-1].reason


def test_wechatpay_replay_after_payment_credits_nothing(served):
    org_id, _, order = _order(served, "wx-replay@example.com")
    served.fakes.wechat.pay(order["out_trade_no"])
    headers, body = served.fakes.wechat.notification(order["out_trade_no"])
    assert _notify(served, headers, body).status_code == 204
    assert served.balance(org_id) == 105_000_000
    # the same delivery again, and a fresh one for the same trade: acknowledged, nothing credited
    assert _notify(served, headers, body).status_code == 204
    assert _notify(served, *served.fakes.wechat.notification(order["out_trade_no"])).status_code == 204
    assert served.balance(org_id) == 105_000_000
    replays = [e for e in served.events(order["order_id"]) if "replay" in e.reason]
    assert len(replays) == 2 and not any(e.accepted for e in replays)
