"""Scripted fake vendors: each answers a scenario named in the prompt, on its own wire format.

A request body holding ``[scn NAME]`` gets scenario ``NAME`` (``text`` when none
is named). A scenario is vendor-neutral (thinking, text and tool calls, a stop
reason, usage); each vendor writes it the way that vendor does, as JSON or as
a chunked event stream with one event per write. Every request is recorded
with its headers and body so a test can check what reached the upstream.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.gateway.fakes import WIRES as FAULTS
from tests.gateway.fakes import Seen, pieces, sse
from tests.gateway.translation.rules import camel, error_body, refusal

MARKER = re.compile(rb"\[scn ([a-z0-9_]+)\]")
GEMINI_SIGNATURE = "Z2VtaW5pLXNpZ25hdHVyZS0x"


@dataclass(frozen=True)
class Usage:
    """What the upstream reports, in canonical terms (uncached input)."""

    inp: int = 20
    cache_read: int = 6
    cache_write: int = 0
    out: int = 9
    reasoning: int = 0


@dataclass(frozen=True)
class Block:
    kind: str  # thinking | text | tool | search (a web search the vendor runs: ``text`` is the query)
    text: str = ""
    id: str = ""
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    cited: bool = False  # text resting on the script's search result (Anthropic citations, Gemini supports)


@dataclass(frozen=True)
class Script:
    blocks: tuple[Block, ...]
    stop: str = "end_turn"  # canonical stop reason
    midfail: bool = False  # a vendor error event after the first text piece
    no_usage: bool = False  # an OpenAI-compatible vendor that reports no usage at all
    partial: bool = False  # Gemini streams each call's arguments in pieces (Vertex partialArgs)


TEXT = "Sunny and mild in Paris today."
THOUGHT = "The user wants Paris weather; answer briefly."
ANT_SIGNATURE = "EqQBCkYIBxgCKkBsig-anthropic-0001"
REDACTED = "RW5jcnlwdGVkLXRoaW5raW5nLWJsb2I="  # Anthropic's redacted_thinking data (others have none)
CALLS = (
    ("get_weather", {"city": "Paris"}),
    ("get_time", {"tz": "Europe/Paris"}),
)
SEARCH_QUERY = "ByteSpike launch"
SEARCH_TEXT = "ByteSpike launched yesterday."
SEARCH_HIT = ("https://news.example/bytespike", "ByteSpike launches")
PATCH = '*** Begin Patch\n*** Update File: "café.py"\n+print("😀")\n*** End Patch'
CALL_IDS = {"anthropic": ("toolu_01Aweather", "toolu_01Btime"), "openai": ("call_A1weather", "call_B2time")}

SCRIPTS: dict[str, Script] = {
    "text": Script((Block("text", TEXT),)),
    "think": Script((Block("thinking", THOUGHT), Block("text", TEXT))),
    "tools": Script(
        (Block("text", "Checking both."),) + tuple(Block("tool", name=n, args=a) for n, a in CALLS),
        stop="tool_use",
    ),
    "thinktools": Script(
        (Block("thinking", THOUGHT),) + tuple(Block("tool", name=n, args=a) for n, a in CALLS), stop="tool_use",
    ),
    "redacted": Script(
        (Block("thinking", THOUGHT), Block("redacted")) + tuple(Block("tool", name=n, args=a) for n, a in CALLS),
        stop="tool_use",
    ),
    "after": Script((Block("text", "It is 18C and sunny; the time is 14:00."),)),
    "midfail": Script((Block("text", TEXT),), midfail=True),
    "nousage": Script((Block("text", TEXT),), no_usage=True),
    # A call to the first tool the request declares, by the name the upstream was given.
    "echotool": Script((Block("tool", name="", args={"path": "/src/app.py"}),), stop="tool_use"),
    "maxed": Script((Block("text", "Sunny and"),), stop="max_tokens"),
    "search": Script((Block("search", SEARCH_QUERY), Block("text", SEARCH_TEXT, cited=True))),
    # A call to the first tool the request declares (a custom tool: its one string ``input``).
    "customtool": Script((Block("tool", name="", args={"input": PATCH}),), stop="tool_use"),
    "partialtools": Script(
        (Block("text", "Checking both."),) + tuple(Block("tool", name=n, args=a) for n, a in CALLS),
        stop="tool_use", partial=True,
    ),
    "refused": Script((Block("text", "I cannot help with that."),), stop="refusal"),
}


def usage_for(vendor: str, script: Script) -> Usage:
    """Anthropic reports cache writes too; the others only cache reads."""
    thinking = any(b.kind == "thinking" for b in script.blocks)
    return Usage(cache_write=4 if vendor == "anthropic" else 0, reasoning=4 if thinking and vendor != "anthropic" else 0)


def script_of(raw: bytes, vendor: str, body: dict[str, Any]) -> Script:
    names = MARKER.findall(raw)
    script = SCRIPTS[names[-1].decode()] if names else SCRIPTS["text"]
    if script in (SCRIPTS["echotool"], SCRIPTS["customtool"]):
        tool = body["tools"][0]
        name = {"anthropic": lambda: tool["name"], "openai": lambda: tool["function"]["name"],
                "gemini": lambda: camel(tool)["functionDeclarations"][0]["name"]}[vendor]()
        script = Script((Block("tool", name=name, args=script.blocks[0].args),), stop="tool_use")
    return script


# --- Anthropic ---------------------------------------------------------------------------


def _ant_usage(u: Usage, out: int) -> dict[str, Any]:
    return {"input_tokens": u.inp, "cache_creation_input_tokens": u.cache_write,
            "cache_read_input_tokens": u.cache_read, "output_tokens": out}


def _ant_blocks(script: Script) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    calls = iter(CALL_IDS["anthropic"])
    for b in script.blocks:
        if b.kind == "thinking":
            out.append({"type": "thinking", "thinking": b.text, "signature": ANT_SIGNATURE})
        elif b.kind == "text":
            out.append({"type": "text", "text": b.text})
            if b.cited:
                out[-1]["citations"] = [{"type": "web_search_result_location", "url": SEARCH_HIT[0],
                                         "title": SEARCH_HIT[1], "encrypted_index": "Eo8B",
                                         "cited_text": b.text[:18]}]
        elif b.kind == "search":
            out += [{"type": "server_tool_use", "id": "srvtoolu_01A", "name": "web_search", "input": {"query": b.text}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01A",
                     "content": [{"type": "web_search_result", "url": SEARCH_HIT[0], "title": SEARCH_HIT[1],
                                  "encrypted_content": "EqAB", "page_age": "1 day"}]}]
        elif b.kind == "redacted":
            out.append({"type": "redacted_thinking", "data": REDACTED})
        else:
            out.append({"type": "tool_use", "id": next(calls), "name": b.name, "input": b.args})
    return out


def ant_message(model: str, script: Script, rid: str) -> dict[str, Any]:
    u = usage_for("anthropic", script)
    return {"id": "msg_" + rid, "type": "message", "role": "assistant", "model": model,
            "content": _ant_blocks(script), "stop_reason": script.stop, "stop_sequence": None,
            "usage": _ant_usage(u, u.out)}


def ant_events(model: str, script: Script, rid: str) -> list[bytes]:
    u = usage_for("anthropic", script)
    start = {"id": "msg_" + rid, "type": "message", "role": "assistant", "model": model, "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": _ant_usage(u, 1)}
    ev = [sse({"type": "message_start", "message": start}, "message_start"), sse({"type": "ping"}, "ping")]
    for i, block in enumerate(_ant_blocks(script)):
        def delta(d: dict[str, Any], i: int = i) -> bytes:
            return sse({"type": "content_block_delta", "index": i, "delta": d}, "content_block_delta")

        kind = block["type"]
        empty = {"thinking": {"type": "thinking", "thinking": "", "signature": ""},
                 "text": {"type": "text", "text": ""}, "redacted_thinking": block,
                 "web_search_tool_result": block}.get(kind, {**block, "input": {}})
        ev.append(sse({"type": "content_block_start", "index": i, "content_block": empty}, "content_block_start"))
        if kind == "thinking":
            ev += [delta({"type": "thinking_delta", "thinking": p}) for p in pieces(block["thinking"], 3)]
            ev.append(delta({"type": "signature_delta", "signature": block["signature"]}))
        elif kind == "text":
            ev += [delta({"type": "citations_delta", "citation": c}) for c in block.get("citations", [])]
            ev += [delta({"type": "text_delta", "text": p}) for p in pieces(block["text"], 0)]
        elif kind in ("tool_use", "server_tool_use"):
            args = json.dumps(block["input"])
            ev += [delta({"type": "input_json_delta", "partial_json": args[:7]}),
                   delta({"type": "input_json_delta", "partial_json": args[7:]})]
        ev.append(sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
    ev.append(sse({"type": "message_delta", "delta": {"stop_reason": script.stop, "stop_sequence": None},
                   "usage": {"output_tokens": u.out}}, "message_delta"))
    ev.append(sse({"type": "message_stop"}, "message_stop"))
    return ev


# --- OpenAI Chat Completions -----------------------------------------------------------------

FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}
GEMINI_FINISH = {"end_turn": "STOP", "tool_use": "STOP", "max_tokens": "MAX_TOKENS", "refusal": "SAFETY"}


def _oai_usage(u: Usage) -> dict[str, Any]:
    prompt = u.inp + u.cache_read
    return {"prompt_tokens": prompt, "completion_tokens": u.out, "total_tokens": prompt + u.out,
            "prompt_tokens_details": {"cached_tokens": u.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def oai_message(model: str, script: Script, rid: str) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    calls = iter(CALL_IDS["openai"])
    for b in script.blocks:
        if b.kind == "thinking":
            msg["reasoning_content"] = b.text
        elif b.kind == "text":
            msg["content"] = b.text
        elif b.kind == "tool":
            msg.setdefault("tool_calls", []).append(
                {"id": next(calls), "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.args)}})
    return {"id": "chatcmpl-" + rid, "object": "chat.completion", "created": 1763800000, "model": model,
            "system_fingerprint": "fp_scn", "service_tier": "default",
            "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": FINISH[script.stop]}],
            **({} if script.no_usage else {"usage": _oai_usage(usage_for("openai", script))})}


def oai_events(model: str, script: Script, rid: str, include_usage: bool) -> list[bytes]:
    include_usage = include_usage and not script.no_usage
    base = {"id": "chatcmpl-" + rid, "object": "chat.completion.chunk", "created": 1763800000, "model": model,
            "system_fingerprint": "fp_scn", "service_tier": "default"}

    def mk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        if include_usage:
            chunk["usage"] = None
        return sse(chunk)

    ev = [mk({"role": "assistant", "content": "", "refusal": None})]
    calls = iter(CALL_IDS["openai"])
    k = 0
    for b in script.blocks:
        if b.kind == "thinking":
            ev += [mk({"reasoning_content": p}) for p in pieces(b.text, 3)]
        elif b.kind == "text":
            ev += [mk({"content": p}) for p in pieces(b.text, 0)]
        elif b.kind == "tool":
            args = json.dumps(b.args)
            ev.append(mk({"tool_calls": [{"index": k, "id": next(calls), "type": "function",
                                          "function": {"name": b.name, "arguments": ""}}]}))
            ev += [mk({"tool_calls": [{"index": k, "function": {"arguments": args[:6]}}]}),
                   mk({"tool_calls": [{"index": k, "function": {"arguments": args[6:]}}]})]
            k += 1
    ev.append(mk({}, FINISH[script.stop]))
    if include_usage:
        ev.append(sse(dict(base, choices=[], usage=_oai_usage(usage_for("openai", script)))))
    ev.append(b"data: [DONE]\n\n")
    return ev


# --- Gemini ---------------------------------------------------------------------------------


def _gem_usage(u: Usage) -> dict[str, Any]:
    prompt = u.inp + u.cache_read
    meta = {"promptTokenCount": prompt, "candidatesTokenCount": u.out - u.reasoning,
            "totalTokenCount": prompt + u.out, "cachedContentTokenCount": u.cache_read}
    if u.reasoning:
        meta["thoughtsTokenCount"] = u.reasoning
    return meta


def _gem_parts(script: Script) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    signed = False
    for b in script.blocks:
        if b.kind == "thinking":
            parts.append({"text": b.text, "thought": True})
        elif b.kind == "text":
            parts.append({"text": b.text})
        elif b.kind == "tool":
            part: dict[str, Any] = {"functionCall": {"name": b.name, "args": b.args}}
            if not signed:  # Gemini 3 signs the first call of a turn
                part["thoughtSignature"] = GEMINI_SIGNATURE
                signed = True
            parts.append(part)
    return parts


def _gem_grounding(script: Script) -> dict[str, Any] | None:
    queries = [b.text for b in script.blocks if b.kind == "search"]
    cited = [b.text for b in script.blocks if b.cited]
    if not queries:
        return None
    return {"webSearchQueries": queries, "groundingChunks": [{"web": {"uri": SEARCH_HIT[0], "title": "news.example"}}],
            "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": len(t.encode()), "text": t},
                                   "groundingChunkIndices": [0]} for t in cited]}


def _gem_partial(part: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole call as Vertex streams it with streamFunctionCallArguments: name, pieces, an empty end."""
    call = part["functionCall"]
    first = {k: v for k, v in part.items() if k != "functionCall"}
    out = [{**first, "functionCall": {"name": call["name"], "willContinue": True}}]
    for key, value in call["args"].items():
        half = len(value) // 2
        out += [{"functionCall": {"partialArgs": [{"jsonPath": f"$.{key}", "stringValue": value[:half],
                                                   "willContinue": True}], "willContinue": True}},
                {"functionCall": {"partialArgs": [{"jsonPath": f"$.{key}", "stringValue": value[half:]}],
                                  "willContinue": True}}]
    return out + [{"functionCall": {}}]


def gem_message(model: str, script: Script, rid: str) -> dict[str, Any]:
    cand = {"content": {"role": "model", "parts": _gem_parts(script)}, "finishReason": GEMINI_FINISH[script.stop],
            "index": 0}
    if _gem_grounding(script) is not None:
        cand["groundingMetadata"] = _gem_grounding(script)
    return {"candidates": [cand], "usageMetadata": _gem_usage(usage_for("gemini", script)),
            "modelVersion": model, "responseId": rid}


def gem_events(model: str, script: Script, rid: str) -> list[bytes]:
    u = usage_for("gemini", script)
    chunks: list[dict[str, Any]] = []
    for part in _gem_parts(script):
        if "text" in part:
            chunks += [{**part, "text": p} for p in pieces(part["text"], 2)]
        elif script.partial and "functionCall" in part:
            chunks += _gem_partial(part)
        else:
            chunks.append(part)
    ev = []
    for i, part in enumerate(chunks):
        cand: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        meta = {"promptTokenCount": u.inp + u.cache_read, "totalTokenCount": u.inp + u.cache_read + i}
        if i == len(chunks) - 1:
            cand["finishReason"] = GEMINI_FINISH[script.stop]
            meta = _gem_usage(u)
            if _gem_grounding(script) is not None:
                cand["groundingMetadata"] = _gem_grounding(script)
        ev.append(sse({"candidates": [cand], "usageMetadata": meta, "modelVersion": model, "responseId": rid},
                      sep=b"\r\n\r\n"))
    return ev


# --- what reached a fake ------------------------------------------------------------------------

MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-5-4", "gemini": "gemini-3-1-pro"}


def sent(tgw, upstream: str, tag: str, marker: str = "") -> dict[str, Any]:
    """The body of the one request this test's ``tag`` (and ``marker``) sent to ``upstream``."""
    found = [s for s in tgw.fakes[upstream].find(tag) if marker in json.dumps(s.body)]
    assert len(found) == 1, f"{len(found)} requests with {tag} {marker} at {upstream}"
    return camel(found[0].body) if upstream == "gemini" else found[0].body


# --- the server ---------------------------------------------------------------------------------


class ScriptedVendor:
    """A fake upstream of one protocol answering scripted scenarios; ``seen`` holds every request."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        owner = self

        class Handler(_Handler):
            vendor = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}" + ("/v1" if self.vendor == "openai" else "")

    def next_id(self) -> str:
        with self._lock:
            self._seq += 1
            return f"scn{self._seq:05d}"

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def find(self, tag: str) -> list[Seen]:
        """Requests whose body mentions ``tag`` (each test puts a unique tag in its prompt)."""
        with self._lock:
            return [s for s in self.seen if tag in json.dumps(s.body)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    vendor: ScriptedVendor

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.vendor
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = json.loads(raw) if raw else None
        key = headers.get("x-api-key") or headers.get("x-goog-api-key") or headers.get("authorization", "")[7:]
        fake.record(Seen("POST", url.path, parse_qs(url.query), headers, body, key))
        vendor = fake.vendor
        script = script_of(raw, vendor, body)
        model = body.get("model") or url.path.rsplit("/", 1)[-1].split(":")[0]
        stream = bool(body.get("stream")) or url.path.endswith(":streamGenerateContent")
        rid = fake.next_id()
        problem = refusal(vendor, body)
        if problem is not None:
            return self._json(error_body(vendor, problem), status=400)
        if not stream:
            make = {"anthropic": ant_message, "openai": oai_message, "gemini": gem_message}[vendor]
            return self._json(make(model, script, rid))
        if vendor == "anthropic":
            events = ant_events(model, script, rid)
        elif vendor == "openai":
            events = oai_events(model, script, rid, bool((body.get("stream_options") or {}).get("include_usage")))
        else:
            events = gem_events(model, script, rid)
        self._stream(events, script)

    def _json(self, obj: Any, status: int = 200) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: list[bytes], script: Script) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        for data in events:
            self._chunk(data)
            if script.midfail and (b"text_delta" in data or b'"content":"Sunny' in data or b'"text":"Sunny' in data):
                self._chunk(FAULTS[self.vendor.vendor].midfail())
                break
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
