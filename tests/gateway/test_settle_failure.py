"""A settlement that cannot be written: the call is answered as an error, free, never as a success unbilled."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core import accounts, ledger
from tests.conftest import make_app
from tests.gateway.conftest import channels_toml


@pytest.fixture
def client(tmp_path, fake_vendors, monkeypatch):
    for fake in fake_vendors.values():
        fake.reset()
    channels = tmp_path / "channels.toml"
    channels.write_text(channels_toml(fake_vendors))
    app = make_app(f"sqlite:///{tmp_path / 'f.db'}", BYTESPIKE_CHANNELS_FILE=str(channels))
    with app.app_context():
        org, key = accounts.create_account("fails@example.com", 10_000_000)
    real = ledger.close_many

    def refuse_settles(engine, closes):  # the database refuses every settle; releases still go through
        if any(kind == "settle" for _h, kind, _c, _r in closes):
            raise sa.exc.OperationalError("settle", {}, Exception("disk I/O error"))
        return real(engine, closes)

    monkeypatch.setattr(ledger, "close_many", refuse_settles)
    yield app, app.test_client(), key.raw, org
    app.extensions["bytespike_db"].dispose()


BODY = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


def test_a_json_answer_whose_settlement_fails_is_an_error_and_free(client):
    app, http, key, org = client
    r = http.post("/v1/messages", json=BODY, headers={"x-api-key": key})
    assert r.status_code == 500 and r.json["type"] == "error"
    assert "not charged" in r.json["error"]["message"]
    assert r.headers["x-bytespike-cost-credits"] == "0"
    with app.app_context():
        assert ledger.balance(org) == (10_000_000, 0)  # released: nothing held, nothing charged
        assert ledger.verify_ledger() == []


def test_a_stream_whose_settlement_fails_ends_with_an_error_event_not_its_final_event(client):
    app, http, key, org = client
    r = http.post("/v1/messages", json={**BODY, "stream": True}, headers={"x-api-key": key})
    text = r.get_data(as_text=True)
    events = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("event:")]
    assert "message_stop" not in events  # the final event was held back and never sent
    assert events[-1] == "error" and "not charged" in text
    with app.app_context():
        assert ledger.balance(org) == (10_000_000, 0)
        assert ledger.verify_ledger() == []
