"""The bilingual site: marketing, blog, docs, pricing, playground, console, payments."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Bind i18n and assets, then every site blueprint, the console and payments."""
    from . import content, freeze, i18n, security

    security.init_app(app)
    i18n.init_app(app)
    freeze.init_app(app)
    app.jinja_env.globals["highlight"] = content.highlight
    from . import blog, docs, marketing, playground, pricing
    from .console import init_app as init_console
    from .payments import init_app as init_payments

    for module in (marketing, blog, docs, pricing, playground):
        app.register_blueprint(module.bp)
    init_console(app)
    init_payments(app)
    app.register_error_handler(404, _not_found)


def _not_found(error):  # type: ignore[no-untyped-def]
    """Show the site's 404 page on site paths; API paths keep their own error shapes."""
    from flask import render_template, request

    from .freeze import LIVE_PREFIXES

    if request.path.startswith(LIVE_PREFIXES) and not request.path.startswith(("/en/", "/zh/")):
        return error
    return render_template("404.html"), 404
