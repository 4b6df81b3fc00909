"""Golden renders of stored Responses: a continued call for each upstream, the stored response and its input items.

``previous_response_id`` puts the stored conversation and the earlier output items in front of the new
input (``responses_store.continued``); that input is translated like any other, here for each upstream.
``GET /v1/responses/{id}`` answers the response exactly as it was answered; ``input_items`` lists the
call's own input, each item with an id.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from core.models import StoredResponse
from gateway import responses_store
from gateway.protocols import carry, registry
from tests.gateway.protocols.test_sse import FIXTURES, check_golden

CARD = SimpleNamespace(id="m", capabilities=("pdf", "web_search", "code_execution", "web_fetch"))
RID = "resp_0123456789abcdef01234567"


def _json(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def _golden(path: str, value: Any) -> None:
    check_golden(FIXTURES / path, (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode())


@pytest.mark.parametrize("upstream", ("anthropic", "openai", "gemini"))
def test_a_continued_call_reaches_every_upstream(upstream: str) -> None:
    """The earlier turn (thinking, a search, cited text, a tool call) and the new input, as each upstream gets them."""
    row, req = _json("responses/stored_row.json"), _json("responses/request_previous.json")
    assert req["previous_response_id"] == row["response"]["id"] == RID
    own = responses_store.input_list(req["input"])
    body = {k: v for k, v in req.items() if k != "previous_response_id"}
    body["input"] = responses_store.continued(row["conversation"], row["response"], own)
    parsed = registry.codec("responses").parse_request(body, model="m")
    sent = registry.upstream_codec(upstream).render_request(carry.adapt(parsed, upstream=upstream, card=CARD),
                                                            upstream_model="m-up", stream=False)
    _golden(f"{upstream}/rendered/request_from_responses_previous.json", sent)
    text = json.dumps(sent, ensure_ascii=False)
    assert all(t in text for t in ("What's on in Paris tonight", "[web search: Paris events today]",
                                   "A jazz festival opens tonight.", "18C, clear", "Worth going?"))
    assert ("EqQBCkYIBxgCKkStored" in text) == (upstream == "anthropic")  # signed thinking: its vendor only


def test_input_items_list_the_calls_own_input_with_ids() -> None:
    own = responses_store.input_list([
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "What's on in Paris tonight?"},
        {"type": "message", "role": "user", "id": "msg_mine", "content": [{"type": "input_text", "text": "And then?"}]},
        {"type": "function_call_output", "call_id": "toolu_01W", "output": "18C, clear"},
    ])
    row = StoredResponse(input_items=responses_store.with_ids(own, RID))
    pages = {
        "desc": responses_store.input_items_page(row, order="desc", limit=20, after=None),
        "asc, 2": responses_store.input_items_page(row, order="asc", limit=2, after=None),
        "asc, after msg_mine": responses_store.input_items_page(row, order="asc", limit=2, after="msg_mine"),
    }
    _golden("responses/rendered/input_items.json", pages)
    assert pages["asc, 2"]["has_more"] and not pages["asc, after msg_mine"]["has_more"]


def _normal(value: Any, rid: str) -> Any:
    """A stored response with its id, item ids and time made stable."""
    text = json.dumps(value, ensure_ascii=False).replace(rid[len("resp_"):], "0123456789abcdef01234567")
    return json.loads(re.sub(r'"created_at": \d+', '"created_at": 1763800000', text))


def test_retrieve_answers_the_response_as_it_was_answered(gateway, shared_key):
    auth = {"authorization": f"Bearer {shared_key}"}
    body = {"model": "claude-sonnet-4-6", "instructions": "Be brief.", "input": [
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": [{"type": "input_text", "text": "hello there [fake in=10 out=4]"}]}]}
    created = requests.post(f"{gateway.base_url}/v1/responses", json=body, headers=auth, timeout=60).json()
    rid = created["id"]
    got = requests.get(f"{gateway.base_url}/v1/responses/{rid}", headers=auth, timeout=60).json()
    assert got == created
    items = requests.get(f"{gateway.base_url}/v1/responses/{rid}/input_items?order=asc", headers=auth,
                         timeout=60).json()
    _golden("responses/rendered/retrieved.json", _normal({"response": got, "input_items": items}, rid))


def test_retrieve_answers_a_streamed_response_as_its_last_event(gateway, shared_key):
    auth = {"authorization": f"Bearer {shared_key}"}
    r = requests.post(f"{gateway.base_url}/v1/responses", headers=auth, timeout=60,
                      json={"model": "gemini-3-1-pro", "input": "hello", "stream": True})
    frames = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    final = frames[-1]["response"]
    assert frames[-1]["type"] == "response.completed" and final["store"] is True
    got = requests.get(f"{gateway.base_url}/v1/responses/{final['id']}", headers=auth, timeout=60).json()
    assert got == final
