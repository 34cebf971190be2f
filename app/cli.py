"""Command-line tools: `flask --app wsgi keys ...`, `deliveries ...`, `retention run`,
`vapid generate` and `demo`."""

import base64

import click
from cryptography.hazmat.primitives import serialization
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from py_vapid import Vapid02
from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.jobs.deliveries import retry_failed
from app.jobs.retention import purge_now
from app.models import Delivery, Notification
from app.services.credentials import (
    create_api_key,
    list_api_keys,
    mint_user_token,
    revoke_api_key,
)
from app.services.users import put_user

keys = AppGroup("keys", help="Create, list and revoke producer API keys.")
DEMO_USER_ID = "demo-user"
DEMO_KEY_NAME = "demo"
DEMO_TOKEN_TTL_SECONDS = 86400


@keys.command("create")
@click.argument("name")
def create_key(name: str) -> None:
    """Create an API key called NAME and print it (it is shown only once)."""
    new_key = create_api_key(db.session, name)
    db.session.commit()
    click.echo(new_key.secret)
    click.echo(
        f"created key {new_key.record.id} ({name}); store it now, it is not shown again", err=True
    )


@keys.command("list")
def list_keys() -> None:
    """List keys: id, name, created, revoked."""
    for record in list_api_keys(db.session):
        revoked = record.revoked_at.isoformat() if record.revoked_at else "live"
        click.echo(f"{record.id}\t{record.name}\t{record.created_at.isoformat()}\t{revoked}")


@keys.command("revoke")
@click.argument("id_or_name")
def revoke_key(id_or_name: str) -> None:
    """Revoke the key with this id, or every live key with this name."""
    revoked = revoke_api_key(db.session, id_or_name)
    db.session.commit()
    if not revoked:
        raise click.ClickException(f"no live key matches {id_or_name!r}")
    for record in revoked:
        click.echo(f"revoked key {record.id} ({record.name})")


@click.command("demo")
@with_appcontext
@click.option("--url", default="http://127.0.0.1:5000", help="Where the server will listen.")
def demo(url: str) -> None:
    """Set up the demo: a demo user, a fresh demo API key (older ones revoked) and a user
    token. Prints all three and the demo page's URL. Does nothing unless the demo is enabled
    (DEMO_ENABLED; on by default only in the embedded mode)."""
    if not current_app.config["DEMO_ENABLED"]:
        click.echo("demo disabled (DEMO_ENABLED is off): create a key with `keys create NAME`")
        return
    revoke_api_key(db.session, DEMO_KEY_NAME)
    new_key = create_api_key(db.session, DEMO_KEY_NAME)
    put_user(db.session, DEMO_USER_ID, {"name": "Demo User"}, utcnow())
    db.session.commit()
    token = mint_user_token(
        current_app.config["USER_TOKEN_SECRET"], DEMO_USER_ID, DEMO_TOKEN_TTL_SECONDS
    )
    click.echo(f"Demo page:       {url}/")
    click.echo(f"API docs:        {url}/docs")
    click.echo(f"Demo API key:    {new_key.secret}")
    click.echo(f"Demo user:       {DEMO_USER_ID}")
    click.echo(f"Demo user token: {token.token}")
    click.echo(f"  (expires {token.expires_at.isoformat()})")


deliveries = AppGroup("deliveries", help="List and retry failed channel deliveries.")


@deliveries.command("failed")
def list_failed() -> None:
    """List failed deliveries: id, channel, notification, user, attempts, last error."""
    rows = db.session.execute(
        select(Delivery, Notification.user_id)
        .join(Notification, Delivery.notification_id == Notification.id)
        .where(Delivery.status == "failed")
        .order_by(Delivery.id)
    )
    for delivery, user_id in rows:
        click.echo(
            f"{delivery.id}\t{delivery.channel}\t{delivery.notification_id}\t{user_id}\t"
            f"{delivery.attempts}\t{delivery.last_error}"
        )


@deliveries.command("retry")
@click.argument("delivery_id", required=False, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Retry every failed delivery.")
def retry(delivery_id: int | None, retry_all: bool) -> None:
    """Queue a failed delivery (or --all of them) again, with a fresh set of tries."""
    if (delivery_id is None) == (not retry_all):
        raise click.UsageError("give one DELIVERY_ID or --all")
    requeued = retry_failed(None if retry_all else [delivery_id])
    if not requeued:
        raise click.ClickException("no failed delivery matches")
    click.echo(f"queued {len(requeued)} deliveries again")


retention = AppGroup("retention", help="Delete what is kept no longer.")


@retention.command("run")
def run_retention() -> None:
    """Delete now what retention would (workers also do it every RETENTION_INTERVAL_SECONDS)."""
    purged = purge_now()
    click.echo(
        f"deleted {purged.notifications} notifications, {purged.idempotency_records} "
        f"idempotency records, {purged.webhook_events} webhook events"
    )


vapid = AppGroup("vapid", help="Web Push (VAPID) keys.")


@vapid.command("generate")
def generate_vapid() -> None:
    """Print a new VAPID key pair as the two settings to put in the environment."""
    pair = Vapid02()
    pair.generate_keys()
    public = pair.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = pair.private_key.private_numbers().private_value.to_bytes(32, "big")
    click.echo(f"VAPID_PUBLIC_KEY={_base64url(public)}")
    click.echo(f"VAPID_PRIVATE_KEY={_base64url(private)}")


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def init_app(app: Flask) -> None:
    """Register the commands on the app."""
    app.cli.add_command(keys)
    app.cli.add_command(vapid)
    app.cli.add_command(deliveries)
    app.cli.add_command(retention)
    app.cli.add_command(demo)
