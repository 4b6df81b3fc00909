"""The bilingual site: marketing, blog, docs, pricing, playground, console, payments."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Bind i18n and assets, then every site blueprint, the console and payments."""
    from . import content, freeze, i18n

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
