"""One rule for numbers and money in both languages (Babel), and the console's words for stored values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from website import numbers
from website.console import present


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_money_and_counts_follow_one_rule_in_both_languages(site_app, lang):
    with site_app.test_request_context(f"/{lang}/pricing/"):
        site_app.preprocess_request()
        assert numbers.money(Decimal("1296"), "CNY") == "¥1,296.00"
        assert numbers.money("0.7200", "CNY") == "¥0.72"
        assert numbers.money("3.6", "CNY") == "¥3.60"
        assert numbers.money("0.0625", "USD") == "$0.0625"
        assert numbers.money("9000", "CNY") == "¥9,000.00"
        assert numbers.money(Decimal("-1.5"), "USD") == "-$1.50"
        assert numbers.usd_of_credits(60_000) == "$0.06"
        assert numbers.usd_of_credits(1) == "$0.000001"
        assert numbers.number(1_234_567) == "1,234,567"
        assert numbers.signed_number(5_000_000) == "+5,000,000" and numbers.signed_number(-250) == "-250"
        assert numbers.money(None) == "—"


def test_console_words_for_stored_values(site_app):
    with site_app.test_request_context("/zh/console/billing/transactions"):
        site_app.preprocess_request()
        assert present.ledger_kind("topup") == "充值" and present.ledger_kind("bonus") == "赠送"
        assert present.payment_method("alipay") == "支付宝" and present.payment_method("wechatpay") == "微信支付"
        assert present.order_state("paid") != "paid"
        memo = present.ledger_memo("order ord_1: 720.00 CNY at 7.2000 CNY/USD")
        assert memo == "订单 ord_1：¥720.00，汇率 ¥7.20 兑 1 美元"
        assert present.ledger_memo("bonus on order ord_1: 720.00 CNY at 7.2000 CNY/USD").startswith("赠送")
        assert present.ledger_memo("claude-sonnet-4-6") == "claude-sonnet-4-6"
        message = present.service_message("amount_cny must be between 35.00 and 9000.00")
        assert message == "请输入 ¥35.00 至 ¥9,000.00 之间的金额。"
    with site_app.test_request_context("/en/console/billing/transactions"):
        site_app.preprocess_request()
        assert present.ledger_memo("order ord_1: 720.00 CNY at 7.2000 CNY/USD") == \
            "Order ord_1: ¥720.00 at ¥7.20 per US dollar"


def test_bonus_ladder_in_cny():
    from website.payments.base import BONUS_LADDER

    bands = present.ladder_cny(BONUS_LADDER, Decimal("7.2"), Decimal("35"), Decimal("9000"))
    assert bands[0] == (Decimal("35"), Decimal("143.99"), Decimal("0"))
    assert bands[-1] == (Decimal("7200.00"), Decimal("9000"), Decimal("11.2"))
    assert all(hi < nxt[0] for (_, hi, _), nxt in zip(bands, bands[1:], strict=False))
