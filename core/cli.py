"""Operator commands: ``flask --app app <command>`` (see OPERATIONS.md)."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from . import accounts, catalog, ledger, migrate
from . import channels as core_channels
from . import db as core_db
from .models import Channel
from .models.base import utcnow


def init_app(app: Flask) -> None:
    for cmd in (init_db_command, create_account_command, create_key_command, verify_ledger_command,
                expire_reservations_command, demo_account_command):
        app.cli.add_command(cmd)


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or migrate the schema, mirror the channels file into the database; safe to run again."""
    engine = core_db.get_db().engine
    migrate.upgrade(engine)
    served = catalog.current(current_app)  # read once, when the app was made (a malformed file failed there)
    chans = list(served.channels)
    mirror_channels(engine, chans)
    card = served.card
    live = sum(1 for m in card.models if m.status == "live")
    click.echo(f"database ready ({len(chans)} channel(s) configured; rate card: {len(card.models)} models, {live} live)")


def mirror_channels(engine: sa.Engine, chans: list[core_channels.ChannelConfig]) -> None:
    """Upsert each configured channel (without its keys) into the channels table."""
    t = Channel.__table__
    with engine.begin() as conn:
        known = set(conn.execute(sa.select(t.c.name)).scalars())
        for ch in chans:
            values = {"protocol": ch.protocol, "base_url": ch.base_url, "models": list(ch.models),
                      "priority": ch.priority, "weight": ch.weight, "key_count": len(ch.api_keys),
                      "updated_at": utcnow()}
            if ch.name in known:
                conn.execute(t.update().where(t.c.name == ch.name).values(**values))
            else:
                conn.execute(t.insert().values(name=ch.name, **values))


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(1)


@click.command("create-account")
@click.option("--email", required=True)
@click.option("--credits", type=int, default=0, show_default=True, help="opening credits (1 credit = $0.000001)")
@click.option("--org", "org_name", default=None, help="organisation name (default: the e-mail's local part)")
@click.option("--preset", type=click.Choice(["global", "china"]), default="global", show_default=True)
@click.option("--tier", type=click.Choice(["free", "pro", "max", "enterprise"]), default="free", show_default=True)
@with_appcontext
def create_account_command(email: str, credits: int, org_name: str | None, preset: str, tier: str) -> None:
    """Create an org with its owner, wallet and master key; print the key last."""
    try:
        org_id, key = accounts.create_account(email, credits, org_name=org_name, preset=preset, tier=tier)
    except ValueError as exc:
        _fail(str(exc))
        return
    click.echo(f"org {org_id} created for {email} with {credits} credits ({preset} preset, {tier} tier)")
    click.echo("master key (shown once, store it now):")
    click.echo(key.raw)


def _csv(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


@click.command("create-key")
@click.option("--email", required=True, help="owner of the master key to derive from")
@click.option("--name", required=True)
@click.option("--quota-credits", type=int, default=None)
@click.option("--models", default=None, help="comma-separated model ids")
@click.option("--rpm", type=int, default=None)
@click.option("--tpm", type=int, default=None)
@click.option("--rate-limit-5h", type=int, default=None)
@click.option("--rate-limit-1d", type=int, default=None)
@click.option("--rate-limit-7d", type=int, default=None)
@click.option("--expires-in-days", type=int, default=None)
@with_appcontext
def create_key_command(email: str, name: str, quota_credits: int | None, models: str | None, rpm: int | None,
                       tpm: int | None, rate_limit_5h: int | None, rate_limit_1d: int | None,
                       rate_limit_7d: int | None, expires_in_days: int | None) -> None:
    """Create a sub-key under the user's master key; print the key last."""
    master = accounts.master_key_of(email)
    if master is None:
        _fail(f"no live master key owned by {email}")
        return
    try:
        key = accounts.create_sub_key(master, name, quota_credits=quota_credits, models=_csv(models), rpm=rpm,
                                      tpm=tpm, rate_limit_5h=rate_limit_5h, rate_limit_1d=rate_limit_1d,
                                      rate_limit_7d=rate_limit_7d, expires_in_days=expires_in_days)
    except (ValueError, LookupError, PermissionError) as exc:
        _fail(str(exc))
        return
    click.echo(f"sub-key {key.id} ({name}) created under {master}; shown once:")
    click.echo(key.raw)


@click.command("verify-ledger")
@with_appcontext
def verify_ledger_command() -> None:
    """Recompute every wallet and key from the ledger; exit 1 on any drift."""
    problems = ledger.verify_ledger()
    for p in problems:
        click.echo(f"DRIFT {p}")
    if problems:
        sys.exit(1)
    click.echo("ledger consistent")


@click.command("expire-reservations")
@click.option("--older-than", "older_than", type=float, default=None,
              help="seconds (default: the request deadline plus a minute)")
@with_appcontext
def expire_reservations_command(older_than: float | None) -> None:
    """Release reservations left open by a crashed worker."""
    n = ledger.expire_reservations(older_than)
    click.echo(f"released {n} stale reservation(s)")


@click.command("demo-account")
@with_appcontext
def demo_account_command() -> None:
    """Ensure the demo account exists; print a console login and a fresh key (the older demo keys stop)."""
    import secrets

    from werkzeug.security import generate_password_hash

    password = f"demo-{secrets.token_urlsafe(9)}-7!"  # a number and a symbol, as the console asks
    org_id, key = accounts.ensure_demo_account(generate_password_hash(password, method="scrypt"))
    spendable = ledger.balance(org_id)
    click.echo("")
    click.echo("ByteSpike demo account ready (model 'bytespike-echo' answers offline, free of charge).")
    click.echo(f"Balance: {spendable[0]} credits. Try it:")
    click.echo("  curl http://127.0.0.1:8000/v1/messages -H 'x-api-key: <key>' -H 'content-type: application/json' \\")
    click.echo("    -d '{\"model\":\"bytespike-echo\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'")
    public = str(current_app.config.get("BYTESPIKE_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
    click.echo(f"Console: {public}/en/console/login  e-mail {accounts.DEMO_EMAIL}  password {password}")
    click.echo("(a new password and key on every run; the previous demo key no longer works)")
    click.echo("Demo API key (shown once):")
    click.echo(key.raw)
