"""The Gemini surface: /v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse."""

from __future__ import annotations

import json

import requests

TEXT = "Hello from the fake upstream, one word at a time."


def gen(gateway, model, body, *, stream=False, **kw):
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return requests.post(f"{gateway.base_url}/v1beta/models/{model}:{method}", json=body, timeout=30, **kw)


def body(text):
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def data_events(raw: bytes) -> list[dict]:
    out = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                out.append(json.loads(line[5:]))
    return out


def test_gemini_passthrough_non_stream_and_stream(gateway, shared_key):
    r = gen(gateway, "gemini-3-1-pro", body("hi [fake in=20 out=6]"), headers={"x-goog-api-key": shared_key})
    assert r.status_code == 200, r.text
    cand = r.json()["candidates"][0]
    assert cand["content"]["parts"][0]["text"] == TEXT
    seen = gateway.fakes["gemini"].seen[-1]
    assert seen.path == "/v1beta/models/gemini-3-1-pro-upstream:generateContent"
    assert seen.key == "sk-up-gem-AAAA1111"
    r = gen(gateway, "gemini-3-1-pro", body("hi [fake in=20 out=6]"), stream=True, params={"key": shared_key})
    events = data_events(r.content)
    assert "".join(p.get("text", "") for e in events for c in e.get("candidates", [])
                   for p in c["content"]["parts"]) == TEXT
    assert events[-1]["usageMetadata"]["costCredits"] == 20 * 2 + 6 * 12
    assert gateway.fakes["gemini"].seen[-1].query == {"alt": ["sse"]}


def test_gemini_caller_to_anthropic_upstream(gateway, shared_key):
    r = gen(gateway, "claude-sonnet-4-6", body("hi [fake in=20 out=6]"), headers={"x-goog-api-key": shared_key})
    assert r.status_code == 200, r.text
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == TEXT
    assert r.json()["usageMetadata"]["candidatesTokenCount"] == 6
    r = gen(gateway, "claude-sonnet-4-6", body("hi"), stream=True, headers={"x-goog-api-key": shared_key})
    events = data_events(r.content)
    assert "".join(p.get("text", "") for e in events for c in e.get("candidates", [])
                   for p in c["content"]["parts"]) == TEXT


def test_gemini_errors_in_google_shape(gateway, shared_key):
    r = gen(gateway, "gemini-3-1-pro", body("hi"), headers={"x-goog-api-key": "sk-byts-wrong0000000000000000000000"})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = gen(gateway, "nope-model", body("hi"), headers={"x-goog-api-key": shared_key})
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
