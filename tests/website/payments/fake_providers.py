"""Fake WeChat Pay v3 and Alipay servers on 127.0.0.1, written from the wire references alone.

They share no code with ``website.payments``: each checks the merchant's
request signature, keeps trades, answers create/query/close/refund with
signed responses, and builds payment notifications signed (and for WeChat,
encrypted) exactly as the real providers do.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.conftest import free_port

MCHID, APPID, SERIAL, PUB_KEY_ID = "1900000109", "wxd678efh567hg6787", "3775B6A45ACD588826D15E583A95F5DD", "PUB_KEY_ID_0112345678"
APIV3_KEY = "0123456789abcdef0123456789ABCDEF"
ALIPAY_APP_ID, ALIPAY_SELLER = "2021004100000001", "2088102147948060"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_private(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_public(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(key: rsa.RSAPrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(pub: Any, data: bytes, sig: str) -> bool:
    try:
        pub.verify(base64.b64decode(sig), data, padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


@dataclass
class Trade:
    out_trade_no: str
    total: int  # fen
    state: str
    trade_no: str | None = None


@dataclass
class FakeBase:
    merchant_pub: Any  # verifies our requests
    provider_key: rsa.RSAPrivateKey  # signs the provider's answers
    trades: dict[str, Trade] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    bad_requests: int = 0
    url: str = ""

    def pay(self, out_trade_no: str) -> Trade:
        trade = self.trades[out_trade_no]
        trade.state = self.PAID  # type: ignore[attr-defined]
        trade.trade_no = trade.trade_no or ("4200" if isinstance(self, FakeWeChat) else "2026") + secrets.token_hex(10)
        return trade


class FakeWeChat(FakeBase):
    PAID = "SUCCESS"

    def sign_headers(self, body: bytes, *, timestamp: int | None = None, serial: str = PUB_KEY_ID,
                     key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
        ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(16)
        msg = f"{ts}\n{nonce}\n".encode() + body + b"\n"
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                "Wechatpay-Signature": sign(key or self.provider_key, msg), "Request-Id": secrets.token_hex(8)}

    def transaction(self, trade: Trade, **override: Any) -> dict[str, Any]:
        tx = {"appid": APPID, "mchid": MCHID, "out_trade_no": trade.out_trade_no, "transaction_id": trade.trade_no,
              "trade_type": "NATIVE", "trade_state": trade.state, "trade_state_desc": "ok", "bank_type": "OTHERS",
              "attach": "", "success_time": "2026-11-23T18:00:00+08:00", "payer": {"openid": "o-test"},
              "amount": {"total": trade.total, "payer_total": trade.total, "currency": "CNY", "payer_currency": "CNY"}}
        tx.update(override)
        return tx

    def notification(self, out_trade_no: str, *, tx: dict[str, Any] | None = None, **header_kw: Any) -> tuple[dict[str, str], bytes]:
        trade = self.trades[out_trade_no]
        plain = json.dumps(tx or self.transaction(trade)).encode()
        nonce = secrets.token_hex(6)
        ct = AESGCM(APIV3_KEY.encode()).encrypt(nonce.encode(), plain, b"transaction")
        body = json.dumps({
            "id": "EV-" + secrets.token_hex(8), "create_time": "2026-11-23T18:00:00+08:00",
            "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(ct).decode(), "associated_data": "transaction", "nonce": nonce},
        }).encode()
        return {"Content-Type": "application/json", **self.sign_headers(body, **header_kw)}, body

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, target))
        auth = headers.get("Authorization", "")
        scheme, _, rest = auth.partition(" ")
        fields = {k.strip(): v.strip().strip('"') for k, v in (p.split("=", 1) for p in rest.split(",") if "=" in p)}
        msg = f"{method}\n{target}\n{fields.get('timestamp')}\n{fields.get('nonce_str')}\n".encode() + body + b"\n"
        if scheme != "WECHATPAY2-SHA256-RSA2048" or fields.get("serial_no") != SERIAL or fields.get("mchid") != MCHID \
                or not verify(self.merchant_pub, msg, fields.get("signature", "")):
            self.bad_requests += 1
            return self._json(401, {"code": "SIGN_ERROR", "message": "bad signature"})
        path = urlsplit(target).path
        data = json.loads(body) if body else {}
        if path == "/v3/pay/transactions/native":
            no = data["out_trade_no"]
            assert data["mchid"] == MCHID and data["appid"] == APPID and data["amount"]["currency"] == "CNY"
            self.trades.setdefault(no, Trade(no, data["amount"]["total"], "NOTPAY"))
            return self._json(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={no[-8:]}"})
        if path.startswith("/v3/pay/transactions/out-trade-no/"):
            no = path.split("/")[5]
            if no not in self.trades:
                return self._json(404, {"code": "ORDER_NOT_EXIST", "message": "order does not exist"})
            if path.endswith("/close"):
                self.trades[no].state = "CLOSED"
                return 204, {}, b""
            return self._json(200, self.transaction(self.trades[no]))
        if path == "/v3/refund/domestic/refunds":
            self.trades[data["out_trade_no"]].state = "REFUND"
            return self._json(200, {"out_refund_no": data["out_refund_no"], "status": "SUCCESS"})
        return self._json(404, {"code": "NOT_FOUND", "message": path})

    def _json(self, status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps(payload).encode()
        return status, {"Content-Type": "application/json", **self.sign_headers(body)}, body


class FakeAlipay(FakeBase):
    PAID = "TRADE_SUCCESS"

    @staticmethod
    def content(params: dict[str, str], drop: tuple[str, ...]) -> bytes:
        return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in drop and params[k] != "").encode()

    def notification(self, out_trade_no: str, **override: str) -> bytes:
        trade = self.trades[out_trade_no]
        params = {"notify_time": "2026-11-23 18:00:00", "notify_type": "trade_status_sync",
                  "notify_id": secrets.token_hex(12), "app_id": ALIPAY_APP_ID, "charset": "utf-8", "version": "1.0",
                  "trade_no": trade.trade_no or "", "out_trade_no": out_trade_no, "trade_status": trade.state,
                  "total_amount": f"{trade.total // 100}.{trade.total % 100:02d}", "seller_id": ALIPAY_SELLER,
                  "buyer_id": "2088000000000001", "subject": "top-up", "gmt_payment": "2026-11-23 18:00:00"}
        params.update(override)
        params["sign_type"] = "RSA2"
        params["sign"] = sign(self.provider_key, self.content(params, ("sign", "sign_type")))
        return urlencode(params).encode()

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, target))
        params = dict(parse_qsl(urlsplit(target).query))
        params.update(parse_qsl(body.decode()))
        api = params.get("method", "")
        if params.get("app_id") != ALIPAY_APP_ID or params.get("sign_type") != "RSA2" or \
                not verify(self.merchant_pub, self.content(params, ("sign",)), params.get("sign", "")):
            self.bad_requests += 1
            return self._answer(api, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"})
        biz = json.loads(params["biz_content"])
        no = biz.get("out_trade_no", "")
        if api == "alipay.trade.precreate":
            yuan, _, fen = biz["total_amount"].partition(".")
            self.trades.setdefault(no, Trade(no, int(yuan) * 100 + int(fen), "WAIT_BUYER_PAY"))
            return self._answer(api, {"code": "10000", "msg": "Success", "out_trade_no": no,
                                      "qr_code": f"https://qr.alipay.com/bax{no[-8:]}"})
        trade = self.trades.get(no)
        if trade is None or (api == "alipay.trade.query" and trade.trade_no is None):
            return self._answer(api, {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"})
        if api == "alipay.trade.query":
            return self._answer(api, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": no,
                                      "trade_status": trade.state,
                                      "total_amount": f"{trade.total // 100}.{trade.total % 100:02d}"})
        if api == "alipay.trade.close":
            trade.state = "TRADE_CLOSED"
        if api == "alipay.trade.refund":
            trade.state = "TRADE_CLOSED"
            return self._answer(api, {"code": "10000", "msg": "Success", "fund_change": "Y",
                                      "refund_fee": biz["refund_amount"]})
        return self._answer(api, {"code": "10000", "msg": "Success"})

    def _answer(self, api: str, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        # Non-ASCII text and a nested brace inside a string: the verifier must cut the raw bytes.
        inner = json.dumps({**payload, "note": "测试 {ok}"}, ensure_ascii=False, separators=(", ", ": "))
        name, sig = api.replace(".", "_") + "_response", sign(self.provider_key, inner.encode())
        text = '{"' + name + '": ' + inner + ', "sign": "' + sig + '"}'
        return 200, {"Content-Type": "application/json;charset=utf-8"}, text.encode()


def serve(fake: FakeBase) -> ThreadingHTTPServer:
    """Serve ``fake`` on a free 127.0.0.1 port in a daemon thread; sets ``fake.url``."""

    class Handler(BaseHTTPRequestHandler):
        def _go(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, out = fake.handle(self.command, self.path, self.headers, body)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = _go

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
