"""What a translated call costs: the usage row's token buckets and the cost the caller is told, per pair.

The upstream reports uncached input, cache reads (and, for Anthropic, cache
writes) and output in its own terms; the usage row must hold the same
buckets whatever protocol the caller spoke, priced at the channel's rates,
and the caller sees that cost in a header (non-stream) or in the stream's
final usage event.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest

from tests.gateway.conftest import PRICES
from tests.gateway.translation.callers import CALLERS
from tests.gateway.translation.raw import events, native_body, post, usage_row
from tests.gateway.translation.upstreams import MODELS, SCRIPTS, TEXT, usage_for

pytestmark = pytest.mark.timeout(60)
PAIRS = [(c, u) for c in CALLERS for u in MODELS]


def streamed_cost(caller: str, evs: list) -> int:
    """The cost the stream's final usage event carries, in the caller protocol's own field."""
    data = [d for _, d in evs if isinstance(d, dict)]
    if caller == "anthropic":
        return [d for d in data if d.get("type") == "message_delta"][-1]["usage"]["cost_credits"]
    if caller == "openai":
        return [d for d in data if d.get("usage")][-1]["usage"]["cost_credits"]
    if caller == "responses":
        return data[-1]["response"]["usage"]["cost_credits"]
    return data[-1]["usageMetadata"]["costCredits"]


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(("caller", "upstream"), PAIRS, ids=[f"{c}-to-{u}" for c, u in PAIRS])
def test_usage_row_and_cost_per_pair(tgw, tkey, tag, caller, upstream, stream):
    model = MODELS[upstream]
    resp = post(tgw, tkey, caller, model, native_body(caller, model, f"[scn text] {tag}", stream), stream=stream)
    assert resp.status_code == 200, resp.text[:300]
    assert TEXT in resp.text or TEXT.split()[0] in resp.text
    u = usage_for(upstream, SCRIPTS["text"])
    price = {k: Decimal(v) for k, v in PRICES[model].items()}
    cost = math.ceil(u.inp * price["input"] + u.cache_write * price["cache_write"]
                     + u.cache_read * price["cache_read"] + u.out * price["output"])
    row = usage_row(tgw, resp)
    assert row is not None and row["billed"] and row["protocol"] == caller and row["stream"] == stream
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (
        u.inp, u.cache_read, u.cache_write, u.out)
    assert row["cost_credits"] == cost
    if stream:
        assert streamed_cost(caller, events(resp)) == cost
    else:
        assert int(resp.headers["x-bytespike-cost-credits"]) == cost
        json.loads(resp.content)  # a whole JSON body, not a stream


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("caller", list(CALLERS))
def test_upstream_without_usage_is_still_billed(tgw, tkey, tag, caller, stream):
    """Some OpenAI-compatible vendors ignore stream_options or send no usage: bill an estimate, never nothing."""
    model = MODELS["openai"]
    resp = post(tgw, tkey, caller, model, native_body(caller, model, f"[scn nousage] {tag}", stream), stream=stream)
    assert resp.status_code == 200, resp.text[:300]
    row = usage_row(tgw, resp)
    assert row is not None and row["billed"]
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["cost_credits"] > 0
