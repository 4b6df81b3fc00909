"""The rest of the /v1 surface: streaming cadence, headers, count_tokens, models, limits, secrets."""

from __future__ import annotations

import json
import time

import requests

from tests.gateway.conftest import UPSTREAM_KEYS


def test_stream_is_forwarded_chunk_by_chunk(gateway, shared_key):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "hi [fake gap=0.3 chunks=6]"}]}
    t0 = time.perf_counter()
    r = requests.post(gateway.base_url + "/v1/messages", json=body, headers={"x-api-key": shared_key},
                      stream=True, timeout=30)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-accel-buffering"] == "no" and r.headers["cache-control"] == "no-cache"
    assert r.headers["x-bytespike-request-id"] and "x-ratelimit-remaining" in r.headers
    first_text = None
    raw = b""
    while True:
        data = r.raw.read1(65536)
        if not data:
            break
        raw += data
        if first_text is None and b"text_delta" in raw:
            first_text = time.perf_counter() - t0
    total = time.perf_counter() - t0
    assert raw.rstrip().endswith(b'data: {"type":"message_stop"}')
    # Five text chunks 0.3 s apart: the first must reach the client long before the last is written.
    assert total >= 1.15 and first_text < total - 0.9


def test_every_v1_response_carries_the_headers(gateway, shared_key):
    cases = [
        ("post", "/v1/messages", {"x-api-key": "sk-byts-wrong-key-000000000000000000000"}, {"model": "x"}, 401),
        ("post", "/v1/messages", {"x-api-key": shared_key},
         {"model": "nope-model", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, 404),
        ("post", "/v1/chat/completions", {"authorization": f"Bearer {shared_key}"},
         {"model": "gpt-5-4", "messages": [{"role": "user", "content": "hi"}]}, 200),
    ]
    for method, path, headers, body, status in cases:
        r = getattr(requests, method)(gateway.base_url + path, json=body, headers=headers, timeout=30)
        assert r.status_code == status, r.text
        for h in ("x-bytespike-request-id", "x-bytespike-estimated-credits", "x-bytespike-cost-credits",
                  "x-bytespike-cost-usd", "x-bytespike-overhead-ms"):
            assert h in r.headers, (path, h)
        if status != 401:
            assert "x-org-quota-remaining-credits" in r.headers
    assert r.headers["x-bytespike-provider"] == "openai"


def test_x_api_key_wins_over_bearer_and_query_is_ignored(gateway, shared_key):
    r = requests.post(gateway.base_url + "/v1/messages?beta=true", timeout=30,
                      headers={"x-api-key": shared_key, "authorization": "Bearer sk-byts-bogus"},
                      json={"model": "bytespike-echo", "max_tokens": 20, "messages": [{"role": "user", "content": "yo"}]})
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "yo"


def test_anthropic_version_and_beta_forwarded_hop_headers_not(gateway, shared_key):
    r = requests.post(gateway.base_url + "/v1/messages", timeout=30, json={
        "model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {shared_key}", "anthropic-version": "2026-10-21",
                 "anthropic-beta": "context-management-2025-06-27", "x-stainless-os": "Linux",
                 "accept-encoding": "gzip, br, zstd", "x-app": "cli"})
    assert r.status_code == 200
    seen = gateway.fakes["anthropic"].seen[-1].headers
    assert seen["anthropic-version"] == "2026-10-21"
    assert seen["anthropic-beta"] == "context-management-2025-06-27"
    assert "x-stainless-os" not in seen and "x-app" not in seen and "zstd" not in seen.get("accept-encoding", "")
    assert shared_key not in json.dumps(seen)


def test_count_tokens_is_local_and_free(gateway, shared_key):
    r = requests.post(gateway.base_url + "/v1/messages/count_tokens?beta=true", timeout=30,
                      headers={"x-api-key": shared_key},
                      json={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hello " * 30}]})
    assert r.status_code == 200 and r.json()["input_tokens"] > 10
    assert gateway.fakes["anthropic"].seen == []
    r = requests.post(gateway.base_url + "/v1/messages/count_tokens", timeout=30, headers={"x-api-key": shared_key},
                      json={"model": "nope", "messages": []})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_models_lists_what_the_key_may_call(gateway, shared_key):
    r = requests.get(gateway.base_url + "/v1/models", headers={"authorization": f"Bearer {shared_key}"}, timeout=30)
    assert r.status_code == 200
    body = r.json()
    ids = {m["id"] for m in body["data"]}
    assert body["object"] == "list"
    assert {"claude-sonnet-4-6", "gpt-5-4", "bytespike-echo"} <= ids
    m = next(m for m in body["data"] if m["id"] == "claude-sonnet-4-6")
    assert m["type"] == "model" and m["owned_by"] == "anthropic" and m["kind"] == "chat"
    assert m["pricing_url"] == "/en/models/claude-sonnet-4-6/" and m["context_window"] and m["display_name"]
    r = requests.get(gateway.base_url + "/v1/models?family=" + m["family"], timeout=30,
                     headers={"x-api-key": shared_key})
    assert {x["family"] for x in r.json()["data"]} == {m["family"]}
    assert requests.get(gateway.base_url + "/v1/models", timeout=30).status_code == 401


def test_body_over_32mb_is_413_in_caller_shape(gateway, shared_key):
    big = b'{"model":"gpt-5-4","messages":[{"role":"user","content":"' + b"a" * (33 * 1024 * 1024) + b'"}]}'
    try:
        r = requests.post(gateway.base_url + "/v1/chat/completions", data=big, timeout=60,
                          headers={"authorization": f"Bearer {shared_key}", "content-type": "application/json"})
    except requests.ConnectionError:  # the server may close while the client is still sending
        return
    assert r.status_code == 413 and "error" in r.json()


def _raw_post(gateway, key: str, head_extra: bytes, body: bytes, *, close_early: bool = False) -> bytes:
    """A hand-written request on a socket (what no client library sends); the answer's bytes."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(gateway.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
                     + head_extra + b"\r\n" + body)
        if close_early:
            sock.shutdown(socket.SHUT_WR)  # the body ends before its declared length
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_body_shorter_than_its_length_or_an_odd_length_is_refused_not_served(gateway, shared_key):
    body = b'{"model":"gpt-5-4","messages":[{"role":"user","content":"hi"}]}'
    short = _raw_post(gateway, shared_key, b"Content-Length: %d\r\n" % (len(body) + 40), body, close_early=True)
    assert short.startswith(b"HTTP/1.1 400") and b"Content-Length" in short
    odd = _raw_post(gateway, shared_key, "Content-Length: \u00b2\r\n".encode("latin-1"), body)
    assert odd.split(b" ", 2)[1] in (b"400", b"411", b"413")  # refused by the server or the gateway, never a 500


def test_head_root_does_not_error(gateway):
    assert requests.head(gateway.base_url + "/", timeout=30).status_code < 400


def test_no_upstream_key_in_responses_or_logs(gateway, shared_key):
    ant = gateway.fakes["anthropic"]
    ant.set(fail=401)  # the fake's error message quotes the upstream key
    r = requests.post(gateway.base_url + "/v1/messages", headers={"x-api-key": shared_key}, timeout=30,
                      json={"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code >= 400
    ant.set(fail=0, drop=1)
    r2 = requests.post(gateway.base_url + "/v1/chat/completions", headers={"authorization": f"Bearer {shared_key}"},
                       timeout=30, json={"model": "claude-sonnet-4-6", "stream": True,
                                         "messages": [{"role": "user", "content": "x"}]})
    gateway.fakes["openai"].set(fail=429)
    r3 = requests.post(gateway.base_url + "/v1/messages", headers={"x-api-key": shared_key}, timeout=30,
                       json={"model": "gpt-5-4", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    texts = [r.text + str(r.headers), r2.text + str(r2.headers), r3.text + str(r3.headers), gateway.log_text()]
    for key in (k for pool in UPSTREAM_KEYS.values() for k in pool):
        for text in texts:
            assert key not in text
    assert "Traceback" not in r.text + r2.text + r3.text
