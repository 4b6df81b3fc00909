"""``GET /api/pricing``: the public rate card as API.md §5 gives it, cacheable and CORS-open."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import make_app


def test_pricing_shape(client):
    resp = client.get("/api/pricing")
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    body = resp.get_json()
    assert (body["unit"], body["credit_usd"], body["cny_per_usd"]) == ("USD", "0.000001", "7.20")
    assert body["updated_at"].endswith("Z")
    assert len(body["models"]) >= 45
    row = next(m for m in body["models"] if m["id"] == "claude-sonnet-4-6")
    assert {k: row[k] for k in ("vendor", "kind", "input", "cache_write", "cache_read", "output", "per_image",
                                "per_second", "context_window", "status", "protocols")} == {
        "vendor": "anthropic", "kind": "chat", "input": "3.00", "cache_write": "3.75", "cache_read": "0.30",
        "output": "15.00", "per_image": None, "per_second": None, "context_window": 200000,
        "status": "scaffold", "protocols": ["anthropic", "openai"]}
    ds = next(m for m in body["models"] if m["id"] == "deepseek-v4-pro")
    assert ds["input"] == "0.435" and ds["cache_read"] == "0.004"
    echo = next(m for m in body["models"] if m["id"] == "bytespike-echo")
    assert echo["status"] == "demo" and echo["input"] == "0.00"
    for m in body["models"]:
        for f in ("input", "cache_write", "cache_read", "output", "per_image", "per_second", "per_million_chars"):
            assert m[f] is None or (isinstance(m[f], str) and Decimal(m[f]) >= 0)
        assert m["source"] and m["display_name"]


def test_pricing_etag_and_304(client):
    first = client.get("/api/pricing")
    etag = first.headers["ETag"]
    again = client.get("/api/pricing", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert again.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/api/pricing", headers={"If-None-Match": '"other"'}).status_code == 200
    pre = client.options("/api/pricing", headers={"Origin": "https://example.org",
                                                  "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "*"


def test_pricing_channel_prices_make_rows_live(tmp_path):
    chans = tmp_path / "channels.toml"
    chans.write_text(
        '[[channels]]\nname = "anthropic-main"\nprotocol = "anthropic"\nbase_url = "https://127.0.0.1:9"\n'
        'api_keys = ["sk-ant-secret"]\nmodels = ["claude-sonnet-4-6", "house-model"]\n'
        '[channels.prices."claude-sonnet-4-6"]\ninput = "2.70"\ncache_write = "3.375"\ncache_read = "0.27"\n'
        'output = "13.50"\n[channels.prices."house-model"]\ninput = "0.10"\noutput = "0.40"\n'
    )
    app = make_app(f"sqlite:///{tmp_path / 'p.db'}", BYTESPIKE_CHANNELS_FILE=str(chans), BYTESPIKE_CNY_PER_USD="7.1")
    resp = app.test_client().get("/api/pricing")
    body = resp.get_json()
    assert body["cny_per_usd"] == "7.10" and b"sk-ant-secret" not in resp.data
    rows = {m["id"]: m for m in body["models"]}
    assert rows["claude-sonnet-4-6"]["status"] == "live" and rows["claude-sonnet-4-6"]["input"] == "2.70"
    assert rows["claude-sonnet-4-6"]["cache_write"] == "3.375"
    assert rows["house-model"]["status"] == "live" and rows["house-model"]["output"] == "0.40"
    assert rows["gpt-5-4"]["status"] == "scaffold"
    app.extensions["bytespike_db"].dispose()
