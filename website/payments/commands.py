"""The operator's payment commands: ``flask --app app reconcile-payments``, ``renew-subscriptions``, ``refund-order``."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .reconcile import reconcile, refund_order
from .subscriptions import renew_due
from .webhooks import check_all_low_balances, flush, retry_failed


@click.command("reconcile-payments")
@with_appcontext
def reconcile_command() -> None:
    """Query open orders at their provider; credit the paid, close the expired; low balances; webhook retries."""
    counts = reconcile()
    counts["low_balance"] = check_all_low_balances()
    flush()
    counts["webhooks_redelivered"] = retry_failed()
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@click.command("renew-subscriptions")
@with_appcontext
def renew_command() -> None:
    """Charge each plan due for renewal from its wallet, or lapse it to free."""
    counts = renew_due()
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@click.command("refund-order")
@with_appcontext
@click.argument("order_id")
@click.option("--reason", default="", help="Kept in the ledger memo.")
def refund_command(order_id: str, reason: str) -> None:
    """Refund a paid order in full and reverse its credit."""
    order = refund_order(order_id, reason)
    click.echo(f"{order.id} {order.status}")


COMMANDS = (reconcile_command, renew_command, refund_command)
