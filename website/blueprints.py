"""The site's blueprints and commands, registered on the app in one place.

i18n and assets first, then the public pages, the console, payments and the
OAuth endpoints, and the site's 404 page for site paths.
"""

from __future__ import annotations

from flask import Flask, Response, render_template, request
from flask_babel import refresh

from gateway.api_paths import KEY_ROOTS

from . import blog, content, docs, freeze, i18n, marketing, numbers, playground, pricing, security
from .console import auth as console_auth
from .console import present as console_present
from .console import views_audit, views_auth, views_billing, views_dash, views_keys, views_org  # noqa: F401 - routes
from .console.blueprint import bp as console_bp
from .console.charts import usd_display
from .oauth import cli as oauth_cli
from .oauth import server as oauth_server
from .oauth import views as oauth_views
from .oauth import views_apps  # noqa: F401 - adds routes to the OAuth pages blueprint
from .payments import commands as payment_commands
from .payments import views as payment_views


def register(app: Flask) -> None:
    """Bind i18n and assets, then every site blueprint, the console, payments and OAuth."""
    security.init_app(app)
    i18n.init_app(app)
    freeze.init_app(app)
    app.jinja_env.globals["highlight"] = content.highlight
    app.jinja_env.filters["fill"] = content.fill
    for module in (marketing, blog, docs, pricing, playground):
        app.register_blueprint(module.bp)
    _console(app)
    _payments(app)
    numbers.init_app(app)  # after the console: its ``usd`` filter gives way to the one money rule
    console_present.init_app(app)
    app.register_error_handler(404, _not_found)
    _oauth(app)
    _pages_only(app)


def _pages_only(app: Flask) -> None:
    """Run the site's app-wide hooks (Babel's locale reset, the gettext domain, the remember-me cookie) on
    every path but the gateway's key-authenticated ones (``KEY_ROOTS``), from one hook each way.

    Nothing on those paths reads a locale, a catalog or a cookie session (``gateway.api_paths.KeySessions``
    gives them none), and each hook cost every call a dispatch.
    """
    site_before = [refresh, i18n.pick_domain]
    site_after = [console_auth.login_manager._update_remember_cookie]
    befores = app.before_request_funcs.setdefault(None, [])
    afters = app.after_request_funcs.setdefault(None, [])
    at = min(befores.index(f) for f in site_before)
    for f in site_before:
        befores.remove(f)
    for f in site_after:
        afters.remove(f)

    def before() -> None:
        if not request.path.startswith(KEY_ROOTS):
            for hook in site_before:
                hook()

    def after(resp: Response) -> Response:
        if not request.path.startswith(KEY_ROOTS):
            for hook in reversed(site_after):  # as Flask runs after-request hooks: the last registered first
                resp = hook(resp)
        return resp

    befores.insert(at, before)
    afters.append(after)


def _console(app: Flask) -> None:
    """Bind flask-login and register the console blueprint and its template helpers."""
    console_auth.login_manager.init_app(app)
    app.register_blueprint(console_bp)
    app.jinja_env.globals["csrf_token"] = console_auth.csrf_token
    app.jinja_env.filters["usd"] = usd_display
    app.jinja_env.globals["console_orgs"] = console_auth.org_choices
    app.jinja_env.globals["console_can"] = console_auth.can
    app.jinja_env.globals["console_can_open"] = console_auth.can_open


def _payments(app: Flask) -> None:
    """Register the notify routes, the top-up API and the payment commands."""
    app.register_blueprint(payment_views.bp)
    if app.config.get("PAYMENTS_SANDBOX"):
        app.logger.warning("BYTESPIKE_PAYMENTS_SANDBOX=1: the payment simulator is on; its top-ups mint spendable "
                           "credits without real money, so never enable it where real users sign up")
    for command in payment_commands.COMMANDS:
        app.cli.add_command(command)


def _oauth(app: Flask) -> None:
    """Bind the authorization server, the OAuth endpoints, the console's app pages and the CLI command."""
    oauth_server.init_app(app)
    app.register_blueprint(oauth_views.api)
    app.register_blueprint(oauth_views.pages)
    app.cli.add_command(oauth_cli.register_app_command)


def _not_found(error):  # type: ignore[no-untyped-def]
    """Show the site's 404 page on site paths; API paths keep their own error shapes."""
    if request.path.startswith(freeze.LIVE_PREFIXES) and not request.path.startswith(("/en/", "/zh/")):
        return error
    if request.path.startswith("/zh/"):
        i18n.set_lang("zh")
    return render_template("404.html"), 404
