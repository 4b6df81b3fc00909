"""Build the configured providers, and the labelled sandbox simulator where the operator turned it on.

The simulator (BYTESPIKE_PAYMENTS_SANDBOX=1) stands in on the wire of a
provider that has no credentials; it serves method ``sandbox`` only, never
``alipay`` or ``wechatpay``.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app

from . import sandbox as sb
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
    """The simulator runs only where the operator set BYTESPIKE_PAYMENTS_SANDBOX=1 (it mints spendable credits)."""
    return bool(app.config.get("PAYMENTS_SANDBOX", False))


def get_provider(name: str, app: Flask | None = None) -> Provider | None:
    """Who answers on ``name``'s wire (notify route, reconcile): the real provider, the simulator, or None."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache: dict[str, Provider | None] = app.extensions.setdefault("bytespike_payments", {})
    if name not in cache:
        with _lock:
            if name not in cache:
                cache[name] = _build(app, name)
    return cache[name]


def sandbox_provider_name(app: Flask | None = None) -> str | None:
    """Which simulated wire serves method ``sandbox`` (WeChat Pay first), if the sandbox is on."""
    for name in ("wechatpay", "alipay"):
        provider = get_provider(name, app)
        if provider is not None and provider.sandbox:
            return name
    return None


def for_method(method: str, app: Flask | None = None) -> tuple[str, Provider] | None:
    """The (wire, provider) that opens an order paid by ``method``, or None when it is not available.

    ``alipay`` and ``wechatpay`` are only ever the real, configured providers and
    ``sandbox`` only ever the simulator: no order silently changes kind.
    """
    if method == "sandbox":
        name = sandbox_provider_name(app)
    else:
        name = method if method in PROVIDERS else None
    provider = get_provider(name, app) if name else None
    if name is None or provider is None or provider.sandbox != (method == "sandbox"):
        return None
    return name, provider


def methods(app: Flask | None = None) -> list[str]:
    """The payment methods this deployment offers."""
    return [m for m in (*PROVIDERS, "sandbox") if for_method(m, app) is not None]


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
