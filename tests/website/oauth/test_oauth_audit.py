"""Connecting and revoking an app leaves audit rows naming the person, the app and its key."""

from __future__ import annotations

import re

import sqlalchemy as sa

from core import db as core_db
from core.models import OAuthConnection, User

from .conftest import exchange, signup
from .test_oauth_flow import _connected


def test_app_connect_and_revoke_are_audited(console_app):
    owner = signup(console_app, "audit-apps@example.com")
    client_id, verifier, params = _connected(console_app, owner)
    token = exchange(console_app, params["code"], verifier, "http://127.0.0.1:49152/callback", client_id).json
    with console_app.app_context():
        conn_id = core_db.session().scalars(sa.select(OAuthConnection.id)).one()
        uid = core_db.session().scalars(sa.select(User.id).where(User.email == "audit-apps@example.com")).one()
    assert owner.post(f"/apps/connections/{conn_id}/revoke").status_code == 302
    html = owner.post("/keys", {"name": "reader"}).text
    key = re.search(r"sk-byts-[A-Za-z0-9_\-]+", html).group(0)
    rows = console_app.test_client().get("/api/v1/me/audit", headers={"x-api-key": key}).get_json()["data"]
    connected = next(r for r in rows if r["action"] == "oauth.app_connected")
    assert connected["actor"]["user_id"] == uid and connected["details"]["key_id"] == token["key_id"]
    revoked = next(r for r in rows if r["action"] == "oauth.app_revoked")
    assert revoked["actor"]["email"] == "audit-apps@example.com" and revoked["target"] == client_id
    assert token["access_token"] not in str(rows)
