"""Raw HTTP in each caller protocol: where the bytes on the wire are what a test checks."""

from __future__ import annotations

import json
import time
from typing import Any

import requests


def post(tgw, key: str, caller: str, model: str, body: dict[str, Any], headers: dict[str, str] | None = None,
         query: str = "", stream: bool = True) -> requests.Response:
    """POST a raw body in ``caller``'s protocol and return the (streamed) answer."""
    action = "streamGenerateContent" if stream else "generateContent"
    path = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions", "responses": "/v1/responses",
            "gemini": f"/v1beta/models/{model}:{action}"}[caller]
    auth = {"anthropic": {"x-api-key": key, "anthropic-version": "2023-06-01"},
            "gemini": {"x-goog-api-key": key}}.get(caller, {"authorization": f"Bearer {key}"})
    url = tgw.base_url + path + (query or ("?alt=sse" if caller == "gemini" and stream else ""))
    return requests.post(url, json=body, headers={**auth, **(headers or {})}, stream=True, timeout=30)


def events(resp: requests.Response) -> list[tuple[str | None, Any]]:
    """Split an event stream into (event name, JSON data or the raw text)."""
    out = []
    for block in resp.content.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            text = "\n".join(data)
            out.append((name, text if text == "[DONE]" else json.loads(text)))
    return out


def native_body(caller: str, model: str, text: str, stream: bool = True) -> dict[str, Any]:
    """The smallest one-question body of ``caller``'s protocol (Gemini's stream flag is in the URL)."""
    if caller == "anthropic":
        return {"model": model, "max_tokens": 256, "stream": stream, "messages": [{"role": "user", "content": text}]}
    if caller == "openai":
        options = {"stream_options": {"include_usage": True}} if stream else {}
        return {"model": model, "stream": stream, **options, "messages": [{"role": "user", "content": text}]}
    if caller == "responses":
        return {"model": model, "stream": stream, "input": text}
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def usage_row(tgw, resp: requests.Response, wait_s: float = 3.0) -> dict[str, Any] | None:
    """The call's usage row; a stream settles as it closes, so give that a moment to land."""
    deadline = time.monotonic() + wait_s
    while True:
        row = tgw.usage(resp.headers["x-bytespike-request-id"])
        if row is not None or time.monotonic() > deadline:
            return row
        time.sleep(0.05)
