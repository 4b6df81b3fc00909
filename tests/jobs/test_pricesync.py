"""The nightly rate-card refresh: sources diffed against scaffold rows, live rows untouched, /api/pricing's time."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import catalog, pricesync
from jobs import work
from tests.conftest import free_port, make_app

CHANNELS = """
[[channels]]
name = "openai-main"
protocol = "openai"
base_url = "https://api.openai.com/v1"
api_keys = ["sk-test-AAAA"]
models = ["gpt-5-4"]
[channels.prices."gpt-5-4"]
input = "2.00"
output = "12.00"
"""


@pytest.fixture
def served(tmp_path):
    """A JSON price source on a URL (OpenAI's rows) and one in a file (DeepSeek's), and an app reading both."""
    openai = {"models": {"gpt-5-5": {"input": "4.00", "output": "30.00"},  # input changed
                         "gpt-5-4-mini": {"input": "0.75", "output": "4.50"},  # unchanged
                         "gpt-5-4": {"input": "9.99", "output": "99.99"},  # live: the operator's price stands
                         "deepseek-v4-pro": {"input": "0.01"}}}  # another vendor's row: not this source's
    body = json.dumps(openai).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/openai.json"
    deepseek = tmp_path / "deepseek.json"
    deepseek.write_text(json.dumps({"models": {"deepseek-v4-pro": {"output": "0.42"}}}))
    sources = tmp_path / "price-sources.toml"
    sources.write_text(f'[sources]\nopenai = "{url}"\ndeepseek = "{deepseek}"\n')
    channels = tmp_path / "channels.toml"
    channels.write_text(CHANNELS)
    refresh = tmp_path / "ratecard-refresh.json"
    app = make_app(f"sqlite:///{tmp_path / 'bytespike.db'}", BYTESPIKE_PRICE_SOURCES=str(sources),
                   BYTESPIKE_PRICE_REFRESH_FILE=str(refresh), BYTESPIKE_CHANNELS_FILE=str(channels),
                   BYTESPIKE_CHANNELS_CHECK_S="0")
    with app.app_context():
        yield app, refresh, url
    server.shutdown()
    app.extensions["bytespike_db"].dispose()


def pricing(app):
    return app.test_client().get("/api/pricing").get_json()


def test_refresh_records_changed_scaffold_rows_only(served):
    app, refresh, url = served
    card = pricing(app)
    first = {m["id"]: m for m in card["models"]}
    assert first["gpt-5-4"]["status"] == "live" and first["gpt-5-4"]["input"] == "2.00"
    assert work.ratecard_refresh() == 2
    data = json.loads(refresh.read_text())
    rows = data["rows"]
    assert set(rows) == {"gpt-5-5", "deepseek-v4-pro"}
    assert rows["gpt-5-5"] == {"prices": {"input": "4.00", "output": "30.00"}, "source": url,
                               "updated_at": data["refreshed_at"]}
    assert rows["deepseek-v4-pro"]["prices"] == {"output": "0.42"}

    after = pricing(app)
    models = {m["id"]: m for m in after["models"]}
    assert models["gpt-5-5"]["input"] == "4.00" and models["gpt-5-5"]["source"] == url
    assert models["deepseek-v4-pro"]["output"] == "0.42"
    assert models["deepseek-v4-pro"]["input"] == first["deepseek-v4-pro"]["input"]  # not its source's to change
    assert models["gpt-5-4"]["input"] == "2.00" and models["gpt-5-4"]["status"] == "live"
    assert models["gpt-5-4-mini"] == first["gpt-5-4-mini"]
    assert after["updated_at"] == data["refreshed_at"]


def test_refresh_again_keeps_each_rows_own_time(served):
    app, refresh, _url = served
    work.ratecard_refresh()
    first = json.loads(refresh.read_text())
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first["rows"]["gpt-5-5"]["updated_at"] = old
    first["refreshed_at"] = old
    pricesync.write_overlay(refresh, first)
    catalog.current(app)  # picks the edited file up
    assert work.ratecard_refresh() == 0  # nothing differs from what is served now
    second = json.loads(refresh.read_text())
    assert second["rows"]["gpt-5-5"]["updated_at"] == old  # unchanged row: its own time stays
    assert second["refreshed_at"] > old
    assert pricing(app)["updated_at"] == second["refreshed_at"]


def test_failing_source_is_skipped_and_logged(served, tmp_path, caplog):
    app, refresh, _url = served
    sources = tmp_path / "bad-sources.json"
    sources.write_text(json.dumps({"sources": {"openai": str(tmp_path / "missing.json"),
                                               "deepseek": str(tmp_path / "deepseek.json")}}))
    app.config["BYTESPIKE_PRICE_SOURCES"] = str(sources)
    assert work.ratecard_refresh() == 1
    assert "missing.json" in caplog.text
    assert set(json.loads(refresh.read_text())["rows"]) == {"deepseek-v4-pro"}


def test_no_sources_leaves_the_card_and_its_time_alone(tmp_path):
    card = catalog.get_card(make_app(f"sqlite:///{tmp_path / 'x.db'}"))
    assert pricesync.refresh(card, None, tmp_path / "r.json", dt.datetime(2026, 1, 1)) == 0
    assert not (tmp_path / "r.json").exists()


def test_diff_never_touches_live_or_demo_rows():
    from dataclasses import replace

    from core.ratecard import RateCard, load_file

    rows, _ = load_file()
    rows = [replace(r, status="live") if r.id == "gpt-5-5" else r for r in rows]
    changed = pricesync.diff(RateCard(rows), "openai", {"gpt-5-5": {"input": Decimal("1")},
                                                        "gpt-5-4": {"input": Decimal("1")}})
    assert list(changed) == ["gpt-5-4"]
