"""The payment sandbox is opt-in: off unless BYTESPIKE_PAYMENTS_SANDBOX=1, and never stands in for a real method."""

from __future__ import annotations

import pytest

from core.config import ConfigError, load
from tests.conftest import make_app
from tests.website.console.conftest import signup

from .conftest import provider_config

CONSOLE_PAGES = ("/dashboard", "/usage", "/keys", "/members", "/billing", "/billing/transactions", "/webhooks",
                 "/settings", "/status/")


def _app(tmp_path, instance, **config):  # type: ignore[no-untyped-def]
    app = make_app(f"sqlite:///{tmp_path / 'pay.db'}", **config)
    app.instance_path = instance
    return app


@pytest.fixture
def bare_app(tmp_path, sandbox_instance):
    """No payment credentials and no sandbox flag: what a fresh production install gets."""
    app = _app(tmp_path, sandbox_instance)
    yield app
    app.extensions["bytespike_db"].dispose()


@pytest.fixture
def alipay_only(tmp_path, sandbox_instance, pay_keys, fakes):
    """Alipay configured (the fake), WeChat Pay not; the sandbox flag is set per test."""
    alipay = {k: v for k, v in provider_config(pay_keys, fakes).items() if k.startswith("BYTESPIKE_ALIPAY_")}
    made = []

    def build(sandbox: str):  # type: ignore[no-untyped-def]
        app = _app(tmp_path / sandbox, sandbox_instance, BYTESPIKE_PAYMENTS_SANDBOX=sandbox, **alipay)
        made.append(app)
        return app

    (tmp_path / "0").mkdir()
    (tmp_path / "1").mkdir()
    yield build
    for app in made:
        app.extensions["bytespike_db"].dispose()


def _key(app, email: str) -> str:  # type: ignore[no-untyped-def]
    from core import accounts

    with app.app_context():
        return accounts.create_account(email)[1].raw


def _topup(app, key: str, method: str):  # type: ignore[no-untyped-def]
    return app.test_client().post("/api/v1/me/billing/topup", json={"amount_cny": "50.00", "method": method},
                                  headers={"Authorization": f"Bearer {key}"})


def _orders(app) -> list:  # type: ignore[no-untyped-def]
    from core import db as core_db
    from core.models import Order

    with app.app_context():
        return [(o.method, o.provider, o.sandbox) for o in core_db.session().query(Order).all()]


def _unavailable(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == 400, resp.text
    err = resp.get_json()["error"]
    assert err["code"] == "payment_method_unavailable" and err["param"] == "method"


def test_config_sandbox_default_off_and_only_a_plain_switch():
    assert load(environ={})["PAYMENTS_SANDBOX"] is False
    assert load(environ={"BYTESPIKE_PAYMENTS_SANDBOX": "1"})["PAYMENTS_SANDBOX"] is True
    assert load(environ={"BYTESPIKE_PAYMENTS_SANDBOX": "0"})["PAYMENTS_SANDBOX"] is False
    with pytest.raises(ConfigError, match="BYTESPIKE_PAYMENTS_SANDBOX"):
        load(environ={"BYTESPIKE_PAYMENTS_SANDBOX": "maybe"})


@pytest.mark.parametrize("method", ["sandbox", "alipay", "wechatpay"])
def test_topup_api_default_refuses_every_unconfigured_method(bare_app, method):
    _unavailable(_topup(bare_app, _key(bare_app, f"{method}@example.com"), method))
    assert _orders(bare_app) == []


def test_topup_console_default_offers_nothing_and_refuses_sandbox(bare_app):
    person = signup(bare_app, "console-default@example.com")
    page = person.get("/billing").text
    assert 'type="radio" name="method"' not in page and 'id="no-payment-method"' in page
    for path in CONSOLE_PAGES:
        assert "data-sandbox" not in person.get(path).text, path
    r = person.post("/billing/topup", {"amount_cny": "100", "method": "sandbox"})
    assert r.status_code == 400 and 'id="no-payment-method"' in r.text
    r = person.client.post("/api/v1/me/billing/topup", json={"amount_cny": "50", "method": "sandbox"},
                           headers={"X-CSRF-Token": person.csrf})
    _unavailable(r)
    assert _orders(bare_app) == []


def test_topup_configured_method_works_and_others_are_never_converted(alipay_only):
    app = alipay_only("0")
    key = _key(app, "alipay-only@example.com")
    _unavailable(_topup(app, key, "wechatpay"))
    _unavailable(_topup(app, key, "sandbox"))
    r = _topup(app, key, "alipay")
    assert r.status_code == 201, r.text
    assert r.get_json()["sandbox"] is False and r.get_json()["qr_code"]
    assert _orders(app) == [("alipay", "alipay", False)]
    person = signup(app, "alipay-console@example.com")
    assert 'value="alipay"' in person.get("/billing").text
    for method in ("wechatpay", "sandbox"):
        assert f'value="{method}"' not in person.get("/billing").text
        assert person.post("/billing/topup", {"amount_cny": "100", "method": method}).status_code == 400
    assert len(_orders(app)) == 1


def test_topup_sandbox_on_is_labelled_and_only_under_its_own_name(alipay_only):
    app = alipay_only("1")
    key = _key(app, "alipay-sandbox@example.com")
    _unavailable(_topup(app, key, "wechatpay"))  # the simulator takes WeChat Pay's wire, never its name
    real = _topup(app, key, "alipay").get_json()
    sandboxed = _topup(app, key, "sandbox").get_json()
    assert real["sandbox"] is False and real["method"] == "alipay"
    assert sandboxed["sandbox"] is True and sandboxed["method"] == "sandbox"
    got = app.test_client().get(f"/api/v1/me/billing/topup/{sandboxed['order_id']}",
                                headers={"x-api-key": key}).get_json()
    assert got["sandbox"] is True
    assert sorted(_orders(app)) == [("alipay", "alipay", False), ("sandbox", "wechatpay", True)]
    person = signup(app, "sandbox-console@example.com")
    for path in CONSOLE_PAGES:
        assert "data-sandbox" in person.get(path).text, path
    assert "data-sandbox" in person.client.get("/zh/console/login").text
    billing = person.get("/billing").text
    assert 'value="alipay"' in billing and 'value="sandbox"' in billing and 'value="wechatpay"' not in billing
    r = person.post("/billing/topup", {"amount_cny": "100", "method": "sandbox"})
    assert r.status_code == 302
    order_page = person.client.get(r.headers["Location"]).text
    assert 'class="banner sandbox"' in order_page.split("data-sandbox", 1)[1]  # the order's own label too
    assert 'badge sandbox' in person.get("/billing").text


def test_simulate_refused_once_the_sandbox_is_off(tmp_path, sandbox_instance):
    on = _app(tmp_path, sandbox_instance, BYTESPIKE_PAYMENTS_SANDBOX="1")
    person = signup(on, "switch@example.com")
    r = person.post("/billing/topup", {"amount_cny": "100", "method": "sandbox"})
    order_path = r.headers["Location"].split("/console", 1)[1]
    on.config["PAYMENTS_SANDBOX"] = False  # the operator turned it off; the old order cannot be "paid" now
    assert person.post(order_path + "/simulate").status_code == 404
    on.extensions["bytespike_db"].dispose()


def test_simulator_never_pays_a_real_order(alipay_only, tmp_path, sandbox_instance):
    """A real Alipay order, then Alipay's credentials removed and the sandbox on: a simulated notice is refused."""
    from core import db as core_db
    from core.models import Order
    from website.payments import sandbox as sb

    real = alipay_only("0")
    key = _key(real, "real-order@example.com")
    order = _topup(real, key, "alipay").get_json()
    url = real.config["BYTESPIKE_DATABASE_URL"]
    demo = make_app(url, BYTESPIKE_PAYMENTS_SANDBOX="1")
    demo.instance_path = sandbox_instance
    with demo.app_context():
        sb._upsert(order["out_trade_no"], "alipay", 5000, "WAIT_BUYER_PAY")
        status = sb.simulate_payment(demo, order["out_trade_no"])
        assert status == 200  # Alipay's protocol: the route answers 200 with "fail" in the body
        assert core_db.session().get(Order, order["order_id"]).status == "pending"
    demo.extensions["bytespike_db"].dispose()
