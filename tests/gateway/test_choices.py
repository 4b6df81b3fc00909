"""Several choices: OpenAI n and Gemini candidateCount, native where the upstream speaks the caller's protocol,
fanned out into parallel upstream calls elsewhere; billed for every choice, free when a branch fails."""

from __future__ import annotations

import json

import openai
import pytest
import requests

from tests.gateway.test_failure_policy import TEXT, cost


def oai(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def data_events(raw: bytes) -> list[dict]:
    out = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
                out.append(json.loads(line[5:]))
    return out


def test_n2_native_on_openai_upstream(gateway):
    key = gateway.account(credits=10_000_000)
    before = gateway.wallet(key)[0]
    raw = oai(gateway, key).chat.completions.with_raw_response.create(
        model="gpt-5-4", n=2, messages=[{"role": "user", "content": "hi [fake in=10 out=5]"}])
    resp = raw.parse()
    assert len(gateway.fakes["openai"].seen) == 1 and gateway.fakes["openai"].seen[-1].body["n"] == 2
    assert [c.index for c in resp.choices] == [0, 1] and all(c.message.content == TEXT for c in resp.choices)
    assert resp.usage.completion_tokens == 10  # the vendor counts every choice
    charged = int(raw.headers["x-bytespike-cost-credits"])
    assert charged == cost("gpt-5-4", inp=10, out=10) and gateway.wallet(key)[0] == before - charged


def test_n2_native_stream_reaches_openai_upstream(gateway, shared_key):
    stream = oai(gateway, shared_key).chat.completions.create(
        model="gpt-5-4", n=2, stream=True, messages=[{"role": "user", "content": "hi"}])
    text = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    assert text == TEXT and gateway.fakes["openai"].seen[-1].body["n"] == 2


def test_n2_fanned_out_to_anthropic_upstream(gateway):
    key = gateway.account(credits=10_000_000)
    before = gateway.wallet(key)[0]
    raw = oai(gateway, key).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-6", n=2, messages=[{"role": "user", "content": "hi [fake in=10 out=5]"}])
    resp = raw.parse()
    seen = gateway.fakes["anthropic"].seen
    assert len(seen) == 2 and all("n" not in s.body for s in seen)
    assert [c.index for c in resp.choices] == [0, 1] and all(c.message.content == TEXT for c in resp.choices)
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (20, 10)  # the sum of both calls
    charged = int(raw.headers["x-bytespike-cost-credits"])
    assert charged == cost("claude-sonnet-4-6", inp=20, out=10)
    assert gateway.wallet(key) == (before - charged, 0)
    assert gateway.usage(raw.headers["x-bytespike-request-id"])["output_tokens"] == 10


def test_n2_fanned_out_stream_interleaves_by_index(gateway):
    key = gateway.account(credits=10_000_000)
    before = gateway.wallet(key)[0]
    stream = oai(gateway, key).chat.completions.create(
        model="claude-sonnet-4-6", n=2, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi [fake in=10 out=5 gap=0.01]"}])
    texts: dict[int, str] = {0: "", 1: ""}
    ids, usage, finishes = set(), None, {}
    for ch in stream:
        ids.add(ch.id)
        if ch.usage is not None:
            usage = ch.usage
        for c in ch.choices:
            texts[c.index] += c.delta.content or ""
            if c.finish_reason:
                finishes[c.index] = c.finish_reason
    assert texts == {0: TEXT, 1: TEXT} and finishes == {0: "stop", 1: "stop"} and len(ids) == 1
    assert (usage.prompt_tokens, usage.completion_tokens) == (20, 10)
    expected = cost("claude-sonnet-4-6", inp=20, out=10)
    assert usage.model_extra["cost_credits"] == expected
    assert gateway.wallet(key) == (before - expected, 0)
    assert len(gateway.fakes["anthropic"].seen) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_branch_fails_the_call_free(gateway, stream):
    key = gateway.account(credits=10_000_000)
    before = gateway.wallet(key)
    gateway.fakes["anthropic"].budget = 1  # the first branch is answered, the second refused
    with pytest.raises(openai.BadRequestError):
        out = oai(gateway, key).chat.completions.create(
            model="claude-sonnet-4-6", n=2, stream=stream, messages=[{"role": "user", "content": "hi"}])
        list(out) if stream else None
    assert gateway.wallet(key) == before


def test_a_branch_breaking_mid_stream_fails_the_call_free(gateway):
    key = gateway.account(credits=10_000_000)
    before = gateway.wallet(key)
    with pytest.raises(openai.APIError):
        list(oai(gateway, key).chat.completions.create(
            model="claude-sonnet-4-6", n=2, stream=True, messages=[{"role": "user", "content": "hi [fake midfail=2]"}]))
    assert gateway.wallet(key) == before


def _candidate_texts(events: list[dict]) -> dict[int, str]:
    """Each Gemini candidate's text, joined over a stream's chunks."""
    texts: dict[int, str] = {}
    for e in events:
        for c in e.get("candidates", []):
            texts[c["index"]] = texts.get(c["index"], "") + "".join(p.get("text", "") for p in c["content"]["parts"])
    return texts


def _gen(gateway, key, model, text, *, stream=False):
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}], "generationConfig": {"candidateCount": 2}}
    return requests.post(f"{gateway.base_url}/v1beta/models/{model}:{method}", json=body,
                         headers={"x-goog-api-key": key}, timeout=60)


def test_candidate_count_native_on_gemini_upstream(gateway):
    key = gateway.account(credits=10_000_000)
    before = gateway.wallet(key)[0]
    r = _gen(gateway, key, "gemini-3-1-pro", "hi [fake in=10 out=5]")
    assert r.status_code == 200, r.text
    assert [c["index"] for c in r.json()["candidates"]] == [0, 1]
    assert gateway.fakes["gemini"].seen[-1].body["generationConfig"]["candidateCount"] == 2
    charged = int(r.headers["x-bytespike-cost-credits"])
    assert charged == cost("gemini-3-1-pro", inp=10, out=10) and gateway.wallet(key)[0] == before - charged


def test_candidate_count_native_stream_is_billed_for_every_candidate(gateway):
    """Gemini streams the candidates one after another, each ending in its own chunk: the call ends with the last."""
    key = gateway.account(credits=10_000_000)
    before = gateway.wallet(key)[0]
    r = _gen(gateway, key, "gemini-3-1-pro", "hi [fake in=10 out=5]", stream=True)
    assert r.status_code == 200, r.text
    events = data_events(r.content)
    assert _candidate_texts(events) == {0: TEXT, 1: TEXT}
    expected = cost("gemini-3-1-pro", inp=10, out=10)
    assert events[-1]["usageMetadata"]["costCredits"] == expected
    assert [e["usageMetadata"].get("costCredits") for e in events[:-1]] == [None] * (len(events) - 1)
    assert gateway.wallet(key) == (before - expected, 0)


@pytest.mark.parametrize("stream", [False, True])
def test_candidate_count_fanned_out_to_openai_upstream(gateway, stream):
    key = gateway.account(credits=10_000_000)
    before = gateway.wallet(key)[0]
    r = _gen(gateway, key, "gpt-5-4", "hi [fake in=10 out=5]", stream=stream)
    assert r.status_code == 200, r.text
    seen = gateway.fakes["openai"].seen
    assert len(seen) == 2 and all("n" not in s.body for s in seen)
    expected = cost("gpt-5-4", inp=20, out=10)  # the cost of the summed usage
    if stream:
        events = data_events(r.content)
        assert _candidate_texts(events) == {0: TEXT, 1: TEXT}
        assert events[-1]["usageMetadata"]["costCredits"] == expected
        assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 10
    else:
        cands = r.json()["candidates"]
        assert [c["index"] for c in cands] == [0, 1] and all(c["content"]["parts"][0]["text"] == TEXT for c in cands)
        assert r.json()["usageMetadata"]["promptTokenCount"] == 20
        assert int(r.headers["x-bytespike-cost-credits"]) == expected
    assert gateway.wallet(key) == (before - expected, 0)


def test_candidate_count_via_google_genai_sdk(gateway, shared_key):
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    client = genai.Client(api_key=shared_key, http_options=types.HttpOptions(base_url=gateway.base_url,
                                                                            api_version="v1beta"))
    resp = client.models.generate_content(model="claude-sonnet-4-6", contents="hi",
                                          config=types.GenerateContentConfig(candidate_count=2))
    assert [c.content.parts[0].text for c in resp.candidates] == [TEXT, TEXT]
    assert [c.index for c in resp.candidates] == [0, 1]


def test_fanned_out_choices_reserve_the_input_once_per_choice(gateway, shared_key):
    def estimate(model: str, n: int) -> int:
        r = requests.post(f"{gateway.base_url}/v1/chat/completions", timeout=60,
                          headers={"Authorization": f"Bearer {shared_key}", "x-bytespike-dry-run": "1"},
                          json={"model": model, "n": n, "max_tokens": 100,
                                "messages": [{"role": "user", "content": "hello " * 400}]})
        assert r.status_code == 200, r.text
        return int(r.json()["estimated_credits"])

    assert estimate("claude-sonnet-4-6", 2) >= 2 * estimate("claude-sonnet-4-6", 1) - 1  # fanned out: all twice
    assert estimate("gpt-5-4", 2) < 2 * estimate("gpt-5-4", 1) - 1  # native: the input is read once
