"""Real clients' request shapes through every upstream protocol, and the rules of translation that bite them.

Claude Code's streaming Messages body, Codex CLI's Responses stream, a
LangChain-style stream without ``stream_options``, ``cache_control`` from an
OpenAI caller, an upstream failing mid-stream, and tool names an upstream
knows differently (cut to 64 characters, or namespaced).
Raw HTTP where the wire itself is the point; the SDKs elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.gateway.translation.callers import CALLERS
from tests.gateway.translation.raw import events, native_body, post, usage_row
from tests.gateway.translation.upstreams import CALLS, MODELS, TEXT, THOUGHT, camel, sent

pytestmark = pytest.mark.timeout(60)
UPSTREAMS = list(MODELS)
HISTORY_SIGNATURE = "EuYBCkQIBRgCIkDhistory-signature-0002"


# --- Claude Code ---------------------------------------------------------------------------------


def claude_code_body(tag: str, model: str) -> dict[str, Any]:
    """The shape Claude Code sends: long system, two dozen tools, thinking, context management, ~100 KB."""
    schema = {"type": "object", "properties": {"path": {"type": "string", "description": "Absolute path."},
                                               "limit": {"type": "integer"}}, "required": ["path"],
              "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}
    tools = [{"name": f"Tool{i:02d}", "description": f"Tool number {i}. " + "Use it carefully. " * 90,
              "input_schema": schema} for i in range(24)]
    user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "5f0c1d2e-3a4b-4c5d"})
    return {
        "model": model, "max_tokens": 32000, "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code, a command line coding tool.",
                    "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Follow the repository conventions. " * 1600,
                    "cache_control": {"type": "ephemeral"}}],
        "tools": tools,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                         {"type": "text", "text": f"{tag} list the files"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should list them.", "signature": HISTORY_SIGNATURE},
                {"type": "tool_use", "id": "toolu_01Hist", "name": "Tool00", "input": {"path": "/src"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01Hist", "content": "a.py\nb.py",
                 "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": f"[scn think] {tag} now explain"}]},
        ],
        "metadata": {"user_id": user_id},
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    }


CC_HEADERS = {"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
              "x-app": "cli", "x-stainless-lang": "js", "user-agent": "claude-cli/2.1.0 (external, cli)"}


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_claude_code_body_streams_through_every_upstream(tgw, tkey, tag, upstream):
    body = claude_code_body(tag, MODELS[upstream])
    assert len(json.dumps(body)) > 95_000
    resp = post(tgw, tkey, "anthropic", MODELS[upstream], body, CC_HEADERS, query="?beta=true")
    assert resp.status_code == 200, resp.text[:500]
    evs = events(resp)
    names = [n for n, _ in evs]
    assert names[0] == "message_start" and names[-1] == "message_stop" and "error" not in names
    deltas = [d["delta"] for n, d in evs if n == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == THOUGHT
    assert "".join(d.get("text", "") for d in deltas) == TEXT
    final = [d for n, d in evs if n == "message_delta"][-1]
    assert final["delta"]["stop_reason"] == "end_turn" and final["usage"]["output_tokens"] == 9

    seen = tgw.fakes[upstream].find(tag)
    assert len(seen) == 1
    got, text = seen[0].body, json.dumps(seen[0].body)
    assert "x-app" not in seen[0].headers and "x-stainless-lang" not in seen[0].headers
    if upstream == "anthropic":  # same protocol: the body passes through, the beta list with it
        assert seen[0].headers["anthropic-beta"] == CC_HEADERS["anthropic-beta"]
        assert {k: v for k, v in got.items() if k != "model"} == {k: v for k, v in body.items() if k != "model"}
        return
    assert "anthropic-beta" not in seen[0].headers
    for absent in ("context_management", "cache_control", HISTORY_SIGNATURE, "x-app"):
        assert absent not in text
    if upstream == "openai":
        assert got["user"] == body["metadata"]["user_id"]
        assert [t["function"]["name"] for t in got["tools"]] == [f"Tool{i:02d}" for i in range(24)]
        assert got["max_completion_tokens"] == 32000 and got["reasoning_effort"] == "high"
        assert [m["role"] for m in got["messages"]] == ["system", "user", "assistant", "tool", "user"]
    else:
        got = camel(got)
        assert "$schema" not in text and "additionalProperties" not in text  # outside Gemini's schema subset
        decls = got["tools"][0]["functionDeclarations"]
        assert [d["name"] for d in decls] == [f"Tool{i:02d}" for i in range(24)]
        assert got["generationConfig"]["maxOutputTokens"] == 32000
        assert got["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 31999}
        assert [c["role"] for c in got["contents"]] == ["user", "model", "user"]


# --- Codex CLI --------------------------------------------------------------------------------


def codex_body(tag: str, model: str) -> dict[str, Any]:
    params = {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
              "required": ["command"], "additionalProperties": False}
    return {
        "model": model, "instructions": None, "stream": True, "store": False,
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox: workspace-write."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context/>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"[scn tools] {tag} go"}]},
        ],
        "tools": [
            {"type": "function", "name": "shell", "description": "Run a command.", "strict": False, "parameters": params},
            {"type": "namespace", "name": "mcp__files", "description": "File server.", "tools": [
                {"type": "function", "name": "read", "description": "Read a file.", "parameters": params}]},
            {"type": "web_search"},
        ],
        "tool_choice": "auto", "parallel_tool_calls": True, "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "019a8e5c-codex-session",
    }


def collapse(names: list[str]) -> list[str]:
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]


CODEX_EVENTS = (
    ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
     "response.output_text.delta", "response.output_text.done", "response.content_part.done",
     "response.output_item.done"]
    + ["response.output_item.added", "response.function_call_arguments.delta",
       "response.function_call_arguments.done", "response.output_item.done"] * 2
    + ["response.completed"]
)


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_codex_responses_stream_through_every_upstream(tgw, tkey, tag, upstream):
    body = codex_body(tag, MODELS[upstream])
    if upstream == "openai":
        # Chat Completions runs no server tools: web_search is refused, naming it, never dropped.
        refused = post(tgw, tkey, "responses", MODELS[upstream], body)
        assert refused.status_code == 400 and "web_search" in refused.text
        body["tools"] = [t for t in body["tools"] if t["type"] != "web_search"]
    resp = post(tgw, tkey, "responses", MODELS[upstream], body)
    assert resp.status_code == 200, resp.text[:500]
    evs = events(resp)
    assert all(n == d["type"] for n, d in evs)
    assert [d["sequence_number"] for _, d in evs] == list(range(len(evs)))
    assert collapse([n for n, _ in evs]) == CODEX_EVENTS
    final = evs[-1][1]["response"]
    assert final["status"] == "completed"
    assert [i["type"] for i in final["output"]] == ["message", "function_call", "function_call"]
    assert [(i["name"], json.loads(i["arguments"])) for i in final["output"][1:]] == list(CALLS)
    assert final["usage"]["output_tokens"] == 9 and final["usage"]["input_tokens"] >= 26
    assert final["usage"]["input_tokens_details"]["cached_tokens"] == 6

    got = sent(tgw, upstream, tag)
    text = json.dumps(got)
    for absent in ("prompt_cache_key", "encrypted_content", "store"):
        assert absent not in text
    if upstream == "anthropic":
        names = [t["name"] for t in got["tools"] if t.get("type") != "web_search_20250305"]
        assert {"type": "web_search_20250305", "name": "web_search"} in got["tools"]  # translated
        assert "Sandbox: workspace-write." in json.dumps(got["system"])
        assert got["metadata"]["user_id"] == body["prompt_cache_key"]
        assert "thinking" not in got  # reasoning.summary alone is not a request to think
    elif upstream == "openai":
        names = [t["function"]["name"] for t in got["tools"]]
        assert got["messages"][0] == {"role": "system", "content": "Sandbox: workspace-write."}
        assert got["user"] == body["prompt_cache_key"] and "reasoning_effort" not in got
    else:
        names = [d["name"] for d in got["tools"][0]["functionDeclarations"]]
        assert {"googleSearch": {}} in got["tools"]  # translated
        assert got["systemInstruction"] == {"parts": [{"text": "Sandbox: workspace-write."}]}
    assert names == ["shell", "mcp__files--read"]


# --- billing a stream the caller asked no usage for ----------------------------------------------


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_stream_without_stream_options_is_billed_and_shows_no_usage(tgw, tkey, tag, upstream):
    body = {"model": MODELS[upstream], "stream": True, "messages": [{"role": "user", "content": f"[scn text] {tag}"}]}
    resp = post(tgw, tkey, "openai", MODELS[upstream], body)
    assert resp.status_code == 200
    chunks = [d for _, d in events(resp)]
    assert chunks[-1] == "[DONE]"
    assert all(c.get("usage") is None for c in chunks[:-1])
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1] if c["choices"]) == TEXT
    row = usage_row(tgw, resp)
    assert row is not None and row["billed"] and row["cost_credits"] > 0
    assert (row["output_tokens"], row["cache_read_tokens"]) == (9, 6)
    if upstream == "openai":
        assert sent(tgw, upstream, tag)["stream_options"]["include_usage"] is True


# --- cache_control from an OpenAI caller -----------------------------------------------------------


def test_openai_caller_cache_control_reaches_anthropic_untouched(tgw, tkey, tag):
    client = CALLERS["openai"](tgw.base_url, tkey).client  # type: ignore[attr-defined]
    one_hour = {"type": "ephemeral", "ttl": "1h"}
    resp = client.chat.completions.create(model=MODELS["anthropic"], messages=[
        {"role": "system", "content": [{"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "text", "text": f"[scn text] {tag} big document", "cache_control": one_hour},
                                     {"type": "text", "text": "What does it say?"}]},
    ])
    assert resp.choices[0].message.content == TEXT
    got = sent(tgw, "anthropic", tag)
    assert got["system"] == [{"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}]
    assert got["messages"][0]["content"] == [
        {"type": "text", "text": f"[scn text] {tag} big document", "cache_control": one_hour},
        {"type": "text", "text": "What does it say?"}]


# --- an upstream failing mid-stream ------------------------------------------------------------------


def assert_error_end(caller: str, evs: list[tuple[str | None, Any]]) -> None:
    """The stream ends with the caller protocol's own in-stream error form, and no success marker."""
    name, last = evs[-1]
    if caller == "anthropic":
        assert name == "error" and last["type"] == "error" and last["error"]["type"] and last["error"]["message"]
        assert "message_stop" not in [n for n, _ in evs]
    elif caller == "openai":
        assert set(last) == {"error"} and last["error"]["message"] and last["error"]["type"]
        assert "[DONE]" not in [d for _, d in evs]
    elif caller == "responses":
        assert [n for n, _ in evs][-2:] == ["error", "response.failed"]
        assert last["response"]["status"] == "failed" and last["response"]["error"]["message"]
    else:
        assert set(last) == {"error"} and last["error"]["code"] >= 500 and last["error"]["status"]


@pytest.mark.parametrize(("caller", "upstream"), [(c, u) for c in CALLERS for u in UPSTREAMS],
                         ids=[f"{c}-to-{u}" for c in CALLERS for u in UPSTREAMS])
def test_midstream_upstream_error_is_a_protocol_error_and_free(tgw, tkey, tag, caller, upstream):
    before = tgw.wallet(tkey)
    resp = post(tgw, tkey, caller, MODELS[upstream], native_body(caller, MODELS[upstream], f"[scn midfail] {tag}"))
    assert resp.status_code == 200
    evs = events(resp)
    assert "Sunny" in json.dumps([d for _, d in evs])  # the first piece got through before the failure
    assert_error_end(caller, evs)
    row = usage_row(tgw, resp)
    assert row is not None and not row["billed"] and row["cost_credits"] == 0 and row["error"]
    assert tgw.wallet(tkey) == before


# --- tool names the upstream knows differently ------------------------------------------------------

LONG_NAME = "mcp__company-knowledge-base__search_the_internal_engineering_handbook_pages"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_long_tool_name_cut_for_openai_comes_back_whole(tgw, tkey, tag, stream):
    client = CALLERS["anthropic"](tgw.base_url, tkey).client  # type: ignore[attr-defined]
    kw: dict[str, Any] = {
        "model": MODELS["openai"], "max_tokens": 512,
        "tools": [{"name": LONG_NAME, "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": f"[scn echotool] {tag} search"}]}
    if stream:
        with client.messages.stream(**kw) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kw)
    wire = sent(tgw, "openai", tag)["tools"][0]["function"]["name"]
    assert len(LONG_NAME) > 64 and len(wire) <= 64  # OpenAI refuses longer names
    assert [(b.name, b.input) for b in msg.content if b.type == "tool_use"] == [(LONG_NAME, {"path": "/src/app.py"})]


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_codex_namespaced_call_round_trip(tgw, tkey, tag, upstream):
    body = codex_body(tag, MODELS[upstream])
    body["tools"] = body["tools"][1:] + body["tools"][:1]  # the namespace first: the fake calls it
    if upstream == "openai":  # Chat Completions runs no web search: that is refused (tested above)
        body["tools"] = [t for t in body["tools"] if t["type"] != "web_search"]
    body["input"][-1]["content"][0]["text"] = f"[scn echotool] {tag} read it"
    evs = events(post(tgw, tkey, "responses", MODELS[upstream], body))
    final = evs[-1][1]["response"]
    assert evs[-1][0] == "response.completed"
    call = final["output"][0]
    assert (call["type"], call.get("namespace"), call["name"]) == ("function_call", "mcp__files", "read")
    body["input"] += [{k: call[k] for k in ("type", "call_id", "namespace", "name", "arguments")},
                      {"type": "function_call_output", "call_id": call["call_id"], "output": "x = 1 [scn after]"}]
    evs = events(post(tgw, tkey, "responses", MODELS[upstream], body))
    assert evs[-1][0] == "response.completed"
    got = json.dumps(sent(tgw, upstream, tag, "[scn after]"))
    assert '"mcp__files--read"' in got and got.count("mcp__files--read") >= 2  # declared, and called in history


# --- the google-genai client as it comes ----------------------------------------------------------


def test_google_genai_default_client_reaches_the_gateway(tgw, tkey, tag):
    """google-genai 3.x calls {base_url}/v1/models/{model}:generateContent unless api_version='v1beta' is set."""
    from google import genai
    from google.genai import types as gt

    client = genai.Client(api_key=tkey, http_options=gt.HttpOptions(base_url=tgw.base_url))
    resp = client.models.generate_content(model=MODELS["gemini"], contents=f"[scn text] {tag} hi")
    assert resp.text == TEXT
