"""Payment fixtures: test RSA keys, fake providers on 127.0.0.1, the app served by werkzeug on PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import free_port, make_app

from .fake_providers import (
    ALIPAY_APP_ID,
    ALIPAY_SELLER,
    APIV3_KEY,
    APPID,
    MCHID,
    PUB_KEY_ID,
    SERIAL,
    FakeAlipay,
    FakeWeChat,
    new_key,
    pem_private,
    pem_public,
    serve,
)


@dataclass
class Keys:
    wechat_merchant: Any
    wechat_platform: Any
    alipay_app: Any
    alipay_platform: Any
    folder: Path

    def path(self, name: str, public: bool = False) -> str:
        key = getattr(self, name)
        p = self.folder / f"{name}{'.pub' if public else ''}.pem"
        if not p.exists():
            p.write_bytes(pem_public(key) if public else pem_private(key))
        return str(p)


@pytest.fixture(scope="session")
def pay_keys(tmp_path_factory) -> Keys:
    return Keys(new_key(), new_key(), new_key(), new_key(), tmp_path_factory.mktemp("paykeys"))


@dataclass
class Fakes:
    wechat: FakeWeChat
    alipay: FakeAlipay


@pytest.fixture(scope="module")
def fakes(pay_keys: Keys):
    wechat = FakeWeChat(merchant_pub=pay_keys.wechat_merchant.public_key(), provider_key=pay_keys.wechat_platform)
    alipay = FakeAlipay(merchant_pub=pay_keys.alipay_app.public_key(), provider_key=pay_keys.alipay_platform)
    servers = [serve(wechat), serve(alipay)]
    yield Fakes(wechat, alipay)
    for s in servers:
        s.shutdown()


def provider_config(keys: Keys, fakes: Fakes) -> dict[str, str]:
    """Real-provider configuration pointed at the fakes, exactly as an operator would set it."""
    return {
        "BYTESPIKE_WECHATPAY_MCHID": MCHID, "BYTESPIKE_WECHATPAY_APPID": APPID,
        "BYTESPIKE_WECHATPAY_PRIVATE_KEY": keys.path("wechat_merchant"),
        "BYTESPIKE_WECHATPAY_CERT_SERIAL": SERIAL, "BYTESPIKE_WECHATPAY_APIV3_KEY": APIV3_KEY,
        "BYTESPIKE_WECHATPAY_PUBLIC_KEY": keys.path("wechat_platform", public=True),
        "BYTESPIKE_WECHATPAY_PUBLIC_KEY_ID": PUB_KEY_ID, "BYTESPIKE_WECHATPAY_BASE_URL": fakes.wechat.url,
        "BYTESPIKE_ALIPAY_APP_ID": ALIPAY_APP_ID, "BYTESPIKE_ALIPAY_PRIVATE_KEY": keys.path("alipay_app"),
        "BYTESPIKE_ALIPAY_PUBLIC_KEY": keys.path("alipay_platform", public=True),
        "BYTESPIKE_ALIPAY_GATEWAY": fakes.alipay.url + "/gateway.do", "BYTESPIKE_ALIPAY_SELLER_ID": ALIPAY_SELLER,
        "BYTESPIKE_PAYMENTS_SANDBOX": "0",
    }


@dataclass
class Served:
    app: Flask
    url: str
    fakes: Fakes

    def account(self, email: str, credits: int = 0, tier: str = "free") -> tuple[int, str]:
        """A fresh org with a master key: (org id, raw key)."""
        from core import accounts

        with self.app.app_context():
            org_id, key = accounts.create_account(email, credits, tier=tier)
        return org_id, key.raw

    def topup(self, key: str, **body: Any) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/api/v1/me/billing/topup", json=body,
                             headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def balance(self, org_id: int) -> int:
        from core import ledger

        with self.app.app_context():
            return ledger.balance(org_id)[0]

    def events(self, order_id: str | None = None) -> list[Any]:
        from core import db as core_db
        from core.models import PaymentEvent

        with self.app.app_context():
            q = core_db.session().query(PaymentEvent).order_by(PaymentEvent.id)
            if order_id:
                q = q.filter(PaymentEvent.order_id == order_id)
            return q.all()

    def entries(self, org_id: int, kind: str) -> list[Any]:
        from core import db as core_db
        from core.models import LedgerEntry, Wallet

        with self.app.app_context():
            s = core_db.session()
            wid = s.query(Wallet.id).filter(Wallet.org_id == org_id).scalar()
            return s.query(LedgerEntry).filter(LedgerEntry.wallet_id == wid, LedgerEntry.kind == kind).all()


def _serve_app(app: Flask) -> tuple[Any, str]:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def served(pg_url: str, pay_keys: Keys, fakes: Fakes):
    """The whole app with real-provider settings (pointed at the fakes), werkzeug-threaded, on PostgreSQL."""
    app = make_app(pg_url, **provider_config(pay_keys, fakes))
    server, url = _serve_app(app)
    yield Served(app, url, fakes)
    server.shutdown()
    from website.payments.webhooks import flush

    flush()
    app.extensions["bytespike_db"].dispose()


@pytest.fixture(scope="session")
def sandbox_instance(tmp_path_factory) -> str:
    """One instance folder per run: the simulator's RSA keys are generated once, not per test."""
    return str(tmp_path_factory.mktemp("instance"))


@pytest.fixture
def sandbox_app(tmp_path, sandbox_instance):
    """The app with no provider credentials and the sandbox switched on (opt-in): the simulator (SQLite)."""
    app = make_app(f"sqlite:///{tmp_path / 'pay.db'}", BYTESPIKE_PAYMENTS_SANDBOX="1",
                   BYTESPIKE_OUTBOUND_ALLOW="127.0.0.1/32")  # the tests' webhook receiver
    app.instance_path = sandbox_instance
    yield app
    app.extensions["bytespike_db"].dispose()
