"""Authlib's authorization server, bound to ByteSpike's apps, codes and keys.

Authlib does the protocol: request validation, client authentication, PKCE,
redirect and error shapes (RFC 6749, 7636). This module only tells it where
apps and codes live, and mints a ByteSpike sub-key as the access token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    grants,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, current_app

from core.models import OAuthClient

from . import service

CODE_TTL_S = 60


class Client(ClientMixin):
    """A registered app as Authlib asks about it."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.row.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(service.SCOPES)
        return " ".join(s for s in scope.split() if s in service.SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return service.redirect_uri_allowed(self.row.redirect_uris, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return service.secret_matches(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.row.confidential:
            return method in ("client_secret_basic", "client_secret_post")
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


class Code(AuthorizationCodeMixin):
    """A claimed authorization code's row."""

    def __init__(self, row: Any) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return str(self.row.redirect_uri)

    def get_scope(self) -> str:
        return str(self.row.scope)


@dataclass(frozen=True)
class Consent:
    """What the signed-in person granted on the consent page: the org (as membership) and the key's limits."""

    member_id: int
    limits: dict[str, Any]


class S256Challenge(CodeChallenge):
    """PKCE with S256 only (RFC 7636 4.2; "plain" gives a stolen code away), required of public apps."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        if not data.get("code_challenge") and not grant.request.client.row.confidential:
            raise InvalidRequestError("Missing 'code_challenge': public apps must use PKCE (S256)")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        consent: Consent = request.user
        data = request.payload.data
        service.save_code(code, client_id=request.client.row.id, member_id=consent.member_id,
                          redirect_uri=request.payload.redirect_uri or request.client.get_default_redirect_uri(),
                          scope=request.scope or "", challenge=data.get("code_challenge"),
                          method=data.get("code_challenge_method"), limits=consent.limits,
                          ttl_s=float(current_app.config.get("BYTESPIKE_OAUTH_CODE_TTL_S", CODE_TTL_S)))

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        row = service.claim_code(code, client.row.id)
        return Code(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Nothing left to do: the code was used up when it was claimed."""

    def authenticate_user(self, authorization_code: Code) -> Code:
        return authorization_code


def _mint_token(grant_type: str, client: Client, user: Code, scope: str, expires_in: int | None = None,
                include_refresh_token: bool = False) -> dict[str, Any]:
    """The access token is a ByteSpike sub-key, minted with the limits the user chose; shown once."""
    try:
        key = service.connect(user.row, client.row)
    except (LookupError, PermissionError, ValueError) as exc:  # the grant no longer holds (member gone, model retired)
        raise InvalidGrantError(description=str(exc)) from exc
    token: dict[str, Any] = {"token_type": "Bearer", "access_token": key.raw, "scope": scope, "key_id": key.id}
    if key.row.get("expires_at") is not None:
        token["expires_at"] = key.row["expires_at"].replace(microsecond=0).isoformat() + "Z"
    return token


def _query_client(client_id: str) -> Client | None:
    row = service.get_app(client_id)
    return Client(row) if row is not None else None


def _save_token(token: dict[str, Any], request: Any) -> None:
    """Nothing to store: only the key's hash is kept, by the minting service."""


def init_app(app: Flask) -> None:
    """Give ``app`` its own authorization server (``server()`` finds it)."""
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", list(service.SCOPES))
    server = AuthorizationServer(app, query_client=_query_client, save_token=_save_token)
    server.register_grant(CodeGrant, [S256Challenge(required=True)])
    server.register_token_generator("default", _mint_token)
    # Authlib logs issued tokens and request details at DEBUG: codes and keys must never reach a log.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger("authlib").level))
    app.extensions["bytespike_oauth"] = server


def server() -> AuthorizationServer:
    return current_app.extensions["bytespike_oauth"]
