"""HTTP API blueprints."""

from flask import Flask

from app.api import docs, inbox, metrics, notifications, ops, push, templates, users, webhooks


def register_blueprints(app: Flask) -> None:
    """Mount every API blueprint on `app`."""
    for blueprint in (
        users.bp,
        notifications.bp,
        templates.bp,
        inbox.bp,
        push.bp,
        webhooks.bp,
        ops.bp,
        metrics.bp,
        docs.bp,
    ):
        app.register_blueprint(blueprint)
