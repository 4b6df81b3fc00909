"""Admission is all-or-nothing: a call refused by one limit is not counted against the others."""

from __future__ import annotations

import pytest

from core import accounts, keys, limits
from core import db as core_db
from core.errors import ConcurrencyLimited, RateLimited
from core.models.accounts import Org
from tests.conftest import REDIS_URL, make_app


@pytest.fixture(params=["process", "redis"])
def counters_app(request, tmp_path, redis_prefix):
    """An app whose counters live in this process, or in Redis."""
    extra = {"BYTESPIKE_REDIS_URL": REDIS_URL, "BYTESPIKE_REDIS_PREFIX": redis_prefix} if request.param == "redis" else {}
    app = make_app(f"sqlite:///{tmp_path / 'bytespike.db'}", **extra)
    with app.app_context():
        yield app
    app.extensions["bytespike_db"].dispose()


def test_limits_refused_call_counts_nowhere(counters_app, make_account):
    org, _, master = make_account(0)
    with core_db.get_db().engine.begin() as conn:
        conn.execute(Org.__table__.update().where(Org.__table__.c.id == org).values(concurrency_cap=1))
    p = keys.authenticate(accounts.create_sub_key(master.key_id, "s", rpm=2, tpm=1_000).raw, "127.0.0.1")
    first = limits.admit(p, estimated_tokens=100)
    assert p.live.rpm_used == 1
    for _ in range(3):  # refused for concurrency: neither a request nor tokens are counted
        with pytest.raises(ConcurrencyLimited):
            limits.admit(p, estimated_tokens=100)
    first.release()
    with pytest.raises(RateLimited, match="tpm"):  # over tpm: the request is not counted either
        limits.admit(p, estimated_tokens=950)
    limits.admit(p, estimated_tokens=100).release()
    assert p.live.rpm_used == 2
    assert limits.envelope_headers(p)["X-RateLimit-Remaining"] == "0"
    with pytest.raises(RateLimited, match="rpm"):
        limits.admit(p, estimated_tokens=1)
