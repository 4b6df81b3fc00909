"""Routing through the whole stack: gunicorn (4 gevent workers, Redis) in front of fake OpenAI upstreams.

Each channel has keys of its own, so the fake that answered and the key it
saw tell which (channel, key) the gateway chose.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import openai
import pytest
import requests

from tests.conftest import free_port
from tests.gateway.conftest import Gateway, _clean_redis, server_env, start_gunicorn, stop_gunicorn
from tests.gateway.fakes import FakeVendor

ANSWER = "Hello from the fake upstream, one word at a time."
SHARED = "gpt-5-4-mini"  # two channels that one noisy tenant shares with a quiet one
DOWN = "deepseek-v3-2"  # two channels that go down together
PRICE = '[channels.prices."{m}"]\ninput = "1.00"\ncache_write = "1.00"\ncache_read = "0.10"\noutput = "2.00"\n'


def channel(name: str, fake: FakeVendor, keys: list[str], model: str, *, priority: int = 0, timeout: float = 5) -> str:
    ks = ", ".join(f'"{k}"' for k in keys)
    return (f'[[channels]]\nname = "{name}"\nprotocol = "openai"\nbase_url = "{fake.base_url}"\n'
            f'api_keys = [{ks}]\nmodels = ["{model}"]\npriority = {priority}\ntimeout_s = {timeout}\n'
            f'connect_timeout_s = 1\n' + PRICE.format(m=model))


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    """One gateway, four workers, Redis-shared routing state; fakes named by role."""
    fakes = {n: FakeVendor("openai") for n in ("primary", "backup", "pool", "slow", "sticky", "shared", "down")}
    for f in fakes.values():
        f.start()
    tmp = tmp_path_factory.mktemp("routing-e2e")
    channels = tmp / "channels.toml"
    channels.write_text("\n".join([
        channel("primary", fakes["primary"], ["sk-rt-primary"], "gpt-5-4"),
        channel("backup", fakes["backup"], ["sk-rt-backup"], "gpt-5-4", priority=1),
        channel("pool", fakes["pool"], ["sk-rt-pool-1", "sk-rt-pool-2"], "deepseek-v4-flash"),
        channel("slow", fakes["slow"], ["sk-rt-slow"], "deepseek-v4-pro", timeout=1),
        channel("fast", fakes["backup"], ["sk-rt-fast"], "deepseek-v4-pro", priority=1),
        channel("stick-a", fakes["sticky"], ["sk-rt-sa-1", "sk-rt-sa-2"], "claude-sonnet-4-6"),
        channel("stick-b", fakes["sticky"], ["sk-rt-sb-1", "sk-rt-sb-2"], "claude-sonnet-4-6"),
        channel("shared-a", fakes["shared"], ["sk-rt-sh-a"], SHARED),
        channel("shared-b", fakes["shared"], ["sk-rt-sh-b"], SHARED),
        channel("down-a", fakes["down"], ["sk-rt-dn-a"], DOWN),
        channel("down-b", fakes["down"], ["sk-rt-dn-b"], DOWN, priority=1),
    ]))
    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    db_url = f"sqlite:///{tmp / 'bytespike.db'}"
    env = server_env(db_url, channels, prefix)
    port = free_port()
    gw = Gateway(f"http://127.0.0.1:{port}", db_url, env, tmp / "gunicorn.log", fakes)
    gw.cli("init-db")
    gw.proc = start_gunicorn(env, port, gw.log_path, workers=4)
    gw.key = gw.account(credits=500_000_000)  # type: ignore[attr-defined]
    yield gw
    stop_gunicorn(gw.proc)
    for f in fakes.values():
        f.stop()
    _clean_redis(prefix)


@pytest.fixture
def gw(routed):
    for f in routed.fakes.values():
        f.reset()
    return routed


@pytest.fixture
def client(gw):
    """Make SDK clients for this test; closed afterwards so no idle connection holds a worker."""
    made: list[openai.OpenAI] = []

    def make(*, fresh_connections: bool = False) -> openai.OpenAI:
        # "Connection: close": each call opens a new connection, so calls spread over the workers
        headers = {"Connection": "close"} if fresh_connections else None
        c = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=gw.key, max_retries=0, default_headers=headers)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def ask(c: openai.OpenAI, model: str, **kw) -> str:
    r = c.chat.completions.create(model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}], **kw)
    assert r.choices[0].message.content == ANSWER
    return r.choices[0].message.content


def circuits(gw) -> dict[str, str]:
    st = requests.get(gw.base_url + "/api/status", timeout=5)
    assert st.headers["Access-Control-Allow-Origin"] == "*"
    return {c["name"]: c["circuit"] for c in st.json()["channels"]}


def test_routing_failing_channel_is_skipped_then_probed_back(gw, client):
    primary, backup = gw.fakes["primary"], gw.fakes["backup"]
    primary.set(fail=500)
    c = client()
    for _ in range(20):
        ask(c, "gpt-5-4")  # every call succeeds: the backup answers
    tried = len(primary.seen)
    assert 5 <= tried <= 17  # five straight failures trip it (at most four per other worker before that)
    for _ in range(10):
        ask(c, "gpt-5-4")
    assert len(primary.seen) == tried  # open: no more traffic
    assert circuits(gw)["primary"] in ("open", "half_open")
    body = requests.get(gw.base_url + "/api/status", timeout=5).text
    assert "sk-rt" not in body and "127.0.0.1" not in body

    primary.set(fail=0)  # the upstream recovers; after the 10 s cooldown one probe finds out
    deadline = time.time() + 16
    while len(primary.seen) == tried and time.time() < deadline:
        ask(c, "gpt-5-4")
        time.sleep(0.25)
    assert len(primary.seen) == tried + 1
    time.sleep(0.3)  # other workers' cached circuit flags catch up
    before = len(backup.seen)
    for _ in range(5):
        ask(c, "gpt-5-4")
    assert len(primary.seen) == tried + 6 and len(backup.seen) == before  # closed: priority 0 again
    time.sleep(1.1)  # the status document is cached for a second
    assert circuits(gw)["primary"] == "closed"


def test_routing_retry_after_moves_traffic_to_other_key(gw, client):
    pool = gw.fakes["pool"]
    pool.set(key="sk-rt-pool-1", fail=429, retry_after="2")
    c = client()
    # The 2 s cooldown starts between the send of the call that met the 429 and its answer (which
    # a busy machine can delay): it surely runs from ``sent`` + 2 s and surely ends by ``answered`` + 2 s.
    sent = answered = None
    while answered is None:
        n, t = len(pool.seen), time.time()
        ask(c, "deepseek-v4-flash")
        if "sk-rt-pool-1" in [s.key for s in pool.seen[n:]]:
            sent, answered = t, time.time()
    pool.set(key="sk-rt-pool-1", fail=0)  # it would answer now, but asked us to wait 2 s
    time.sleep(0.3)  # every worker's cached flags have caught up
    while time.time() < sent + 1.8:
        n = len(pool.seen)
        ask(c, "deepseek-v4-flash")
        assert [s.key for s in pool.seen[n:]] == ["sk-rt-pool-2"]
    time.sleep(max(0.0, answered + 2.4 - time.time()))
    n = len(pool.seen)
    for _ in range(8):
        ask(c, "deepseek-v4-flash")
    assert {s.key for s in pool.seen[n:]} == {"sk-rt-pool-1", "sk-rt-pool-2"}


def test_routing_hanging_channel_times_out_and_moves_on(gw, client):
    slow, backup = gw.fakes["slow"], gw.fakes["backup"]
    slow.set(hang=4)
    t0 = time.time()
    ask(client(), "deepseek-v4-pro")
    took = time.time() - t0
    assert [s.key for s in slow.seen] == ["sk-rt-slow"]
    assert [s.key for s in backup.seen] == ["sk-rt-fast"]
    assert 0.9 <= took < 3.0  # the slow channel's 1 s timeout, then the fast one


def test_routing_sticky_session_one_key_across_workers(gw, client):
    sticky = gw.fakes["sticky"]
    c = client(fresh_connections=True)
    ask(c, "claude-sonnet-4-6", user="sess-42")
    home = sticky.seen[-1].key
    sticky.set(key=home, fail=429, retry_after="1")  # push the session off its natural key once
    ask(c, "claude-sonnet-4-6", user="sess-42")
    pinned = sticky.seen[-1].key
    assert pinned != home
    sticky.set(key=home, fail=0)
    time.sleep(1.3)
    n = len(sticky.seen)
    for _ in range(100):
        ask(c, "claude-sonnet-4-6", user="sess-42")
    assert {s.key for s in sticky.seen[n:]} == {pinned}  # every worker follows the pin kept in Redis
    n = len(sticky.seen)
    for _ in range(20):
        ask(c, "claude-sonnet-4-6")
    assert len({s.key for s in sticky.seen[n:]}) >= 2  # without a session, calls spread over the pool


def test_routing_fallback_model_when_every_channel_fails(gw, client):
    """Last in this module: it leaves gpt-5-4's channels failing."""
    primary, backup, pool = gw.fakes["primary"], gw.fakes["backup"], gw.fakes["pool"]
    primary.set(fail=500)
    backup.set(fail=503)
    raw = client().chat.completions.with_raw_response.create(
        model="gpt-5-4", max_tokens=20, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-bytespike-fallback": "deepseek-v4-flash"})
    assert raw.headers["x-bytespike-fallback-from"] == "gpt-5-4"
    assert raw.parse().choices[0].message.content == ANSWER
    assert len(pool.seen) == 1 and pool.seen[0].body["model"] == "deepseek-v4-flash"
    assert primary.seen and backup.seen  # both were tried first


class Load:
    """Callers in threads, each call on a fresh connection (so calls spread over the workers)."""

    def __init__(self, gw, key: str, prompt: str, threads: int) -> None:
        self.outcomes: list[tuple[float, int]] = []  # (when, HTTP status)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(gw, key, prompt), daemon=True)
                         for _ in range(threads)]

    def _run(self, gw, key: str, prompt: str) -> None:
        c = openai.OpenAI(base_url=gw.base_url + "/v1", api_key=key, max_retries=0, timeout=60,
                          default_headers={"Connection": "close"})
        while not self._stop.is_set():
            try:
                r = c.chat.completions.create(model=SHARED, max_tokens=20,
                                              messages=[{"role": "user", "content": prompt}])
                status = 200 if r.choices[0].message.content == ANSWER else 0
            except openai.APIStatusError as exc:
                status = exc.status_code
            except openai.APIError:
                status = -1
            with self._lock:
                self.outcomes.append((time.time(), status))
        c.close()

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(120)

    def between(self, t0: float, t1: float) -> list[int]:
        with self._lock:
            return [s for when, s in self.outcomes if t0 <= when < t1]


def success(statuses: list[int]) -> float:
    return sum(s == 200 for s in statuses) / len(statuses)


def test_routing_noisy_tenant_leaves_the_model_to_others(gw):
    """Tenant A's prompts make the upstream answer 500; tenant B's plain calls keep succeeding."""
    noisy_key = gw.account(credits=500_000_000)
    quiet = Load(gw, gw.key, "hi", threads=3).start()
    time.sleep(3)  # B is served on both channels in every worker
    t_noisy = time.time()
    noisy = Load(gw, noisy_key, "hi [fake fail=500]", threads=3).start()
    time.sleep(10)
    states = circuits(gw)
    noisy.stop()
    t_quiet = time.time()
    time.sleep(5)
    quiet.stop()
    during, after = quiet.between(t_noisy, t_quiet), quiet.between(t_quiet, time.time())
    assert len(during) >= 30 and len(after) >= 15
    assert success(during) >= 0.99 and success(after) >= 0.99, (during, after)
    assert states["shared-a"] == "closed" and states["shared-b"] == "closed"
    loud = noisy.between(0, time.time())
    assert loud and all(s >= 500 for s in loud)
    # the noisy tenant's circuits opened: most of its calls never reached the upstream
    reached = [s for s in gw.fakes["shared"].seen if "[fake fail=500]" in json.dumps(s.body)]
    assert len(reached) < len(loud), (len(reached), len(loud))


def test_routing_every_target_open_fails_open_and_closes_on_success(gw, client):
    down = gw.fakes["down"]
    down.set(fail=500)
    c = client(fresh_connections=True)
    deadline = time.time() + 60
    while circuits(gw) != {**circuits(gw), "down-a": "open", "down-b": "open"}:
        assert time.time() < deadline, circuits(gw)
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(model=DOWN, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        time.sleep(0.05)
    opened = time.time()
    down.set(fail=0)  # both come back while their circuits are still open (a 10 s cooldown)
    answered = None
    while answered is None and time.time() < opened + 8:
        try:
            ask(c, DOWN)
            answered = time.time()
        except openai.APIStatusError as exc:
            assert exc.status_code == 503  # the one call a second is out; the rest wait
            time.sleep(0.2)
    assert answered is not None and answered < opened + 8  # a probe went through before the cooldown ended
    time.sleep(1.1)  # the status document is cached for a second
    assert "closed" in (circuits(gw)["down-a"], circuits(gw)["down-b"])
    for _ in range(5):
        ask(c, DOWN)
