"""Payments: Alipay, WeChat Pay v3 and the labelled sandbox simulator; top-ups, plans, webhooks.

Operator commands registered here:
``flask --app app reconcile-payments``, ``renew-subscriptions``, ``refund-order``.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext


def init_app(app: Flask) -> None:
    """Register the notify routes, the top-up API and the payment commands."""
    from .views import bp

    app.register_blueprint(bp)
    if app.config.get("PAYMENTS_SANDBOX"):
        app.logger.warning("BYTESPIKE_PAYMENTS_SANDBOX=1: the payment simulator is on; its top-ups mint spendable "
                           "credits without real money, so never enable it where real users sign up")
    app.cli.add_command(reconcile_command)
    app.cli.add_command(renew_command)
    app.cli.add_command(refund_command)


@click.command("reconcile-payments")
@with_appcontext
def reconcile_command() -> None:
    """Query open orders at their provider; credit the paid, close the expired; low balances; webhook retries."""
    from .reconcile import reconcile
    from .webhooks import check_all_low_balances, flush, retry_failed

    counts = reconcile()
    counts["low_balance"] = check_all_low_balances()
    flush()
    counts["webhooks_redelivered"] = retry_failed()
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@click.command("renew-subscriptions")
@with_appcontext
def renew_command() -> None:
    """Charge each plan due for renewal from its wallet, or lapse it to free."""
    from .subscriptions import renew_due

    counts = renew_due()
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@click.command("refund-order")
@with_appcontext
@click.argument("order_id")
@click.option("--reason", default="", help="Kept in the ledger memo.")
def refund_command(order_id: str, reason: str) -> None:
    """Refund a paid order in full and reverse its credit."""
    from .reconcile import refund_order

    order = refund_order(order_id, reason)
    click.echo(f"{order.id} {order.status}")
