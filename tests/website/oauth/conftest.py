"""OAuth fixtures: the console's app and sign-up helper, plus helpers that walk the protocol in-process."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.website.console.conftest import console_app, console_instance, signup  # noqa: F401 - fixtures

LOOPBACK = "http://127.0.0.1/callback"


def register(app, *uris: str, confidential: bool = False, name: str = "Desk Agent") -> list[str]:  # type: ignore[no-untyped-def]
    """Register an app through the operator command; its output lines (client id, or id and secret last)."""
    args = ["oauth-register-app", "--name", name] + [a for u in uris for a in ("--redirect-uri", u)]
    result = app.test_cli_runner().invoke(args=args + (["--confidential"] if confidential else []))
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def authorize_query(client_id: str, redirect_uri: str, challenge: str | None, state: str = "st-1", **extra: str) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
              "scope": "inference", **extra}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return urlencode(params)


def consent(person, query: str, decision: str = "allow", **fields: str):  # type: ignore[no-untyped-def]
    """Open the consent page, then answer it; the 302 response."""
    page = person.get(f"/oauth/authorize?{query}")
    assert page.status_code == 200, page.text
    data = {"decision": decision, "org_id": str(person.org_id(person.client.application)), **fields}
    return person.post(f"/oauth/authorize?{query}", data)


def redirect_params(resp) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 302, resp.text
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}


def exchange(app, code: str, verifier: str | None, redirect_uri: str, client_id: str, **extra: str):  # type: ignore[no-untyped-def]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
            **extra}
    if verifier:
        data["code_verifier"] = verifier
    return app.test_client().post("/oauth/token", data=data)
