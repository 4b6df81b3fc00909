"""Media fixtures: the fake media upstream, and the app under gunicorn with channels pointing at it.

The server helpers (gunicorn, env, accounts, wallet and usage readers) are the
gateway tests', from ``tests.gateway.conftest``; only the channels file differs.
"""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest
import requests

from tests.gateway.conftest import Gateway, Servers
from tests.gateway.media.fake_media import FakeMedia

UPSTREAM_KEYS = ("sk-up-media-AAAA1111", "sk-up-media-BBBB2222")
# Operator prices for the fields a channel may set; the rest (per_million_chars, per_search) come from the card.
CHANNEL_PRICES = {
    "text-embedding-3-small": {"input": "0.05"},
    "gpt-image-2": {"per_image": "0.04"},
    "sora-2": {"per_second": "0.12"},
}
MODELS = ["text-embedding-3-small", "jina-reranker-v2-base-multilingual", "rerank-v3-5", "gpt-image-2", "tts-1",
          "whisper-1", "gpt-4o-transcribe", "sora-2"]


def channels_toml(fake: FakeMedia) -> str:
    keys = ", ".join(f'"{k}"' for k in UPSTREAM_KEYS)
    models = ", ".join(f'"{m}"' for m in MODELS)
    out = (f'[[channels]]\nname = "media-main"\nprotocol = "openai"\nbase_url = "{fake.base_url}"\n'
           f'api_keys = [{keys}]\nmodels = [{models}]\ntimeout_s = 5\nconnect_timeout_s = 2\n'
           '[channels.model_map]\n"sora-2" = "sora-2-upstream"\n')
    for model, prices in CHANNEL_PRICES.items():
        out += f'[channels.prices."{model}"]\n' + "".join(f'{k} = "{v}"\n' for k, v in prices.items())
    return out


@pytest.fixture(scope="session")
def fake_media():
    fake = FakeMedia()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def media_servers(fake_media, tmp_path_factory):
    with Servers("media", channels_toml(fake_media), {}, tmp_path_factory) as servers:
        yield servers


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def media_server(request, media_servers):
    """This process's media server on the test's backend (started on first use, kept)."""
    return media_servers.get(request.param)


@pytest.fixture
def media(media_server, fake_media):
    """The session's server with the fake upstream's records cleared."""
    fake_media.reset()
    yield media_server
    fake_media.reset()


@pytest.fixture(scope="module")
def key(media_server) -> str:
    """A well-funded account; tests compare its wallet before and after."""
    return media_server.remembered("key", lambda: media_server.account(credits=100_000_000))


@pytest.fixture
def fresh(media, key):
    """(key, wallet before the test); nothing may be reserved at the start."""
    before = media.wallet(key)
    assert before[1] == 0
    return key, before


@pytest.fixture(scope="module")
def poor_key(media_server) -> str:
    """An account with 1,000 credits: too little for any media call here."""
    return media_server.remembered("poor_key", lambda: media_server.account(credits=1000))


@pytest.fixture(scope="module")
def other_key(media_server) -> str:
    """A second org."""
    return media_server.remembered("other_key", lambda: media_server.account(credits=10_000_000))


@pytest.fixture(scope="module")
def card(media_server) -> dict[str, dict[str, Any]]:
    """The rate card as the running server publishes it (operator prices applied)."""
    def read() -> dict[str, dict[str, Any]]:
        rows = requests.get(media_server.base_url + "/api/pricing", timeout=10).json()["models"]
        return {r["id"]: r for r in rows}

    return media_server.remembered("card", read)


def ceil_credits(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_CEILING))


def price(card: dict[str, dict[str, Any]], model: str, fld: str) -> Decimal:
    return Decimal(card[model][fld])


def post(gw: Gateway, key: str, path: str, body: Any, **headers: str) -> requests.Response:
    h = {"authorization": f"Bearer {key}", "content-type": "application/json", **headers}
    return requests.post(gw.base_url + path, data=json.dumps(body), headers=h, timeout=30)


def assert_billed(gw: Gateway, resp: requests.Response, key: str, before: tuple[int, int], expected: int) -> dict:
    """Cost header == settled wallet movement == usage row == ``expected``; returns the usage row."""
    assert int(resp.headers["x-bytespike-cost-credits"]) == expected
    assert all(h in resp.headers for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"))
    assert resp.headers["x-bytespike-provider"] and float(resp.headers["x-bytespike-overhead-ms"]) >= 0
    assert resp.headers["x-bytespike-cost-usd"] == format(Decimal(expected) / 1_000_000, ".6f")
    assert int(resp.headers["x-bytespike-estimated-credits"]) >= expected
    assert gw.wallet(key) == (before[0] - expected, 0)
    row = gw.usage(resp.headers["x-bytespike-request-id"])
    assert row is not None and row["cost_credits"] == expected and bool(row["billed"]) is True
    return row


def assert_free(gw: Gateway, resp: requests.Response, key: str, before: tuple[int, int]) -> None:
    """An error: envelope and cost headers present, cost 0, wallet untouched."""
    assert resp.headers["x-bytespike-cost-credits"] == "0"
    assert "X-Org-Quota-Remaining-Credits" in resp.headers
    assert gw.wallet(key) == (before[0], 0)
    row = gw.usage(resp.headers["x-bytespike-request-id"])
    assert row is None or (row["cost_credits"] == 0 and not row["billed"])
