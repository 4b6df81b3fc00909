"""Operator commands through Flask's CLI runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from core import db as core_db
from core import keys, ledger
from core.errors import AuthError
from core.models.channels import Channel
from core.models.ledger import Reservation, Wallet

KEY = re.compile(r"^sk-byts-[A-Za-z0-9_-]{43}$")


def last_line(result) -> str:
    return result.output.strip().splitlines()[-1]


def test_cli_init_db_is_idempotent_and_mirrors_channels(tmp_path, db_url):
    from tests.conftest import make_app

    chans = tmp_path / "channels.toml"
    chans.write_text('[[channels]]\nname = "ds"\nprotocol = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
                     'api_keys = ["sk-secret-1", "sk-secret-2"]\nmodels = ["deepseek-v4-flash"]\n')
    app = make_app(db_url, BYTESPIKE_CHANNELS_FILE=str(chans))
    runner = app.test_cli_runner()
    for _ in range(2):
        res = runner.invoke(args=["init-db"])
        assert res.exit_code == 0, res.output
        assert "database ready" in res.output and "sk-secret" not in res.output
    with app.app_context(), core_db.get_db().engine.connect() as conn:
        rows = conn.execute(sa.select(Channel.__table__)).all()
    assert [(r.name, r.key_count, r.models) for r in rows] == [("ds", 2, ["deepseek-v4-flash"])]
    app.extensions["bytespike_db"].dispose()


def test_cli_create_account_and_key(dapp):
    runner = dapp.test_cli_runner()
    res = runner.invoke(args=["create-account", "--email", "ops@example.com", "--credits", "2500000",
                              "--org", "Ops", "--preset", "china", "--tier", "pro"])
    assert res.exit_code == 0, res.output
    master = last_line(res)
    assert KEY.match(master)
    p = keys.authenticate(master, "127.0.0.1")
    assert (p.kind, p.org_name, p.preset, p.tier) == ("master", "Ops", "china", "pro")
    assert ledger.balance(p.org_id) == (2_500_000, 0)

    res = runner.invoke(args=["create-key", "--email", "ops@example.com", "--name", "ci", "--quota-credits", "1000",
                              "--models", "glm-5.1,deepseek-chat", "--rpm", "60", "--tpm", "100000",
                              "--rate-limit-5h", "100", "--rate-limit-1d", "200", "--rate-limit-7d", "300",
                              "--expires-in-days", "30"])
    assert res.exit_code == 0, res.output
    sub = keys.authenticate(last_line(res), "127.0.0.1")
    assert (sub.kind, sub.parent_id, sub.org_id, sub.quota_credits, sub.rpm, sub.tpm) == (
        "sub", p.key_id, p.org_id, 1000, 60, 100000)
    assert sub.models == ("glm-5-1", "deepseek-v4-flash")
    assert (sub.rate_limit_5h, sub.rate_limit_1d, sub.rate_limit_7d) == (100, 200, 300)
    assert sub.expires_at is not None


def test_cli_errors_exit_nonzero(dapp):
    runner = dapp.test_cli_runner()
    res = runner.invoke(args=["create-key", "--email", "nobody@example.com", "--name", "x"])
    assert res.exit_code == 1 and "no live master key" in res.output
    runner.invoke(args=["create-account", "--email", "a@example.com"])
    res = runner.invoke(args=["create-key", "--email", "a@example.com", "--name", "x", "--models", "nope-1"])
    assert res.exit_code == 1 and "unknown model" in res.output


def test_cli_verify_ledger_detects_drift(dapp):
    runner = dapp.test_cli_runner()
    runner.invoke(args=["create-account", "--email", "v@example.com", "--credits", "1000"])
    res = runner.invoke(args=["verify-ledger"])
    assert res.exit_code == 0 and "consistent" in res.output
    w = Wallet.__table__
    with core_db.get_db().engine.begin() as conn:
        conn.execute(w.update().values(balance_credits=999_999))
    res = runner.invoke(args=["verify-ledger"])
    assert res.exit_code == 1 and "DRIFT" in res.output and "999999" in res.output


def test_cli_expire_reservations(dapp):
    runner = dapp.test_cli_runner()
    raw = last_line(runner.invoke(args=["create-account", "--email", "e@example.com", "--credits", "1000"]))
    p = keys.authenticate(raw, "127.0.0.1")
    ledger.reserve(p, "req_stale", 400)
    res = runner.invoke(args=["expire-reservations", "--older-than", "3600"])
    assert res.exit_code == 0 and "released 0" in res.output
    res = runner.invoke(args=["expire-reservations", "--older-than", "0"])
    assert res.exit_code == 0 and "released 1" in res.output
    with core_db.get_db().engine.connect() as conn:
        state = conn.execute(sa.select(Reservation.__table__.c.state)).scalar()
    assert state == "released" and ledger.balance(p.org_id) == (1000, 0)


def test_cli_demo_account_is_idempotent_and_keys_work(dapp):
    runner = dapp.test_cli_runner()
    first = runner.invoke(args=["demo-account"])
    second = runner.invoke(args=["demo-account"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert "bytespike-echo" in first.output and "demo" in first.output.lower()
    k1, k2 = last_line(first), last_line(second)
    assert KEY.match(k1) and KEY.match(k2) and k1 != k2
    # Only the key printed last works: each run revokes the demo keys before it.
    with pytest.raises(AuthError):
        keys.authenticate(k1, "127.0.0.1")
    p1 = p2 = keys.authenticate(k2, "127.0.0.1")
    keys.check_model(p1, "bytespike-echo")
    assert ledger.balance(p1.org_id)[0] == 1_000_000  # the free credits are granted once
    # The printed e-mail and password open the console.
    login = re.search(r"e-mail (\S+)  password (\S+)", second.output)
    assert login and "password" not in first.output.split("Demo API key")[1]
    client = dapp.test_client()
    page = client.get("/en/console/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/en/console/login", data={"csrf_token": token, "email": login[1], "password": login[2]})
    assert r.status_code == 302 and "/console/dashboard" in r.headers["Location"]
    hold = ledger.reserve(p2, "req_demo", 0)
    assert ledger.settle(hold, 0, ledger.UsageRecord("req_demo", p2.org_id, p2.key_id, p2.member_id,
                                                     "bytespike-echo", "bytespike", "bytespike-echo", "anthropic",
                                                     False, 200)) == 0
