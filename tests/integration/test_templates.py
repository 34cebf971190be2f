"""Templates: storage, preview, locales, escaping, the sandbox, and sends that use them."""

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Delivery, Notification
from tests.conftest import assert_error

COMMENT = {
    "channels": {
        "in_app": {"title": "{{ actor }} replied", "body": "{{ excerpt }}"},
        "email": {
            "subject": "{{ actor }} replied to you",
            "html": "<p>{{ excerpt }}</p>",
            "text": "{{ excerpt }}",
        },
        "sms": {"text": "{{ actor }}: {{ excerpt }}"},
        "push": {"title": "{{ actor }}", "body": "{{ excerpt }}"},
    },
    "locales": {
        "de": {"in_app": {"title": "{{ actor }} hat geantwortet"}},
        "pt": {"in_app": {"title": "{{ actor }} respondeu"}},
        "pt-BR": {"in_app": {"body": "Resposta: {{ excerpt }}"}},
    },
}
CONTEXT = {"actor": "Ana", "excerpt": "<b>hi</b> & bye"}


@pytest.fixture
def stored(producer):
    response = producer.put("/templates/comment_reply", json=COMMENT)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_put_get_list_delete(producer, stored):
    assert stored["key"] == "comment_reply"
    assert stored["channels"]["email"]["subject"] == "{{ actor }} replied to you"
    assert stored["locales"]["de"] == {"in_app": {"title": "{{ actor }} hat geantwortet"}}
    again = producer.put("/templates/comment_reply", json=COMMENT)
    assert again.status_code == 200
    assert again.get_json()["created_at"] == stored["created_at"]
    assert producer.get("/templates/comment_reply").get_json()["key"] == "comment_reply"
    assert [t["key"] for t in producer.get("/templates").get_json()["templates"]] == [
        "comment_reply"
    ]
    assert producer.delete("/templates/comment_reply").status_code == 204
    assert_error(producer.get("/templates/comment_reply"), 404, "not_found")
    assert_error(producer.delete("/templates/comment_reply"), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": {"in_app": {"title": "{{ oops"}}}, "channels.in_app.title"),
        (
            {"channels": {"email": {"subject": "s", "html": "{% if %}"}}},
            "channels.email.html",
        ),
        (
            {"channels": {"in_app": {"title": "t"}}, "locales": {"de": {"in_app": {"body": "{%"}}}},
            "locales.de.in_app.body",
        ),
        ({"channels": {"fax": {"text": "t"}}}, "channels.fax"),
        ({"channels": {"in_app": {"subject": "t"}}}, "channels.in_app.title"),
        (
            {"channels": {"in_app": {"title": "t"}}, "locales": {"not a tag": {}}},
            "locales.not a tag.[key]",
        ),
    ],
)
def test_invalid_templates_are_422_naming_the_part(producer, body, field):
    error = assert_error(producer.put("/templates/t", json=body), 422, "validation_error")
    assert field in error["details"], error["details"]
    assert_error(producer.get("/templates/t"), 404)


def test_a_bad_key_is_422(producer):
    error = assert_error(producer.put("/templates/Bad Key", json=COMMENT), 422)
    assert "key" in error["details"]


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
@pytest.mark.parametrize("key", ["a%00b", "Upper", "x" * 65])
def test_a_key_no_template_can_have_is_404(producer, method, key):
    """A NUL in the key reached PostgreSQL, which refused it: a 500."""
    path = f"/templates/{key}/preview" if method == "POST" else f"/templates/{key}"
    response = producer.client.open(
        path, method=method, headers={"Authorization": f"Bearer {producer.credential}"}
    )
    assert_error(response, 404, "not_found")


def test_preview_renders_every_channel_escaping_only_html(producer, stored):
    preview = producer.post("/templates/comment_reply/preview", json={"context": CONTEXT})
    assert preview.status_code == 200
    assert preview.get_json() == {
        "in_app": {"title": "Ana replied", "body": "<b>hi</b> & bye"},
        "email": {
            "subject": "Ana replied to you",
            "html": "<p>&lt;b&gt;hi&lt;/b&gt; &amp; bye</p>",
            "text": "<b>hi</b> & bye",
        },
        "sms": {"text": "Ana: <b>hi</b> & bye"},
        "push": {"title": "Ana", "body": "<b>hi</b> & bye"},
    }


@pytest.mark.parametrize(
    ("locale", "title", "body"),
    [
        ("de", "Ana hat geantwortet", "x"),
        ("de-AT", "Ana hat geantwortet", "x"),
        ("pt-BR", "Ana respondeu", "Resposta: x"),
        ("fr", "Ana replied", "x"),
    ],
)
def test_preview_picks_the_locale_with_fallback(producer, stored, locale, title, body):
    preview = producer.post(
        "/templates/comment_reply/preview",
        json={"context": {"actor": "Ana", "excerpt": "x"}, "locale": locale},
    ).get_json()
    assert preview["in_app"] == {"title": title, "body": body}


def test_a_missing_variable_is_422_never_a_blank(producer, stored):
    error = assert_error(
        producer.post("/templates/comment_reply/preview", json={"context": {"actor": "Ana"}}),
        422,
        "validation_error",
    )
    [(field, message)] = list(error["details"].items())[:1]
    assert field.startswith("channels.")
    assert "excerpt" in message


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ self.__init__.__globals__ }}",
        "{{ namespace.__init__.__globals__ }}",
    ],
)
def test_sandbox_escapes_are_refused(producer, source):
    assert (
        producer.put(
            "/templates/evil", json={"channels": {"in_app": {"title": source}}}
        ).status_code
        == 201
    )
    error = assert_error(producer.post("/templates/evil/preview", json={}), 422)
    assert "channels.in_app.title" in error["details"]


def test_output_is_capped(producer):
    loop = "{% for i in range(5000) %}xxxxxxxxxx{% endfor %}"
    assert (
        producer.put("/templates/big", json={"channels": {"in_app": {"title": loop}}}).status_code
        == 201
    )
    error = assert_error(producer.post("/templates/big/preview", json={}), 422)
    assert "longer than 200" in error["details"]["channels.in_app.title"]


def test_a_send_renders_per_recipient_locale(app, producer, stored):
    producer.put("/users/de1", json={"locale": "de", "email": "de1@example.com"})
    producer.put("/users/en1", json={"email": "en1@example.com"})
    response = producer.post(
        "/notifications",
        json={
            "to": ["de1", "en1"],
            "template": "comment_reply",
            "context": CONTEXT,
            "channels": ["in_app", "email"],
        },
    )
    assert response.status_code == 201, response.get_json()
    ids = [n["id"] for n in response.get_json()["notifications"]]
    titles = [producer.get(f"/notifications/{i}").get_json()["title"] for i in ids]
    assert titles == ["Ana hat geantwortet", "Ana replied"]
    with app.app_context():
        contents = db.session.scalars(select(Delivery.content).order_by(Delivery.id)).all()
    assert contents[0]["subject"] == "Ana replied to you"
    assert contents[0]["html"] == "<p>&lt;b&gt;hi&lt;/b&gt; &amp; bye</p>"


def _counts(app):
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Notification)),
            db.session.scalar(select(func.count()).select_from(Delivery)),
        )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"template": "comment_reply", "context": {"actor": "Ana"}}, "channels."),
        ({"template": "nope", "context": CONTEXT}, "template"),
        ({"template": "comment_reply", "title": "t", "context": CONTEXT}, "template"),
        ({}, "title"),
        ({"title": "t", "context": {"a": 1}}, "context"),
    ],
)
def test_bad_template_sends_are_422_and_write_nothing(app, producer, stored, body, field):
    before = _counts(app)
    response = producer.post(
        "/notifications", json={"to": ["a", "b"], "channels": ["in_app", "email"], **body}
    )
    error = assert_error(response, 422, "validation_error")
    assert any(name.startswith(field) for name in error["details"]), error["details"]
    assert _counts(app) == before


@pytest.mark.parametrize(
    "source",
    [
        "{{ 99999999 ** 99999999 }}",
        "{{ 'a' * 1500000000 }}",
        "{{ [1] * 10 ** 9 }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% for i in range(9000) %}{% for j in range(9000) %}{% endfor %}{% endfor %}",
        "{{ 1 / 0 }}",
        "{{ '%d' % 'text' }}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{{ 'abc' | wordwrap(0) }}",
    ],
)
def test_costly_or_broken_templates_are_422_not_a_hang_or_500(producer, source):
    stored = producer.put("/templates/costly", json={"channels": {"in_app": {"title": source}}})
    assert stored.status_code == 201, stored.get_json()
    error = assert_error(producer.post("/templates/costly/preview", json={}), 422)
    assert "channels.in_app.title" in error["details"]


def test_deeply_nested_source_is_422_at_put(producer):
    source = "{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}"
    error = assert_error(
        producer.put("/templates/deep", json={"channels": {"in_app": {"title": source}}}), 422
    )
    assert "channels.in_app.title" in error["details"]


def test_a_locale_that_adds_a_channel_needs_its_required_part(producer):
    body = {
        "channels": {"in_app": {"title": "t"}},
        "locales": {"de": {"email": {"html": "<p>hallo</p>"}}},
    }
    error = assert_error(producer.put("/templates/partial", json=body), 422)
    assert "locales.de.email.subject" in error["details"]
