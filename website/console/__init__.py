"""The console: accounts, keys, members, usage, billing (flask-login, CSRF on every form)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Bind flask-login and register the console blueprint."""
    from . import views_audit, views_auth, views_billing, views_dash, views_keys, views_org  # noqa: F401 - routes
    from .auth import can, can_open, csrf_token, login_manager, org_choices
    from .blueprint import bp
    from .charts import usd_display

    login_manager.init_app(app)
    app.register_blueprint(bp)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.filters["usd"] = usd_display
    app.jinja_env.globals["console_orgs"] = org_choices
    app.jinja_env.globals["console_can"] = can
    app.jinja_env.globals["console_can_open"] = can_open
