"""A fake OpenAI media upstream on 127.0.0.1: embeddings, rerank, images, audio and the video API.

It answers in OpenAI's shapes (Cohere/Jina's for rerank), records every
request (method, path, key, JSON body or multipart fields and files), and
takes directives from the request body, e.g. ``[fake fail=500]``,
``[fake in=37]`` (usage tokens), ``[fake images=1]`` (fewer images than
asked), ``[fake duration=12.5]`` (seconds of audio), ``[fake units=3]``
(rerank search units), ``[fake nousage=1]``, ``[fake fail=400 leak=1]`` (an
error body full of key-like strings; ``leak=text`` sends it as plain text). A
video job follows
``[fake script=q,r40,c]``: each GET of the job takes the next step (``q``
queued, ``rNN`` in progress at NN %, ``c`` completed, ``f`` failed) and stays
on the last; with ``leak=1`` its failure message and its content download
carry key-like strings. Per-key failures: ``fake.fail_keys[key] = 429``. It also takes
callbacks: ``POST /callback`` is recorded in ``fake.callbacks``.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import math
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

DIRECTIVE = re.compile(rb"\[fake ([^\]]*)\]")
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
# What a careless upstream echoes back in an error: credentials in every common spelling.
LEAKS = ("key=AKIAFAKE0123", "token: tok_live_9f8e7d", "sk-live-4242abcdXYZ", "Bearer eyJhbGciOi.fake")


@dataclass
class Seen:
    method: str
    path: str
    key: str | None
    headers: dict[str, str]
    json: Any = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # name -> [(filename, size)]


def knobs(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in DIRECTIVE.finditer(raw):
        for part in m.group(1).decode().split():
            k, _, v = part.partition("=")
            out[k] = v
    return out


def parse_multipart(ctype: str, raw: bytes) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, bytes]]]]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"content-type: " + ctype.encode() + b"\r\n\r\n" + raw)
    fields: dict[str, list[str]] = {}
    files: dict[str, list[tuple[str, bytes]]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        data = part.get_payload(decode=True) or b""
        if filename is not None:
            files.setdefault(name, []).append((filename, data))
        else:
            fields.setdefault(name, []).append(data.decode())
    return fields, files


class FakeMedia:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.callbacks: list[Any] = []
        self.callback_raw: list[tuple[bytes, dict[str, str]]] = []  # body and headers, for the signature
        self.fail_keys: dict[str, int] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def root(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self.callbacks.clear()
            self.callback_raw.clear()
            self.fail_keys.clear()

    def next_id(self, prefix: str) -> str:
        with self._lock:
            self._seq += 1
            return f"{prefix}_{self._seq:06d}"

    def requests_to(self, path: str, method: str = "POST") -> list[Seen]:
        return [s for s in self.seen if s.path == path and s.method == method]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeMedia

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _read(self) -> tuple[bytes, Seen]:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        auth = headers.get("authorization", "")
        seen = Seen(self.command, urlsplit(self.path).path, auth[7:] if auth.startswith("Bearer ") else None, headers)
        ctype = headers.get("content-type", "")
        if ctype.startswith("application/json") and raw:
            seen.json = json.loads(raw)
        elif ctype.startswith("multipart/form-data"):
            fields, files = parse_multipart(ctype, raw)
            seen.fields = fields
            seen.files = {k: [(n, len(d)) for n, d in v] for k, v in files.items()}
            seen.json = {"_files": files}
        with self.owner._lock:
            self.owner.seen.append(seen)
        return raw, seen

    def do_POST(self) -> None:  # noqa: N802
        raw, seen = self._read()
        if seen.path == "/callback":
            self.owner.callbacks.append(seen.json)
            self.owner.callback_raw.append((raw, seen.headers))
            return self._json(200, {"ok": True})
        k = knobs(raw)
        status = self.owner.fail_keys.get(seen.key or "") or int(k.get("fail", 0))
        if status and k.get("leak"):
            return self._leak(status, seen, text=k["leak"] == "text")
        if status:
            return self._json(status, {"error": {"message": f"fake {status} for key {seen.key}",
                                                 "type": "server_error", "param": None, "code": None}})
        route = {"/v1/embeddings": _embeddings, "/v1/rerank": _rerank, "/v1/images/generations": _images,
                 "/v1/images/edits": _images, "/v1/audio/speech": _speech,
                 "/v1/audio/transcriptions": _transcription, "/v1/videos": _video_create}.get(seen.path)
        if route is None:
            return self._json(404, {"error": {"message": "no such route", "type": "invalid_request_error"}})
        route(self, seen, k)

    def do_GET(self) -> None:  # noqa: N802
        _, seen = self._read()
        m = re.fullmatch(r"/v1/videos/([^/]+)(/content)?", seen.path)
        job = self.owner.jobs.get(m.group(1)) if m else None
        if job is None:
            return self._json(404, {"error": {"message": "video not found", "type": "invalid_request_error"}})
        if m.group(2):
            if job.get("leak"):
                return self._leak(503, seen)
            return self._raw(200, MP4, "video/mp4")
        step = job["script"][min(job["polls"], len(job["script"]) - 1)]
        job["polls"] += 1
        self._json(200, _video_object(job, step))

    def do_DELETE(self) -> None:  # noqa: N802
        _, seen = self._read()
        vid = seen.path.rsplit("/", 1)[-1]
        if vid not in self.owner.jobs:
            return self._json(404, {"error": {"message": "video not found", "type": "invalid_request_error"}})
        self._json(200, {"id": vid, "object": "video.deleted", "deleted": True})

    def _leak(self, status: int, seen: Seen, *, text: bool = False) -> None:
        message = f"refused for {seen.key}: " + ", ".join(LEAKS)
        if text:
            return self._raw(status, message.encode(), "text/plain")
        self._json(status, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                      "code": "key=AKIAFAKE0123"}})

    def _json(self, status: int, obj: Any) -> None:
        self._raw(status, json.dumps(obj).encode(), "application/json")

    def _raw(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        if status == 429:
            self.send_header("retry-after", "1")
        self.end_headers()
        self.wfile.write(data)


def _embeddings(h: _Handler, seen: Seen, k: dict[str, str]) -> None:
    body = seen.json
    items = body["input"] if isinstance(body["input"], list) and not isinstance(body["input"][0], int) else [body["input"]]
    vec = [0.25, -0.5, 0.125]
    data = []
    for i, _ in enumerate(items):
        emb: Any = vec
        if body.get("encoding_format") == "base64":
            emb = base64.b64encode(struct.pack("<3f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    tokens = int(k.get("in", sum(len(str(x)) // 4 + 1 for x in items)))
    out: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
    if not k.get("nousage"):
        out["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    h._json(200, out)


def _rerank(h: _Handler, seen: Seen, k: dict[str, str]) -> None:
    body = seen.json
    docs = body["documents"]
    ranked = sorted(range(len(docs)), key=lambda i: -len(str(docs[i])))[: body.get("top_n") or len(docs)]
    results = []
    for rank, i in enumerate(ranked):
        r: dict[str, Any] = {"index": i, "relevance_score": round(0.9 - rank * 0.1, 3)}
        if body.get("return_documents"):
            r["document"] = {"text": docs[i] if isinstance(docs[i], str) else docs[i]["text"]}
        results.append(r)
    out: dict[str, Any] = {"id": h.owner.next_id("rerank"), "results": results, "model": body["model"]}
    if not k.get("nousage"):
        out["meta"] = {"billed_units": {"search_units": int(k.get("units", 1))}}
        out["usage"] = {"total_tokens": int(k.get("in", 100))}
    h._json(200, out)


def _images(h: _Handler, seen: Seen, k: dict[str, str]) -> None:
    n = int((seen.json or {}).get("n") or (seen.fields.get("n") or ["1"])[0])
    count = int(k.get("images", n))
    h._json(200, {"created": int(time.time()), "data": [{"b64_json": PNG_B64} for _ in range(count)],
                  "usage": {"input_tokens": 10, "output_tokens": 100, "total_tokens": 110}})


def _speech(h: _Handler, seen: Seen, k: dict[str, str]) -> None:
    fmt = seen.json.get("response_format") or "mp3"
    h._raw(200, MP3, "audio/mpeg" if fmt == "mp3" else f"audio/{fmt}")


def _transcription(h: _Handler, seen: Seen, k: dict[str, str]) -> None:
    fmt = (seen.fields.get("response_format") or ["json"])[0]
    duration = float(k.get("duration", "3.0"))
    text = "Hello from the fake transcriber."
    if fmt == "verbose_json":
        return h._json(200, {"task": "transcribe", "language": "english", "duration": duration, "text": text,
                             "segments": [{"id": 0, "start": 0.0, "end": duration, "text": text}]})
    if fmt == "text":
        return h._raw(200, (text + "\n").encode(), "text/plain; charset=utf-8")
    usage = {"type": "tokens", "input_tokens": 40, "output_tokens": 8, "total_tokens": 48}
    if k.get("usage") == "duration":
        usage = {"type": "duration", "seconds": math.ceil(duration)}
    h._json(200, {"text": text, "usage": usage})


def _video_create(h: _Handler, seen: Seen, k: dict[str, str]) -> None:
    body = seen.json or {}
    vid = h.owner.next_id("video")
    script = (k.get("script") or "q,r50,c").split(",")
    job = {"id": vid, "model": body.get("model"), "seconds": str(body.get("seconds") or "4"),
           "size": body.get("size") or "720x1280", "script": script, "polls": 0, "created_at": int(time.time()),
           "leak": f"refused for {seen.key}: " + ", ".join(LEAKS) if k.get("leak") else ""}
    h.owner.jobs[vid] = job
    h._json(200, _video_object(job, "q"))


def _video_object(job: dict[str, Any], step: str) -> dict[str, Any]:
    status, progress = {"q": ("queued", 0), "c": ("completed", 100), "f": ("failed", 0)}.get(step[:1], ("", 0))
    if step.startswith("r"):
        status, progress = "in_progress", int(step[1:] or 0)
    obj: dict[str, Any] = {"id": job["id"], "object": "video", "model": job["model"], "status": status,
                           "progress": progress, "created_at": job["created_at"], "seconds": job["seconds"],
                           "size": job["size"], "quality": "standard", "remixed_from_video_id": None,
                           "expires_at": None, "completed_at": None, "error": None}
    if status == "completed":
        obj["completed_at"] = job["created_at"] + 30
    if status == "failed":
        obj["error"] = {"code": "video_generation_failed", "message": job.get("leak") or "The render failed."}
    return obj
