"""One gunicorn-served gateway (SQLite, Redis) in front of three scripted fake vendors, for every test here."""

from __future__ import annotations

import uuid

import pytest

from tests.gateway.conftest import channels_toml, serve_backend
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
    gw, stop = serve_backend("sqlite", "gw-translation", channels_toml(scripted_vendors),  # type: ignore[arg-type]
                             scripted_vendors, tmp_path_factory)
    yield gw
    stop()


@pytest.fixture(scope="session")
def tkey(tgw):
    """One well-funded key for every call here."""
    return tgw.account(credits=900_000_000)


@pytest.fixture
def tag():
    """A unique word for this test's prompts: finds the test's own requests at the fakes."""
    return "t" + uuid.uuid4().hex[:10]
