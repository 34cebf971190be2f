"""The OpenAPI document covers every route and matches what the routes answer."""

import re

from pydantic import TypeAdapter

from app.api import schemas
from tests.conftest import send

CONTRACT_PATHS = {
    ("put", "/users/{user_id}"),
    ("get", "/users/{user_id}"),
    ("delete", "/users/{user_id}"),
    ("post", "/users/{user_id}/tokens"),
    ("get", "/users/{user_id}/notifications"),
    ("post", "/notifications"),
    ("get", "/notifications/{notification_id}"),
    ("get", "/me/notifications"),
    ("get", "/me/unread-count"),
    ("post", "/me/notifications/{notification_id}/read"),
    ("post", "/me/notifications/{notification_id}/unread"),
    ("post", "/me/notifications/{notification_id}/archive"),
    ("post", "/me/notifications/{notification_id}/unarchive"),
    ("post", "/me/notifications/read-all"),
    ("post", "/me/notifications/seen"),
    ("get", "/me/preferences"),
    ("put", "/me/preferences"),
    ("post", "/me/push-subscriptions"),
    ("delete", "/me/push-subscriptions"),
    ("get", "/push/vapid-public-key"),
    ("post", "/webhooks"),
    ("get", "/webhooks"),
    ("delete", "/webhooks/{webhook_id}"),
    ("put", "/templates/{key}"),
    ("get", "/templates/{key}"),
    ("get", "/templates"),
    ("delete", "/templates/{key}"),
    ("post", "/templates/{key}/preview"),
    ("get", "/healthz"),
    ("get", "/readyz"),
}
UNDOCUMENTED = {
    "/openapi.json",
    "/docs",
    "/",
    "/embed",
    "/demo/notifications",
    "/static/{filename}",
}


def _document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_lists_every_contract_route(client):
    document = _document(client)
    assert document["openapi"].startswith("3.1")
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented >= CONTRACT_PATHS


def test_every_registered_route_is_documented(app, client):
    documented = set(_document(client)["paths"])
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        assert path in documented or path in UNDOCUMENTED, path


def test_every_ref_resolves(client):
    document = _document(client)
    text = str(document)
    names = set(document["components"]["schemas"])
    for ref in re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text):
        assert ref in names, ref


def test_operations_declare_security_and_errors(client):
    paths = _document(client)["paths"]
    send_op = paths["/notifications"]["post"]
    assert send_op["security"] == [{"apiKey": []}]
    assert {"201", "400", "401", "403", "409", "413", "415", "422"} <= set(send_op["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in send_op["parameters"])
    inbox_op = paths["/me/notifications"]["get"]
    assert inbox_op["security"] == [{"userToken": []}]
    assert {p["name"] for p in inbox_op["parameters"]} >= {
        "status",
        "archived",
        "category",
        "limit",
        "cursor",
        "after",
    }
    assert paths["/healthz"]["get"]["security"] == []


def test_responses_validate_against_their_schemas(producer, user_client):
    ana = user_client("ana", email="ana@example.com")
    [notification_id] = send(producer, to="ana", title="Hi", channels=["in_app", "email"])
    checks = [
        (schemas.UserOut, producer.get("/users/ana")),
        (schemas.NotificationDetail, producer.get(f"/notifications/{notification_id}")),
        (schemas.InboxPage, ana.get("/me/notifications")),
        (schemas.NotificationOut, ana.post(f"/me/notifications/{notification_id}/read")),
        (schemas.PreferencesOut, ana.get("/me/preferences")),
        (schemas.ErrorResponse, ana.get("/me/notifications/999")),
    ]
    for schema, response in checks:
        TypeAdapter(schema).validate_python(response.get_json())


def test_docs_page_serves_its_own_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert "http" not in " ".join(assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        response.close()
