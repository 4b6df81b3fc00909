"""WeChat Pay API v3, Native (QR) payments, public-key mode.

Wire facts (payments-wechatpay.md): requests are signed over
``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` with the merchant key; WeChat's
responses and callbacks are signed over ``TIMESTAMP\\nNONCE\\nBODY\\n`` with the
WeChat Pay public-key pair; the callback's ``resource`` is AES-256-GCM
encrypted with the APIv3 key.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import string
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .base import Created, NotifyRejected, OrderRef, Provider, ProviderError, TradeState
from .keys import rsa_sha256_sign, rsa_sha256_verify

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
USER_AGENT = "ByteSpike-Payments/1.0"
REPLAY_WINDOW_S = 300  # the official Go SDK rejects |now - timestamp| >= 300
BEIJING = dt.timezone(dt.timedelta(hours=8))
_ALNUM = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class WeChatPayConfig:
    mchid: str
    appid: str
    private_key: rsa.RSAPrivateKey  # merchant API key: signs our requests
    cert_serial: str  # merchant API certificate serial
    apiv3_key: str  # 32-byte AES key for callbacks
    public_key: rsa.RSAPublicKey  # WeChat Pay public key: verifies WeChat
    public_key_id: str  # PUB_KEY_ID_...
    base_url: str
    notify_url: str


def make_nonce() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(32))


def request_message(method: str, canonical_url: str, timestamp: str, nonce: str, body: str) -> str:
    """The five-line message a merchant signs for ``Authorization``."""
    return f"{method}\n{canonical_url}\n{timestamp}\n{nonce}\n{body}\n"


def authorization(cfg: WeChatPayConfig, method: str, canonical_url: str, body: str, timestamp: str, nonce: str) -> str:
    """Build the ``WECHATPAY2-SHA256-RSA2048`` Authorization header value."""
    signature = rsa_sha256_sign(cfg.private_key, request_message(method, canonical_url, timestamp, nonce, body).encode())
    return (
        f'{SIGNATURE_TYPE} mchid="{cfg.mchid}",nonce_str="{nonce}",timestamp="{timestamp}",'
        f'serial_no="{cfg.cert_serial}",signature="{signature}"'
    )


def verify_wechat_signature(
    public_key: rsa.RSAPublicKey, key_id: str, headers: Mapping[str, str], body: bytes, now: int
) -> None:
    """Check the ``Wechatpay-*`` headers of a response or callback; raise NotifyRejected."""
    serial = headers.get("Wechatpay-Serial") or ""
    timestamp = headers.get("Wechatpay-Timestamp") or ""
    nonce = headers.get("Wechatpay-Nonce") or ""
    signature = headers.get("Wechatpay-Signature") or ""
    sig_type = headers.get("Wechatpay-Signature-Type") or SIGNATURE_TYPE
    if sig_type != SIGNATURE_TYPE:
        raise NotifyRejected(f"unsupported signature type {sig_type[:40]!r}")
    if serial != key_id:
        raise NotifyRejected("unknown Wechatpay-Serial")
    if not timestamp.isdigit():
        raise NotifyRejected("missing or malformed Wechatpay-Timestamp")
    if abs(now - int(timestamp)) >= REPLAY_WINDOW_S:
        raise NotifyRejected("stale timestamp")
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    if not rsa_sha256_verify(public_key, message, signature):
        raise NotifyRejected("bad signature")


def decrypt_resource(resource: Mapping[str, Any], apiv3_key: str) -> dict[str, Any]:
    """Decrypt a callback's AEAD_AES_256_GCM resource; raise NotifyRejected when it does not open."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise NotifyRejected("unsupported resource algorithm")
    try:
        plain = AESGCM(apiv3_key.encode()).decrypt(
            str(resource["nonce"]).encode(),
            base64.b64decode(str(resource["ciphertext"])),
            str(resource.get("associated_data") or "").encode(),
        )
        return json.loads(plain)
    except (InvalidTag, KeyError, ValueError) as exc:
        raise NotifyRejected(f"resource does not decrypt: {type(exc).__name__}") from exc


def encrypt_resource(plain: Mapping[str, Any], apiv3_key: str, nonce: str, associated_data: str) -> dict[str, str]:
    """Encrypt a transaction as WeChat does (the sandbox's provider side uses this)."""
    data = json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()
    ct = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), data, associated_data.encode())
    return {
        "original_type": "transaction",
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ct).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def trade_state(tx: Mapping[str, Any], notify_id: str | None = None) -> TradeState:
    """Read a transaction object (query answer or decrypted callback)."""
    amount = tx.get("amount") or {}
    state = str(tx.get("trade_state") or "")
    total = amount.get("total")
    return TradeState(
        out_trade_no=str(tx.get("out_trade_no") or ""),
        state=state,
        paid=state == "SUCCESS",
        closed=state in ("CLOSED", "REVOKED", "PAYERROR"),
        trade_no=tx.get("transaction_id") or None,
        amount_fen=total if isinstance(total, int) else None,
        currency=str(amount.get("currency") or ""),
        app_id=tx.get("appid"),
        merchant_id=tx.get("mchid"),
        trade_type=tx.get("trade_type"),
        notify_id=notify_id,
    )


class WeChatPay(Provider):
    name = "wechatpay"

    cfg: WeChatPayConfig

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Send one signed request; verify and decode the answer."""
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
        timestamp = str(int(self.clock()))
        headers = {
            "Authorization": authorization(self.cfg, method, path, text, timestamp, make_nonce()),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Wechatpay-Serial": self.cfg.public_key_id,  # ask for public-key-mode signatures
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        status, rheaders, raw = self.transport(method, self.cfg.base_url.rstrip("/") + path, headers, text.encode())
        if 200 <= status < 300 and raw:
            try:
                verify_wechat_signature(self.cfg.public_key, self.cfg.public_key_id, rheaders, raw, int(self.clock()))
            except NotifyRejected as exc:
                raise ProviderError(f"wechatpay answer failed verification: {exc}") from exc
        try:
            data = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise ProviderError(f"wechatpay answered {status} with a body that is not JSON") from exc
        return status, data if isinstance(data, dict) else {}

    def create(self, order: OrderRef) -> Created:
        expire = dt.datetime.fromtimestamp(self.clock() + 2 * 3600, BEIJING).replace(microsecond=0)
        status, data = self._call("POST", "/v3/pay/transactions/native", {
            "appid": self.cfg.appid,
            "mchid": self.cfg.mchid,
            "description": order.description[:127],
            "out_trade_no": order.out_trade_no,
            "time_expire": expire.isoformat(),
            "notify_url": self.cfg.notify_url,
            "amount": {"total": order.amount_fen, "currency": "CNY"},
        })
        if status != 200 or not data.get("code_url"):
            raise ProviderError(f"wechatpay native order failed: {status} {data.get('code', '')}")
        return Created(code_url=str(data["code_url"]))

    def query(self, out_trade_no: str) -> TradeState:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}?mchid={quote(self.cfg.mchid)}"
        status, data = self._call("GET", path)
        if status == 404 and data.get("code") == "ORDER_NOT_EXIST":
            return TradeState(out_trade_no=out_trade_no, state="NOTPAY", paid=False, closed=False)
        if status != 200:
            raise ProviderError(f"wechatpay query failed: {status} {data.get('code', '')}")
        return trade_state(data)

    def close(self, out_trade_no: str) -> None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}/close"
        status, data = self._call("POST", path, {"mchid": self.cfg.mchid})
        if status not in (200, 204):
            raise ProviderError(f"wechatpay close failed: {status} {data.get('code', '')}")

    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int) -> None:
        status, data = self._call("POST", "/v3/refund/domestic/refunds", {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "amount": {"refund": amount_fen, "total": amount_fen, "currency": "CNY"},
        })
        if status != 200 or data.get("status") not in ("SUCCESS", "PROCESSING"):
            raise ProviderError(f"wechatpay refund failed: {status} {data.get('code', data.get('status', ''))}")

    def verify_notification(self, headers: Mapping[str, str], body: bytes, now: int) -> TradeState:
        verify_wechat_signature(self.cfg.public_key, self.cfg.public_key_id, headers, body, now)
        try:
            envelope = json.loads(body)
            resource = envelope["resource"]
        except (ValueError, KeyError, TypeError) as exc:
            raise NotifyRejected("callback body is not a WeChat Pay envelope") from exc
        tx = decrypt_resource(resource, self.cfg.apiv3_key)
        state = trade_state(tx, notify_id=str(envelope.get("id") or ""))
        if envelope.get("event_type") != "TRANSACTION.SUCCESS" and state.paid:
            raise NotifyRejected(f"event {envelope.get('event_type')!r} claims a paid trade")
        return state

    def expected_ids(self) -> tuple[str, str | None]:
        return self.cfg.appid, self.cfg.mchid

    def ack(self) -> tuple[int, dict[str, str], bytes]:
        return 204, {}, b""

    def nack(self) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False).encode()
        return 400, {"Content-Type": "application/json"}, body
