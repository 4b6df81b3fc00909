"""Build the configured providers, or the labelled sandbox simulator when credentials are absent."""

from __future__ import annotations

import threading

from flask import Flask, current_app

from .alipay import Alipay, AlipayConfig
from .base import Provider
from .keys import http_transport, load_private_key, load_public_key
from .wechatpay import WeChatPay, WeChatPayConfig

PROVIDERS = ("alipay", "wechatpay")
ALIPAY_KEYS = ("BYTESPIKE_ALIPAY_APP_ID", "BYTESPIKE_ALIPAY_PRIVATE_KEY", "BYTESPIKE_ALIPAY_PUBLIC_KEY")
WECHAT_KEYS = (
    "BYTESPIKE_WECHATPAY_MCHID", "BYTESPIKE_WECHATPAY_APPID", "BYTESPIKE_WECHATPAY_PRIVATE_KEY",
    "BYTESPIKE_WECHATPAY_CERT_SERIAL", "BYTESPIKE_WECHATPAY_APIV3_KEY", "BYTESPIKE_WECHATPAY_PUBLIC_KEY",
    "BYTESPIKE_WECHATPAY_PUBLIC_KEY_ID",
)
_lock = threading.Lock()


def configured(app: Flask, name: str) -> bool:
    """Whether every credential of provider ``name`` is set."""
    keys = ALIPAY_KEYS if name == "alipay" else WECHAT_KEYS
    return all(app.config.get(k) for k in keys)


def sandbox_allowed(app: Flask) -> bool:
    """The simulator stands in unless the operator switched it off (BYTESPIKE_PAYMENTS_SANDBOX=0)."""
    value = app.config.get("BYTESPIKE_PAYMENTS_SANDBOX", "1")
    return str(value).lower() not in ("0", "false", "no", "off")


def get_provider(name: str, app: Flask | None = None) -> Provider | None:
    """The provider speaking ``name``'s wire protocol: real, simulated, or None when unavailable."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache: dict[str, Provider | None] = app.extensions.setdefault("bytespike_payments", {})
    if name not in cache:
        with _lock:
            if name not in cache:
                cache[name] = _build(app, name)
    return cache[name]


def sandbox_provider_name(app: Flask | None = None) -> str | None:
    """Which simulated provider serves method ``sandbox`` (WeChat Pay first), if any."""
    for name in ("wechatpay", "alipay"):
        provider = get_provider(name, app)
        if provider is not None and provider.sandbox:
            return name
    return None


def methods(app: Flask | None = None) -> list[str]:
    """The payment methods this deployment offers."""
    found = [name for name in PROVIDERS if get_provider(name, app) is not None]
    if sandbox_provider_name(app):
        found.append("sandbox")
    return found


def _notify_url(app: Flask, name: str) -> str:
    return app.config["BYTESPIKE_PUBLIC_URL"].rstrip("/") + f"/payments/{name}/notify"


def _build(app: Flask, name: str) -> Provider | None:
    if configured(app, name):
        return _real(app, name)
    if not sandbox_allowed(app):
        return None
    return _simulated(app, name)


def _real(app: Flask, name: str) -> Provider:
    c = app.config
    if name == "alipay":
        return Alipay(AlipayConfig(
            app_id=c["BYTESPIKE_ALIPAY_APP_ID"],
            private_key=load_private_key(c["BYTESPIKE_ALIPAY_PRIVATE_KEY"]),
            alipay_public_key=load_public_key(c["BYTESPIKE_ALIPAY_PUBLIC_KEY"]),
            gateway=c["BYTESPIKE_ALIPAY_GATEWAY"],
            notify_url=_notify_url(app, "alipay"),
            return_url=c["BYTESPIKE_PUBLIC_URL"].rstrip("/") + "/en/console/billing",
            # Optional: when set, a notification's seller_id must match it.
            seller_id=c.get("BYTESPIKE_ALIPAY_SELLER_ID") or None,
        ), http_transport())
    return WeChatPay(WeChatPayConfig(
        mchid=c["BYTESPIKE_WECHATPAY_MCHID"],
        appid=c["BYTESPIKE_WECHATPAY_APPID"],
        private_key=load_private_key(c["BYTESPIKE_WECHATPAY_PRIVATE_KEY"]),
        cert_serial=c["BYTESPIKE_WECHATPAY_CERT_SERIAL"],
        apiv3_key=c["BYTESPIKE_WECHATPAY_APIV3_KEY"],
        public_key=load_public_key(c["BYTESPIKE_WECHATPAY_PUBLIC_KEY"]),
        public_key_id=c["BYTESPIKE_WECHATPAY_PUBLIC_KEY_ID"],
        base_url=c["BYTESPIKE_WECHATPAY_BASE_URL"],
        notify_url=_notify_url(app, "wechatpay"),
    ), http_transport())


def _simulated(app: Flask, name: str) -> Provider:
    from . import sandbox as sb

    keys = sb.load_keys(app.instance_path)
    if name == "alipay":
        return Alipay(AlipayConfig(
            app_id=sb.SANDBOX_APP_ID,
            private_key=keys.alipay_app,
            alipay_public_key=keys.alipay_platform.public_key(),
            gateway="https://sandbox.invalid/gateway.do",
            notify_url=_notify_url(app, "alipay"),
            seller_id=sb.SANDBOX_SELLER_ID,
        ), sb.SimulatedAlipay(keys), sandbox=True)
    return WeChatPay(WeChatPayConfig(
        mchid=sb.SANDBOX_MCHID,
        appid=sb.SANDBOX_APPID,
        private_key=keys.wechat_merchant,
        cert_serial=sb.SANDBOX_MERCHANT_SERIAL,
        apiv3_key=keys.apiv3_key,
        public_key=keys.wechat_platform.public_key(),
        public_key_id=sb.SANDBOX_PUB_KEY_ID,
        base_url="https://sandbox.invalid",
        notify_url=_notify_url(app, "wechatpay"),
    ), sb.SimulatedWeChatPay(keys), sandbox=True)
