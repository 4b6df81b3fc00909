"""What every page answers with: session cookie settings, security headers, the real client address.

The API under ``/v1``, ``/v1beta`` and ``/api`` keeps only ``nosniff``: its
callers are programs, and a content policy means nothing to them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

API_PREFIXES = ("/v1/", "/v1beta/", "/api/", "/payments/")
# Scripts only from this site: no inline script or event handler runs. Styles may be inline (attributes).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


def csp_allowing_form_target(url: str) -> str:
    """The page policy, with ``url``'s origin added to ``form-action``.

    A browser applies ``form-action`` to the redirects that follow a form's
    submission too: a consent page whose form answers with a redirect to the
    app's own address must name that address.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in url for c in " ;,'\"\r\n"):
        return CSP
    return CSP.replace("form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}")


def init_app(app: Flask) -> None:
    """Cookies, headers and proxy handling, set so that they take effect (not ``setdefault``)."""
    https = str(app.config.get("BYTESPIKE_PUBLIC_URL", "")).startswith("https://")
    for prefix in ("SESSION", "REMEMBER"):
        app.config[f"{prefix}_COOKIE_SAMESITE"] = "Lax"
        app.config[f"{prefix}_COOKIE_HTTPONLY"] = True
        app.config[f"{prefix}_COOKIE_SECURE"] = https
    hops = int(app.config.get("TRUSTED_PROXIES", 0))
    if hops:
        # X-Forwarded-For/-Proto/-Host from exactly that many proxies: request.remote_addr becomes
        # the visitor's address for the playground limit, IP rules, login throttling and the usage log.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    page_headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
    }
    if https:
        page_headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    @app.after_request
    def _headers(resp: Response) -> Response:
        # ``in`` then set: werkzeug's Headers.setdefault finds a missing name by raising and catching.
        headers = resp.headers
        if request.path.startswith(API_PREFIXES):
            if "X-Content-Type-Options" not in headers:
                headers["X-Content-Type-Options"] = "nosniff"
            return resp
        for name, value in page_headers.items():
            if name not in headers:
                headers[name] = value
        return resp
