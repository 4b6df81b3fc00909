"""Console fixtures: the app on SQLite and a helper that signs people up through the real forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import make_app

PASSWORD = "correct-horse-42!"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


@dataclass
class Person:
    client: Any
    email: str
    lang: str
    csrf: str

    def get(self, path: str, **kw: Any):
        return self.client.get(f"/{self.lang}/console{path}", **kw)

    def post(self, path: str, data: dict | None = None, **kw: Any):
        return self.client.post(f"/{self.lang}/console{path}", data={"csrf_token": self.csrf, **(data or {})}, **kw)

    def org_id(self, app) -> int:  # type: ignore[no-untyped-def]
        from core import db as core_db
        from core.models import Membership, User

        with app.app_context():
            s = core_db.session()
            uid = s.query(User.id).filter(User.email == self.email).scalar()
            return s.query(Membership.org_id).filter(Membership.user_id == uid).order_by(Membership.id).first()[0]


def signup(app, email: str, lang: str = "en", **extra: str) -> Person:  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = csrf_of(client.get(f"/{lang}/console/signup").text)
    r = client.post(f"/{lang}/console/signup", data={"csrf_token": token, "email": email, "password": PASSWORD, **extra})
    assert r.status_code == 302, r.text
    return Person(client, email, lang, token)


@pytest.fixture(scope="session")
def console_instance(tmp_path_factory) -> str:
    """One instance folder per run: the sandbox's RSA keys are generated once."""
    return str(tmp_path_factory.mktemp("console-instance"))


@pytest.fixture
def console_app(tmp_path, console_instance):
    # The payment sandbox is opt-in; the console tests pay through it.
    app = make_app(f"sqlite:///{tmp_path / 'console.db'}", BYTESPIKE_PAYMENTS_SANDBOX="1")
    app.instance_path = console_instance
    yield app
    app.extensions["bytespike_db"].dispose()
