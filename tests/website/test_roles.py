"""One role table for the console and the account API: every route, walked as owner, admin and member.

The world: one org with an owner, an admin, a member (the actors) and another
member ("other"), each with a key, a usage row and (for "other") a sub-key;
an order, a webhook delivery and a webhook secret. Each case names a route,
the ids it is called with (the other member's, the owner's, or fresh ones for
what a call destroys) and the answer each role must get. As the member, no
answer may carry anything of the others: key names or ids, request ids,
e-mails, the webhook secret, the order. A route of /api/v1 or of the console
that no case walks fails the coverage test: a new route must join the table.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from core import roles
from tests.website.console.conftest import PASSWORD, Person, csrf_of, signup

ACTORS = ("owner", "admin", "member")
OK, DENIED, HIDDEN, ANY = "ok", 403, 404, "any"


@dataclass
class World:
    app: Any
    org_id: int
    people: dict[str, Person]
    member_ids: dict[str, int]
    keys: dict[str, tuple[str, str]]  # who -> (key id, raw key)
    ids: dict[str, Any]
    secrets_of: dict[str, set[str]] = field(default_factory=dict)  # who -> strings only they (and managers) see

    def fresh_key(self, who: str) -> str:
        """A new master key of ``who``: for the calls that revoke or rename."""
        from core import accounts
        from core import db as core_db

        with self.app.app_context(), core_db.get_db().engine.begin() as conn:
            return accounts.insert_key(conn, org_id=self.org_id, member_id=self.member_ids[who], parent_id=None,
                                       kind="master", name=f"fresh-{who}-{secrets.token_hex(3)}").id

    def fresh_member(self) -> int:
        from core import db as core_db
        from core.models import Membership, User

        with self.app.app_context():
            s = core_db.session()
            user = User(email=f"gone-{secrets.token_hex(3)}@example.com", password_hash=None)
            s.add(user)
            s.flush()
            m = Membership(org_id=self.org_id, user_id=user.id, role="member")
            s.add(m)
            s.commit()
            return m.id

    def invite_token(self) -> str:
        from core import db as core_db
        from core.models import OrgInvite, utcnow
        from website.console.auth import token_hash

        token = secrets.token_urlsafe(16)
        with self.app.app_context():
            s = core_db.session()
            s.add(OrgInvite(token_hash=token_hash(token), org_id=self.org_id, role="member", email=None,
                            created_by=None, expires_at=utcnow() + dt.timedelta(days=1)))
            s.commit()
        return token


def _join(app, person: Person, org_id: int, role: str) -> int:  # type: ignore[no-untyped-def]
    from core import db as core_db
    from core.models import Membership, User

    with app.app_context():
        s = core_db.session()
        uid = s.query(User.id).filter(User.email == person.email).scalar()
        m = Membership(org_id=org_id, user_id=uid, role=role)
        s.add(m)
        s.commit()
        mid = m.id
    assert person.post("/org/switch", {"org_id": str(org_id)}).status_code == 302
    return mid


def _build(app) -> World:  # type: ignore[no-untyped-def]
    from core import accounts, ledger
    from core import db as core_db
    from core.models import Membership, Org, WebhookDelivery

    people = {who: signup(app, f"{who}@example.com") for who in ("owner", "admin", "member", "other")}
    org_id = people["owner"].org_id(app)
    with app.app_context():
        owner_mid = core_db.session().query(Membership.id).filter_by(org_id=org_id, role="owner").scalar()
    member_ids = {"owner": owner_mid}
    for who, role in (("admin", "admin"), ("member", "member"), ("other", "member")):
        member_ids[who] = _join(app, people[who], org_id, role)
    keys: dict[str, tuple[str, str]] = {}
    secrets_of: dict[str, set[str]] = {}
    with app.app_context():
        for who in ("owner", "admin", "member", "other"):
            with core_db.get_db().engine.begin() as conn:
                key = accounts.insert_key(conn, org_id=org_id, member_id=member_ids[who], parent_id=None,
                                          kind="master", name=f"{who}-key-name")
            keys[who] = (key.id, key.raw)
            ledger.log_call(ledger.UsageRecord(
                request_id=f"req-of-{who}", org_id=org_id, api_key_id=key.id, member_id=member_ids[who],
                model="bytespike-echo", provider="demo", channel="echo", protocol="openai", stream=False,
                status=402, error=f"error-of-{who}"))
            secrets_of[who] = {f"{who}@example.com", f"{who}-key-name", key.id, key.raw, f"req-of-{who}",
                               f"error-of-{who}"}
        sub = accounts.create_sub_key(keys["other"][0], "other-sub-name")
        ledger.log_call(ledger.UsageRecord(
            request_id="req-of-other-sub", org_id=org_id, api_key_id=sub.id, member_id=member_ids["other"],
            model="bytespike-echo", provider="demo", channel="echo", protocol="openai", stream=False, status=402))
        secrets_of["other"] |= {"other-sub-name", sub.id, sub.raw, "req-of-other-sub"}
        s = core_db.session()
        org = s.get(Org, org_id)
        org.webhook_url, org.webhook_secret = "http://127.0.0.1:9/org-hook-url", "whsec_org_secret_value"
        s.add(WebhookDelivery(org_id=org_id, event="balance.low", payload={"secret": "delivery-payload-value"},
                              url="http://127.0.0.1:9/org-hook-url"))
        s.commit()
        delivery = s.query(WebhookDelivery.id).filter_by(org_id=org_id).scalar()
    order = app.test_client().post("/api/v1/me/billing/topup", json={"amount_cny": "35.00", "method": "sandbox"},
                                   headers={"x-api-key": keys["owner"][1]}).get_json()
    org_secrets = {"whsec_org_secret_value", "org-hook-url", "delivery-payload-value", order["order_id"],
                   order["out_trade_no"]}
    secrets_of["org"] = org_secrets
    ids = {"order": order["order_id"], "delivery": delivery, "sub": sub.id}
    return World(app, org_id, people, member_ids, keys, ids, secrets_of)


@dataclass(frozen=True)
class Case:
    endpoint: str
    method: str
    path: Callable[[World, str], str]  # (world, acting role) -> path
    expect: dict[str, Any]  # role -> OK / DENIED / HIDDEN / ANY / an exact status
    data: Callable[[World, str], dict] | None = None
    shows: Callable[[World, str], list[str]] | None = None  # what the role must see in the answer

    @property
    def api(self) -> bool:
        return not self.endpoint.startswith("console.")


def _all(outcome: Any) -> dict[str, Any]:
    return dict.fromkeys(ACTORS, outcome)


MANAGE = {"owner": OK, "admin": OK, "member": DENIED}
OWN_ONLY = {"owner": OK, "admin": OK, "member": HIDDEN}


def p(template: str) -> Callable[[World, str], str]:
    """A path template: {key:who}, {fresh:who} (a new key of who, or of the actor for 'self'), {req:who}, {order},
    {delivery}, {member:who}, {fresh_member}, {invite}, {org}."""

    def build(w: World, actor: str) -> str:
        def sub(m: re.Match) -> str:
            name, _, arg = m.group(1).partition(":")
            arg = actor if arg == "self" else arg
            return str({
                "key": lambda: w.keys[arg][0], "fresh": lambda: w.fresh_key(arg), "req": lambda: f"req-of-{arg}",
                "order": lambda: w.ids["order"], "delivery": lambda: w.ids["delivery"],
                "member": lambda: w.member_ids[arg], "fresh_member": w.fresh_member, "invite": w.invite_token,
                "org": lambda: w.org_id,
            }[name]())

        return re.sub(r"\{([a-z_]+(?::[a-z]+)?)\}", sub, template)

    return build


def own(*items: str) -> Callable[[World, str], list[str]]:
    """Strings the actor must see: {who} is the actor, e.g. '{who}-key-name'."""
    return lambda w, actor: [i.replace("{who}", actor) for i in items]


def others_too(*items: str) -> Callable[[World, str], list[str]]:
    """Managers must see these too (the whole org); a member only its own."""
    return lambda w, actor: [i.replace("{who}", actor) for i in items] + (
        ["other-key-name"] if actor != "member" else [])


CASES: list[Case] = [
    # --- account API (each actor with its own master key) ---
    Case("account_api.me_account", "GET", p("/api/v1/me/account"), _all(OK), shows=own("{who}-key-name")),
    Case("account_api.me_usage", "GET", p("/api/v1/me/usage"), _all(OK), shows=own("req-of-{who}")),
    Case("account_api.me_usage", "GET", p("/api/v1/me/usage?api_key={key:other}"), _all(OK),
         shows=lambda w, a: ["req-of-other"] if a != "member" else []),
    Case("account_api.me_usage", "GET", p("/api/v1/me/usage?group_by=api_key"), _all(OK),
         shows=lambda w, a: [w.keys[a][0]] + ([w.keys["other"][0]] if a != "member" else [])),
    Case("account_api.me_usage", "GET", p("/api/v1/me/usage?group_by=model"), _all(OK)),
    Case("account_api.me_usage_one", "GET", p("/api/v1/me/usage/{req:other}"), OWN_ONLY),
    Case("account_api.me_usage_one", "GET", p("/api/v1/me/usage/{req:owner}"), OWN_ONLY),
    Case("account_api.me_usage_one", "GET", p("/api/v1/me/usage/{req:self}"), _all(OK)),
    Case("account_api.me_transactions", "GET", p("/api/v1/me/billing/transactions"), MANAGE),
    Case("account_api.create_key", "POST", p("/api/v1/keys"), _all(OK), data=lambda w, a: {"name": f"made-by-{a}"}),
    Case("account_api.list_keys", "GET", p("/api/v1/keys"), _all(OK), shows=others_too("{who}-key-name")),
    Case("account_api.revoke_key", "DELETE", p("/api/v1/keys/{fresh:other}"), OWN_ONLY),
    Case("account_api.revoke_key", "DELETE", p("/api/v1/keys/{fresh:owner}"), OWN_ONLY),
    Case("account_api.revoke_key", "DELETE", p("/api/v1/keys/{key:other}"), {"member": HIDDEN}),  # never revoked
    Case("account_api.revoke_key", "DELETE", p("/api/v1/keys/{fresh:self}"), _all(OK)),
    Case("account_api.me_audit", "GET", p("/api/v1/me/audit"), MANAGE),
    Case("account_api.get_webhooks", "GET", p("/api/v1/me/webhooks"), MANAGE),
    Case("account_api.put_webhooks", "PUT", p("/api/v1/me/webhooks"), MANAGE,
         data=lambda w, a: {"url": "http://127.0.0.1:9/org-hook-url"}),
    Case("payments.create_topup", "POST", p("/api/v1/me/billing/topup"), MANAGE,
         data=lambda w, a: {"amount_cny": "35.00", "method": "sandbox"}),
    Case("payments.get_topup", "GET", p("/api/v1/me/billing/topup/{order}"), MANAGE),
    # --- console (each actor signed in, working in the org) ---
    Case("console.index", "GET", p("/"), _all(302)),
    Case("console.static", "GET", p("/static/console.css"), _all(OK)),
    Case("console.login", "GET", p("/login"), _all(ANY)),
    Case("console.login", "POST", p("/login"), _all(ANY), data=lambda w, a: {"email": "x@example.com", "password": "x"}),
    Case("console.signup", "GET", p("/signup"), _all(ANY)),
    Case("console.signup", "POST", p("/signup"), _all(ANY), data=lambda w, a: {"email": "bad", "password": "x"}),
    Case("console.reset_request", "GET", p("/reset"), _all(ANY)),
    Case("console.reset_request", "POST", p("/reset"), _all(ANY), data=lambda w, a: {"email": "other@example.com"}),
    Case("console.reset_confirm", "GET", p("/reset/not-a-token"), _all(ANY)),
    Case("console.reset_confirm", "POST", p("/reset/not-a-token"), _all(ANY), data=lambda w, a: {"password": "x"}),
    Case("console.mint_invite", "POST", p("/invites"), _all(302)),
    Case("console.join", "GET", p("/join/{invite}"), _all(OK)),
    Case("console.join", "POST", p("/join/{invite}"), _all(302)),
    Case("console.switch_org", "POST", p("/org/switch"), _all(302), data=lambda w, a: {"org_id": str(w.org_id)}),
    Case("console.dashboard", "GET", p("/dashboard"), _all(OK), shows=own("req-of-{who}")),
    Case("console.status", "GET", p("/status/"), _all(OK)),
    Case("console.usage", "GET", p("/usage"), _all(OK), shows=own("req-of-{who}")),
    Case("console.usage", "GET", p("/usage?key={key:other}"), _all(OK),
         shows=lambda w, a: ["req-of-other"] if a != "member" else []),
    Case("console.usage_csv", "GET", p("/usage.csv"), _all(OK), shows=own("req-of-{who}")),
    Case("console.usage_csv", "GET", p("/usage.csv?key={key:other}"), _all(OK)),
    Case("console.keys", "GET", p("/keys"), _all(OK), shows=others_too("{who}-key-name")),
    Case("console.mint_key", "POST", p("/keys"), _all(OK), data=lambda w, a: {"name": f"console-made-by-{a}"}),
    Case("console.mint_sub_key", "POST", p("/keys/sub"), OWN_ONLY,
         data=lambda w, a: {"parent_id": w.keys["other"][0], "name": f"sub-by-{a}"}),
    Case("console.mint_sub_key", "POST", p("/keys/sub"), OWN_ONLY,
         data=lambda w, a: {"parent_id": w.keys["owner"][0], "name": f"sub-by-{a}"}),
    Case("console.mint_sub_key", "POST", p("/keys/sub"), _all(OK),
         data=lambda w, a: {"parent_id": w.keys[a][0], "name": f"own-sub-by-{a}"}),
    Case("console.revoke_key", "POST", p("/keys/{fresh:other}/revoke"), {"owner": 302, "admin": 302, "member": 404}),
    Case("console.revoke_key", "POST", p("/keys/{key:other}/revoke"), {"member": 404}),
    Case("console.revoke_key", "POST", p("/keys/{fresh:self}/revoke"), _all(302)),
    Case("console.rename_key", "POST", p("/keys/{fresh:owner}/rename"), {"owner": 302, "admin": 302, "member": 404},
         data=lambda w, a: {"name": "renamed"}),
    Case("console.rename_key", "POST", p("/keys/{key:other}/rename"), {"member": 404},
         data=lambda w, a: {"name": "renamed"}),
    Case("console.members", "GET", p("/members"), MANAGE, shows=lambda w, a: ["other@example.com"] if a != "member" else []),
    Case("console.invite_member", "POST", p("/members/invite"), {"owner": 302, "admin": 302, "member": 403},
         data=lambda w, a: {"role": "member"}),
    Case("console.update_member", "POST", p("/members/{member:other}"), {"owner": 302, "admin": 302, "member": 403},
         data=lambda w, a: {"role": "member", "quota_usd": ""}),
    Case("console.update_member", "POST", p("/members/{member:owner}"), {"owner": 302, "admin": 403, "member": 403},
         data=lambda w, a: {"role": "owner", "quota_usd": ""}),
    Case("console.remove_member", "POST", p("/members/{fresh_member}/remove"), {"owner": 302, "admin": 302, "member": 403}),
    Case("console.remove_member", "POST", p("/members/{member:other}/remove"), {"member": 403}),
    Case("console.billing", "GET", p("/billing"), MANAGE),
    Case("console.topup", "POST", p("/billing/topup"), {"owner": 302, "admin": 302, "member": 403},
         data=lambda w, a: {"amount_cny": "35", "method": "sandbox"}),
    Case("console.order", "GET", p("/billing/orders/{order}"), MANAGE),
    Case("console.simulate", "POST", p("/billing/orders/{order}/simulate"), {"owner": 302, "admin": 302, "member": 403}),
    Case("console.transactions", "GET", p("/billing/transactions"), MANAGE),
    Case("console.settings", "GET", p("/settings"), _all(OK),
         shows=lambda w, a: ["whsec_org_secret_value"] if a != "member" else []),
    Case("console.set_preset", "POST", p("/settings/preset"), {"owner": 302, "admin": 302, "member": 403},
         data=lambda w, a: {"preset": "global"}),
    Case("console.set_notifications", "POST", p("/settings/notifications"), {"owner": 302, "admin": 302, "member": 403},
         data=lambda w, a: {"low_balance_usd": "", "webhook_url": "http://127.0.0.1:9/org-hook-url"}),
    Case("console.webhook_test", "POST", p("/settings/webhook-test"), {"owner": 302, "admin": 302, "member": 403}),
    Case("console.deliveries", "GET", p("/webhooks"), MANAGE),
    Case("console.delivery", "GET", p("/webhooks/{delivery}"), MANAGE),
    Case("console.audit_log", "GET", p("/audit"), MANAGE),
    Case("console.logout", "POST", p("/logout"), _all(302)),  # run last, on a session of its own
]


def _routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1") or rule.endpoint.startswith("console."):
            out |= {(rule.endpoint, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def _call(w: World, case: Case, actor: str, person: Person):  # type: ignore[no-untyped-def]
    path = case.path(w, actor)
    data = case.data(w, actor) if case.data else None
    if case.api:
        client = w.app.test_client()
        return path, data, client.open(path, method=case.method, json=data, headers={"x-api-key": w.keys[actor][1]})
    if case.method == "GET":
        return path, data, person.get(path)
    return path, data, person.post(path, data)


def _status_ok(expected: Any, status: int) -> bool:
    if expected == OK:
        return 200 <= status < 400
    if expected == ANY:
        return status < 500
    return status == expected


def _leaks(w: World, actor: str, text: str, path: str, data: dict | None) -> list[str]:
    """What of the others' (and the org's) the member's answer shows, minus what the member sent itself."""
    if actor != "member":
        return []
    sent = path + repr(data or {})
    foreign = set().union(*(v for k, v in w.secrets_of.items() if k != "member"))
    body = text.split("<main", 1)[-1].split("</main>", 1)[0] if "<main" in text else text
    return sorted(s for s in foreign if s in body and s not in sent)


@pytest.fixture(scope="module")
def roles_instance(tmp_path_factory) -> str:
    """One instance folder for the module: the sandbox's RSA keys are made once."""
    return str(tmp_path_factory.mktemp("roles-instance"))


@pytest.fixture
def world(tmp_path, roles_instance):
    from tests.conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'roles.db'}", BYTESPIKE_PAYMENTS_SANDBOX="1")
    app.instance_path = roles_instance
    yield _build(app)
    app.extensions["bytespike_db"].dispose()


def test_roles_table_covers_every_route(world):
    routes = _routes(world.app)
    walked = {(c.endpoint, c.method) for c in CASES}
    assert sorted(routes - walked) == [], "routes no role case walks: add them to CASES"
    assert sorted(walked - routes) == [], "cases for routes that no longer exist"
    endpoints = {e for e, _ in routes}
    assert sorted(endpoints - set(roles.ROUTES)) == [], "routes missing from core.roles.ROUTES"
    for case in CASES:
        assert set(case.expect) <= set(ACTORS) and case.expect, case


@pytest.mark.parametrize("actor", ACTORS)
def test_roles_every_route_as_each_role(world, actor):
    person = world.people[actor]
    failures = []
    for case in CASES:
        if actor not in case.expect:
            continue
        if case.endpoint == "console.logout":
            person = _login(world.app, f"{actor}@example.com", world.org_id)
        path, data, resp = _call(world, case, actor, person)
        text = resp.get_data(as_text=True)
        label = f"{case.method} {case.endpoint} {path}"
        if not _status_ok(case.expect[actor], resp.status_code):
            failures.append(f"{label}: {resp.status_code}, expected {case.expect[actor]}: {text[:200]}")
        if resp.status_code == 403 and case.api:
            assert resp.get_json()["error"]["code"] == "permission_denied", label
        leaked = _leaks(world, actor, text, path, data)
        if leaked:
            failures.append(f"{label}: leaks {leaked}")
        if case.shows and resp.status_code < 400:
            missing = [s for s in case.shows(world, actor) if s not in text]
            if missing:
                failures.append(f"{label}: does not show {missing}")
    assert failures == []
    _assert_untouched(world)


def _login(app, email: str, org_id: int) -> Person:  # type: ignore[no-untyped-def]
    client = app.test_client()
    token = csrf_of(client.get("/en/console/login").text)
    r = client.post("/en/console/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert r.status_code == 302, r.text
    person = Person(client, email, "en", token)
    person.post("/org/switch", {"org_id": str(org_id)})
    return person


def _assert_untouched(w: World) -> None:
    """What a member was refused stays as it was: the others' keys live and named, the owner still owner."""
    from core import db as core_db
    from core.models import ApiKey, Membership

    with w.app.app_context():
        s = core_db.session()
        for who in ("owner", "other"):
            key = s.get(ApiKey, w.keys[who][0])
            assert key.revoked_at is None and key.name == f"{who}-key-name", who
        assert s.get(ApiKey, w.ids["sub"]).revoked_at is None
        assert s.get(Membership, w.member_ids["owner"]).role == "owner"
        assert s.get(Membership, w.member_ids["other"]) is not None


def test_roles_sub_key_reaches_only_itself(world):
    """A sub-key is a spending credential: itself and its usage only, whatever its member's role."""
    client = world.app.test_client()
    for who in ("owner", "member"):
        made = client.post("/api/v1/keys", json={"name": f"ci-{who}"}, headers={"x-api-key": world.keys[who][1]})
        sub = made.get_json()
        h = {"x-api-key": sub["key"]}
        assert [k["id"] for k in client.get("/api/v1/keys", headers=h).get_json()["data"]] == [sub["id"]]
        assert client.get("/api/v1/me/usage", headers=h).get_json()["data"] == []
        assert client.get(f"/api/v1/me/usage/req-of-{who}", headers=h).status_code == 404
        for method, path, body in (("POST", "/api/v1/keys", {"name": "x"}),
                                   ("GET", "/api/v1/me/billing/transactions", None),
                                   ("POST", "/api/v1/me/billing/topup", {"amount_cny": "35.00", "method": "sandbox"}),
                                   ("GET", f"/api/v1/me/billing/topup/{world.ids['order']}", None)):
            r = client.open(path, method=method, json=body, headers=h)
            assert r.status_code == 403 and r.get_json()["error"]["code"] == "permission_denied", (who, path)
        assert client.delete(f"/api/v1/keys/{world.keys[who][0]}", headers=h).status_code == 404
        assert client.delete(f"/api/v1/keys/{sub['id']}", headers=h).status_code == 200


def test_roles_member_navigation_offers_only_what_the_role_may_open(world):
    nav = world.people["member"].get("/dashboard").text.split('class="console-nav"', 1)[1].split("</aside>", 1)[0]
    for allowed in ("/dashboard", "/usage", "/keys", "/status/", "/settings"):
        assert f"/console{allowed}\"" in nav, allowed
    for refused in ("/members", "/billing", "/billing/transactions", "/webhooks"):
        assert f"/console{refused}\"" not in nav, refused
    owner_nav = world.people["owner"].get("/dashboard").text
    assert "/console/members\"" in owner_nav and "/console/billing\"" in owner_nav
