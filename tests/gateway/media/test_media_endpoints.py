"""Embeddings, rerank, images and audio through the gateway: the openai SDK (or requests) as client.

Each success checks cost header == wallet movement == usage row == the card's
formula; each failure checks the call was free.
"""

from __future__ import annotations

import io
import wave
from decimal import Decimal

import openai
import pytest
import requests

from tests.gateway.media.conftest import UPSTREAM_KEYS, assert_billed, assert_free, ceil_credits, post, price
from tests.gateway.media.fake_media import MP3


def sdk(gw, key) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gw.base_url + "/v1", max_retries=0, timeout=30)


def wav(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return buf.getvalue()


# --- embeddings ------------------------------------------------------------------------------


def test_embeddings_sdk_bills_prompt_tokens_at_card_input_price(media, fresh, fake_media, card):
    key, before = fresh
    text = "lorem ipsum " * 400 + "[fake in=2101]"
    with sdk(media, key) as client:
        raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=[text, "short"])
    emb = raw.parse()
    assert [d.embedding for d in emb.data] == [[0.25, -0.5, 0.125]] * 2
    expected = ceil_credits(2101 * price(card, "text-embedding-3-small", "input"))
    assert expected == 106  # 2101 tokens x $0.05 / 1M
    row = assert_billed(media, raw, key, before, expected)
    assert row["input_tokens"] == 2101 and row["protocol"] == "embeddings"
    assert raw.headers["x-bytespike-provider"] == "openai"
    seen = fake_media.requests_to("/v1/embeddings")
    assert len(seen) == 1 and seen[0].key in UPSTREAM_KEYS and seen[0].json["input"][1] == "short"


def test_embeddings_kind_mismatch_unknown_model_and_no_channel_are_free(media, fresh, fake_media):
    key, before = fresh
    with sdk(media, key) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            client.embeddings.create(model="gpt-5-4", input="hi")
        assert bad.value.code == "invalid_param"
        with pytest.raises(openai.NotFoundError) as missing:
            client.embeddings.create(model="no-such-embedder", input="hi")
        assert missing.value.code == "model_not_found" and "no-such-embedder" in missing.value.message
        with pytest.raises(openai.InternalServerError) as none:
            client.embeddings.create(model="text-embedding-3-large", input="hi")
        assert none.value.status_code == 503 and "no channel configured" in none.value.message
    assert fake_media.seen == []
    assert media.wallet(key) == before


def test_embeddings_upstream_failure_retries_other_key_then_free(media, fresh, fake_media):
    key, before = fresh
    r = post(media, key, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x [fake fail=503]"})
    assert r.status_code == 503 and r.json()["error"]["type"]
    assert "sk-up-media" not in r.text
    assert len(fake_media.requests_to("/v1/embeddings")) == 2  # both keys tried
    assert_free(media, r, key, before)


def test_embeddings_429_on_one_key_is_retried_and_billed_once(media, fresh, fake_media, card):
    key, before = fresh
    fake_media.fail_keys[UPSTREAM_KEYS[0]] = 429
    fake_media.fail_keys[UPSTREAM_KEYS[1]] = 0
    body = {"model": "openai/text-embedding-3-small", "input": "a b c " * 100 + "[fake in=150]"}
    r = post(media, key, "/v1/embeddings", body)
    assert r.status_code == 200, r.text
    assert_billed(media, r, key, before, ceil_credits(150 * price(card, "text-embedding-3-small", "input")))
    assert r.json()["model"] == "text-embedding-3-small"


def test_embeddings_x_api_key_layout_and_dry_run(media, fresh, fake_media):
    key, before = fresh
    h = {"x-api-key": key, "content-type": "application/json", "x-bytespike-dry-run": "1"}
    r = requests.post(media.base_url + "/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hello"},
                      headers=h, timeout=10)
    assert r.status_code == 200 and r.json()["estimated_credits"] == int(r.headers["x-bytespike-estimated-credits"])
    assert fake_media.seen == [] and media.wallet(key) == before
    r = requests.post(media.base_url + "/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"},
                      timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


# --- rerank ------------------------------------------------------------------------------------


@pytest.fixture
def rfresh(media, key):
    """A sub-key for the rerank rows (Jina and Cohere are outside the global preset), and its wallet."""
    r = post(media, key, "/api/v1/keys", {"name": "rerank", "models": [
        "jina-reranker-v2-base-multilingual", "rerank-v3-5"]})
    assert r.status_code in (200, 201), r.text
    sub = r.json()["key"]
    return sub, media.wallet(sub)


DOCS = ["Paris is the capital of France. " * 30, "Berlin has many bridges. " * 40, "Tokyo is large. " * 60]


def test_rerank_per_token_row_bills_reported_tokens(media, rfresh, card):
    key, before = rfresh
    body = {"model": "jina-reranker-v2", "query": "capital of France [fake in=3000]", "documents": DOCS,
            "top_n": 2, "return_documents": True}
    r = post(media, key, "/v1/rerank", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["results"]) == 2 and {"index", "relevance_score", "document"} <= set(out["results"][0])
    expected = ceil_credits(3000 * price(card, "jina-reranker-v2-base-multilingual", "input"))
    row = assert_billed(media, r, key, before, expected)
    assert row["input_tokens"] == 3000 and row["model"] == "jina-reranker-v2-base-multilingual"


def test_rerank_per_search_row_bills_search_units(media, rfresh, card):
    key, before = rfresh
    r = post(media, key, "/v1/rerank", {"model": "rerank-v3-5", "query": "bridges", "documents": DOCS})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["billed_units"]["search_units"] == 1
    expected = ceil_credits(price(card, "rerank-v3-5", "per_search") * 1_000_000)
    assert expected == 2000
    assert_billed(media, r, key, before, expected)


def test_rerank_without_usage_counts_one_unit_per_hundred_documents(media, rfresh, card):
    key, before = rfresh
    docs = [f"doc {i}" for i in range(150)]
    r = post(media, key, "/v1/rerank", {"model": "rerank-v3-5", "query": "q [fake nousage=1]", "documents": docs})
    assert r.status_code == 200, r.text
    assert_billed(media, r, key, before, 2 * ceil_credits(price(card, "rerank-v3-5", "per_search") * 1_000_000))


def test_rerank_bad_body_is_400_and_free(media, rfresh, fake_media):
    key, before = rfresh
    r = post(media, key, "/v1/rerank", {"model": "rerank-v3-5", "query": "q", "documents": []})
    assert r.status_code == 400 and r.json()["error"]["param"] == "documents"
    assert_free(media, r, key, before)
    assert fake_media.seen == []


# --- images ------------------------------------------------------------------------------------


def test_images_generate_bills_images_returned(media, fresh, fake_media, card):
    key, before = fresh
    with sdk(media, key) as client:
        raw = client.images.with_raw_response.generate(model="gpt-image-2", prompt="a red fox [fake images=2]", n=3)
    assert len(raw.parse().data) == 2
    per = ceil_credits(price(card, "gpt-image-2", "per_image") * 1_000_000)
    assert per == 40_000  # the channel's operator price
    assert int(raw.headers["x-bytespike-estimated-credits"]) == 3 * per
    row = assert_billed(media, raw, key, before, 2 * per)
    assert row["output_tokens"] == 2 and row["protocol"] == "images"
    assert fake_media.requests_to("/v1/images/generations")[0].json["n"] == 3


def test_images_edit_forwards_files_and_bills_per_image(media, fresh, fake_media, card):
    key, before = fresh
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 500
    with sdk(media, key) as client:
        raw = client.images.with_raw_response.edit(
            model="gpt-image-2", image=[("a.png", png, "image/png"), ("b.png", png[:100], "image/png")],
            prompt="make it blue", n=2)
    assert len(raw.parse().data) == 2
    assert_billed(media, raw, key, before, 2 * ceil_credits(price(card, "gpt-image-2", "per_image") * 1_000_000))
    seen = fake_media.requests_to("/v1/images/edits")[0]
    assert seen.fields["prompt"] == ["make it blue"] and seen.fields["model"] == ["gpt-image-2"]
    assert sorted(seen.files["image[]"]) == [("a.png", 508), ("b.png", 100)]
    assert seen.key in UPSTREAM_KEYS


def test_images_insufficient_balance_is_402_before_upstream(media, fake_media, poor_key):
    poor = poor_key
    before = media.wallet(poor)
    with sdk(media, poor) as client:
        with pytest.raises(openai.APIStatusError) as err:
            client.images.generate(model="gpt-image-2", prompt="x")
    assert err.value.status_code == 402 and err.value.code == "insufficient_balance"
    assert fake_media.seen == [] and media.wallet(poor) == before


def test_images_model_outside_key_group_is_403(media, key, fake_media):
    r = post(media, key, "/api/v1/keys", {"name": "tts-only", "models": ["tts-1"]})
    assert r.status_code in (200, 201), r.text
    sub = r.json()["key"]
    with sdk(media, sub) as client:
        with pytest.raises(openai.PermissionDeniedError) as err:
            client.images.generate(model="gpt-image-2", prompt="x")
    assert err.value.code == "model_not_in_group"
    assert fake_media.seen == []


# --- audio ---------------------------------------------------------------------------------------


def test_speech_returns_upstream_audio_and_bills_characters(media, fresh, fake_media, card):
    key, before = fresh
    text = "Bonjour, ça va? " * 7  # non-ASCII: characters, not bytes
    with sdk(media, key) as client:
        raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=text)
    assert raw.content == MP3 and raw.headers["content-type"] == "audio/mpeg"
    expected = ceil_credits(len(text) * price(card, "tts-1", "per_million_chars"))
    assert expected == 112 * 15
    row = assert_billed(media, raw, key, before, expected)
    assert row["input_tokens"] == len(text)
    assert fake_media.requests_to("/v1/audio/speech")[0].json["input"] == text


def test_speech_with_a_transcription_model_is_400(media, fresh):
    key, before = fresh
    r = post(media, key, "/v1/audio/speech", {"model": "whisper-1", "voice": "alloy", "input": "hi"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_param"
    assert_free(media, r, key, before)


def test_transcription_whisper_bills_reported_duration(media, fresh, fake_media, card):
    key, before = fresh
    with sdk(media, key) as client:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("talk.wav", wav(20.0), "audio/wav"), prompt="[fake duration=12.5]")
    assert raw.parse().text == "Hello from the fake transcriber."
    expected = ceil_credits(Decimal("12.5") * price(card, "whisper-1", "per_second") * 1_000_000)
    assert expected == 1250
    assert int(raw.headers["x-bytespike-estimated-credits"]) == 2000  # the WAV's 20 s
    row = assert_billed(media, raw, key, before, expected)
    assert row["input_tokens"] == 13
    seen = fake_media.requests_to("/v1/audio/transcriptions")[0]
    assert seen.fields["response_format"] == ["verbose_json"] and seen.files["file"][0][0] == "talk.wav"


def test_transcription_text_format_rendered_from_verbose_json(media, fresh, card):
    key, before = fresh
    with sdk(media, key) as client:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("a.wav", wav(5.0), "audio/wav"), response_format="text",
            prompt="[fake duration=4.2]")
    assert raw.text == "Hello from the fake transcriber.\n"
    assert_billed(media, raw, key, before, ceil_credits(Decimal("4.2") * price(card, "whisper-1", "per_second")
                                                        * 1_000_000))


def test_transcription_without_reported_seconds_bills_the_wav_length(media, fresh, fake_media, card):
    key, before = fresh
    with sdk(media, key) as client:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="gpt-4o-transcribe", file=("b.wav", wav(7.5), "audio/wav"))
    assert raw.parse().text
    expected = ceil_credits(Decimal("7.5") * price(card, "gpt-4o-transcribe", "per_second") * 1_000_000)
    assert_billed(media, raw, key, before, expected)
    assert "response_format" not in fake_media.requests_to("/v1/audio/transcriptions")[0].fields


def test_transcription_upstream_error_is_free(media, fresh):
    key, before = fresh
    with sdk(media, key) as client:
        with pytest.raises(openai.APIStatusError) as err:
            client.audio.transcriptions.with_raw_response.create(
                model="whisper-1", file=("c.wav", wav(1.0), "audio/wav"), prompt="[fake fail=400]")
    assert err.value.status_code == 400
    assert_free(media, err.value.response, key, before)
