"""The send request: the older single-recipient form maps onto the current one."""

import json

import pytest
from pydantic import ValidationError

from app.api.schemas import Recipient, SendRequest


def test_older_form_maps_onto_current_fields():
    request = SendRequest.model_validate(
        {"user_id": "u1", "type": "email", "title": "T", "message": "M", "payload": {"a": 1}}
    )
    assert request.to == ["u1"]
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
    assert first == "u1"
    assert isinstance(second, Recipient)
    assert second.email == "b@example.com"
    assert second.model_fields_set == {"user_id", "email"}
    assert request.user_ids == ["u1", "u2"]
    assert request.channels == ["in_app"]
    assert request.category == "general"
    assert request.priority == "normal"


def test_a_single_recipient_object_becomes_a_list():
    request = SendRequest.model_validate({"to": {"user_id": "u9", "name": "Nine"}, "title": "T"})
    assert [(r.user_id, r.name) for r in request.to] == [("u9", "Nine")]


@pytest.mark.parametrize("strict_json", [False, True])
def test_a_bad_entry_is_named_as_before_ids_became_strings(strict_json):
    """A bad id is refused as an object's `user_id` would be, every other entry's error keeps
    its place, and object fields stay strict."""
    body = {
        "to": ["ok", "no/slash", {"user_id": "x", "email": "nope"}, 5, {"user_id": 7}, "y" * 129],
        "title": "T",
    }

    def validate() -> SendRequest:
        if strict_json:
            return SendRequest.model_validate_json(json.dumps(body), strict=True)
        return SendRequest.model_validate(body)

    with pytest.raises(ValidationError) as raised:
        validate()
    assert {error["loc"]: error["type"] for error in raised.value.errors()} == {
        ("to", 1, "user_id"): "string_pattern_mismatch",
        ("to", 2, "email"): "value_error",
        ("to", 3): "model_type",
        ("to", 4, "user_id"): "string_type",
        ("to", 5, "user_id"): "string_pattern_mismatch",
    }
