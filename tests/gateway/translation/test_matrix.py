"""Every caller protocol against every upstream protocol, through the official SDKs, stream and not.

Callers: Anthropic (``anthropic``), OpenAI Chat and Responses (``openai``), Gemini
(``google-genai``). Upstreams: scripted fake Anthropic, OpenAI and Gemini servers.
Each cell runs a scenario both ways and checks that the SDK's stream helper
assembles what the non-stream call returns, that stop reasons and usage (cache
buckets included) arrive in the caller's own terms, and that what reached the
upstream is that vendor's native form.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.protocols.gemini.parts import DUMMY_SIGNATURE
from tests.gateway.translation.callers import CALLERS, IMAGE_URL, PNG_B64, Caller, Outcome, Results, User
from tests.gateway.translation.upstreams import (
    ANT_SIGNATURE,
    CALL_IDS,
    CALLS,
    GEMINI_SIGNATURE,
    MODELS,
    SCRIPTS,
    TEXT,
    THOUGHT,
    camel,
    sent,
    usage_for,
)

PAIRS = [(c, u) for c in CALLERS for u in MODELS]
IDS = [f"{c}-to-{u}" for c, u in PAIRS]
AFTER = "It is 18C and sunny; the time is 14:00."

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def callers(tgw, tkey) -> dict[str, Caller]:
    return {name: cls(tgw.base_url, tkey) for name, cls in CALLERS.items()}


def expected_usage(caller: str, upstream: str, scenario: str) -> tuple[int, ...]:
    """The usage the caller must see, in its own protocol's terms, for what the upstream reported."""
    u = usage_for(upstream, SCRIPTS[scenario])
    prompt = u.inp + u.cache_read + u.cache_write
    return {"anthropic": (u.inp, u.cache_read, u.cache_write, u.out), "openai": (prompt, u.cache_read, u.out),
            "responses": (prompt, u.cache_read, u.out), "gemini": (prompt, u.cache_read, prompt + u.out)}[caller]


def expected_stop(caller: str, stop: str) -> str:
    """Stop reasons per protocol-translation.md section 3 and the Responses/Gemini rules."""
    return {
        "anthropic": stop,
        "openai": {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length",
                   "refusal": "content_filter"}[stop],
        "responses": {"max_tokens": "incomplete:max_output_tokens",
                      "refusal": "incomplete:content_filter"}.get(stop, "completed"),
        "gemini": {"max_tokens": "MAX_TOKENS", "refusal": "SAFETY"}.get(stop, "STOP"),
    }[caller]


def both(c: Caller, model: str, turns: list[Any], **kw: Any) -> tuple[Outcome, Outcome]:
    return c.call(model, turns, stream=False, **kw), c.call(model, turns, stream=True, **kw)


# --- plain text -----------------------------------------------------------------------------


@pytest.mark.parametrize(("caller", "upstream"), PAIRS, ids=IDS)
def test_plain_text(callers, caller, upstream, tag):
    plain, streamed = both(callers[caller], MODELS[upstream], [User(f"[scn text] {tag} weather in Paris?")])
    assert plain.text == TEXT
    assert plain.stop == expected_stop(caller, "end_turn")
    assert plain.usage == expected_usage(caller, upstream, "text")
    assert not plain.calls and not plain.thinking
    assert streamed.same_answer() == plain.same_answer()


@pytest.mark.parametrize("scenario", ["maxed", "refused"])
@pytest.mark.parametrize(("caller", "upstream"), PAIRS, ids=IDS)
def test_stop_reasons_map(callers, caller, upstream, scenario, tag):
    plain, streamed = both(callers[caller], MODELS[upstream], [User(f"[scn {scenario}] {tag} weather?")])
    assert plain.text == SCRIPTS[scenario].blocks[0].text
    assert plain.stop == expected_stop(caller, SCRIPTS[scenario].stop)
    assert plain.usage == expected_usage(caller, upstream, scenario)
    assert (streamed.text, streamed.stop) == (plain.text, plain.stop)
    if streamed.usage:  # the Chat Completions helper raises on "length" before the usage chunk
        assert streamed.usage == plain.usage


# --- two parallel tool calls, then their results ---------------------------------------------


def upstream_history(vendor: str, body: dict[str, Any]) -> tuple[str, list[tuple], list[tuple], str | None]:
    """(assistant text, calls, results, first call's signature) from the upstream's native history."""
    if vendor == "anthropic":
        turns = body["messages"]
        i = next(n for n, m in enumerate(turns) if m["role"] == "assistant")
        blocks = turns[i]["content"]
        calls = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        results = [(b["tool_use_id"], b["content"] if isinstance(b["content"], str)
                    else "".join(x["text"] for x in b["content"]))
                   for b in turns[i + 1]["content"] if b["type"] == "tool_result"]
        return text, calls, results, None
    if vendor == "openai":
        turns = body["messages"]
        i = next(n for n, m in enumerate(turns) if m["role"] == "assistant")
        calls = [(t["id"], t["function"]["name"], json.loads(t["function"]["arguments"]))
                 for t in turns[i]["tool_calls"]]
        results = [(m["tool_call_id"], m["content"]) for m in turns[i + 1:] if m["role"] == "tool"]
        return turns[i].get("content") or "", calls, results, None
    turns = body["contents"]
    i = next(n for n, m in enumerate(turns) if m["role"] == "model")
    parts = turns[i]["parts"]
    fc = [p for p in parts if "functionCall" in p]
    calls = [(p["functionCall"].get("id"), p["functionCall"]["name"], p["functionCall"]["args"]) for p in fc]
    results = [(p["functionResponse"]["name"], p["functionResponse"]["response"])
               for p in turns[i + 1]["parts"] if "functionResponse" in p]
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    return text, calls, results, fc[0].get("thoughtSignature")


@pytest.mark.parametrize(("caller", "upstream"), PAIRS, ids=IDS)
def test_parallel_tool_calls_round_trip(tgw, callers, caller, upstream, tag):
    c = callers[caller]
    answers = []
    for stream in (False, True):
        mark = f"{tag}s{int(stream)}"
        user = User(f"[scn tools] {mark} weather and time in Paris?")
        first = c.call(MODELS[upstream], [user], stream=stream, tools=True)
        answers.append(first)
        assert first.text == "Checking both."
        assert [x[1:] for x in first.calls] == [(n, a) for n, a in CALLS]
        ids = [x[0] for x in first.calls]
        if (caller, upstream) == ("gemini", "gemini"):
            assert ids == ["", ""]  # Gemini itself gives no call ids; passed through as they came
        else:
            assert all(ids) and len(set(ids)) == 2
        if upstream in CALL_IDS:
            assert tuple(ids) == CALL_IDS[upstream]
        assert first.stop == expected_stop(caller, "tool_use")
        assert first.usage == expected_usage(caller, upstream, "tools")

        results = Results(((ids[0], "get_weather", "18C sunny [scn after]"), (ids[1], "get_time", "14:00")))
        second = c.call(MODELS[upstream], [user, first, results], stream=stream, tools=True)
        assert second.text == AFTER
        assert second.stop == expected_stop(caller, "end_turn")

        text, calls, got, signature = upstream_history(upstream, sent(tgw, upstream, mark, "[scn after]"))
        assert text == "Checking both."
        assert [(n, a) for _, n, a in calls] == [(n, a) for n, a in CALLS]
        if upstream == "gemini":
            assert got == [("get_weather", {"content": "18C sunny [scn after]"}), ("get_time", {"content": "14:00"})]
            assert signature == (GEMINI_SIGNATURE if caller == "gemini" else DUMMY_SIGNATURE)
            assert all(i is None for i, _, _ in calls)  # Gemini takes no call ids
        else:
            assert [i for i, _, _ in calls] == ids
            assert got == [(ids[0], "18C sunny [scn after]"), (ids[1], "14:00")]
    assert answers[1].same_answer() == answers[0].same_answer()


# --- images ----------------------------------------------------------------------------------


def upstream_images(vendor: str, body: dict[str, Any]) -> list[Any]:
    if vendor == "anthropic":
        return [b["source"] for b in body["messages"][-1]["content"] if b["type"] == "image"]
    if vendor == "openai":
        return [p["image_url"]["url"] for p in body["messages"][-1]["content"] if p["type"] == "image_url"]
    return [p.get("inlineData") or p.get("fileData") for p in body["contents"][-1]["parts"] if "text" not in p]


NATIVE_IMAGES = {
    "anthropic": [{"type": "base64", "media_type": "image/png", "data": PNG_B64}, {"type": "url", "url": IMAGE_URL}],
    "openai": [f"data:image/png;base64,{PNG_B64}", IMAGE_URL],
    "gemini": [{"mimeType": "image/png", "data": PNG_B64}, {"mimeType": "image/png", "fileUri": IMAGE_URL}],
}


@pytest.mark.parametrize(("caller", "upstream"), PAIRS, ids=IDS)
def test_images_arrive_in_the_upstream_native_form(tgw, callers, caller, upstream, tag):
    for stream in (False, True):
        mark = f"{tag}s{int(stream)}"
        out = callers[caller].call(MODELS[upstream], [User(f"[scn text] {mark} what is this?", image_b64=True,
                                                           image_url=True)], stream=stream)
        assert out.text == TEXT
        assert upstream_images(upstream, sent(tgw, upstream, mark)) == NATIVE_IMAGES[upstream]


# --- thinking ------------------------------------------------------------------------------


def expected_signature(caller: str, upstream: str) -> str | None:
    if caller == "anthropic":
        return ANT_SIGNATURE if upstream == "anthropic" else ""
    if caller == "responses" and upstream == "anthropic":
        return "bsk1.anthropic." + ANT_SIGNATURE
    return None


@pytest.mark.parametrize("scenario", ["think", "thinktools"])
@pytest.mark.parametrize(("caller", "upstream"), PAIRS, ids=IDS)
def test_thinking_surfaces_in_the_caller_native_form(tgw, callers, caller, upstream, scenario, tag):
    plain, streamed = both(callers[caller], MODELS[upstream], [User(f"[scn {scenario}] {tag} weather?")],
                           thinking=True, tools=scenario == "thinktools")
    script = SCRIPTS[scenario]
    assert plain.text == (TEXT if scenario == "think" else "")
    assert [c[1:] for c in plain.calls] == ([] if scenario == "think" else [(n, a) for n, a in CALLS])
    assert plain.thinking == THOUGHT
    assert plain.signature == expected_signature(caller, upstream)
    assert plain.stop == expected_stop(caller, script.stop)
    assert plain.usage == expected_usage(caller, upstream, scenario)
    assert streamed.same_answer() == plain.same_answer()
    for body in [camel(s.body) if upstream == "gemini" else s.body for s in tgw.fakes[upstream].find(tag)]:
        if upstream == "anthropic":
            assert body["thinking"]["type"] == "enabled" and body["thinking"]["budget_tokens"] >= 1024
        elif upstream == "openai":
            assert body["reasoning_effort"] in ("low", "medium")
        else:
            assert body["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
