"""Golden renders of documents and server tools: each caller's body as each upstream receives it."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from core.errors import InvalidRequest
from gateway.canonical_events import SearchDone
from gateway.protocols import carry, registry
from tests.gateway.protocols.test_sse import FIXTURES, check_golden, decode, parse_stream, render_stream

CARD = SimpleNamespace(id="m", capabilities=("pdf", "web_search", "code_execution", "web_fetch"))
CALLERS = {"anthropic": "anthropic", "openai": "openai", "responses": "responses", "gemini": "gemini"}
UPSTREAMS = ("anthropic", "openai", "gemini")
URL = "https://news.example/bytespike"


def _render(caller: str, fixture: str, upstream: str) -> dict[str, Any]:
    body = json.loads((FIXTURES / caller / fixture).read_text(encoding="utf-8"))
    req = registry.codec(caller).parse_request(body, model="m")
    req = carry.adapt(req, upstream=upstream, card=CARD)
    return registry.upstream_codec(upstream).render_request(req, upstream_model="m-up", stream=False)


def _golden(path: str, value: Any) -> None:
    check_golden(FIXTURES / path, (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode())


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("caller", CALLERS)
def test_documents_render_for_every_upstream(caller: str, upstream: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: the body passes through")
    _golden(f"{upstream}/rendered/request_from_{caller}_documents.json", _render(caller, "request_documents.json", upstream))


@pytest.mark.parametrize("upstream", ("anthropic", "gemini"))
@pytest.mark.parametrize("caller", ("anthropic", "responses", "gemini"))
def test_server_tools_render_where_the_upstream_runs_them(caller: str, upstream: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: the body passes through")
    _golden(f"{upstream}/rendered/request_from_{caller}_search.json", _render(caller, "request_search.json", upstream))


@pytest.mark.parametrize("caller", ("anthropic", "responses", "gemini"))
def test_server_tools_refused_for_chat_completions(caller: str) -> None:
    with pytest.raises(InvalidRequest, match="cannot be sent to model 'm'"):
        _render(caller, "request_search.json", "openai")


# --- answers: searches the upstream ran, in the caller's shape ------------------------------------

ANSWERS = {"anthropic": "anthropic/response_web_search.json", "gemini": "gemini/response_grounded.json"}


@pytest.mark.parametrize("caller", ("anthropic", "responses", "gemini"))
@pytest.mark.parametrize("upstream", ANSWERS)
def test_search_results_render_for_the_caller(upstream: str, caller: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: the answer passes through")
    body = json.loads((FIXTURES / ANSWERS[upstream]).read_text(encoding="utf-8"))
    resp = registry.upstream_codec(upstream).parse_response(body)
    assert resp.usage.web_searches == 1  # billed at the card's per_search price
    out = registry.codec(caller).render_response(resp, model="m", created=1700000000)
    _golden(f"{caller}/rendered/answer_from_{upstream}_search.json", out)


def test_web_searches_are_billed_per_search() -> None:
    from core import ratecard
    from gateway.canonical import Usage

    card = next(c for c in ratecard.load_file()[0] if c.id == "claude-sonnet-4-6")
    plain = ratecard.chat_cost_credits(card, Usage(input_tokens=1000, output_tokens=100))
    searched = ratecard.chat_cost_credits(card, Usage(input_tokens=1000, output_tokens=100, web_searches=2))
    assert searched - plain == 20_000  # $0.01 per search = 10,000 credits


def test_custom_tool_call_goes_back_as_custom_tool_call() -> None:
    body = json.loads((FIXTURES / "responses/request_search.json").read_text(encoding="utf-8"))
    req = registry.codec("responses").parse_request(body, model="m")
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
              "content": [{"type": "tool_use", "id": "toolu_1", "name": "apply_patch",
                           "input": {"input": "*** Begin Patch\n*** End Patch"}}],
              "usage": {"input_tokens": 10, "output_tokens": 5}}
    resp = carry.mark_custom(registry.upstream_codec("anthropic").parse_response(answer), req.tools)
    out = registry.codec("responses").render_response(resp, model="m", created=1700000000)
    (item,) = out["output"]
    assert (item["type"], item["call_id"], item["name"]) == ("custom_tool_call", "toolu_1", "apply_patch")
    assert item["input"] == "*** Begin Patch\n*** End Patch"


# --- streams: searches the upstream ran, in the caller's stream shape ----------------------------

STREAMS = {"anthropic": "anthropic/web_search.sse", "gemini": "gemini/grounded.sse"}


@pytest.mark.parametrize("caller", ("anthropic", "responses", "gemini"))
@pytest.mark.parametrize("upstream", STREAMS)
def test_search_results_stream_for_the_caller(upstream: str, caller: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: the stream passes through")
    events = parse_stream(registry.upstream_codec(upstream), (FIXTURES / STREAMS[upstream]).read_bytes())
    (search,) = [e.search for e in events if isinstance(e, SearchDone)]
    assert (search.queries, [url for url, _ in search.sources]) == (("ByteSpike launch",), [URL])
    out = render_stream(registry.codec(caller), events)
    check_golden(FIXTURES / f"{caller}/rendered/stream_from_{upstream}_search.sse", out)
    assert URL in out.decode()


def test_search_stream_assembles_like_the_answer_for_a_responses_caller() -> None:
    """The streamed items (search call, cited text) are those of the non-stream answer, item by item."""
    for upstream, answer in ANSWERS.items():
        events = parse_stream(registry.upstream_codec(upstream), (FIXTURES / STREAMS[upstream]).read_bytes())
        frames = [json.loads(e.data) for e in decode(render_stream(registry.codec("responses"), events))]
        body = json.loads((FIXTURES / answer).read_text(encoding="utf-8"))
        whole = registry.codec("responses").render_response(
            registry.upstream_codec(upstream).parse_response(body), model="m", created=1)

        def items(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return sorted(({k: v for k, v in i.items() if k != "id"} for i in output), key=lambda i: i["type"])

        assert items(frames[-1]["response"]["output"]) == items(whole["output"])
        assert any(i["type"] == "message" and i["content"][0]["annotations"] for i in whole["output"])
        kinds = [f["type"] for f in frames]
        assert kinds.index("response.web_search_call.searching") < kinds.index("response.web_search_call.completed")
        assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")


# --- the order of a Gemini search and the text it grounds ------------------------------------------


def _kinds(caller: str, data: bytes) -> list[str]:
    """The caller's block / item kinds in the order its stream opens them."""
    frames = [json.loads(e.data) for e in decode(data)]
    if caller == "anthropic":
        return [f["content_block"]["type"] for f in frames if f["type"] == "content_block_start"]
    return [f["item"]["type"] for f in frames if f["type"] == "response.output_item.added"]


ORDER = {"anthropic": (["server_tool_use", "web_search_tool_result", "text"], ["text", "server_tool_use",
                                                                                 "web_search_tool_result"]),
         "responses": (["web_search_call", "message"], ["message", "web_search_call"])}


@pytest.mark.parametrize("caller", ORDER)
def test_gemini_search_reported_at_the_end_streams_after_the_text(caller: str) -> None:
    """Gemini reports its searches with its last chunk: the text is never held back for them."""
    events = parse_stream(registry.upstream_codec("gemini"), (FIXTURES / STREAMS["gemini"]).read_bytes())
    assert _kinds(caller, render_stream(registry.codec(caller), events)) == ORDER[caller][1]
    answer = registry.upstream_codec("gemini").parse_response(
        json.loads((FIXTURES / ANSWERS["gemini"]).read_text(encoding="utf-8")))
    whole = registry.codec(caller).render_response(answer, model="m", created=1)
    assert [b["type"] for b in whole["content" if caller == "anthropic" else "output"]] == ORDER[caller][0]


@pytest.mark.parametrize("caller", ORDER)
def test_gemini_search_reported_before_the_text_streams_first(caller: str) -> None:
    """Queries and sources in a chunk before any text: the search goes first; sources added later follow."""
    events = parse_stream(registry.upstream_codec("gemini"), (FIXTURES / "gemini/grounded_early.sse").read_bytes())
    searches = [e.search for e in events if isinstance(e, SearchDone)]
    assert [(s.queries, s.sources) for s in searches] == [
        (("ByteSpike launch",), (("https://news.example/bytespike", "news.example"),)),
        (("ByteSpike launch",), (("https://press.example/launch", "press.example"),))]
    out = render_stream(registry.codec(caller), events)
    check_golden(FIXTURES / f"{caller}/rendered/stream_from_gemini_search_early.sse", out)
    assert _kinds(caller, out)[:len(ORDER[caller][0])] == ORDER[caller][0]
