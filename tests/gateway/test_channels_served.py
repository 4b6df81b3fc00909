"""A served gateway and the channels file: old and new ids side by side, reloads by mtime and by SIGHUP."""

from __future__ import annotations

import os
import signal
import time
import uuid

import anthropic
import openai
import pytest
import requests

from tests.conftest import free_port
from tests.gateway.conftest import Gateway, _clean_redis, server_env, start_gunicorn, stop_gunicorn
from tests.gateway.fakes import FakeVendor

TEXT = "Hello from the fake upstream, one word at a time."
PRICES = {"gpt-4o": ("2.00", "8.00"), "gpt-5-4": ("1.25", "10.00"), "gpt-4o-mini": ("0.15", "0.60")}


def channels(fake: FakeVendor, models: list[str], name: str = "openai-main") -> str:
    out = (f'[[channels]]\nname = "{name}"\nprotocol = "openai"\nbase_url = "{fake.base_url}"\n'
           f'api_keys = ["sk-up-ids-AAAA1111"]\nmodels = [{", ".join(chr(34) + m + chr(34) for m in models)}]\n'
           'timeout_s = 5\nconnect_timeout_s = 2\n')
    for m in models:
        inp, outp = PRICES[m]
        out += f'[channels.prices."{m}"]\ninput = "{inp}"\noutput = "{outp}"\n'
    return out


def cost(model: str, inp: int, out: int) -> int:
    from decimal import ROUND_CEILING, Decimal

    p_in, p_out = (Decimal(v) for v in PRICES[model])
    return int((inp * p_in + out * p_out).to_integral_value(rounding=ROUND_CEILING))


@pytest.fixture(scope="module")
def fake():
    f = FakeVendor("openai")
    f.start()
    yield f
    f.stop()


def serve(tmp_path_factory, fake, *, check_s: str, workers: int):
    tmp = tmp_path_factory.mktemp("served-channels")
    chans = tmp / "channels.toml"
    chans.write_text(channels(fake, ["gpt-4o", "gpt-5-4"]))
    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    env = server_env(f"sqlite:///{tmp / 'bytespike.db'}", chans, prefix)
    env["BYTESPIKE_CHANNELS_CHECK_S"] = check_s
    port = free_port()
    gw = Gateway(f"http://127.0.0.1:{port}", env["BYTESPIKE_DATABASE_URL"], env, tmp / "gunicorn.log",
                 {"openai": fake})
    gw.cli("init-db")
    gw.proc = start_gunicorn(env, port, gw.log_path, workers=workers)
    return gw, chans, prefix


@pytest.fixture(scope="module")
def watched(tmp_path_factory, fake):
    """A server that looks at the channels file's mtime every 0.2 s."""
    gw, chans, prefix = serve(tmp_path_factory, fake, check_s="0.2", workers=1)
    yield gw, chans
    stop_gunicorn(gw.proc)
    _clean_redis(prefix)


@pytest.fixture(scope="module")
def hupped(tmp_path_factory, fake):
    """A server with two workers that only a SIGHUP makes read the channels file again."""
    gw, chans, prefix = serve(tmp_path_factory, fake, check_s="3600", workers=2)
    yield gw, chans
    stop_gunicorn(gw.proc)
    _clean_redis(prefix)


def ask(gw: Gateway, key: str, model: str) -> requests.Response:
    return requests.post(gw.base_url + "/v1/chat/completions", timeout=30, headers={"authorization": f"Bearer {key}"},
                         json={"model": model, "messages": [{"role": "user", "content": "hi [fake in=100 out=10]"}]})


def until(check, what: str, deadline_s: float = 60.0) -> None:
    """Poll ``check`` until it holds (the machine may be busy: a generous deadline, short steps)."""
    end = time.time() + deadline_s
    while time.time() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_old_and_new_ids_side_by_side_each_served_as_itself(watched, fake):
    gw, _ = watched
    key = gw.account(credits=100_000_000)
    client = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0)
    ant = anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0)
    for model in ("gpt-4o", "gpt-5-4"):
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi [fake in=100 out=10]"}])
        answer = raw.parse()
        assert answer.model == model and answer.choices[0].message.content == TEXT
        assert fake.seen[-1].body["model"] == model
        assert int(raw.headers["x-bytespike-cost-credits"]) == cost(model, 100, 10)
        row = gw.usage(raw.headers["x-bytespike-request-id"])
        assert row["model"] == model and row["cost_credits"] == cost(model, 100, 10)
        msg = ant.messages.create(model=model, max_tokens=50,
                                  messages=[{"role": "user", "content": "hi [fake in=100 out=10]"}])
        assert msg.model == model and fake.seen[-1].body["model"] == model
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o" in ids and "gpt-5-4" in ids
    pricing = {m["id"]: m for m in requests.get(gw.base_url + "/api/pricing", timeout=30).json()["models"]}
    assert (pricing["gpt-4o"]["status"], pricing["gpt-4o"]["input"]) == ("live", "2.00")
    assert (pricing["gpt-5-4"]["status"], pricing["gpt-5-4"]["input"]) == ("live", "1.25")


def test_changed_file_is_picked_up_and_a_broken_one_keeps_the_running_config(watched, fake):
    gw, chans = watched
    key = gw.account(credits=100_000_000)
    assert ask(gw, key, "gpt-4o-mini").status_code == 503  # on the card, no channel yet
    chans.write_text(channels(fake, ["gpt-4o", "gpt-5-4", "gpt-4o-mini"]))
    until(lambda: ask(gw, key, "gpt-4o-mini").status_code == 200, "the new channel model")
    r = ask(gw, key, "gpt-4o-mini")
    assert r.json()["model"] == "gpt-4o-mini" and int(r.headers["x-bytespike-cost-credits"]) == cost("gpt-4o-mini", 100, 10)
    assert requests.get(gw.base_url + "/api/pricing", timeout=30).json()["models"]
    broken = channels(fake, ["gpt-4o", "gpt-5-4", "gpt-4o-mini"]).replace("timeout_s = 5", "timeout_s = -5")
    chans.write_text(broken)
    line = broken.splitlines().index("timeout_s = -5") + 1
    # a worker looks at the file when a call comes in
    until(lambda: ask(gw, key, "gpt-4o").ok and f"{chans}:{line}: channels[0].timeout_s" in gw.log_text(),
          "the reload error in the log")
    for model in ("gpt-4o", "gpt-4o-mini"):
        assert ask(gw, key, model).status_code == 200
    assert "sk-up-ids" not in gw.log_text()


def test_sighup_reloads_the_channels_file_and_a_broken_one_keeps_the_last_good(hupped, fake):
    gw, chans = hupped
    key = gw.account(credits=100_000_000)
    chans.write_text(channels(fake, ["gpt-4o", "gpt-5-4", "gpt-4o-mini"]))
    time.sleep(1.0)
    assert ask(gw, key, "gpt-4o-mini").status_code == 503  # no mtime watching here: only a reload reads it
    os.kill(gw.proc.pid, signal.SIGHUP)
    until(lambda: all(ask(gw, key, "gpt-4o-mini").status_code == 200 for _ in range(4)), "the reloaded workers")
    unpriced = channels(fake, ["gpt-4o", "gpt-4o-mini"]) + '[[channels]]\nname = "x"\nprotocol = "openai"\n' \
        'base_url = "http://127.0.0.1:9/v1"\napi_keys = ["k"]\nmodels = ["house-model"]\n'
    chans.write_text(unpriced)
    line = unpriced.splitlines().index('models = ["house-model"]') + 1
    os.kill(gw.proc.pid, signal.SIGHUP)
    until(lambda: f"{chans}:{line}: channels[1].models: model 'house-model'" in gw.log_text(), "the error in the log")
    time.sleep(2.0)  # the reloaded workers are up (on the last good file)
    for _ in range(6):
        assert ask(gw, key, "gpt-5-4").status_code == 200
        assert ask(gw, key, "gpt-4o-mini").status_code == 200
    assert gw.proc.poll() is None
