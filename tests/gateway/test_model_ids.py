"""One resolver: routing, /v1/models, /api/pricing, the model pages and billing agree on every listed id."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core import catalog, ratecard
from tests.conftest import make_app

PROMPT = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 100}


def every_name() -> list[str]:
    """Every card id, alias and retired name (the demo model comes with its own channel)."""
    names: list[str] = []
    for m in catalog.build([]).card.models:
        if m.status != "demo":
            names += [m.id, *m.aliases, *(n for n, _ in m.retired)]
    return names


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    names = every_name()
    tmp = tmp_path_factory.mktemp("model-ids")
    lines = ['[[channels]]', 'name = "everything"', 'protocol = "openai"', 'base_url = "http://127.0.0.1:9/v1"',
             'api_keys = ["sk-up-secret"]', "models = [" + ", ".join(json.dumps(n) for n in names) + "]"]
    for i, n in enumerate(names):  # every third one at an operator price: those rows are live
        if i % 3 == 0:
            lines += [f"[channels.prices.{json.dumps(n)}]", 'input = "0.70"', 'output = "2.10"', 'per_image = "0.01"']
    chans = tmp / "channels.toml"
    chans.write_text("\n".join(lines) + "\n")
    app = make_app(f"sqlite:///{tmp / 'ids.db'}", BYTESPIKE_CHANNELS_FILE=str(chans))
    with app.app_context():
        from core import accounts
        from core import db as core_db

        org_id, key = accounts.create_account("ids@example.com", 10_000_000_000)
        ids = sorted({m.id for m in catalog.get_card().models})
        with core_db.get_db().engine.begin() as conn:  # this org may call every model
            conn.execute(sa.text("UPDATE orgs SET models = :m WHERE id = :o"), {"m": json.dumps(ids), "o": org_id})
    yield app, names, key.raw
    app.extensions["bytespike_db"].dispose()


def test_model_ids_routing_models_pricing_pages_and_billing_agree(served):
    app, names, key = served
    client = app.test_client()
    auth = {"authorization": f"Bearer {key}"}
    listed = {m["id"]: m for m in client.get("/v1/models", headers=auth).get_json()["data"]}
    priced = {m["id"]: m for m in client.get("/api/pricing").get_json()["models"]}
    cat = catalog.current(app)
    from gateway.routing import get_router

    router = get_router(app)
    for name in names:
        row = cat.resolve(name)
        sid = row.id
        assert router.serves(sid), name
        assert listed[sid]["status"] == priced[sid]["status"] == row.status, name
        assert priced[sid]["input"] == ratecard.price_str(row.input), name
        if names.index(name) % 3 == 0:  # priced by the channel under the name it listed
            assert row.status == "live" and priced[sid]["input"] == "0.70", name
        page = client.get(f"/en/models/{sid}/")
        assert page.status_code == 200, name
        assert f"<code>{sid}</code>" in page.text and f'class="badge badge-{row.status}"' in page.text, name
        if row.input is not None:
            assert f"${priced[sid]['input']}" in page.text, name
        if row.kind != "chat":
            continue
        r = client.post("/v1/chat/completions", json={"model": name, **PROMPT},
                        headers={**auth, "x-bytespike-dry-run": "1"})
        assert r.status_code == 200, (name, r.text)
        body = r.get_json()
        assert body["model"] == sid, name
        p_in = Decimal(priced[sid]["input"])
        p_cw = Decimal(priced[sid]["cache_write"] or priced[sid]["input"])
        expect = math.ceil(body["input_tokens"] * max(p_in, p_cw) + 100 * Decimal(priced[sid]["output"]))
        assert body["estimated_credits"] == expect, name


def test_model_ids_listed_names_are_served_exactly(served):
    app, names, _ = served
    cat = catalog.current(app)
    for name in names:
        sid = cat.resolve(name).id
        assert sid == name or ratecard.normalize(sid) == ratecard.normalize(name), name
