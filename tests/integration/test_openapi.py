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
    # Prometheus text, not JSON: described in the README.
    "/metrics",
    # The operators' dashboard: pages and their own JSON, not the public API.
    "/admin",
    "/admin/login",
    "/admin/logout",
    "/admin/api/stats",
    "/admin/api/live",
    "/admin/api/failed",
    "/admin/api/failed/retry",
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


def test_request_rules_are_documented_as_the_server_applies_them(client):
    """Drift schemathesis found: fields documented looser than validated, so well-formed
    requests were refused. The document now states each rule the server applies."""
    components = _document(client)["components"]["schemas"]
    assert components["WebhookIn"]["properties"]["url"]["pattern"] == schemas.HTTP_URL_PATTERN
    assert components["SeenRequest"]["properties"]["ids"]["items"]["pattern"] == schemas.ID_PATTERN
    [timezone, _] = components["UserFields"]["properties"]["timezone"]["anyOf"]
    assert timezone["format"] == schemas.TIMEZONE_FORMAT
    # Keys with a pattern admit no other key.
    assert (
        components["PreferencesUpdate"]["properties"]["categories"]["additionalProperties"] is False
    )
    assert components["TemplateIn"]["properties"]["locales"]["additionalProperties"] is False
    # No NUL anywhere: PostgreSQL cannot store it.
    assert components["InAppParts"]["properties"]["title"]["pattern"] == schemas.NO_NUL_PATTERN
    assert components["JsonValue"]["anyOf"][0]["pattern"] == schemas.NO_NUL_PATTERN
    # A send is one of three shapes, each closed to the others' fields.
    forms = components["SendRequest"]["anyOf"]
    assert [form["required"] for form in forms] == [
        ["to", "title"],
        ["to", "template"],
        ["user_id"],
    ]
    assert all(form["additionalProperties"] is False for form in forms)


def test_parameters_are_documented_as_the_server_applies_them(client):
    paths = _document(client)["paths"]
    [path_id] = paths["/me/notifications/{notification_id}"]["get"]["parameters"]
    assert path_id["schema"]["pattern"] == schemas.ID_PATTERN
    [key] = paths["/templates/{key}"]["get"]["parameters"]
    assert key["schema"]["pattern"] == schemas.TEMPLATE_KEY_PATTERN
    send_headers = [p for p in paths["/notifications"]["post"]["parameters"] if p["in"] == "header"]
    assert send_headers[0]["schema"]["pattern"] == schemas.IDEMPOTENCY_KEY_PATTERN
    # A query parameter is absent or a string: never null.
    query = {p["name"]: p["schema"] for p in paths["/me/notifications"]["get"]["parameters"]}
    assert all(
        "anyOf" not in schema and schema.get("default", "") is not None for schema in query.values()
    )


def test_credentialed_operations_document_rate_limits(client):
    """A credential past its budget gets 429 with Retry-After; every answer may carry the
    RateLimit-* headers."""
    document = _document(client)
    assert set(document["components"]["headers"]) == {
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if not operation["security"]:
                assert "429" not in responses, (method, path)
                continue
            limited = responses["429"]
            assert limited["headers"]["Retry-After"]["required"] is True, (method, path)
            assert limited["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }
            ok = responses[next(status for status in responses if status.startswith("2"))]
            assert "RateLimit-Remaining" in ok["headers"], (method, path)
