"""GET and PUT /me/preferences: defaults, partial merges, resets, validation, and ownership."""

import pytest

from app.extensions import db
from app.models import Preference
from tests.conftest import assert_error

DEFAULT_CHANNELS = {"in_app": True, "email": True, "sms": True, "push": True}
DEFAULTS = {"channels": DEFAULT_CHANNELS, "categories": {}}


def get_preferences(api):
    response = api.get("/me/preferences")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def put_preferences(api, body):
    response = api.put("/me/preferences", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    assert result == get_preferences(api)
    return result


def test_defaults(user_client):
    ana = user_client("ana")
    assert get_preferences(ana) == DEFAULTS


def test_empty_update_keeps_defaults(user_client):
    ana = user_client("ana")
    assert put_preferences(ana, {}) == DEFAULTS
    assert put_preferences(ana, {"channels": {}, "categories": {}}) == DEFAULTS


def test_channel_updates_merge(user_client):
    ana = user_client("ana")
    assert put_preferences(ana, {"channels": {"email": False}}) == {
        "channels": {**DEFAULT_CHANNELS, "email": False},
        "categories": {},
    }
    assert put_preferences(ana, {"channels": {"sms": False}}) == {
        "channels": {**DEFAULT_CHANNELS, "email": False, "sms": False},
        "categories": {},
    }
    assert put_preferences(ana, {"channels": {"email": True}}) == {
        "channels": {**DEFAULT_CHANNELS, "sms": False},
        "categories": {},
    }


def test_category_updates_merge(user_client):
    ana = user_client("ana")
    put_preferences(ana, {"channels": {"push": False}})
    result = put_preferences(ana, {"categories": {"comment": {"email": False}}})
    assert result == {
        "channels": {**DEFAULT_CHANNELS, "push": False},
        "categories": {"comment": {"email": False}},
    }
    result = put_preferences(
        ana, {"categories": {"comment": {"sms": False}, "billing.invoice": {"push": True}}}
    )
    assert result == {
        "channels": {**DEFAULT_CHANNELS, "push": False},
        "categories": {
            "comment": {"email": False, "sms": False},
            "billing.invoice": {"push": True},
        },
    }
    result = put_preferences(ana, {"categories": {"comment": {"email": True}}})
    assert result["categories"]["comment"] == {"email": True, "sms": False}
    assert result["categories"]["billing.invoice"] == {"push": True}


def test_null_resets_a_channel_to_the_default(user_client):
    ana = user_client("ana")
    put_preferences(ana, {"channels": {"email": False, "sms": False}})
    assert put_preferences(ana, {"channels": {"email": None}}) == {
        "channels": {**DEFAULT_CHANNELS, "sms": False},
        "categories": {},
    }
    # Resetting a switch that was never set changes nothing.
    assert put_preferences(ana, {"channels": {"push": None}}) == {
        "channels": {**DEFAULT_CHANNELS, "sms": False},
        "categories": {},
    }


def test_null_removes_a_category_switch_and_empty_categories(user_client):
    ana = user_client("ana")
    put_preferences(ana, {"categories": {"comment": {"email": False, "push": False}}})
    result = put_preferences(ana, {"categories": {"comment": {"email": None}}})
    assert result["categories"] == {"comment": {"push": False}}
    result = put_preferences(ana, {"categories": {"comment": {"push": None}}})
    assert result == DEFAULTS
    # A category of nothing but resets never appears.
    assert put_preferences(ana, {"categories": {"mention": {"sms": None}}}) == DEFAULTS
    assert put_preferences(ana, {"categories": {"mention": {}}}) == DEFAULTS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": {"fax": False}}, "channels"),
        ({"channels": {"Email": False}}, "channels"),
        ({"categories": {"comment": {"pigeon": False}}}, "categories"),
        ({"categories": {"Bad Name": {"email": False}}}, "categories"),
        ({"categories": {"": {"email": False}}}, "categories"),
        ({"categories": {"x" * 65: {"email": False}}}, "categories"),
        ({"channels": {"email": "no"}}, "channels"),
        ({"channels": {"email": 0}}, "channels"),
        ({"channels": {"email": "false"}}, "channels"),
        ({"categories": {"comment": {"email": 1}}}, "categories"),
        ({"categories": {"comment": False}}, "categories"),
        ({"channels": ["email"]}, "channels"),
        ({"channels": None}, "channels"),
        ({"theme": "dark"}, "theme"),
        ({"channels": {"email": False}, "unknown": 1}, "unknown"),
    ],
)
def test_invalid_updates_are_422_and_change_nothing(user_client, body, field):
    ana = user_client("ana")
    before = put_preferences(
        ana, {"channels": {"sms": False}, "categories": {"comment": {"email": False}}}
    )
    error = assert_error(ana.put("/me/preferences", json=body), 422, "validation_error")
    assert any(name.split(".")[0] == field for name in error["details"]), error
    assert get_preferences(ana) == before


def test_invalid_update_of_a_new_user_stores_nothing(app, user_client):
    ana = user_client("ana")
    body = {"channels": {"email": False}, "categories": {"Bad": {"sms": False}}}
    assert_error(ana.put("/me/preferences", json=body), 422, "validation_error")
    assert get_preferences(ana) == DEFAULTS


def test_put_needs_json(user_client):
    ana = user_client("ana")
    response = ana.put("/me/preferences", data="channels=1")
    assert_error(response, 415)
    response = ana.put(
        "/me/preferences", data="{nope", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "malformed_json")
    assert get_preferences(ana) == DEFAULTS


def test_preferences_are_per_user(user_client):
    ana = user_client("ana")
    bob = user_client("bob")
    put_preferences(ana, {"channels": {"email": False}, "categories": {"comment": {"sms": False}}})
    assert get_preferences(bob) == DEFAULTS
    put_preferences(bob, {"channels": {"push": False}})
    assert get_preferences(ana) == {
        "channels": {**DEFAULT_CHANNELS, "email": False},
        "categories": {"comment": {"sms": False}},
    }
    assert get_preferences(bob) == {
        "channels": {**DEFAULT_CHANNELS, "push": False},
        "categories": {},
    }


def test_preferences_need_a_user_token(client, producer):
    assert_error(client.get("/me/preferences"), 401)
    assert_error(producer.get("/me/preferences"), 403, "forbidden")
    assert_error(producer.put("/me/preferences", json={"channels": {"email": False}}), 403)


def test_preferences_are_erased_with_the_user(app, producer, user_client):
    ana = user_client("ana")
    put_preferences(ana, {"channels": {"email": False}, "categories": {"comment": {"sms": False}}})
    with app.app_context():
        assert db.session.get(Preference, "ana") is not None
    assert producer.delete("/users/ana").status_code == 204
    with app.app_context():
        assert db.session.get(Preference, "ana") is None
    # The old token no longer works; a new user of the same id starts from the defaults.
    assert_error(ana.get("/me/preferences"), 401)
    again = user_client("ana")
    assert get_preferences(again) == DEFAULTS
