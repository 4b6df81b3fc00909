"""The estimate over HTTP: dry runs answer what a real call reserves, and nothing is fetched or sent upstream."""

from __future__ import annotations

import base64
import json
import random

import requests

from gateway import estimate as est
from tests.gateway.conftest import PRICES


def post(gateway, key, path, body, dry=True):
    h = {"x-api-key": key, "content-type": "application/json"}
    if dry:
        h["x-bytespike-dry-run"] = "1"
    return requests.post(gateway.base_url + path, data=json.dumps(body), headers=h, timeout=60)


def seen(gateway) -> int:
    return sum(len(f.seen) for f in gateway.fakes.values())


def test_dense_text_dry_run_reserves_a_token_per_byte(gateway, shared_key):
    text = base64.b64encode(random.Random(7).randbytes(225_000)).decode()  # 300,000 base64 characters
    before = seen(gateway)
    r = post(gateway, shared_key, "/v1/messages",
             {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input_tokens"] >= len(text) >= 300_000 // 3 * 3
    # Every input token at the dearer of input and cache write ($3.75 per 1M: 3.75 credits a token).
    assert body["estimated_credits"] >= body["input_tokens"] * 375 // 100
    assert seen(gateway) == before


def test_image_by_url_is_reserved_at_the_vendor_max_and_never_fetched(gateway, shared_key):
    before = seen(gateway)
    url = gateway.fakes["openai"].base_url + "/never-fetched.png"
    r = post(gateway, shared_key, "/v1/chat/completions", {"model": "gpt-5-4", "max_completion_tokens": 10,
             "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]})
    assert r.status_code == 200, r.text
    assert r.json()["input_tokens"] >= est.MEDIA["openai"].image
    assert seen(gateway) == before  # no upstream call, and the image URL was not requested either


def test_candidate_count_reserves_every_answer(gateway, shared_key):
    def dry(count: int) -> int:
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generationConfig": {"maxOutputTokens": 1000, "candidateCount": count}}
        r = post(gateway, shared_key, "/v1beta/models/gemini-3-1-pro:generateContent", body)
        assert r.status_code == 200, r.text
        return int(r.json()["estimated_credits"])

    out_price = int(PRICES["gemini-3-1-pro"]["output"].split(".")[0])  # credits per output token
    assert dry(8) - dry(1) == 7 * 1000 * out_price


def test_tools_and_system_are_counted(gateway, shared_key):
    base = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    plain = post(gateway, shared_key, "/v1/messages", base).json()["input_tokens"]
    system = "Answer in French. " * 1000
    tools = [{"name": f"t{i}", "description": "x" * 1000, "input_schema": {"type": "object"}} for i in range(5)]
    with_system = post(gateway, shared_key, "/v1/messages", {**base, "system": system}).json()["input_tokens"]
    with_tools = post(gateway, shared_key, "/v1/messages", {**base, "tools": tools}).json()["input_tokens"]
    assert with_system >= plain + len(system)
    assert with_tools >= plain + 5000 + est.TOOLS_OVERHEAD


def test_dry_run_equals_the_real_hold(gateway):
    key = gateway.account(credits=50_000_000)
    body = {"model": "claude-sonnet-4-6", "max_tokens": 300, "system": "Be brief.",
            "messages": [{"role": "user", "content": "hi [fake in=5 out=3] " + "é" * 500}]}
    dry = post(gateway, key, "/v1/messages", body)
    assert dry.status_code == 200, dry.text
    real = post(gateway, key, "/v1/messages", body, dry=False)
    assert real.status_code == 200, real.text
    assert int(real.headers["x-bytespike-estimated-credits"]) == dry.json()["estimated_credits"]
    row = gateway.usage(real.headers["x-bytespike-request-id"])
    assert row is not None and row["estimated_credits"] == dry.json()["estimated_credits"]
