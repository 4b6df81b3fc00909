"""Keys: format, hashing, authentication, IP rules, expiry, revocation, model groups."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
import sqlalchemy as sa

from core import accounts, keys
from core import db as core_db
from core.errors import AuthError, ModelNotInGroup, PermissionDenied
from core.models.accounts import ApiKey, Org


def test_keys_format_and_only_hash_stored(dapp, make_account):
    _, raw, p = make_account(0)
    assert re.fullmatch(r"sk-byts-[A-Za-z0-9_-]{43}", raw)
    t = ApiKey.__table__
    with core_db.get_db().engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == p.key_id)).one()
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in [str(v) for v in row]
    assert row.prefix == raw[:12]


def test_keys_authenticate_principal(dapp, make_account):
    org, raw, _ = make_account(0, email="Owner@Example.com", org_name="Acme", preset="china", tier="pro")
    p = keys.authenticate(raw, "203.0.113.9")
    assert (p.org_id, p.kind, p.email, p.role, p.tier, p.preset, p.org_name) == (
        org, "master", "owner@example.com", "owner", "pro", "china", "Acme")
    assert p.concurrency_cap == 25
    assert "glm-5-1" in p.models and "claude-sonnet-4-6" not in p.models and "bytespike-echo" in p.models


@pytest.mark.parametrize("raw", ["", "sk-ant-xyz", "sk-byts-" + "A" * 43, "Bearer sk-byts-x"])
def test_keys_unknown_or_malformed_is_401(dapp, make_account, raw):
    make_account(0)
    with pytest.raises(AuthError) as exc:
        keys.authenticate(raw, "127.0.0.1")
    assert exc.value.status == 401 and exc.value.code == "invalid_api_key"


def test_keys_revoking_master_revokes_sub_keys(dapp, make_account, make_sub):
    org, raw, master = make_account(0)
    sub_raw, _ = make_sub(master)
    other_org, other_raw, _ = make_account(0)
    assert not accounts.revoke_key(other_org, master.key_id)  # not that org's key
    keys.authenticate(raw, "127.0.0.1")
    assert accounts.revoke_key(org, master.key_id)
    for k in (raw, sub_raw):
        with pytest.raises(AuthError, match="revoked"):
            keys.authenticate(k, "127.0.0.1")
    keys.authenticate(other_raw, "127.0.0.1")


def test_keys_expired_is_401(dapp, make_account, make_sub):
    _, _, master = make_account(0)
    sub_raw, sub = make_sub(master, expires_in_days=1)
    assert sub.expires_at > dt.datetime.now(dt.UTC).replace(tzinfo=None)
    t = ApiKey.__table__
    with core_db.get_db().engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == sub.key_id).values(expires_at=dt.datetime(2020, 1, 1)))
    with pytest.raises(AuthError, match="expired"):
        keys.authenticate(sub_raw, "127.0.0.1")


@pytest.mark.parametrize(("allow", "deny", "ip", "ok"), [
    (["10.0.0.0/8"], None, "10.1.2.3", True),
    (["10.0.0.0/8"], None, "192.168.1.1", False),
    (None, ["192.168.0.0/16"], "192.168.1.1", False),
    (None, ["192.168.0.0/16"], "10.1.2.3", True),
    (["10.0.0.0/8"], ["10.9.0.0/16"], "10.9.1.1", False),
    (["2001:db8::/32"], None, "2001:db8::1", True),
    (["2001:db8::/32"], None, "2001:db9::1", False),
    (None, ["2001:db8::/32"], "2001:db8:1::5", False),
    (["10.0.0.0/8"], None, "::ffff:10.0.0.7", True),
    (["127.0.0.1/32"], None, "not-an-ip", False),
])
def test_keys_ip_rules(dapp, make_account, make_sub, allow, deny, ip, ok):
    _, _, master = make_account(0)
    raw = accounts.create_sub_key(master.key_id, "ip", ip_allow=allow, ip_deny=deny).raw
    if ok:
        assert keys.authenticate(raw, ip).kind == "sub"
    else:
        with pytest.raises(PermissionDenied) as exc:
            keys.authenticate(raw, ip)
        assert exc.value.status == 403 and exc.value.code == "permission_denied"


def test_keys_model_group(dapp, make_account, make_sub):
    _, _, master = make_account(0)
    _, sub = make_sub(master, models=["claude-sonnet-4.6", "deepseek-chat"])
    assert sub.models == ("claude-sonnet-4-6", "deepseek-v4-flash")
    keys.check_model(sub, "deepseek-v4-flash")
    with pytest.raises(ModelNotInGroup) as exc:
        keys.check_model(sub, "gpt-5-4")
    assert exc.value.status == 403 and exc.value.code == "model_not_in_group"
    keys.check_model(master, "gpt-5-4")  # global preset
    with pytest.raises(ModelNotInGroup):
        keys.check_model(master, "glm-5-1")


def test_keys_org_models_override_preset(dapp, make_account):
    org, raw, _ = make_account(0)
    t = Org.__table__
    with core_db.get_db().engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == org).values(models=None, preset="global"))
    assert "gpt-5-4" in keys.authenticate(raw, "127.0.0.1").models
    with core_db.get_db().engine.begin() as conn:
        conn.execute(t.update().where(t.c.id == org).values(models=["bytespike-echo"]))
    assert keys.authenticate(raw, "127.0.0.1").models == ("bytespike-echo",)


def test_keys_sub_key_cannot_mint(dapp, make_account, make_sub):
    _, _, master = make_account(0)
    _, sub = make_sub(master)
    with pytest.raises(PermissionError):
        accounts.create_sub_key(sub.key_id, "grandchild")


@pytest.mark.parametrize(("kw", "field"), [
    ({"models": ["no-such-model"]}, "models"), ({"rpm": 0}, "rpm"), ({"quota_credits": -1}, "quota_credits"),
    ({"ip_allow": ["10.0.0.0/33"]}, "ip_allow"), ({"expires_in_days": 0}, "expires_in_days"),
])
def test_keys_bad_controls_are_refused(dapp, make_account, kw, field):
    _, _, master = make_account(0)
    with pytest.raises(ValueError, match=field):
        accounts.create_sub_key(master.key_id, "x", **kw)
