"""Nothing dropped in translation: every request part, from every caller protocol, to every upstream.

Each part is sent alone (with a short text) through each chat surface to a model of each upstream
protocol; the part must either reach the upstream body the fake vendor recorded, or be refused with
400 naming it (and then no upstream was called and nothing charged).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

import pytest
import requests

MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-5-4", "gemini": "gemini-3-1-pro"}
CALLERS = ("anthropic", "openai", "responses", "gemini")
PDF = base64.b64encode(b"%PDF-1.4 MARK-pdf").decode()
PNG = base64.b64encode(b"\x89PNG MARK-image").decode()
TXT = "MARK-doctext"

# part -> caller -> (how it goes into the request) ; "content" parts are appended to the user turn.
Body = dict[str, Any]
Add = Callable[[Body], None]


def _content(item: Any) -> Add:
    def add(body: Body) -> None:
        if "contents" in body:
            body["contents"][0]["parts"].append(item)
        elif "input" in body:
            body["input"][0]["content"].append(item)
        else:
            body["messages"][-1]["content"].append(item)
    return add


def _history(turn: Any) -> Add:
    """An earlier answer (``turn``) and a next question after the first user turn."""
    def add(body: Body) -> None:
        if "input" in body:
            body["input"] += [turn, {"role": "user", "content": [{"type": "input_text", "text": "more"}]}]
        else:
            body["messages"] += [turn, {"role": "user", "content": [{"type": "text", "text": "more"}]}]
    return add


CITE_URL = "https://MARK-cite.example/a"


def _top(**fields: Any) -> Add:
    def add(body: Body) -> None:
        for key, value in fields.items():
            if key == "generationConfig":
                body.setdefault("generationConfig", {}).update(value)
            else:
                body[key] = value
    return add


def _tools(*tools: Any) -> Add:
    return _top(tools=list(tools))


FUNCTION = {"name": "mark_tool", "description": "d", "parameters": {"type": "object", "properties": {}}}
PARTS: dict[str, dict[str, Add]] = {
    "text": {
        "anthropic": _content({"type": "text", "text": "MARK-text"}),
        "openai": _content({"type": "text", "text": "MARK-text"}),
        "responses": _content({"type": "input_text", "text": "MARK-text"}),
        "gemini": _content({"text": "MARK-text"}),
    },
    "image": {
        "anthropic": _content({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}),
        "openai": _content({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}),
        "responses": _content({"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}),
        "gemini": _content({"inlineData": {"mimeType": "image/png", "data": PNG}}),
    },
    "document": {
        "anthropic": _content({"type": "document", "title": "MARK-title",
                               "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}),
        "openai": _content({"type": "file", "file": {"filename": "MARK-title.pdf",
                                                     "file_data": f"data:application/pdf;base64,{PDF}"}}),
        "responses": _content({"type": "input_file", "filename": "MARK-title.pdf",
                               "file_data": f"data:application/pdf;base64,{PDF}"}),
        "gemini": _content({"inlineData": {"mimeType": "application/pdf", "data": PDF}}),
    },
    "text document": {
        "anthropic": _content({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": TXT}}),
        "openai": _content({"type": "file", "file": {"file_data": "data:text/plain;base64,"
                                                     + base64.b64encode(TXT.encode()).decode()}}),
        "responses": _content({"type": "input_file", "file_data": "data:text/plain;base64,"
                               + base64.b64encode(TXT.encode()).decode()}),
        "gemini": _content({"inlineData": {"mimeType": "text/plain", "data": base64.b64encode(TXT.encode()).decode()}}),
    },
    "document url": {
        "anthropic": _content({"type": "document", "source": {"type": "url", "url": "https://x.test/MARK-url.pdf"}}),
        "responses": _content({"type": "input_file", "file_url": "https://x.test/MARK-url.pdf"}),
        "gemini": _content({"fileData": {"mimeType": "application/pdf", "fileUri": "https://x.test/MARK-url.pdf"}}),
    },
    "file_id": {
        "anthropic": _content({"type": "document", "source": {"type": "file", "file_id": "file_MARK"}}),
        "openai": _content({"type": "file", "file": {"file_id": "file_MARK"}}),
        "responses": _content({"type": "input_file", "file_id": "file_MARK"}),
        "gemini": _content({"fileData": {"mimeType": "application/pdf",
                                         "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/file_MARK"}}),
    },
    # Gemini has no citations in a history: its groundingMetadata is on the answer's candidate, not in a Content.
    "citations in history": {
        "anthropic": _history({"role": "assistant", "content": [
            {"type": "text", "text": "MARK-cited claim.", "citations": [
                {"type": "web_search_result_location", "url": CITE_URL, "title": "MARK-source",
                 "encrypted_index": "Eo8BMARK", "cited_text": "MARK-quote"}]}]}),
        "openai": _history({"role": "assistant", "content": "MARK-cited claim.", "annotations": [
            {"type": "url_citation", "url_citation": {"url": CITE_URL, "title": "MARK-source",
                                                      "start_index": 0, "end_index": 17}}]}),
        "responses": _history({"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "MARK-cited claim.", "annotations": [
                {"type": "url_citation", "url": CITE_URL, "title": "MARK-source", "start_index": 0,
                 "end_index": 17}]}]}),
    },
    "tools": {
        "anthropic": _tools({"name": "mark_tool", "input_schema": {"type": "object", "properties": {}}}),
        "openai": _tools({"type": "function", "function": FUNCTION}),
        "responses": _tools({"type": "function", **FUNCTION}),
        "gemini": _tools({"functionDeclarations": [FUNCTION]}),
    },
    "web search": {
        "anthropic": _tools({"type": "web_search_20250305", "name": "web_search", "max_uses": 3}),
        "openai": _top(web_search_options={}),
        "responses": _tools({"type": "web_search"}),
        "gemini": _tools({"googleSearch": {}}),
    },
    "web search domains": {
        "anthropic": _tools({"type": "web_search_20250305", "name": "web_search", "allowed_domains": ["MARK.test"]}),
        "responses": _tools({"type": "web_search", "filters": {"allowed_domains": ["MARK.test"]}}),
    },
    "code execution": {
        "anthropic": _tools({"type": "code_execution_20250825", "name": "code_execution"}),
        "responses": _tools({"type": "code_interpreter", "container": {"type": "auto"}}),
        "gemini": _tools({"codeExecution": {}}),
    },
    "file search": {
        "responses": _tools({"type": "file_search", "vector_store_ids": ["vs_MARK"]}),
    },
    "custom tool": {
        "openai": _tools({"type": "custom", "custom": {"name": "mark_custom", "description": "d"}}),
        "responses": _tools({"type": "custom", "name": "mark_custom", "description": "d",
                             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /MARK-grammar/"}}),
    },
    "thinking": {
        "anthropic": _top(thinking={"type": "enabled", "budget_tokens": 2048}),
        "openai": _top(reasoning_effort="high"),
        "responses": _top(reasoning={"effort": "high"}),
        "gemini": _top(generationConfig={"thinkingConfig": {"thinkingBudget": 2048}}),
    },
    "cache_control": {
        "anthropic": _content({"type": "text", "text": "MARK-cached", "cache_control": {"type": "ephemeral"}}),
        "openai": _content({"type": "text", "text": "MARK-cached", "cache_control": {"type": "ephemeral"}}),
    },
    "stop": {
        "anthropic": _top(stop_sequences=["MARK-stop"]),
        "openai": _top(stop=["MARK-stop"]),
        "gemini": _top(generationConfig={"stopSequences": ["MARK-stop"]}),
    },
    "temperature": {
        "anthropic": _top(temperature=0.25),
        "openai": _top(temperature=0.25),
        "responses": _top(temperature=0.25),
        "gemini": _top(generationConfig={"temperature": 0.25}),
    },
}


def _found_in(part: str, upstream: str, sent: Any) -> bool:
    """Whether ``part`` reached the upstream body (in the upstream's own words)."""
    text = json.dumps(sent)
    tools = json.dumps(sent.get("tools") or [])
    checks: dict[str, Callable[[], bool]] = {
        "text": lambda: "MARK-text" in text,
        "image": lambda: PNG in text,
        "document": lambda: PDF in text,
        "text document": lambda: TXT in text or base64.b64encode(TXT.encode()).decode() in text,
        "document url": lambda: "MARK-url.pdf" in text,
        "file_id": lambda: "file_MARK" in text,
        # Passed through as they came to an upstream of the caller's protocol; elsewhere the text goes with
        # its source list.
        "citations in history": lambda: CITE_URL in text and any(
            w in text for w in ('"citations"', '"annotations"', "[sources]")),
        "tools": lambda: "mark_tool" in tools,
        "web search": lambda: any(w in text for w in ("web_search", "googleSearch")),
        "web search domains": lambda: "MARK.test" in tools,
        "code execution": lambda: any(w in tools for w in ("code_execution", "codeExecution")),
        "file search": lambda: "vs_MARK" in tools,
        "custom tool": lambda: "mark_custom" in tools,
        "thinking": lambda: any(w in text for w in ('"thinking"', "reasoning_effort", "thinkingConfig")),
        "cache_control": lambda: "MARK-cached" in text,
        "stop": lambda: "MARK-stop" in text,
        "temperature": lambda: "0.25" in text,
    }
    return checks[part]()


# (part, caller, upstream) that must be refused; every other pair must carry the part.
REFUSED = {
    *(("document url", c, "openai") for c in CALLERS),
    *(("file_id", c, u) for c, u in [("anthropic", "openai"), ("anthropic", "gemini"), ("openai", "anthropic"),
                                     ("openai", "gemini"), ("responses", "anthropic"), ("responses", "gemini"),
                                     ("gemini", "anthropic"), ("gemini", "openai")]),
    *(("web search", c, "openai") for c in ("anthropic", "responses", "gemini")),
    ("web search", "openai", "anthropic"), ("web search", "openai", "gemini"),
    ("web search domains", "anthropic", "gemini"), ("web search domains", "responses", "gemini"),
    ("web search domains", "responses", "openai"), ("web search domains", "anthropic", "openai"),
    *(("code execution", c, "openai") for c in ("anthropic", "responses", "gemini")),
    *(("file search", "responses", u) for u in MODELS),
    ("custom tool", "openai", "anthropic"), ("custom tool", "openai", "gemini"),
}
# Caching hints: Anthropic takes them as markers, OpenAI and Gemini cache by themselves (the text still goes).
CASES = [(p, c, u) for p, by in PARTS.items() for c in by for u in MODELS]


def _base(caller: str) -> Body:
    if caller == "anthropic":
        return {"max_tokens": 4096, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    if caller == "openai":
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    if caller == "responses":
        return {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def _send(gateway: Any, key: str, caller: str, model: str, body: Body) -> requests.Response:
    base = gateway.base_url
    if caller == "gemini":
        return requests.post(f"{base}/v1beta/models/{model}:generateContent", json=body,
                             headers={"x-goog-api-key": key}, timeout=60)
    path = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions", "responses": "/v1/responses"}[caller]
    return requests.post(base + path, json={"model": model, **body},
                         headers={"authorization": f"Bearer {key}"}, timeout=60)


@pytest.mark.parametrize(("part", "caller", "upstream"), CASES, ids=[f"{p}-{c}-{u}" for p, c, u in CASES])
def test_every_part_reaches_the_upstream_or_is_refused(gateway, shared_key, part, caller, upstream):
    body = _base(caller)
    PARTS[part][caller](body)
    fake = gateway.fakes[upstream]
    before = len(fake.seen)
    r = _send(gateway, shared_key, caller, MODELS[upstream], body)
    if (part, caller, upstream) in REFUSED:
        assert r.status_code == 400, r.text
        assert MODELS[upstream] in r.text, r.text
        assert len(fake.seen) == before  # refused before any upstream call
        return
    assert r.status_code == 200, r.text
    assert len(fake.seen) > before
    assert _found_in(part, upstream, fake.seen[-1].body), (part, fake.seen[-1].body)
