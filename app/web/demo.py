"""The demo page of the embedded quick start: an inbox for a demo user and a send form."""

from flask import Blueprint, Response, abort, current_app, render_template, request

from app.api import schemas
from app.api.operation import read_body
from app.api.responses import respond
from app.cli import DEMO_USER_ID
from app.db import utcnow
from app.extensions import db
from app.services.credentials import mint_user_token
from app.services.send import Send
from app.services.users import put_user

bp = Blueprint("web", __name__)
DEMO_PAGE_TOKEN_TTL_SECONDS = 3600


class DemoSend(schemas.Request):
    """What the demo form sends: a notification for the demo user."""

    title: schemas.Title
    body: schemas.Body | None = None
    category: schemas.Category = "general"
    action_url: schemas.HttpUrl | None = None


@bp.get("/")
def index() -> str:
    """The demo when enabled (the embedded default), else a pointer to the API docs."""
    if not current_app.config["DEMO_ENABLED"]:
        return render_template("index.html")
    put_user(db.session, DEMO_USER_ID, {}, utcnow())
    db.session.commit()
    token = mint_user_token(
        current_app.config["USER_TOKEN_SECRET"], DEMO_USER_ID, DEMO_PAGE_TOKEN_TTL_SECONDS
    )
    return render_template("demo.html", token=token.token, user_id=DEMO_USER_ID)


@bp.get("/embed")
def embed() -> str:
    """How to put the bell on another site: the snippet and the token minting."""
    return render_template("embed.html", server=request.host_url.rstrip("/"))


@bp.post("/demo/notifications")
def demo_send() -> Response:
    """Send to the demo user without an API key; exists only while the demo is enabled."""
    if not current_app.config["DEMO_ENABLED"]:
        abort(404)
    form = read_body(DemoSend, required=True)
    send = schemas.SendRequest.model_validate({"to": DEMO_USER_ID, **form.model_dump()})
    result = current_app.extensions["send_coalescer"].send(db.session, Send(send, utcnow()))
    return respond(schemas.SendResponse, {"notifications": result.notifications}, 201)
