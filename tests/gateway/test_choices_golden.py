"""Golden renders of several choices: OpenAI ``n`` and Gemini ``candidateCount``, fanned out and native.

Fanned out, each branch asks the upstream one answer, and the answers merge into one: choice / candidate
``i`` is branch ``i``'s, a stream interleaves the branches' chunks (here one chunk of each in turn), each
with its ``index``, and ends with one event holding the summed usage and its cost. Native, the body
passes through with its count and the stream's last usage event carries the cost of every choice.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import choices, sse
from gateway.canonical import Usage
from gateway.protocols import registry
from gateway.relay import PassthroughRelay, TranslateRelay
from tests.gateway.protocols.test_sse import FIXTURES, check_golden, decode

REQUESTS = {"openai": "openai/request_choices.json", "gemini": "gemini/request_candidates.json"}
# caller -> upstream it is fanned out to here, the two branches' answers and streams.
FANNED = {
    "openai": ("anthropic", ("anthropic/response_tools.json", "anthropic/response_text.json"),
               ("anthropic/text.sse", "anthropic/tools_parallel.sse")),
    "gemini": ("openai", ("openai/response_reasoning_tools.json", "openai/response_text.json"),
               ("openai/text.sse", "openai/tools_parallel.sse")),
}
NATIVE_STREAMS = {"openai": "openai/choices.sse", "gemini": "gemini/candidates.sse"}


def _json(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def _golden(path: str, value: Any) -> None:
    check_golden(FIXTURES / path, (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode())


def _cost(usage: Usage) -> int:
    return usage.prompt_tokens + 10 * usage.output_tokens


def _count(protocol: str, body: dict[str, Any]) -> Any:
    return body.get("n") if protocol == "openai" else body.get("generationConfig", {}).get("candidateCount")


def test_branch_usage_adds_up_every_bucket() -> None:
    one = Usage(input_tokens=10, output_tokens=5, cache_write_tokens=1, cache_read_tokens=2, reasoning_tokens=3,
                web_searches=1)
    assert choices.add(one, one) == Usage(20, 10, 2, 4, 6, web_searches=2)  # each branch's searches are billed


# --- requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", ("anthropic", "openai", "gemini"))
@pytest.mark.parametrize("caller", REQUESTS)
def test_a_fanned_out_branch_asks_one_answer(caller: str, upstream: str) -> None:
    if caller == upstream:
        pytest.skip("same protocol: carried natively (below)")
    req = registry.codec(caller).parse_request(_json(REQUESTS[caller]), model="m")
    assert req.n == 2
    sent = registry.upstream_codec(upstream).render_request(req, upstream_model="m-up", stream=False)
    _golden(f"{upstream}/rendered/request_from_{caller}_choices.json", sent)
    assert "candidateCount" not in json.dumps(sent) and "n" not in sent


@pytest.mark.parametrize("caller", REQUESTS)
def test_a_native_request_keeps_its_count(caller: str) -> None:
    body = _json(REQUESTS[caller])
    sent = registry.upstream_codec(caller).passthrough_request(body, upstream_model="m-up", stream=True)
    _golden(f"{caller}/rendered/passthrough_choices.json", sent)
    assert _count(caller, sent) == 2
    one = choices.one_choice(sent)  # a branch that passes through while the call is fanned out
    assert _count(caller, one) is None and {k: v for k, v in one.items() if k != "generationConfig"} == {
        k: v for k, v in sent.items() if k not in ("n", "generationConfig")}


# --- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", FANNED)
def test_fanned_out_answers_merge_into_one(caller: str) -> None:
    upstream, answers, _ = FANNED[caller]
    parsed = [registry.upstream_codec(upstream).parse_response(_json(a)) for a in answers]
    total = choices.add(parsed[0].usage, parsed[1].usage)
    body = choices.merge(registry.codec(caller), caller, parsed, rid="gw_01", model="m", created=1763800000,
                         usage=total)
    _golden(f"{caller}/rendered/choices_from_{upstream}.json", body)
    key = "choices" if caller == "openai" else "candidates"
    assert [c["index"] for c in body[key]] == [0, 1]


@pytest.mark.parametrize("caller", FANNED)
def test_fanned_out_streams_interleave_by_index(caller: str) -> None:
    upstream, _, streams = FANNED[caller]
    relays, branches = [], []
    for path in streams:
        rel = TranslateRelay(registry.upstream_codec(upstream), registry.codec(caller), model="m",
                             message_id="gw_01", created=1763800000, include_usage=True, cost_fn=_cost)
        branches.append(decode(rel.feed((FIXTURES / path).read_bytes()) + rel.finish()))
        relays.append(rel)
        assert rel.done and rel.error is None
    out = []
    for n in range(max(len(b) for b in branches)):  # one event of each branch in turn
        out += [choices.reindex(caller, b[n:n + 1], i) for i, b in enumerate(branches) if n < len(b)]
    total = choices.add(relays[0].usage or Usage(), relays[1].usage or Usage())
    out.append(choices.final_event(caller, total, _cost(total), rid="gw_01", model="m", created=1763800000,
                                   include_usage=True))
    data = b"".join(out)
    check_golden(FIXTURES / f"{caller}/rendered/choices_stream_from_{upstream}.sse", data)
    frames = [json.loads(e.data) for e in sse.SSEDecoder().feed(data) if e.data != "[DONE]"]
    key = "choices" if caller == "openai" else "candidates"
    assert {c["index"] for f in frames for c in f.get(key) or []} == {0, 1}
    usage = [f.get("usage") or f.get("usageMetadata") for f in frames if f.get("usage") or f.get("usageMetadata")]
    assert len(usage) == 1 and usage[0].get("cost_credits", usage[0].get("costCredits")) == _cost(total)


@pytest.mark.parametrize("caller", NATIVE_STREAMS)
def test_a_native_stream_passes_through_with_the_cost_of_every_choice(caller: str) -> None:
    rel = PassthroughRelay(registry.upstream_codec(caller), include_usage=True, cost_fn=_cost, choices=2)
    data = rel.feed((FIXTURES / NATIVE_STREAMS[caller]).read_bytes()) + rel.finish()
    check_golden(FIXTURES / f"{caller}/rendered/passthrough_choices.sse", data)
    assert rel.done and rel.usage is not None
    assert data.count(b"ost_credits" if caller == "openai" else b"costCredits") == 1
    assert str(_cost(rel.usage)).encode() in data.split(b"\n\n")[-3 if caller == "openai" else -2]
