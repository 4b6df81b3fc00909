"""The console as a customer reads it: no hidden keys, a copy button, Chinese words for stored values."""

from __future__ import annotations

import re
from html import unescape

from .conftest import signup


def test_sign_up_makes_no_key_and_a_new_key_has_a_copy_button(console_app):
    from core import db as core_db
    from core.models import ApiKey

    person = signup(console_app, "keys@example.com")
    with console_app.app_context():
        assert core_db.session().query(ApiKey).filter_by(org_id=person.org_id(console_app)).count() == 0
    page = person.post("/keys", {"name": "laptop"}).text
    assert 'id="new-key"' in page and 'data-copy="new-key"' in page and "copy.js" in page
    assert "copy.js" not in person.get("/keys").text


def test_chinese_console_speaks_chinese_about_money(console_app):
    person = signup(console_app, "money@example.com", lang="zh")
    r = person.post("/billing/topup", {"amount_cny": "720", "method": "sandbox"})
    order_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    person.post(f"/billing/orders/{order_id}/simulate")
    tx = unescape(person.get("/billing/transactions").text)
    body = tx[tx.index('id="tx-table"'):]
    assert "关联单号" in body and "充值" in body and "赠送" in body
    assert "¥720.00，汇率 ¥7.20 兑 1 美元" in body
    assert not re.search(r">(topup|bonus)<", body) and "CNY/USD" not in body
    billing = unescape(person.get("/billing").text)
    assert "¥144.00 – ¥719.99" in billing and "$20 – $99.99" not in billing
    orders = billing[billing.index('id="orders-table"'):]
    assert "沙盒模拟器" in orders and ">paid<" not in orders and "¥720.00" in orders
    # A payment-service message reaches a Chinese reader in Chinese.
    r = person.post("/billing/topup", {"amount_cny": "1", "method": "sandbox"})
    page = unescape(person.client.get(r.headers["Location"]).text)
    notice = re.search(r'<p class="notice" role="status">([^<]*)</p>', page)
    assert notice and notice.group(1) == "请输入 ¥35.00 至 ¥9,000.00 之间的金额。"


def test_docs_reference_heading_is_the_sites_word(console_app):
    page = console_app.test_client().get("/zh/docs/quickstart/").text
    assert "关联单号" not in page
