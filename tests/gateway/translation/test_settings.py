"""Request settings across protocols: max tokens, stop sequences, temperature and a forced, single tool call."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.translation.callers import CALLERS, TOOLS
from tests.gateway.translation.raw import post
from tests.gateway.translation.upstreams import MODELS, camel, sent

pytestmark = pytest.mark.timeout(60)
PAIRS = [(c, u) for c in CALLERS for u in MODELS]


def settings_body(caller: str, model: str, text: str) -> dict[str, Any]:
    """Max 300 tokens, stop at END, temperature 0.5, get_time forced, no parallel calls."""
    if caller == "anthropic":
        return {"model": model, "max_tokens": 300, "stop_sequences": ["END"], "temperature": 0.5,
                "messages": [{"role": "user", "content": text}],
                "tools": [{"name": n, "description": d, "input_schema": s} for n, d, s in TOOLS],
                "tool_choice": {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True}}
    if caller == "openai":
        return {"model": model, "max_completion_tokens": 300, "stop": ["END"], "temperature": 0.5,
                "messages": [{"role": "user", "content": text}],
                "tools": [{"type": "function", "function": {"name": n, "description": d, "parameters": s}}
                          for n, d, s in TOOLS],
                "tool_choice": {"type": "function", "function": {"name": "get_time"}}, "parallel_tool_calls": False}
    if caller == "responses":  # Responses has no stop sequences
        return {"model": model, "max_output_tokens": 300, "temperature": 0.5, "input": text,
                "tools": [{"type": "function", "name": n, "description": d, "parameters": s} for n, d, s in TOOLS],
                "tool_choice": {"type": "function", "name": "get_time"}, "parallel_tool_calls": False}
    return {"contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {"maxOutputTokens": 300, "stopSequences": ["END"], "temperature": 0.5},
            "tools": [{"functionDeclarations": [{"name": n, "description": d, "parametersJsonSchema": s}
                                                for n, d, s in TOOLS]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}}


def upstream_settings(vendor: str, body: dict[str, Any]) -> dict[str, Any]:
    """The same settings read back from the upstream's native body."""
    if vendor == "anthropic":
        choice = body["tool_choice"]
        return {"max": body["max_tokens"], "stop": body.get("stop_sequences"), "temperature": body.get("temperature"),
                "tool": (choice["type"], choice.get("name")), "parallel": not choice.get("disable_parallel_tool_use")}
    if vendor == "openai":
        choice = body["tool_choice"]
        return {"max": body.get("max_completion_tokens") or body.get("max_tokens"), "stop": body.get("stop"),
                "temperature": body.get("temperature"), "tool": (choice["type"], choice["function"]["name"]),
                "parallel": body.get("parallel_tool_calls", True)}
    gen, fcc = body["generationConfig"], body["toolConfig"]["functionCallingConfig"]
    return {"max": gen["maxOutputTokens"], "stop": gen.get("stopSequences"), "temperature": gen.get("temperature"),
            "tool": (fcc["mode"], fcc.get("allowedFunctionNames")), "parallel": None}


FORCED = {"anthropic": ("tool", "get_time"), "openai": ("function", "get_time"), "gemini": ("ANY", ["get_time"])}


@pytest.mark.parametrize(("caller", "upstream"), PAIRS, ids=[f"{c}-to-{u}" for c, u in PAIRS])
def test_settings_reach_the_upstream_in_its_terms(tgw, tkey, tag, caller, upstream):
    model = MODELS[upstream]
    resp = post(tgw, tkey, caller, model, settings_body(caller, model, f"[scn text] {tag}"), stream=False)
    assert resp.status_code == 200, resp.text[:300]
    body = sent(tgw, upstream, tag)
    got = upstream_settings(upstream, camel(body) if upstream == "gemini" else body)
    assert got["max"] == 300 and got["temperature"] == 0.5 and got["tool"] == FORCED[upstream]
    assert got["stop"] == (None if caller == "responses" else ["END"])
    if upstream != "gemini":  # Gemini has no switch for parallel calls
        assert got["parallel"] is (caller == "gemini")
