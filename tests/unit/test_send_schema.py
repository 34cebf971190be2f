"""The send request: the older single-recipient form maps onto the current one."""

import pytest
from pydantic import ValidationError

from app.api.schemas import Recipient, SendRequest


def test_older_form_maps_onto_current_fields():
    request = SendRequest.model_validate(
        {"user_id": "u1", "type": "email", "title": "T", "message": "M", "payload": {"a": 1}}
    )
    assert [recipient.user_id for recipient in request.to] == ["u1"]
    assert request.channels == ["email"]
    assert request.body == "M"
    assert request.data == {"a": 1}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"user_id": "u1", "to": "u2"}, "user_id"),
        ({"to": "u1", "type": "email"}, "type"),
        ({"to": "u1", "message": "m", "payload": {}}, "message"),
    ],
)
def test_older_and_current_fields_cannot_mix(body, named):
    with pytest.raises(ValidationError) as raised:
        SendRequest.model_validate({"title": "T", **body})
    assert named in {error["loc"][0] for error in raised.value.errors()}


def test_recipients_accept_ids_and_objects():
    request = SendRequest.model_validate(
        {"to": ["u1", {"user_id": "u2", "email": "b@example.com"}], "title": "T"}
    )
    first, second = request.to
    assert first.user_id == "u1"
    assert first.model_fields_set == {"user_id"}
    assert isinstance(second, Recipient)
    assert second.email == "b@example.com"
    assert request.channels == ["in_app"]
    assert request.category == "general"
    assert request.priority == "normal"


def test_a_single_recipient_object_becomes_a_list():
    request = SendRequest.model_validate({"to": {"user_id": "u9", "name": "Nine"}, "title": "T"})
    assert [(r.user_id, r.name) for r in request.to] == [("u9", "Nine")]
