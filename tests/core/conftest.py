"""Fixtures for the money and identity tests: an app per database backend and account factories."""

from __future__ import annotations

import pytest

from core import accounts, keys
from tests.conftest import make_app

from .backends import BACKENDS, backend_url


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path, pg_url):
    """An empty database on each backend in turn (overrides the suite-wide fixture for speed)."""
    return backend_url(request.param, tmp_path, pg_url)


@pytest.fixture
def dapp(db_url):
    """An app on SQLite or PostgreSQL (parametrised by ``db_url``), inside an app context."""
    app = make_app(db_url)
    with app.app_context():
        yield app
    app.extensions["bytespike_db"].dispose()


@pytest.fixture
def sqlite_app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'bytespike.db'}")
    with app.app_context():
        yield app
    app.extensions["bytespike_db"].dispose()


@pytest.fixture
def make_account():
    """Return a factory: ``make_account(credits, **kw) -> (org_id, raw_key, principal)``."""
    counter = iter(range(1, 10_000))

    def make(credits: int = 0, *, email: str | None = None, **kw):
        email = email or f"user{next(counter)}@example.com"
        org_id, key = accounts.create_account(email, credits, **kw)
        return org_id, key.raw, keys.authenticate(key.raw, "127.0.0.1")

    return make


@pytest.fixture
def make_sub():
    """Return a factory: ``make_sub(master_principal, **controls) -> (raw_key, principal)``."""

    def make(master, name: str = "sub", **controls):
        key = accounts.create_sub_key(master.key_id, name, **controls)
        return key.raw, keys.authenticate(key.raw, "127.0.0.1")

    return make
