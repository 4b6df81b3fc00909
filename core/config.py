"""Configuration: defaults, then ``BYTESPIKE_*`` environment variables, then explicit overrides.

Every key in ``app.config`` carries the environment variable's own name, so
the operator's documentation and the code speak of the same thing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from . import outbound

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

DEFAULTS: dict[str, Any] = {
    "BYTESPIKE_DATABASE_URL": f"sqlite:///{INSTANCE / 'bytespike.db'}",
    "BYTESPIKE_REDIS_URL": None,
    "BYTESPIKE_SECRET_KEY": None,
    "BYTESPIKE_CHANNELS_FILE": None,
    "BYTESPIKE_CNY_PER_USD": "7.20",
    "BYTESPIKE_PUBLIC_URL": "http://127.0.0.1:8000",
    "BYTESPIKE_ALIPAY_APP_ID": None,
    "BYTESPIKE_ALIPAY_PRIVATE_KEY": None,
    "BYTESPIKE_ALIPAY_PUBLIC_KEY": None,
    "BYTESPIKE_ALIPAY_GATEWAY": "https://openapi.alipay.com/gateway.do",
    "BYTESPIKE_WECHATPAY_MCHID": None,
    "BYTESPIKE_WECHATPAY_APPID": None,
    "BYTESPIKE_WECHATPAY_PRIVATE_KEY": None,
    "BYTESPIKE_WECHATPAY_CERT_SERIAL": None,
    "BYTESPIKE_WECHATPAY_APIV3_KEY": None,
    "BYTESPIKE_WECHATPAY_PUBLIC_KEY": None,
    "BYTESPIKE_WECHATPAY_PUBLIC_KEY_ID": None,
    "BYTESPIKE_WECHATPAY_BASE_URL": "https://api.mch.weixin.qq.com",
    # Not in the public contract; operator knobs with safe defaults.
    "BYTESPIKE_REQUEST_DEADLINE_S": "600",
    "BYTESPIKE_INVITE_ONLY": "0",
    # How many reverse proxies (nginx, a CDN) stand in front and set X-Forwarded-*: 0 trusts none.
    "BYTESPIKE_TRUSTED_PROXIES": "0",
    # Private networks (CIDRs, comma-separated) that webhooks and task callbacks may reach; none by default.
    "BYTESPIKE_OUTBOUND_ALLOW": "",
    "BYTESPIKE_SMTP_URL": None,
    "BYTESPIKE_REDIS_PREFIX": "bs:",
    # "1" turns on the labelled payment simulator (method `sandbox`): it mints spendable credits, so never by default.
    "BYTESPIKE_PAYMENTS_SANDBOX": "0",
    "BYTESPIKE_ALIPAY_SELLER_ID": None,
    # "0" turns off health-steered routing and circuit breakers (plain priority/weight): for comparisons.
    "BYTESPIKE_ROUTING_HEALTH": "1",
    # The model the public playground calls (free demo model unless the operator picks a cheap one).
    "BYTESPIKE_PLAYGROUND_MODEL": "bytespike-echo",
    # How often (seconds) a worker looks at the channels file's mtime to pick up a changed file.
    "BYTESPIKE_CHANNELS_CHECK_S": "2",
    # The nightly rate-card refresh (core/pricesync.py): a TOML/JSON file of price sources per vendor
    # (unset: no refresh), and the file that records the refreshed rows.
    "BYTESPIKE_PRICE_SOURCES": None,
    "BYTESPIKE_PRICE_REFRESH_FILE": str(INSTANCE / "ratecard-refresh.json"),
    # Background jobs (core/jobs.py): the first retry's delay in seconds; each next one waits 3x longer.
    "BYTESPIKE_JOBS_BACKOFF_S": "10",
    # "0": no in-process job timer in the server (when Redis is unset); for tests and special set-ups.
    "BYTESPIKE_JOBS_IN_PROCESS": "1",
    # Bearer token for GET /metrics (Prometheus); unset: /metrics answers 404.
    "BYTESPIKE_METRICS_TOKEN": None,
}


class ConfigError(RuntimeError):
    """A configuration value is unusable; the message names it."""


def load(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge defaults, the environment and overrides; validate the result."""
    env = os.environ if environ is None else environ
    cfg = dict(DEFAULTS)
    for key in DEFAULTS:
        if env.get(key):
            cfg[key] = env[key]
    if overrides:
        cfg.update(overrides)
    if not cfg["BYTESPIKE_CHANNELS_FILE"] and (INSTANCE / "channels.toml").exists():
        cfg["BYTESPIKE_CHANNELS_FILE"] = str(INSTANCE / "channels.toml")
    try:
        cfg["CNY_PER_USD"] = Decimal(str(cfg["BYTESPIKE_CNY_PER_USD"]))
    except InvalidOperation as exc:
        raise ConfigError(f"BYTESPIKE_CNY_PER_USD is not a decimal: {cfg['BYTESPIKE_CNY_PER_USD']!r}") from exc
    cfg["REQUEST_DEADLINE_S"] = float(cfg["BYTESPIKE_REQUEST_DEADLINE_S"])
    cfg["INVITE_ONLY"] = str(cfg["BYTESPIKE_INVITE_ONLY"]).lower() in ("1", "true", "yes", "on")
    cfg["PAYMENTS_SANDBOX"] = _switch("BYTESPIKE_PAYMENTS_SANDBOX", cfg["BYTESPIKE_PAYMENTS_SANDBOX"])
    cfg["TRUSTED_PROXIES"] = _hops(cfg["BYTESPIKE_TRUSTED_PROXIES"])
    try:
        outbound.allow_list(cfg["BYTESPIKE_OUTBOUND_ALLOW"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not cfg["BYTESPIKE_SECRET_KEY"]:
        cfg["BYTESPIKE_SECRET_KEY"] = _instance_secret()
    cfg["SECRET_KEY"] = cfg["BYTESPIKE_SECRET_KEY"]
    return cfg


def _switch(name: str, value: Any) -> bool:
    """Read an on/off setting; anything but a plain yes or no stops start-up rather than guess."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", "", "none"):
        return False
    raise ConfigError(f"{name} must be 1 or 0: {value!r}")


def _hops(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) > 5:
        raise ConfigError(f"BYTESPIKE_TRUSTED_PROXIES must be a whole number of proxy hops, 0 to 5: {value!r}")
    return int(text)


def _instance_secret() -> str:
    """Generate the secret into instance/ once, so restarts keep sessions valid."""
    path = INSTANCE / "secret_key"
    if path.exists():
        return path.read_text().strip()
    INSTANCE.mkdir(exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
