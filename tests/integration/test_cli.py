"""`flask keys ...` and `flask demo`."""

import re

from sqlalchemy import select

from app.extensions import db
from app.models import ApiKey, User

KEY_PATTERN = re.compile(r"^nk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


def _create(runner, name: str) -> str:
    result = runner.invoke(args=["keys", "create", name])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_keys_create_prints_a_key_that_works_and_stores_only_its_hash(app, client):
    runner = app.test_cli_runner()
    secret = _create(runner, "billing")
    assert KEY_PATTERN.match(secret)
    response = client.get("/users/nobody", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 404
    with app.app_context():
        record = db.session.scalars(select(ApiKey)).one()
        assert record.name == "billing"
        assert secret not in (record.key_hash, record.lookup)
        assert len(record.key_hash) == 64


def test_keys_list_and_revoke(app, client):
    runner = app.test_cli_runner()
    first = _create(runner, "one")
    second = _create(runner, "two")
    listed = runner.invoke(args=["keys", "list"]).output.splitlines()
    assert [line.split("\t")[1] for line in listed] == ["one", "two"]
    assert all(line.endswith("live") for line in listed)

    revoked = runner.invoke(args=["keys", "revoke", "one"])
    assert revoked.exit_code == 0
    assert "revoked key 1 (one)" in revoked.output
    assert client.get("/webhooks", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    assert client.get("/webhooks", headers={"Authorization": f"Bearer {second}"}).status_code == 200

    by_id = runner.invoke(args=["keys", "revoke", "2"])
    assert by_id.exit_code == 0
    assert client.get("/webhooks", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    again = runner.invoke(args=["keys", "revoke", "2"])
    assert again.exit_code != 0
    assert "no live key" in again.output


def test_demo_prints_a_working_key_and_token(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "--url", "http://127.0.0.1:5999"])
    assert result.exit_code == 0, result.output
    fields = dict(
        line.split(":", 1) for line in result.output.splitlines() if not line.startswith(" ")
    )
    key = fields["Demo API key"].strip()
    token = fields["Demo user token"].strip()
    assert fields["Demo page"].strip() == "http://127.0.0.1:5999/"
    assert (
        client.get("/users/demo-user", headers={"Authorization": f"Bearer {key}"}).json["name"]
        == "Demo User"
    )
    inbox = client.get("/me/notifications", headers={"Authorization": f"Bearer {token}"})
    assert inbox.status_code == 200

    # Running it again revokes the earlier demo key.
    runner.invoke(args=["demo"])
    assert (
        client.get("/users/demo-user", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )
    with app.app_context():
        assert db.session.get(User, "demo-user") is not None


def test_demo_page_and_demo_send(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    token = re.search(r'<notification-bell token="([^"]+)"', html).group(1)
    sent = client.post("/demo/notifications", json={"title": "From the form", "body": "hi"})
    assert sent.status_code == 201
    inbox = client.get("/me/notifications", headers={"Authorization": f"Bearer {token}"}).json
    assert [item["title"] for item in inbox["items"]] == ["From the form"]
    invalid = client.post("/demo/notifications", json={"title": ""})
    assert invalid.status_code == 422
