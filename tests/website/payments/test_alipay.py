"""Alipay end to end: precreate + page.pay, async notify (RSA2, V1 rule), against a fake gateway."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from .fake_providers import FakeAlipay, Trade, new_key, sign


def _order(served, email: str, amount: str = "7200.00"):
    org_id, key = served.account(email)
    return org_id, key, served.topup(key, amount_cny=amount, method="alipay")


def _notify(served, body: bytes):
    return requests.post(f"{served.url}/payments/alipay/notify", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=15)


def test_alipay_precreate_and_page_pay_are_signed(served, pay_keys):
    _, _, order = _order(served, "ali-create@example.com", "150.00")
    assert order["qr_code"].startswith("https://qr.alipay.com/")
    assert served.fakes.alipay.bad_requests == 0
    assert served.fakes.alipay.trades[order["out_trade_no"]].total == 15000
    # page.pay is a browser redirect: a signed query that Alipay's verifier would accept
    params = dict(parse_qsl(urlsplit(order["pay_url"]).query))
    assert params["method"] == "alipay.trade.page.pay" and params["sign_type"] == "RSA2"
    assert '"product_code":"FAST_INSTANT_TRADE_PAY"' in params["biz_content"]
    content = FakeAlipay.content(params, ("sign",)).decode()
    assert "sign_type=RSA2" in content  # request signing keeps sign_type
    from .fake_providers import verify

    assert verify(pay_keys.alipay_app.public_key(), content.encode(), params["sign"])
    assert order["credits"] == 20_833_333 and order["bonus_credits"] == 624_999  # $20.83: +3%


def test_alipay_notify_credits_once_under_five_concurrent_deliveries(served):
    org_id, _, order = _order(served, "ali-five@example.com")
    assert order["credits"] == 1_000_000_000 and order["bonus_credits"] == 112_000_000  # $1,000: +11.2%
    trade = served.fakes.alipay.pay(order["out_trade_no"])
    body = served.fakes.alipay.notification(order["out_trade_no"])
    answers: list[tuple[int, bytes]] = []
    barrier = threading.Barrier(5)

    def deliver() -> None:
        barrier.wait()
        r = _notify(served, body)
        answers.append((r.status_code, r.content))

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [(200, b"success")] * 5
    assert served.balance(org_id) == 1_112_000_000
    topups = served.entries(org_id, "topup")
    assert len(topups) == 1 and topups[0].ref == f"alipay:{trade.trade_no}"
    assert len(served.entries(org_id, "bonus")) == 1
    # TRADE_FINISHED later (end of the refund window) also means paid: acknowledged, not credited again
    finished = served.fakes.alipay.notification(order["out_trade_no"], trade_status="TRADE_FINISHED")
    assert _notify(served, finished).content == b"success"
    assert served.balance(org_id) == 1_112_000_000


def _resign_with(fake: FakeAlipay, body: bytes, key) -> bytes:
    from urllib.parse import urlencode

    params = dict(parse_qsl(body.decode()))
    params["sign"] = sign(key, fake.content(params, ("sign", "sign_type")))
    return urlencode(params).encode()


CASES = {
    "tampered_amount_after_signing": (lambda f, no: f.notification(no).replace(b"total_amount=7200.00",
                                                                                 b"total_amount=9000.00"),
                                      "bad signature"),
    "signed_wrong_amount": (lambda f, no: f.notification(no, total_amount="0.01"), "amount mismatch"),
    "bad_signature": (lambda f, no: _resign_with(f, f.notification(no), new_key()), "bad signature"),
    "wrong_app_id": (lambda f, no: f.notification(no, app_id="2021009999999999"), "app id mismatch"),
    "wrong_seller": (lambda f, no: f.notification(no, seller_id="2088999999999999"), "merchant id mismatch"),
    "sign_type_rsa": (lambda f, no: f.notification(no).replace(b"sign_type=RSA2", b"sign_type=RSA"), "RSA2"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_alipay_bad_notification_credits_nothing_and_is_logged(served, case):
    org_id, _, order = _order(served, f"ali-{case}@example.com")
    served.fakes.alipay.pay(order["out_trade_no"])
    make, reason = CASES[case]
    before = len(served.events())
    resp = _notify(served, make(served.fakes.alipay, order["out_trade_no"]))
    assert resp.content == b"fail"
    assert served.balance(org_id) == 0
    new = served.events()[before:]
    assert len(new) == 1 and not new[0].accepted and reason in new[0].reason


def test_alipay_unknown_order_and_unpaid_state_credit_nothing(served):
    fake = served.fakes.alipay
    fake.trades["BSUNKNOWN000001"] = Trade("BSUNKNOWN000001", 720000, "TRADE_SUCCESS", "2026000001")
    assert _notify(served, fake.notification("BSUNKNOWN000001")).content == b"fail"
    assert "unknown order" in served.events()[-1].reason
    org_id, _, order = _order(served, "ali-wait@example.com")
    fake.trades[order["out_trade_no"]].trade_no = "2026000002"
    body = fake.notification(order["out_trade_no"], trade_status="WAIT_BUYER_PAY")
    assert _notify(served, body).content == b"success"  # understood; nothing to credit
    assert served.balance(org_id) == 0


def test_alipay_replay_credits_nothing(served):
    org_id, _, order = _order(served, "ali-replay@example.com", "35.00")
    served.fakes.alipay.pay(order["out_trade_no"])
    body = served.fakes.alipay.notification(order["out_trade_no"])
    assert _notify(served, body).content == b"success"
    paid = served.balance(org_id)
    assert paid == order["credits"] + order["bonus_credits"]
    assert _notify(served, body).content == b"success"
    assert served.balance(org_id) == paid
    assert "replay" in served.events(order["order_id"])[-1].reason
