"""Alipay Open Platform (``gateway.do``), RSA2: precreate (QR), page.pay, query, close, refund, notify.

Wire facts (payments-alipay.md): requests are signed over the sorted
``k=v&...`` string of every non-empty parameter but ``sign`` (``sign_type``
included); a sync answer is verified over the raw bytes of its
``*_response`` object; an async notification is verified with ``sign`` and
``sign_type`` both removed, and answered with the plain text ``success``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from .base import (
    Created,
    NotifyRejected,
    OrderRef,
    Provider,
    ProviderError,
    TradeState,
    fen_to_yuan,
)
from .keys import rsa_sha256_sign, rsa_sha256_verify

BEIJING = dt.timezone(dt.timedelta(hours=8))
PAID_STATES = ("TRADE_SUCCESS", "TRADE_FINISHED")


@dataclass(frozen=True)
class AlipayConfig:
    app_id: str
    private_key: rsa.RSAPrivateKey  # the merchant app key: signs our requests
    alipay_public_key: rsa.RSAPublicKey  # Alipay's key (not the app's): verifies Alipay
    gateway: str
    notify_url: str
    return_url: str | None = None
    seller_id: str | None = None  # the merchant's Alipay account id, when known


def sign_content(params: Mapping[str, Any], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """Sorted ``k=v`` pairs of the non-empty parameters, raw values, joined with ``&``."""
    return "&".join(
        f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] not in (None, "")
    )


def extract_response_json(raw: str, key: str) -> str | None:
    """Cut the exact text of the JSON value of ``key``, scanning braces outside strings."""
    marker = f'"{key}"'
    at = raw.find(marker)
    if at < 0:
        return None
    start = raw.find("{", at + len(marker))
    if start < 0:
        return None
    depth, in_str, escaped = 0, False, False
    for i in range(start, len(raw)):
        ch = raw[i]
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return raw[start : i + 1]
    return None


def yuan_to_fen(value: str | None) -> int | None:
    """Parse a two-decimal yuan string exactly; None when it is not one."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    fen = amount * 100
    return int(fen) if fen == fen.to_integral_value() else None


class Alipay(Provider):
    name = "alipay"

    cfg: AlipayConfig

    def signed_params(self, method: str, biz: Mapping[str, Any], **extra: str) -> dict[str, str]:
        """The common parameters plus ``biz_content``, signed with RSA2."""
        params = {
            "app_id": self.cfg.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": dt.datetime.fromtimestamp(self.clock(), BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            # Serialised once: the signed string and the sent string must be identical.
            "biz_content": json.dumps(dict(biz), ensure_ascii=False, separators=(",", ":")),
            **{k: v for k, v in extra.items() if v},
        }
        params["sign"] = rsa_sha256_sign(self.cfg.private_key, sign_content(params).encode())
        return params

    def _call(self, method: str, biz: Mapping[str, Any]) -> dict[str, Any]:
        """POST one API call (common params in the query, biz_content in the form); verify the answer."""
        params = self.signed_params(method, biz)
        form = {"biz_content": params.pop("biz_content")}
        url = f"{self.cfg.gateway}?{urlencode(params)}"
        headers = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}
        status, _, raw = self.transport("POST", url, headers, urlencode(form).encode())
        text = raw.decode("utf-8", errors="replace")
        if status != 200:
            raise ProviderError(f"alipay {method} answered HTTP {status}")
        key = method.replace(".", "_") + "_response"
        signed = extract_response_json(text, key)
        if signed is None:
            raise ProviderError(f"alipay {method} answered without {key}")
        try:
            sign = json.loads(text).get("sign") or ""
        except ValueError as exc:
            raise ProviderError(f"alipay {method} answer is not JSON") from exc
        if not rsa_sha256_verify(self.cfg.alipay_public_key, signed.encode(), sign):
            raise ProviderError(f"alipay {method} answer failed signature verification")
        return json.loads(signed)

    def create(self, order: OrderRef) -> Created:
        biz = {
            "out_trade_no": order.out_trade_no,
            "total_amount": fen_to_yuan(order.amount_fen),
            "subject": order.description,
            "timeout_express": "2h",
        }
        answer = self._call("alipay.trade.precreate", biz)
        if answer.get("code") != "10000" or not answer.get("qr_code"):
            raise ProviderError(f"alipay precreate failed: {answer.get('code')} {answer.get('sub_code', '')}")
        page = self.signed_params(
            "alipay.trade.page.pay",
            {**biz, "product_code": "FAST_INSTANT_TRADE_PAY"},
            notify_url=self.cfg.notify_url,
            return_url=self.cfg.return_url or "",
        )
        return Created(code_url=str(answer["qr_code"]), pay_url=f"{self.cfg.gateway}?{urlencode(page)}")

    def query(self, out_trade_no: str) -> TradeState:
        answer = self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        if answer.get("code") == "40004" and answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            # Until the buyer scans, Alipay has no trade: still pending.
            return TradeState(out_trade_no=out_trade_no, state="WAIT_BUYER_PAY", paid=False, closed=False)
        if answer.get("code") != "10000":
            raise ProviderError(f"alipay query failed: {answer.get('code')} {answer.get('sub_code', '')}")
        state = str(answer.get("trade_status") or "")
        return TradeState(
            out_trade_no=str(answer.get("out_trade_no") or out_trade_no),
            state=state,
            paid=state in PAID_STATES,
            closed=state == "TRADE_CLOSED",
            trade_no=answer.get("trade_no") or None,
            amount_fen=yuan_to_fen(answer.get("total_amount")),
            app_id=self.cfg.app_id,
        )

    def close(self, out_trade_no: str) -> None:
        answer = self._call("alipay.trade.close", {"out_trade_no": out_trade_no})
        if answer.get("code") != "10000" and answer.get("sub_code") != "ACQ.TRADE_NOT_EXIST":
            raise ProviderError(f"alipay close failed: {answer.get('code')} {answer.get('sub_code', '')}")

    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int) -> None:
        answer = self._call("alipay.trade.refund", {
            "out_trade_no": out_trade_no,
            "refund_amount": fen_to_yuan(amount_fen),
            "out_request_no": out_refund_no,
        })
        if answer.get("code") != "10000":
            raise ProviderError(f"alipay refund failed: {answer.get('code')} {answer.get('sub_code', '')}")

    def verify_notification(self, headers: Mapping[str, str], body: bytes, now: int) -> TradeState:
        params = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        sign = params.get("sign") or ""
        if params.get("sign_type") != "RSA2":
            raise NotifyRejected("sign_type is not RSA2")
        # V1 rule: both sign and sign_type are left out of the verified string.
        content = sign_content(params, exclude=("sign", "sign_type"))
        if not rsa_sha256_verify(self.cfg.alipay_public_key, content.encode(), sign):
            raise NotifyRejected("bad signature")
        state = str(params.get("trade_status") or "")
        return TradeState(
            out_trade_no=params.get("out_trade_no") or "",
            state=state,
            paid=state in PAID_STATES,
            closed=state == "TRADE_CLOSED",
            trade_no=params.get("trade_no") or None,
            amount_fen=yuan_to_fen(params.get("total_amount")),
            app_id=params.get("app_id"),
            merchant_id=params.get("seller_id"),
            notify_id=params.get("notify_id"),
        )

    def expected_ids(self) -> tuple[str, str | None]:
        return self.cfg.app_id, self.cfg.seller_id

    def ack(self) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/plain"}, b"success"

    def nack(self) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/plain"}, b"fail"
