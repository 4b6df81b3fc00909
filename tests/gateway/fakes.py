"""Fake vendor servers (Anthropic, OpenAI, Gemini) on 127.0.0.1, each in a thread of the test process.

They speak the vendors' wire formats byte for byte (JSON bodies, chunked SSE
with one event per write), record every request they see (including the
upstream key used) and misbehave on demand:

- per key: ``fake.set(key="sk-up-a", fail=429, retry_after="7")``;
- per request: a directive anywhere in the body, e.g. in the user text,
  ``[fake fail=500]``, ``[fake gap=0.2 chunks=5]``, ``[fake drop=2]``,
  ``[fake midfail=2]``, ``[fake hang=5]``, ``[fake in=100 out=7 cached=3]``.

Knobs: text, chunks (pieces), gap (s between chunks), delay (s before the
status line), hang (s of silence before anything), fail (status with the
vendor's error JSON; retry-after on 429/529), drop (close the socket after N
content chunks, no terminal event), midfail (a vendor error event after N
chunks), in / out / cached / cwrite (reported usage), tool (answer with a
tool call of that name).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DIRECTIVE = re.compile(rb"\[fake ([^\]]*)\]")
DEFAULT_TEXT = "Hello from the fake upstream, one word at a time."


@dataclass(frozen=True)
class Knobs:
    text: str = DEFAULT_TEXT
    chunks: int = 0  # 0: one chunk per word
    gap: float = 0.0
    delay: float = 0.0
    hang: float = 0.0
    fail: int = 0
    retry_after: str = "1"
    drop: int = -1
    garble: int = -1  # at this content event, a chunk-size line that is not hex: broken HTTP framing
    midfail: int = -1
    inp: int = 12
    out: int = 0  # 0: one per piece
    cached: int = 0
    cwrite: int = 0
    tool: str = ""
    leak: int = 0  # 1: error messages carry key-like text, the way some vendors echo what they were sent


NAMES = {"in": "inp", "retry-after": "retry_after"}
FLOATS = ("gap", "delay", "hang")
INTS = ("chunks", "fail", "drop", "garble", "midfail", "inp", "out", "cached", "cwrite", "leak")
# Key-like text a vendor may echo in an error: never to reach a caller.
LEAK = ("; sent key=AIzaSyD-LEAKLEAKLEAK0123456789, x-api-key: sk-ant-api03-LEAKLEAKLEAK, "
        "Authorization: Bearer eyLEAKLEAKLEAK.token, api_key=LEAKLEAKLEAK42")


def _apply(knobs: Knobs, text: str) -> Knobs:
    changes: dict[str, Any] = {}
    for part in text.split():
        k, _, v = part.partition("=")
        k = NAMES.get(k, k)
        if k in FLOATS:
            changes[k] = float(v)
        elif k in INTS:
            changes[k] = int(v)
        elif k in ("retry_after", "tool", "text"):
            changes[k] = v.replace("_", " ") if k == "text" else v
    return replace(knobs, **changes)


@dataclass
class Seen:
    """One request a fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    key: str | None


def pieces(text: str, n: int) -> list[str]:
    words = re.findall(r"\S+\s*", text) or [text]
    if n <= 0 or n >= len(words):
        return words
    size = -(-len(words) // n)
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


class FakeVendor:
    """A fake upstream of one protocol: ``anthropic``, ``openai`` or ``gemini``."""

    def __init__(self, vendor: str) -> None:
        assert vendor in ("anthropic", "openai", "gemini")
        self.vendor = vendor
        self.seen: list[Seen] = []
        self.default = Knobs()
        self.per_key: dict[str, Knobs] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._seq = 0
        self.budget: int | None = None  # when set: requests it still answers; past it, 400 (one branch failing)

    # --- control -----------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        root = f"http://{host}:{port}"
        return root + "/v1" if self.vendor == "openai" else root

    def set(self, key: str | None = None, **knobs: Any) -> None:
        """Change behaviour for every request (or for one upstream key)."""
        if key is None:
            self.default = replace(self.default, **knobs)
        else:
            self.per_key[key] = replace(self.per_key.get(key, self.default), **knobs)

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
        self.default = Knobs()
        self.per_key.clear()
        self.budget = None

    def keys_used(self) -> list[str | None]:
        return [s.key for s in self.seen]

    def next_id(self) -> str:
        with self._lock:
            self._seq += 1
            return f"{self._seq:06d}"

    def spend(self) -> bool:
        """True when the request budget is spent (the request is to fail)."""
        with self._lock:
            if self.budget is None:
                return False
            self.budget -= 1
            return self.budget < 0

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def knobs_for(self, key: str | None, raw: bytes) -> Knobs:
        knobs = self.per_key.get(key or "", self.default)
        for m in DIRECTIVE.finditer(raw):
            knobs = _apply(knobs, m.group(1).decode())
        return knobs


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The gateway hanging up on a slow or hung fake is part of the tests, not an error.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeVendor
    upstream_key: str | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.owner
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        key = self.upstream_key = _key_of(fake.vendor, headers)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fake.record(Seen("POST", url.path, parse_qs(url.query), headers, body, key))
        knobs = fake.knobs_for(key, raw)
        if knobs.hang:
            time.sleep(knobs.hang)
        if knobs.delay:
            time.sleep(knobs.delay)
        if fake.spend():
            return self._json(400, _error_body(fake.vendor, 400, key), knobs)
        if knobs.fail:
            return self._json(knobs.fail, _error_body(fake.vendor, knobs.fail, key, knobs.leak), knobs)
        if not isinstance(body, dict):
            return self._json(400, _error_body(fake.vendor, 400, key), knobs)
        stream = bool(body.get("stream")) or url.path.endswith(":streamGenerateContent")
        model = body.get("model") or url.path.rsplit("/", 1)[-1].split(":")[0]
        wire = WIRES[fake.vendor]
        if not stream:
            return self._json(200, _choices(fake.vendor, wire.message(fake, model, knobs), body), knobs)
        self._stream(wire.events(fake, model, knobs, body), knobs)

    def _json(self, status: int, obj: Any, knobs: Knobs) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if status in (429, 529, 503):
            self.send_header("retry-after", knobs.retry_after)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: list[tuple[bytes, bool]], knobs: Knobs) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        seen = 0
        for data, is_content in events:
            if is_content:
                if seen == knobs.drop:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if seen == knobs.garble:
                    self.wfile.write(b"zz\r\n" + data + b"\r\n")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if seen == knobs.midfail:
                    note = f"{LEAK} for key {self.upstream_key}" if knobs.leak else ""
                    self._chunk(WIRES[self.owner.vendor].midfail(note))
                    break
                if seen and knobs.gap:
                    time.sleep(knobs.gap)
                seen += 1
            self._chunk(data)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def _choices(vendor: str, obj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Several answers natively (OpenAI n, Gemini candidateCount): the same answer again, usage counted for each."""
    gen = body.get("generationConfig") or {}
    n = body.get("n") if vendor == "openai" else gen.get("candidateCount") if vendor == "gemini" else None
    if not isinstance(n, int) or n < 2:
        return obj
    if vendor == "openai":
        obj["choices"] = [dict(obj["choices"][0], index=i) for i in range(n)]
        u = obj["usage"]
        u["completion_tokens"] *= n
        u["total_tokens"] = u["prompt_tokens"] + u["completion_tokens"]
    else:
        obj["candidates"] = [dict(obj["candidates"][0], index=i) for i in range(n)]
        u = obj["usageMetadata"]
        u["candidatesTokenCount"] *= n
        u["totalTokenCount"] = u["promptTokenCount"] + u["candidatesTokenCount"]
    return obj


def _key_of(vendor: str, headers: dict[str, str]) -> str | None:
    if vendor == "anthropic":
        return headers.get("x-api-key")
    if vendor == "gemini":
        return headers.get("x-goog-api-key")
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def _error_body(vendor: str, status: int, key: str | None, leak: int = 0) -> dict[str, Any]:
    # Real vendors echo (part of) the key in some errors: the gateway must never pass that on.
    message = f"fake {status} for key {key}" + (LEAK if leak else "")
    if vendor == "anthropic":
        kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
                529: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    if vendor == "openai":
        kind = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}.get(status, "server_error")
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
             503: "UNAVAILABLE"}
    return {"error": {"code": status, "message": message, "status": names.get(status, "UNAVAILABLE")}}


def sse(obj: Any, event: str | None = None, sep: bytes = b"\n\n") -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return (b"event: " + event.encode() + b"\n" if event else b"") + b"data: " + data + sep


class _Anthropic:
    @staticmethod
    def usage(k: Knobs, out: int) -> dict[str, int]:
        return {"input_tokens": k.inp, "cache_creation_input_tokens": k.cwrite,
                "cache_read_input_tokens": k.cached, "output_tokens": out}

    @classmethod
    def message(cls, fake: FakeVendor, model: str, k: Knobs) -> dict[str, Any]:
        ps = pieces(k.text, k.chunks)
        content: list[dict[str, Any]] = [{"type": "text", "text": k.text}]
        stop = "end_turn"
        if k.tool:
            content.append({"type": "tool_use", "id": "toolu_fake1", "name": k.tool, "input": {"city": "Paris"}})
            stop = "tool_use"
        return {"id": "msg_fake" + fake.next_id(), "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": cls.usage(k, k.out or len(ps))}

    @classmethod
    def events(cls, fake: FakeVendor, model: str, k: Knobs, body: dict[str, Any]) -> list[tuple[bytes, bool]]:
        ps = pieces(k.text, k.chunks)
        start = {"id": "msg_fake" + fake.next_id(), "type": "message", "role": "assistant", "model": model,
                 "content": [], "stop_reason": None, "stop_sequence": None, "usage": cls.usage(k, 1)}
        ev = [(sse({"type": "message_start", "message": start}, "message_start"), False),
              (sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                   "content_block_start"), False),
              (sse({"type": "ping"}, "ping"), False)]
        ev += [(sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
                    "content_block_delta"), True) for p in ps]
        ev.append((sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), False))
        stop = "end_turn"
        if k.tool:
            stop = "tool_use"
            ev += [(sse({"type": "content_block_start", "index": 1, "content_block": {
                "type": "tool_use", "id": "toolu_fake1", "name": k.tool, "input": {}}}, "content_block_start"), False),
                (sse({"type": "content_block_delta", "index": 1, "delta": {
                    "type": "input_json_delta", "partial_json": '{"city": "Paris"}'}}, "content_block_delta"), False),
                (sse({"type": "content_block_stop", "index": 1}, "content_block_stop"), False)]
        ev += [(sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                     "usage": {"output_tokens": k.out or len(ps)}}, "message_delta"), False),
               (sse({"type": "message_stop"}, "message_stop"), False)]
        return ev

    @staticmethod
    def midfail(note: str = "") -> bytes:
        return sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded" + note}}, "error")


class _OpenAI:
    @staticmethod
    def usage(k: Knobs, out: int) -> dict[str, Any]:
        prompt = k.inp + k.cached
        return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out,
                "prompt_tokens_details": {"cached_tokens": k.cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    @classmethod
    def message(cls, fake: FakeVendor, model: str, k: Knobs) -> dict[str, Any]:
        ps = pieces(k.text, k.chunks)
        msg: dict[str, Any] = {"role": "assistant", "content": k.text, "refusal": None, "annotations": []}
        finish = "stop"
        if k.tool:
            msg["tool_calls"] = [{"id": "call_fake1", "type": "function",
                                  "function": {"name": k.tool, "arguments": '{"city": "Paris"}'}}]
            finish = "tool_calls"
        return {"id": "chatcmpl-fake" + fake.next_id(), "object": "chat.completion", "created": 1763800000,
                "model": model, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}],
                "usage": cls.usage(k, k.out or len(ps)), "service_tier": "default"}

    @classmethod
    def events(cls, fake: FakeVendor, model: str, k: Knobs, body: dict[str, Any]) -> list[tuple[bytes, bool]]:
        ps = pieces(k.text, k.chunks)
        inc = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-fake" + fake.next_id(), "object": "chat.completion.chunk", "created": 1763800000,
                "model": model, "system_fingerprint": "fp_fake", "service_tier": "default"}

        def mk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            o = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
            if inc:
                o["usage"] = None
            return sse(o)

        ev = [(mk({"role": "assistant", "content": "", "refusal": None}), False)]
        ev += [(mk({"content": p}), True) for p in ps]
        finish = "stop"
        if k.tool:
            finish = "tool_calls"
            ev.append((mk({"tool_calls": [{"index": 0, "id": "call_fake1", "type": "function",
                                           "function": {"name": k.tool, "arguments": ""}}]}), False))
            ev.append((mk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]}), False))
        ev.append((mk({}, finish), False))
        if inc:
            ev.append((sse(dict(base, choices=[], usage=cls.usage(k, k.out or len(ps)))), False))
        ev.append((b"data: [DONE]\n\n", False))
        return ev

    @staticmethod
    def midfail(note: str = "") -> bytes:
        return sse({"error": {"message": "The server had an error while processing your request." + note,
                              "type": "server_error", "param": None, "code": None}})


class _Gemini:
    @staticmethod
    def usage(k: Knobs, out: int) -> dict[str, Any]:
        prompt = k.inp + k.cached
        u = {"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out}
        if k.cached:
            u["cachedContentTokenCount"] = k.cached
        return u

    @classmethod
    def message(cls, fake: FakeVendor, model: str, k: Knobs) -> dict[str, Any]:
        ps = pieces(k.text, k.chunks)
        parts: list[dict[str, Any]] = [{"text": k.text}]
        if k.tool:
            parts.append({"functionCall": {"name": k.tool, "args": {"city": "Paris"}}})
        return {"candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": cls.usage(k, k.out or len(ps)), "modelVersion": model,
                "responseId": "fake" + fake.next_id()}

    @classmethod
    def events(cls, fake: FakeVendor, model: str, k: Knobs, body: dict[str, Any]) -> list[tuple[bytes, bool]]:
        """One candidate after another (``candidateCount``), each ending in its own chunk; the usage runs on."""
        ps = pieces(k.text, k.chunks)
        rid = "fake" + fake.next_id()
        n = (body.get("generationConfig") or {}).get("candidateCount") or 1
        ev = []
        for c in range(n):
            for i, p in enumerate(ps):
                last = i == len(ps) - 1
                cand: dict[str, Any] = {"content": {"parts": [{"text": p}], "role": "model"}, "index": c}
                if last:
                    cand["finishReason"] = "STOP"
                out = c * (k.out or len(ps)) + ((k.out or len(ps)) if last else i + 1)
                obj = {"candidates": [cand], "usageMetadata": cls.usage(k, out), "modelVersion": model,
                       "responseId": rid}
                ev.append((sse(obj, sep=b"\r\n\r\n"), True))
        return ev

    @staticmethod
    def midfail(note: str = "") -> bytes:
        return sse({"error": {"code": 503, "message": "The model is overloaded." + note, "status": "UNAVAILABLE"}},
                   sep=b"\r\n\r\n")


WIRES: dict[str, Any] = {"anthropic": _Anthropic, "openai": _OpenAI, "gemini": _Gemini}
