"""SANDBOX: a local simulator of Alipay and WeChat Pay, used when no credentials are configured.

It is the "provider side" only. The merchant side is the real ``Alipay`` and
``WeChatPay`` classes, unchanged: they sign requests with keys generated into
``instance/sandbox/`` and verify every answer and notification with the
simulator's public keys, exactly as they would with the real providers. The
simulator checks the merchant's signatures, keeps its trades in
``sandbox_trades``, signs its answers as the providers do, and on "Simulate
payment" posts a signed notification to the real notify route.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy.orm import Session

from core import db as core_db
from core.models import SandboxTrade, utcnow

from .alipay import BEIJING, sign_content, yuan_to_fen
from .base import fen_to_yuan
from .keys import load_private_key, private_pem, rsa_sha256_sign, rsa_sha256_verify
from .wechatpay import SIGNATURE_TYPE, encrypt_resource, make_nonce, request_message

SANDBOX_APP_ID = "2021000000000000"
SANDBOX_SELLER_ID = "2088000000000000"
SANDBOX_MCHID = "1900000000"
SANDBOX_APPID = "wx0000000000sandbox"
SANDBOX_MERCHANT_SERIAL = "5A4D5EC0SANDBOX"
SANDBOX_PUB_KEY_ID = "PUB_KEY_ID_0000000000SANDBOX"
KEY_NAMES = ("alipay_app", "alipay_platform", "wechat_merchant", "wechat_platform")
_lock = threading.Lock()


@dataclass(frozen=True)
class SandboxKeys:
    alipay_app: rsa.RSAPrivateKey  # "our" app key
    alipay_platform: rsa.RSAPrivateKey  # the simulated Alipay's key
    wechat_merchant: rsa.RSAPrivateKey  # "our" merchant key
    wechat_platform: rsa.RSAPrivateKey  # the simulated WeChat Pay key
    apiv3_key: str


def load_keys(instance_path: str) -> SandboxKeys:
    """Load the sandbox keys from instance/sandbox/, generating them the first time."""
    folder = Path(instance_path) / "sandbox"
    with _lock:
        folder.mkdir(parents=True, exist_ok=True)
        keys = {name: _key_file(folder / f"{name}.pem") for name in KEY_NAMES}
        apiv3 = _secret_file(folder / "apiv3_key", lambda: secrets.token_hex(16))
    return SandboxKeys(apiv3_key=apiv3, **keys)


def _key_file(path: Path) -> rsa.RSAPrivateKey:
    pem = _secret_file(path, lambda: private_pem(rsa.generate_private_key(65537, 2048)).decode())
    return load_private_key(pem)


def _secret_file(path: Path, make: Any) -> str:
    """Read ``path``, writing it first with ``make()`` if absent; racing workers all read one whole file."""
    if not path.exists():
        # Written under a private name, then linked into place: a reader never sees a half-written
        # file, and when two workers race, the first link wins and the other reads that one.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text()


def _respond(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    return status, headers, body


class SimulatedAlipay:
    """Alipay's side of ``gateway.do``: checks our RSA2 signature, signs its answers."""

    def __init__(self, keys: SandboxKeys) -> None:
        self.keys = keys

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes):  # type: ignore[no-untyped-def]
        params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
        api = params.get("method", "")
        if not rsa_sha256_verify(self.keys.alipay_app.public_key(), sign_content(params).encode(), params.get("sign", "")):
            return self._answer(api, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"})
        biz = json.loads(params.get("biz_content") or "{}")
        handler = {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
            "alipay.trade.refund": self._refund,
        }.get(api)
        if handler is None:
            return self._answer(api, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.INVALID_METHOD"})
        return self._answer(api, handler(biz))

    def _answer(self, api: str, payload: dict[str, Any]):  # type: ignore[no-untyped-def]
        inner = json.dumps({"msg": "Success", **payload}, ensure_ascii=False, separators=(",", ":"))
        sign = rsa_sha256_sign(self.keys.alipay_platform, inner.encode())
        key = api.replace(".", "_") + "_response"
        text = f'{{"{key}":{inner},"sign":"{sign}"}}'
        return _respond(200, {"Content-Type": "application/json;charset=utf-8"}, text.encode())

    def _precreate(self, biz: dict[str, Any]) -> dict[str, Any]:
        no = biz["out_trade_no"]
        _upsert(no, "alipay", _fen(biz["total_amount"]), "WAIT_BUYER_PAY")
        return {"code": "10000", "out_trade_no": no, "qr_code": f"https://qr.alipay.com/sandbox-{no}"}

    def _query(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = _get(biz.get("out_trade_no", ""))
        if trade is None or trade.trade_no is None:
            return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"}
        return {"code": "10000", "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no,
                "trade_status": trade.state, "total_amount": fen_to_yuan(trade.amount_fen)}

    def _close(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = _get(biz.get("out_trade_no", ""))
        if trade is None or trade.trade_no is None:
            return {"code": "40004", "sub_code": "ACQ.TRADE_NOT_EXIST"}
        if trade.state != "WAIT_BUYER_PAY":
            return {"code": "40004", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
        _set_state(trade.out_trade_no, "TRADE_CLOSED")
        return {"code": "10000", "out_trade_no": trade.out_trade_no}

    def _refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        trade = _get(biz.get("out_trade_no", ""))
        if trade is None or trade.state not in ("TRADE_SUCCESS", "TRADE_CLOSED"):
            return {"code": "40004", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
        fund_change = "Y" if trade.state == "TRADE_SUCCESS" else "N"
        _set_state(trade.out_trade_no, "TRADE_CLOSED")  # a full refund closes the trade
        return {"code": "10000", "out_trade_no": trade.out_trade_no, "fund_change": fund_change,
                "refund_fee": biz.get("refund_amount")}

    def notification(self, trade: SandboxTrade) -> bytes:
        """The form Alipay would POST to notify_url, signed with the V1 rule."""
        now = dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        params = {
            "notify_time": now, "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(16),
            "app_id": SANDBOX_APP_ID, "charset": "utf-8", "version": "1.0", "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no, "trade_status": trade.state, "seller_id": SANDBOX_SELLER_ID,
            "total_amount": fen_to_yuan(trade.amount_fen), "receipt_amount": fen_to_yuan(trade.amount_fen),
            "buyer_pay_amount": fen_to_yuan(trade.amount_fen), "gmt_create": now, "gmt_payment": now,
            "subject": "ByteSpike top-up (sandbox)",
        }
        params["sign"] = rsa_sha256_sign(self.keys.alipay_platform, sign_content(params).encode())
        params["sign_type"] = "RSA2"
        return urlencode(params).encode()


class SimulatedWeChatPay:
    """WeChat Pay's side of API v3: checks our Authorization header, signs its answers."""

    def __init__(self, keys: SandboxKeys) -> None:
        self.keys = keys

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes):  # type: ignore[no-untyped-def]
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if not self._authorized(method, path, headers.get("Authorization", ""), body):
            return self._answer(401, {"code": "SIGN_ERROR", "message": "signature does not verify"})
        data = json.loads(body) if body else {}
        if method == "POST" and parts.path == "/v3/pay/transactions/native":
            _upsert(data["out_trade_no"], "wechatpay", int(data["amount"]["total"]), "NOTPAY")
            return self._answer(200, {"code_url": f"weixin://wxpay/bizpayurl?pr=sandbox-{data['out_trade_no']}"})
        if parts.path.startswith("/v3/pay/transactions/out-trade-no/"):
            no = parts.path.split("/")[5]
            trade = _get(no)
            if trade is None:
                return self._answer(404, {"code": "ORDER_NOT_EXIST", "message": "order does not exist"})
            if parts.path.endswith("/close"):
                if trade.state == "NOTPAY":
                    _set_state(no, "CLOSED")
                return _respond(204, {}, b"")
            return self._answer(200, self.transaction(trade))
        if parts.path == "/v3/refund/domestic/refunds":
            trade = _get(data.get("out_trade_no", ""))
            if trade is None or trade.state not in ("SUCCESS", "REFUND"):
                return self._answer(400, {"code": "INVALID_REQUEST", "message": "trade not paid"})
            _set_state(trade.out_trade_no, "REFUND")
            return self._answer(200, {"out_refund_no": data["out_refund_no"], "status": "SUCCESS"})
        return self._answer(404, {"code": "NOT_FOUND", "message": "no such API"})

    def _authorized(self, method: str, path: str, header: str, body: bytes) -> bool:
        scheme, _, rest = header.partition(" ")
        fields = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        fields = {k.strip(): v.strip().strip('"') for k, v in fields.items()}
        if scheme != SIGNATURE_TYPE or fields.get("mchid") != SANDBOX_MCHID:
            return False
        message = request_message(method, path, fields.get("timestamp", ""), fields.get("nonce_str", ""), body.decode())
        return rsa_sha256_verify(self.keys.wechat_merchant.public_key(), message.encode(), fields.get("signature", ""))

    def transaction(self, trade: SandboxTrade) -> dict[str, Any]:
        tx: dict[str, Any] = {
            "appid": SANDBOX_APPID, "mchid": SANDBOX_MCHID, "out_trade_no": trade.out_trade_no,
            "trade_type": "NATIVE", "trade_state": trade.state, "trade_state_desc": trade.state,
            "amount": {"total": trade.amount_fen, "payer_total": trade.amount_fen,
                       "currency": "CNY", "payer_currency": "CNY"},
        }
        if trade.trade_no:
            tx.update(transaction_id=trade.trade_no, bank_type="OTHERS", attach="",
                      success_time=dt.datetime.now(BEIJING).replace(microsecond=0).isoformat(),
                      payer={"openid": "sandbox-payer"})
        return tx

    def signed_headers(self, body: bytes) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), make_nonce()
        message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
        return {
            "Content-Type": "application/json",
            "Request-Id": secrets.token_hex(16),
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": SANDBOX_PUB_KEY_ID,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
            "Wechatpay-Signature": rsa_sha256_sign(self.keys.wechat_platform, message),
        }

    def _answer(self, status: int, payload: dict[str, Any]):  # type: ignore[no-untyped-def]
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return _respond(status, self.signed_headers(body), body)

    def notification(self, trade: SandboxTrade) -> tuple[dict[str, str], bytes]:
        """The callback WeChat Pay would POST: an envelope with the encrypted transaction."""
        resource = encrypt_resource(self.transaction(trade), self.keys.apiv3_key, secrets.token_hex(6), "transaction")
        envelope = {
            "id": f"EV-{secrets.token_hex(12)}", "create_time": dt.datetime.now(BEIJING).replace(microsecond=0).isoformat(),
            "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
            "resource": resource,
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        return self.signed_headers(body), body


# --- the simulator's own trade book ---------------------------------------------------


def _fen(yuan: str) -> int:
    fen = yuan_to_fen(yuan)
    if fen is None:
        raise ValueError("total_amount is not a two-decimal yuan amount")
    return fen


def _session() -> Session:
    # Its own session, as a separate provider would have: never commits the caller's work.
    return Session(core_db.get_db().engine, expire_on_commit=False)


def _get(out_trade_no: str) -> SandboxTrade | None:
    with _session() as s:
        return s.get(SandboxTrade, out_trade_no)


def _upsert(out_trade_no: str, provider: str, amount_fen: int, state: str) -> None:
    with _session() as s:
        if s.get(SandboxTrade, out_trade_no) is None:
            s.add(SandboxTrade(out_trade_no=out_trade_no, provider=provider, amount_fen=amount_fen, state=state))
            s.commit()


def _set_state(out_trade_no: str, state: str, trade_no: str | None = None) -> None:
    with _session() as s:
        trade = s.get(SandboxTrade, out_trade_no)
        if trade is not None:
            trade.state = state
            if trade_no:
                trade.trade_no, trade.paid_at = trade_no, utcnow()
            s.commit()


def simulate_payment(app: Flask, out_trade_no: str) -> int:
    """Play the payer and the provider: mark the trade paid and deliver the signed notification.

    The notification goes to the real notify route, in-process, on its own
    thread so that it gets its own database session, as a real callback would.
    Returns the HTTP status the notify route answered.
    """
    with app.app_context():
        path, headers, body = _signed_notification(app, out_trade_no)
    result: list[int] = []

    def deliver() -> None:
        with app.test_client() as client:
            result.append(client.post(path, data=body, headers=headers).status_code)

    worker = threading.Thread(target=deliver, name="sandbox-notify")
    worker.start()
    worker.join(timeout=30)
    return result[0] if result else 504


def _signed_notification(app: Flask, out_trade_no: str) -> tuple[str, dict[str, str], bytes]:
    """Mark the simulated trade paid (once) and build its notification as the provider would."""
    trade = _get(out_trade_no)
    if trade is None:
        raise LookupError("the simulator has no such trade")
    keys = load_keys(app.instance_path)
    if trade.trade_no is None:
        prefix = "2026" if trade.provider == "alipay" else "4200"
        paid_state = "TRADE_SUCCESS" if trade.provider == "alipay" else "SUCCESS"
        _set_state(out_trade_no, paid_state, prefix + secrets.token_hex(12))
        trade = _get(out_trade_no)
    assert trade is not None
    if trade.provider == "alipay":
        return ("/payments/alipay/notify", {"Content-Type": "application/x-www-form-urlencoded"},
                SimulatedAlipay(keys).notification(trade))
    headers, body = SimulatedWeChatPay(keys).notification(trade)
    return "/payments/wechatpay/notify", headers, body
