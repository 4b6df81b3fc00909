"""The rate card: catalogue coverage, name resolution, channel merge and the cost formula."""

from __future__ import annotations

import random
from decimal import ROUND_CEILING, Decimal

import pytest

from core import catalog, ratecard
from core.channels import ChannelConfig
from gateway.canonical import Usage


@pytest.fixture(scope="module")
def card():
    return catalog.build([]).card


def test_card_covers_kinds_and_vendors(card):
    kinds = {m.kind for m in card.models}
    vendors = {m.vendor for m in card.models}
    assert len(card.models) >= 45
    assert kinds == {"chat", "image", "video", "embedding", "rerank", "audio"}
    for v in ("anthropic", "openai", "google", "deepseek", "moonshot", "zhipu", "minimax", "alibaba", "bytedance"):
        assert v in vendors
    families = {m.family for m in card.models}
    assert {"claude", "gpt", "gemini", "deepseek", "kimi", "glm", "minimax", "qwen", "doubao", "seedream",
            "seedance", "sora", "veo"} <= families


def test_card_rows_are_complete(card):
    for m in card.models:
        assert m.source, m.id
        prices = [m.input, m.output, m.per_image, m.per_second, m.per_million_chars, m.per_search]
        assert any(p is not None for p in prices), m.id
        assert all(p is None or isinstance(p, Decimal) for p in prices)
        if m.kind == "chat" and m.status != "demo":
            assert m.context_window and m.max_output_tokens, m.id
            if "cache" in m.capabilities:
                assert m.cache_read is not None and m.cache_read <= m.input / 2, m.id
        assert m.status in ("scaffold", "legacy", "demo")


def test_card_claude_cache_write_is_125_percent(card):
    claude = [m for m in card.models if m.vendor == "anthropic"]
    assert claude
    for m in claude:
        assert m.cache_write == m.input * Decimal("1.25"), m.id


def test_card_demo_model_is_free_and_labelled(card):
    m = card.resolve("bytespike-echo")
    assert m.status == "demo" and m.vendor == "bytespike" and m.kind == "chat"
    assert (m.input, m.output, m.cache_read, m.cache_write) == (0, 0, 0, 0)


@pytest.mark.parametrize(("name", "expected"), [
    ("claude-sonnet-4-6", "claude-sonnet-4-6"),
    ("anthropic/claude-sonnet-4-6", "claude-sonnet-4-6"),
    ("Claude-Sonnet-4.6", "claude-sonnet-4-6"),
    ("claude-3.7-sonnet", "claude-3-7-sonnet"),
    ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("glm-5.1", "glm-5-1"),
    ("zhipu/glm-5.1", "glm-5-1"),
    ("deepseek-chat", "deepseek-v4-flash"),
    ("deepseek-reasoner", "deepseek-v4-pro"),
    ("gpt-4o", "gpt-4o"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gemini-2.5-pro", "gemini-2-5-pro"),
    ("gemini-3-pro-preview", "gemini-3-pro"),
    ("openai/gpt-5.4", "gpt-5-4"),
    ("veo3.1", "veo-3-1"),
    ("veo-3.1-fast", "veo-3-1-fast"),
    ("sora2", "sora-2"),
    ("seedream-v4.5", "seedream-4-5"),
    ("minimax-m2.7", "minimax-m2-7"),
    ("nano-banana-2", "nano-banana-v2"),
])
def test_card_resolve_accepts_spellings(card, name, expected):
    assert card.resolve(name).id == expected


@pytest.mark.parametrize("name", ["", "deepseek-coder", "gpt-9", "claude", "claude-3-5-sonnet", "gpt-image-1"])
def test_card_resolve_unknown_is_none(card, name):
    assert card.resolve(name) is None


def test_card_presets(card):
    g, c = set(card.preset_models("global")), set(card.preset_models("china"))
    assert {"claude-sonnet-4-6", "gpt-5-4", "gemini-3-1-pro", "deepseek-v4-pro", "bytespike-echo"} <= g
    assert not any(m.startswith(("glm", "kimi", "qwen", "doubao")) for m in g)
    assert {"deepseek-v4-flash", "doubao-seed-2-0-pro", "glm-5-1", "kimi-k2-6", "minimax-m2-7", "qwen3-max",
            "bytespike-echo"} <= c
    assert not any(m.startswith(("claude", "gpt", "gemini")) for m in c)


def test_card_channel_prices_make_rows_live():
    ch = ChannelConfig(name="c1", protocol="openai", base_url="http://127.0.0.1:1", api_keys=("k",),
                       models=("gpt-5.4", "house-model", "claude-haiku-4-5"),
                       prices={"gpt-5.4": {"input": Decimal("2.00"), "output": Decimal("12.00")},
                               "house-model": {"input": Decimal("0.10"), "output": Decimal("0.20")}})
    card = catalog.build([ch]).card
    gpt = card.resolve("gpt-5-4")
    assert gpt.status == "live" and gpt.input == Decimal("2.00") and gpt.output == Decimal("12.00")
    assert gpt.cache_read == Decimal("0.25")  # not priced by the channel: the card's figure stays
    assert card.resolve("claude-haiku-4-5").status == "scaffold"  # served but not priced
    house = card.resolve("house-model")
    assert house.status == "live" and house.vendor == "c1" and house.kind == "chat"
    assert "house-model" in card.preset_models("global") and "house-model" in card.preset_models("china")


def test_cost_claude_to_the_credit(card):
    m = card.resolve("claude-sonnet-4-6")
    u = Usage(input_tokens=1000, output_tokens=500, cache_write_tokens=200, cache_read_tokens=3000)
    # 1000*3 + 200*3.75 + 3000*0.30 + 500*15 = 3000 + 750 + 900 + 7500
    assert ratecard.chat_cost_credits(m, u) == 12150


def test_cost_rounds_fractions_up(card):
    m = card.resolve("deepseek-v4-pro")  # 0.435 / 0.87 / 0.004
    u = Usage(input_tokens=7, output_tokens=3, cache_read_tokens=11)
    # 7*0.435 + 11*0.004 + 3*0.87 = 3.045 + 0.044 + 2.61 = 5.699 -> 6
    assert ratecard.chat_cost_credits(m, u) == 6
    assert ratecard.chat_cost_credits(m, Usage()) == 0


def test_cost_openai_cached_tokens_are_subtracted(card):
    """An OpenAI usage of prompt_tokens=10000 with 8000 cached bills 2000 uncached + 8000 cached."""
    m = card.resolve("gpt-5-4")  # 2.50 / 15.00 / cache read 0.25
    prompt_tokens, cached, completion = 10_000, 8_000, 1_000
    u = Usage(input_tokens=prompt_tokens - cached, cache_read_tokens=cached, output_tokens=completion)
    assert u.prompt_tokens == prompt_tokens
    assert ratecard.chat_cost_credits(m, u) == 2000 * 250 // 100 + 8000 * 25 // 100 + 15_000  # 5000+2000+15000
    naive = Usage(input_tokens=prompt_tokens, cache_read_tokens=cached, output_tokens=completion)
    assert ratecard.chat_cost_credits(m, naive) > ratecard.chat_cost_credits(m, u)


def test_cost_other_units(card):
    assert ratecard.image_cost_credits(card.resolve("gpt-image-2"), 3) == 240_000
    assert ratecard.seconds_cost_credits(card.resolve("sora-2"), 8) == 800_000
    assert ratecard.seconds_cost_credits(card.resolve("whisper-1"), 61) == 6_100
    assert ratecard.chars_cost_credits(card.resolve("tts-1"), 1000) == 15_000
    assert ratecard.search_cost_credits(card.resolve("rerank-v3-5"), 2) == 4_000


def test_estimate_is_an_upper_bound(card):
    m = card.resolve("claude-sonnet-4-6")
    body = b'{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"' + b"x" * 3000 + b'"}]}'
    tokens = ratecard.estimate_input_tokens(body)
    assert tokens >= len(body) // 3
    est = ratecard.estimate_credits(m, tokens, 1000)
    worst = Usage(cache_write_tokens=tokens, output_tokens=1000)
    assert est >= ratecard.chat_cost_credits(m, worst)


def test_estimate_counts_base64_blob_as_allowance():
    blob = b"A" * 600_000
    body = b'{"messages":[{"content":[{"type":"image","source":{"data":"' + blob + b'"}}]}]}'
    assert ratecard.estimate_input_tokens(body) < 2000


@pytest.mark.parametrize(("value", "text"), [
    ("3", "3.00"), ("3.5", "3.50"), ("0.435", "0.435"), ("0.003", "0.003"), ("15.00", "15.00"), ("0", "0.00"),
    ("0.00005", "0.00005"),
])
def test_price_str(value, text):
    assert ratecard.price_str(Decimal(value)) == text


def _cost_in_decimals(card, usage) -> int:
    """API.md §3 written out in Decimal: ceil(sum of tokens x price) plus the searches."""
    p_in = card.input or Decimal(0)
    p_cw = card.cache_write if card.cache_write is not None else p_in
    p_cr = card.cache_read if card.cache_read is not None else p_in
    total = (Decimal(usage.input_tokens) * p_in + Decimal(usage.cache_write_tokens) * p_cw
             + Decimal(usage.cache_read_tokens) * p_cr + Decimal(usage.output_tokens) * (card.output or Decimal(0)))
    charged = max(0, int(total.to_integral_value(rounding=ROUND_CEILING)))
    return charged + ratecard.search_cost_credits(card, usage.web_searches)


def test_integer_pricing_is_the_decimal_rule_on_every_card():
    rng = random.Random(7)
    cards, _presets = ratecard.load_file()
    for card in cards:
        for _ in range(40):
            usage = Usage(input_tokens=rng.choice([0, 1, 3, 999, rng.randrange(10**7)]),
                          output_tokens=rng.choice([0, 1, 7, rng.randrange(10**6)]),
                          cache_write_tokens=rng.choice([0, 1, rng.randrange(10**6)]),
                          cache_read_tokens=rng.choice([0, 5, rng.randrange(10**6)]),
                          web_searches=rng.choice([0, 0, 2]))
            assert ratecard.chat_cost_credits(card, usage) == _cost_in_decimals(card, usage), (card.id, usage)
