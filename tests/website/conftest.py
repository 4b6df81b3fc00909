"""Fixtures for the public site: an app on SQLite, optionally reading the fixture content."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_app

FIXTURE_CONTENT = Path(__file__).parent / "fixtures" / "content"


@pytest.fixture
def site_app(tmp_path):
    """The whole app, with the real content directory."""
    app = make_app(f"sqlite:///{tmp_path / 'site.db'}")
    yield app
    app.extensions["bytespike_db"].dispose()


@pytest.fixture
def site(site_app):
    return site_app.test_client()


@pytest.fixture
def fixture_app(tmp_path):
    """The whole app reading blog and docs from tests/website/fixtures/content."""
    app = make_app(f"sqlite:///{tmp_path / 'site.db'}", BYTESPIKE_CONTENT_DIR=str(FIXTURE_CONTENT))
    yield app
    app.extensions["bytespike_db"].dispose()


@pytest.fixture
def fixture_site(fixture_app):
    return fixture_app.test_client()
