"""GET /me/notifications and friends: order, limits, keyset pages, catch-up, filters and
whose notifications a caller can see."""

import base64

import pytest

from tests.conftest import NOTIFICATION_FIELDS, assert_error, send


def send_many(producer, user_id, count, **fields):
    """Send `count` notifications to one user, one request each; their ids, oldest first."""
    ids = []
    for number in range(count):
        body = {"to": user_id, "title": f"n{number}", **fields}
        [notification_id] = send(producer, **body)
        ids.append(notification_id)
    return ids


def listing(api, path="/me/notifications", **query):
    response = api.get(path, query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_json()
    assert set(page) == {"items", "next_cursor", "unread_count"}
    return page


def ids_of(page):
    return [item["id"] for item in page["items"]]


def follow(api, path="/me/notifications", **query):
    """Every page of a listing, following `next_cursor` to the end; the list of pages."""
    pages = [listing(api, path, **query)]
    query.pop("after", None)
    while pages[-1]["next_cursor"] is not None:
        assert len(pages) < 200, "pagination does not end"
        pages.append(listing(api, path, **query, cursor=pages[-1]["next_cursor"]))
    return pages


# Order and page size


def test_newest_first_with_contract_fields(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 3, category="comment", data={"k": 1})
    page = listing(ana)
    assert ids_of(page) == list(reversed(ids))
    assert page["next_cursor"] is None
    assert page["unread_count"] == 3
    for item in page["items"]:
        assert set(item) == NOTIFICATION_FIELDS
        assert isinstance(item["id"], str)
        assert item["user_id"] == "ana"
        assert item["category"] == "comment"
        assert item["data"] == {"k": 1}
        assert item["read_at"] is None
        assert item["archived_at"] is None


def test_empty_inbox(user_client):
    ana = user_client("ana")
    assert listing(ana) == {"items": [], "next_cursor": None, "unread_count": 0}


def test_limit_defaults_to_20(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 21)
    page = listing(ana)
    assert ids_of(page) == list(reversed(ids))[:20]
    assert page["next_cursor"] is not None
    rest = listing(ana, cursor=page["next_cursor"])
    assert ids_of(rest) == [ids[0]]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(producer, user_client, limit):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 2)
    page = listing(ana, limit=limit)
    assert ids_of(page) == list(reversed(ids))[:limit]
    assert (page["next_cursor"] is not None) == (limit == 1)


def test_limit_100_returns_100(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 101)
    page = listing(ana, limit=100)
    assert ids_of(page) == list(reversed(ids))[:100]
    assert page["next_cursor"] is not None


@pytest.mark.parametrize("limit", ["0", "101", "x", "-1", "1.5", ""])
def test_bad_limit_is_422(user_client, limit):
    ana = user_client("ana")
    error = assert_error(
        ana.get("/me/notifications", query_string={"limit": limit}), 422, "validation_error"
    )
    assert "limit" in error["details"]


def test_unknown_query_parameter_is_422(user_client):
    ana = user_client("ana")
    error = assert_error(
        ana.get("/me/notifications", query_string={"page": "2"}), 422, "validation_error"
    )
    assert "page" in error["details"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("status", "new"), ("archived", "maybe"), ("category", "Not A Category")],
)
def test_bad_filter_values_are_422(user_client, name, value):
    ana = user_client("ana")
    error = assert_error(
        ana.get("/me/notifications", query_string={name: value}), 422, "validation_error"
    )
    assert name in error["details"]


# Keyset pages


@pytest.mark.parametrize("limit", [1, 3, 5, 7, 15, 16])
def test_cursor_pages_visit_every_notification_once(producer, user_client, limit):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 15)
    pages = follow(ana, limit=limit)
    seen = [notification_id for page in pages for notification_id in ids_of(page)]
    assert seen == list(reversed(ids))
    assert len(pages) == max(1, -(-15 // limit))
    assert all(len(page["items"]) == limit for page in pages[:-1])
    assert pages[-1]["next_cursor"] is None
    assert all(page["items"] for page in pages)


def test_pages_stay_stable_while_new_notifications_arrive(producer, user_client):
    ana = user_client("ana")
    older = send_many(producer, "ana", 12)
    first = listing(ana, limit=5)
    assert ids_of(first) == list(reversed(older))[:5]
    newer = send_many(producer, "ana", 4)
    second = listing(ana, limit=5, cursor=first["next_cursor"])
    newer += send_many(producer, "ana", 3)
    third = listing(ana, limit=5, cursor=second["next_cursor"])
    assert third["next_cursor"] is None
    visited = ids_of(first) + ids_of(second) + ids_of(third)
    assert visited == list(reversed(older))
    assert not set(visited) & set(newer)
    # The count is live even though the pages are not.
    assert third["unread_count"] == len(older) + len(newer)
    # A fresh first page starts with the newest ones.
    assert ids_of(listing(ana, limit=7)) == list(reversed(newer))


def test_pages_keep_filters(producer, user_client):
    ana = user_client("ana")
    comments = send_many(producer, "ana", 5, category="comment")
    send_many(producer, "ana", 5, category="like")
    pages = follow(ana, limit=2, category="comment")
    assert [i for page in pages for i in ids_of(page)] == list(reversed(comments))


def _b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "abc",
        "%%%",
        "é",
        _b64("hello world"),
        _b64('{"id": 5}'),
        _b64("n1:d:"),
        _b64("n1:d:abc"),
        _b64("n1:x:5"),
        _b64("n2:d:5"),
        _b64("n1:d:0"),
        _b64("n1:d:-5"),
        _b64("n1:d:99999999999999999999"),
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
        "x" * 101,
    ],
)
def test_invalid_cursor_is_422(producer, user_client, cursor):
    ana = user_client("ana")
    send_many(producer, "ana", 2)
    error = assert_error(
        ana.get("/me/notifications", query_string={"cursor": cursor}), 422, "validation_error"
    )
    assert "cursor" in error["details"]


def test_invalid_cursor_is_422_for_producer_listing_too(producer, user_client):
    user_client("ana")
    response = producer.get("/users/ana/notifications", query_string={"cursor": _b64("nope")})
    assert_error(response, 422, "validation_error")


# Filters


def test_status_filter(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 4)
    for notification_id in ids[:2]:
        assert ana.post(f"/me/notifications/{notification_id}/read").status_code == 200
    unread = list(reversed(ids[2:]))
    read = list(reversed(ids[:2]))
    assert ids_of(listing(ana, status="unread")) == unread
    assert ids_of(listing(ana, status="read")) == read
    assert ids_of(listing(ana, status="all")) == list(reversed(ids))
    assert ids_of(listing(ana)) == list(reversed(ids))
    for item in listing(ana, status="read")["items"]:
        assert item["read_at"] is not None
    for item in listing(ana, status="unread")["items"]:
        assert item["read_at"] is None


def test_archived_filter(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 4)
    archived = [ids[0], ids[2]]
    for notification_id in archived:
        assert ana.post(f"/me/notifications/{notification_id}/archive").status_code == 200
    kept = [ids[3], ids[1]]
    assert ids_of(listing(ana)) == kept
    assert ids_of(listing(ana, archived="false")) == kept
    assert ids_of(listing(ana, archived="true")) == list(reversed(archived))
    for item in listing(ana, archived="true")["items"]:
        assert item["archived_at"] is not None
    # Combined with status: archived and read.
    assert ana.post(f"/me/notifications/{ids[2]}/read").status_code == 200
    assert ids_of(listing(ana, archived="true", status="read")) == [ids[2]]
    assert ids_of(listing(ana, archived="true", status="unread")) == [ids[0]]


def test_category_filter(producer, user_client):
    ana = user_client("ana")
    comment = send(producer, to="ana", title="c", category="comment")[0]
    like = send(producer, to="ana", title="l", category="like")[0]
    general = send(producer, to="ana", title="g")[0]
    assert ids_of(listing(ana, category="comment")) == [comment]
    assert ids_of(listing(ana, category="like")) == [like]
    assert ids_of(listing(ana, category="general")) == [general]
    assert ids_of(listing(ana, category="nothing")) == []
    # The unread count is the whole inbox's, not the filtered listing's.
    assert listing(ana, category="comment")["unread_count"] == 3


# Catch-up with `after`


def test_after_returns_newer_ones_oldest_first_paged_forward(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 12)
    pages = follow(ana, after=ids[1], limit=4)
    assert [ids_of(page) for page in pages] == [ids[2:6], ids[6:10], ids[10:12]]
    assert pages[-1]["next_cursor"] is None
    # More arrive; catching up from the last one seen gives exactly those.
    more = send_many(producer, "ana", 3)
    assert ids_of(listing(ana, after=ids[-1])) == more


def test_after_newest_is_empty(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 3)
    assert listing(ana, after=ids[-1]) == {"items": [], "next_cursor": None, "unread_count": 3}


def test_after_an_exact_page_ends_with_null_cursor(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 5)
    pages = follow(ana, after=ids[0], limit=2)
    assert [ids_of(page) for page in pages] == [ids[1:3], ids[3:5]]


def test_after_only_lists_own_notifications(producer, user_client):
    ana = user_client("ana")
    user_client("bob")
    mine = []
    for number in range(3):
        mine += send(producer, to="ana", title=f"a{number}")
        send(producer, to="bob", title=f"b{number}")
    assert ids_of(listing(ana, after=mine[0])) == mine[1:]


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "0",
        "-1",
        "99999999999999999999",
        "9223372036854775808",
        "",
        "1.5",
        # What no row can have, as the document's id pattern says: a leading zero, 19 digits.
        "007",
        "0000000000000000000",
        "1000000000000000000",
    ],
)
def test_bad_after_is_422(producer, user_client, value):
    ana = user_client("ana")
    send_many(producer, "ana", 1)
    error = assert_error(
        ana.get("/me/notifications", query_string={"after": value}), 422, "validation_error"
    )
    assert "after" in error["details"]


def test_after_and_cursor_together_is_422(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 3)
    cursor = listing(ana, limit=1)["next_cursor"]
    assert cursor is not None
    response = ana.get("/me/notifications", query_string={"after": ids[0], "cursor": cursor})
    assert_error(response, 422, "validation_error")


# Unread count


def test_unread_count_counts_unread_unarchived_in_app_only(producer, user_client):
    ana = user_client("ana")
    user_client("bob")
    unread, read, archived, archived_read, _ = send_many(producer, "ana", 5)
    send(producer, to="ana", title="mail only", channels=["email"])
    send_many(producer, "bob", 2)
    assert ana.post(f"/me/notifications/{read}/read").status_code == 200
    assert ana.post(f"/me/notifications/{archived}/archive").status_code == 200
    assert ana.post(f"/me/notifications/{archived_read}/read").status_code == 200
    assert ana.post(f"/me/notifications/{archived_read}/archive").status_code == 200
    counted = ana.get("/me/unread-count")
    assert counted.status_code == 200
    assert counted.get_json() == {"unread_count": 2}
    for query in ({}, {"status": "read"}, {"archived": "true"}, {"category": "zzz"}):
        assert listing(ana, **query)["unread_count"] == 2
    assert unread in ids_of(listing(ana, status="unread"))


def test_unread_count_of_empty_inbox(user_client):
    ana = user_client("ana")
    assert ana.get("/me/unread-count").get_json() == {"unread_count": 0}


# Whose notifications


def test_only_the_callers_notifications_are_listed(producer, user_client):
    ana = user_client("ana")
    bob = user_client("bob")
    ana_ids = send_many(producer, "ana", 3)
    bob_ids = send_many(producer, "bob", 2)
    shared = send(producer, to=["ana", "bob"], title="both")
    for api, own, user_id in ((ana, ana_ids, "ana"), (bob, bob_ids, "bob")):
        for query in ({}, {"archived": "true"}, {"status": "unread"}, {"after": ana_ids[0]}):
            for item in listing(api, **query)["items"]:
                assert item["user_id"] == user_id
        listed = {i for page in follow(api, limit=1) for i in ids_of(page)}
        assert set(own) <= listed
        assert listed - set(own) == {
            n for n, owner in zip(shared, ["ana", "bob"], strict=True) if owner == user_id
        }
    assert not set(ana_ids) & {i for i in ids_of(listing(bob, limit=100))}
    assert listing(bob)["unread_count"] == 3


def test_email_only_notifications_are_not_listed(producer, user_client):
    ana = user_client("ana", email="ana@example.com")
    in_app = send(producer, to="ana", title="in app", channels=["in_app", "email"])[0]
    email_only = send(producer, to="ana", title="mail", channels=["email"])[0]
    page = listing(ana)
    assert ids_of(page) == [in_app]
    assert page["unread_count"] == 1
    assert ids_of(listing(ana, after=in_app)) == []
    assert ids_of(listing(ana, status="unread")) == [in_app]
    assert_error(ana.get(f"/me/notifications/{email_only}"), 404, "not_found")


# The producer's view


def test_producer_listing_matches_the_users(producer, user_client):
    ana = user_client("ana")
    ids = send_many(producer, "ana", 6, category="comment")
    send_many(producer, "bob", 2)
    assert ana.post(f"/me/notifications/{ids[0]}/read").status_code == 200
    assert ana.post(f"/me/notifications/{ids[1]}/archive").status_code == 200
    for query in (
        {},
        {"limit": 2},
        {"status": "unread"},
        {"archived": "true"},
        {"category": "comment"},
        {"after": ids[2], "limit": 2},
    ):
        mine = listing(ana, **query)
        theirs = listing(producer, "/users/ana/notifications", **query)
        assert theirs == mine
    first = listing(producer, "/users/ana/notifications", limit=2)
    rest = listing(producer, "/users/ana/notifications", limit=10, cursor=first["next_cursor"])
    assert ids_of(first) + ids_of(rest) == [ids[5], ids[4], ids[3], ids[2], ids[0]]


def test_producer_listing_of_unknown_user_is_404(producer):
    assert_error(producer.get("/users/nobody/notifications"), 404, "not_found")


def test_producer_listing_validates_query(producer, user_client):
    user_client("ana")
    response = producer.get("/users/ana/notifications", query_string={"limit": "0"})
    assert_error(response, 422, "validation_error")


def test_user_token_cannot_use_producer_listing(user_client):
    ana = user_client("ana")
    assert_error(ana.get("/users/ana/notifications"), 403, "forbidden")


def test_listing_needs_a_credential(client):
    assert_error(client.get("/me/notifications"), 401)


# One notification


def test_get_own_notification(producer, user_client):
    ana = user_client("ana")
    [notification_id] = send(
        producer,
        to="ana",
        title="Hello",
        body="Body text",
        category="comment",
        data={"post_id": 42},
        action_url="https://example.com/p/42",
        priority="high",
    )
    response = ana.get(f"/me/notifications/{notification_id}")
    assert response.status_code == 200
    notification = response.get_json()
    assert set(notification) == NOTIFICATION_FIELDS
    assert notification["id"] == notification_id
    assert notification["user_id"] == "ana"
    assert notification["title"] == "Hello"
    assert notification["body"] == "Body text"
    assert notification["category"] == "comment"
    assert notification["data"] == {"post_id": 42}
    assert notification["action_url"] == "https://example.com/p/42"
    assert notification["priority"] == "high"
    assert notification["created_at"].endswith("Z")
    assert notification["seen_at"] is None
    assert notification["read_at"] is None
    assert notification["archived_at"] is None
    assert listing(ana)["items"] == [notification]


def test_get_other_users_notification_is_404(producer, user_client):
    ana = user_client("ana")
    bob = user_client("bob")
    [notification_id] = send(producer, to="bob", title="secret")
    own = bob.get(f"/me/notifications/{notification_id}")
    assert own.status_code == 200
    assert own.get_json()["title"] == "secret"
    error = assert_error(ana.get(f"/me/notifications/{notification_id}"), 404, "not_found")
    assert "secret" not in str(error)
    nonexistent = assert_error(ana.get("/me/notifications/987654321"), 404, "not_found")
    # Indistinguishable from a notification that does not exist.
    assert error == nonexistent


@pytest.mark.parametrize("notification_id", ["987654321", "abc", "0", "-1", "99999999999999999999"])
def test_get_nonexistent_notification_is_404(user_client, notification_id):
    ana = user_client("ana")
    assert_error(ana.get(f"/me/notifications/{notification_id}"), 404, "not_found")
