"""The reservation estimate is an upper bound that the prompt's shape cannot game."""

from __future__ import annotations

import base64
import json
import random
import string

import pytest

from core import ratecard
from gateway import estimate as est
from gateway.canonical import Usage
from gateway.protocols import anthropic, gemini, openai_chat, openai_responses

PARSERS = {"anthropic": anthropic.parse_request, "openai": openai_chat.parse_request,
           "responses": openai_responses.parse_request}


@pytest.fixture(scope="module")
def card():
    return ratecard.build_card([])


def tokens_of(card, model: str, body: dict, caller: str = "anthropic") -> int:
    raw = json.dumps(body).encode()
    req = gemini.parse_request(body, model=model) if caller == "gemini" else PARSERS[caller](body)
    return est.input_tokens(est.scan(req, len(raw)), card.resolve(model))


def b64(n: int) -> str:
    return base64.b64encode(random.Random(n).randbytes(n * 3 // 4)).decode()[:n]


@pytest.mark.parametrize("text", [
    b64(300_000),  # base64
    "".join(random.Random(1).choice(string.printable) for _ in range(100_000)),  # dense ASCII
    "".join(chr(random.Random(2).randint(0x4E00, 0x9FFF)) for _ in range(50_000)),  # CJK, 3 bytes each
    "def f(x):\n    return {x: [x] * 2}\n" * 3000,  # code
])
def test_estimate_counts_dense_text_by_utf8_bytes(card, text):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": text}]}
    assert tokens_of(card, "claude-sonnet-4-6", body) >= len(text.encode())


def test_estimate_base64_text_is_at_least_one_token_per_three_chars(card):
    body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": b64(300_000)}]}
    assert tokens_of(card, "gpt-5-4", body, "openai") >= 100_000


@pytest.mark.parametrize(("model", "caller", "part"), [
    ("claude-sonnet-4-6", "anthropic", {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}),
    ("gpt-5-4", "openai", {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}),
    ("gpt-5-4", "responses", {"type": "input_image", "image_url": "https://x.test/a.png"}),
])
def test_estimate_prices_an_image_by_url_at_the_vendor_max(card, model, caller, part):
    if caller == "responses":
        body = {"model": model, "input": [{"role": "user", "content": [part]}]}
    else:
        body = {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": [part]}]}
    m = card.resolve(model)
    assert tokens_of(card, model, body, caller) >= est.media_cost(m).image
    assert est.MEDIA["anthropic"].image >= 1600 and est.MEDIA["openai"].image >= 765


def test_estimate_prices_a_gemini_image_and_inline_payload_by_the_image_not_its_bytes(card):
    data = b64(600_000)
    body = {"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": data}},
                                                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://b/x"}}]}]}
    got = tokens_of(card, "gemini-3-1-pro", body, "gemini")
    assert 2 * est.MEDIA["google"].image <= got < 2 * est.MEDIA["google"].image + 1000


def _pdf(pages: int) -> str:
    objs = b"".join(b"%d 0 obj << /Type /Page /Parent 1 0 R >> endobj\n" % (i + 2) for i in range(pages))
    return base64.b64encode(b"%PDF-1.4\n1 0 obj << /Type /Pages /Count " + str(pages).encode()
                            + b" >> endobj\n" + objs + b"%%EOF").decode()


def test_estimate_counts_pdf_pages_and_caps_what_it_cannot_count(card):
    def doc(data: str) -> dict:
        return {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}]}]}

    page = est.MEDIA["anthropic"].page
    three = tokens_of(card, "claude-sonnet-4-6", doc(_pdf(3)))
    assert 3 * page <= three < 3 * page + 2000
    assert est.pdf_pages(_pdf(7)) == 7
    hidden = base64.b64encode(b"%PDF-1.5\n1 0 obj << /Type /ObjStm /N 50 >> stream\nx\nendstream").decode()
    assert est.pdf_pages(hidden) is None
    capped = tokens_of(card, "claude-sonnet-4-6", doc(hidden))
    assert capped >= min(est.MEDIA["anthropic"].pages_cap * page, est.INPUT_CAP)
    by_url = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}]}]}
    assert tokens_of(card, "claude-sonnet-4-6", by_url) == capped


def test_estimate_counts_openai_file_inputs(card):
    body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64," + _pdf(2)}}]}]}
    got = tokens_of(card, "gpt-5-4", body, "openai")
    assert 2 * est.MEDIA["openai"].page <= got < 2 * est.MEDIA["openai"].page + 1000


def test_estimate_counts_tools_and_system(card):
    base = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    system = "You are terse. " * 2000
    tool = {"name": "lookup", "description": "d" * 5000, "input_schema": {"type": "object", "properties": {}}}
    plain = tokens_of(card, "claude-sonnet-4-6", base)
    assert tokens_of(card, "claude-sonnet-4-6", {**base, "system": system}) >= plain + len(system)
    assert tokens_of(card, "claude-sonnet-4-6", {**base, "tools": [tool]}) >= plain + 5000 + est.TOOLS_OVERHEAD


def test_estimate_multiplies_the_output_by_the_choices_asked(card):
    m = card.resolve("gemini-3-1-pro")
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 100, "candidateCount": 8}}
    req = gemini.parse_request(body, model=m.id)
    assert est.output_tokens(req, body, m) == 800
    gpt = card.resolve("gpt-5-4")
    chat = {"model": "gpt-5-4", "max_completion_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    req = openai_chat.parse_request(chat)
    assert est.output_tokens(req, {**chat, "n": 3}, gpt) == 150
    assert est.output_tokens(req, {**chat, "best_of": 4}, gpt) == 200
    assert est.choices({"n": True}) == 1 and est.choices({"n": "9"}) == 1


def test_estimate_output_defaults_to_the_model_max_and_counts_thinking(card):
    m = card.resolve("gemini-3-1-pro")
    body = {"contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"maxOutputTokens": 100, "thinkingConfig": {"thinkingBudget": 2000}}}
    assert est.output_tokens(gemini.parse_request(body, model=m.id), body, m) == 2100
    gpt = card.resolve("gpt-5-4")
    chat = {"model": "gpt-5-4", "messages": [{"role": "user", "content": "hi"}]}
    assert est.output_tokens(openai_chat.parse_request(chat), chat, gpt) == gpt.max_output_tokens


def test_estimate_is_an_upper_bound_of_the_charge(card):
    m = card.resolve("claude-sonnet-4-6")
    body = {"model": m.id, "max_tokens": 1000, "messages": [{"role": "user", "content": "x" * 3000}]}
    tokens = tokens_of(card, m.id, body)
    credits = ratecard.estimate_credits(m, tokens, 1000)
    assert credits >= ratecard.chat_cost_credits(m, Usage(cache_write_tokens=3000, output_tokens=1000))
