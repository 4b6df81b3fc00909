"""One gunicorn-served gateway (SQLite, Redis) in front of three scripted fake vendors, for every test here."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import free_port
from tests.gateway.conftest import (
    Gateway,
    _clean_redis,
    channels_toml,
    server_env,
    start_gunicorn,
    stop_gunicorn,
)
from tests.gateway.translation.upstreams import ScriptedVendor


@pytest.fixture(scope="session")
def scripted_vendors():
    fakes = {v: ScriptedVendor(v) for v in ("anthropic", "openai", "gemini")}
    for f in fakes.values():
        f.start()
    yield fakes
    for f in fakes.values():
        f.stop()


@pytest.fixture(scope="session")
def tgw(scripted_vendors, tmp_path_factory):
    """The gateway: models claude-sonnet-4-6, gpt-5-4 and gemini-3-1-pro, one per vendor."""
    tmp = tmp_path_factory.mktemp("gw-translation")
    channels = tmp / "channels.toml"
    channels.write_text(channels_toml(scripted_vendors))  # type: ignore[arg-type]
    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    env = server_env(f"sqlite:///{tmp / 'bytespike.db'}", channels, prefix)
    port = free_port()
    gw = Gateway(f"http://127.0.0.1:{port}", env["BYTESPIKE_DATABASE_URL"], env, tmp / "gunicorn.log",
                 scripted_vendors)  # type: ignore[arg-type]
    gw.cli("init-db")
    gw.proc = start_gunicorn(env, port, gw.log_path)
    yield gw
    stop_gunicorn(gw.proc)
    gw.close()
    _clean_redis(prefix)


@pytest.fixture(scope="session")
def tkey(tgw):
    """One well-funded key for every call here."""
    return tgw.account(credits=900_000_000)


@pytest.fixture
def tag():
    """A unique word for this test's prompts: finds the test's own requests at the fakes."""
    return "t" + uuid.uuid4().hex[:10]
