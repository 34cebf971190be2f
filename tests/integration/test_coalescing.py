"""Sends that arrive while another is being stored wait and are stored together, in one
transaction, and are announced together; one that fails (its template does not render) fails
alone and writes nothing."""

import threading
import time

from sqlalchemy import select

from app.extensions import db
from app.models import Notification, User
from app.services import coalesce
from tests.conftest import ApiClient
from tests.waiting import wait_until

TEMPLATE = {"channels": {"in_app": {"title": "{{ actor }} replied"}}}


def test_waiting_sends_share_a_transaction_and_a_bad_one_fails_alone(
    app, producer, api_key, monkeypatch
):
    assert producer.put("/templates/reply", json=TEMPLATE).status_code == 201
    coalescer = app.extensions["send_coalescer"]
    batches: list[list[str]] = []
    first_may_commit = threading.Event()
    store = coalesce.send_notifications

    def recording(session, sends):
        batches.append([send.request.user_ids[0] for send in sends])
        if len(batches) == 1:
            first_may_commit.wait(10)
        return store(session, sends)

    monkeypatch.setattr(coalesce, "send_notifications", recording)
    announced: list[list[str]] = []
    announce = coalescer.announce

    def recording_announce(results):
        announced.append([n.user_id for result in results for n in result.notifications])
        announce(results)

    monkeypatch.setattr(coalescer, "announce", recording_announce)
    bodies = {
        "lead": {"to": "lead", "title": "first"},
        "ben": {"to": "ben", "title": "waits"},
        "bad": {"to": "bad", "template": "reply", "context": {}},
        "cara": {"to": "cara", "template": "reply", "context": {"actor": "Ana"}},
    }
    answers = {}

    def post(name: str) -> None:
        client = ApiClient(app.test_client(), api_key)
        answers[name] = client.post("/notifications", json=bodies[name])

    threads = {name: threading.Thread(target=post, args=(name,)) for name in bodies}
    threads["lead"].start()
    wait_until(lambda: batches == [["lead"]], "the first send to be stored")
    for name in ("ben", "bad", "cara"):
        threads[name].start()
        wait_until(
            lambda n=name: n in [w.send.request.user_ids[0] for w in coalescer._waiting], name
        )
    first_may_commit.set()
    for thread in threads.values():
        thread.join(10)

    assert {name: answer.status_code for name, answer in answers.items()} == {
        "lead": 201,
        "ben": 201,
        "bad": 422,
        "cara": 201,
    }
    assert "actor" in answers["bad"].get_json()["error"]["details"]["channels.in_app.title"]
    # The three that waited went together; the failed transaction was done again send by send.
    assert batches == [["lead"], ["ben", "bad", "cara"], ["ben"], ["bad"], ["cara"]]
    # Once per committed group, the stored sends of the group at once.
    assert announced == [["lead"], ["ben", "cara"]]
    with app.app_context():
        stored = dict(db.session.execute(select(Notification.user_id, Notification.title)).all())
        users = set(db.session.scalars(select(User.id)))
    assert stored == {"lead": "first", "ben": "waits", "cara": "Ana replied"}
    assert "bad" not in users
    for name in ("lead", "ben", "cara"):
        [sent] = answers[name].get_json()["notifications"]
        assert sent["user_id"] == name


def test_a_user_in_several_waiting_sends_gets_counts_that_include_the_earlier_ones(
    app, producer, api_key, monkeypatch
):
    coalescer = app.extensions["send_coalescer"]
    first_may_commit = threading.Event()
    calls = []
    store = coalesce.send_notifications
    results = []

    def recording(session, sends):
        calls.append(len(sends))
        if len(calls) == 1:
            first_may_commit.wait(10)
        stored = store(session, sends)
        results.extend(stored)
        return stored

    monkeypatch.setattr(coalesce, "send_notifications", recording)

    def post() -> None:
        ApiClient(app.test_client(), api_key).post(
            "/notifications", json={"to": "dana", "title": "t"}
        )

    threads = [threading.Thread(target=post) for _ in range(4)]
    threads[0].start()
    wait_until(lambda: calls == [1], "the first send to be stored")
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: len(coalescer._waiting) == 3, "three sends to wait")
    first_may_commit.set()
    for thread in threads:
        thread.join(10)
    assert calls == [1, 3]
    assert [result.unread_counts["dana"] for result in results] == [1, 2, 3, 4]


def test_a_group_is_announced_before_its_sends_answer(app, api_key, monkeypatch):
    coalescer = app.extensions["send_coalescer"]
    announced = threading.Event()
    announce = coalescer.announce

    def slow_announce(results):
        time.sleep(0.2)
        announce(results)
        announced.set()

    monkeypatch.setattr(coalescer, "announce", slow_announce)
    answer = ApiClient(app.test_client(), api_key).post(
        "/notifications", json={"to": "erin", "title": "t"}
    )
    assert answer.status_code == 201
    # A client that saw the 201 may count on the event being on its way.
    assert announced.is_set()


def test_a_groups_events_go_out_before_the_next_group_is_stored(app, api_key, monkeypatch):
    """The lead passes on only after the group's events are pushed, however slow the push: a
    later group cannot push first. The jobs are queued after, while the next group leads."""
    coalescer = app.extensions["send_coalescer"]
    steps: list[tuple[str, list[str]]] = []
    store = coalesce.send_notifications
    push, queue = coalescer.announce_in_order, coalescer.announce
    next_group_stored = threading.Event()

    def users(results) -> list[str]:
        return [n.user_id for result in results for n in result.notifications]

    def recording_store(session, sends):
        steps.append(("store", [send.request.user_ids[0] for send in sends]))
        if len(steps) == 1:
            wait_until(lambda: len(coalescer._waiting) == 1, "the second send to wait")
        else:
            next_group_stored.set()
        return store(session, sends)

    def slow_push(results):
        if users(results) == ["first"]:
            time.sleep(0.3)
        steps.append(("push", users(results)))
        push(results)

    def slow_queue(results):
        if users(results) == ["first"]:
            assert next_group_stored.wait(10), "the next group was not stored meanwhile"
        queue(results)

    monkeypatch.setattr(coalesce, "send_notifications", recording_store)
    monkeypatch.setattr(coalescer, "announce_in_order", slow_push)
    monkeypatch.setattr(coalescer, "announce", slow_queue)
    answers = {}

    def post(user: str) -> None:
        client = ApiClient(app.test_client(), api_key)
        answers[user] = client.post("/notifications", json={"to": user, "title": "t"})

    threads = [threading.Thread(target=post, args=(user,)) for user in ("first", "second")]
    threads[0].start()
    wait_until(lambda: steps == [("store", ["first"])], "the first send to be stored")
    threads[1].start()
    for thread in threads:
        thread.join(10)
    assert {user: answer.status_code for user, answer in answers.items()} == {
        "first": 201,
        "second": 201,
    }
    assert steps == [
        ("store", ["first"]),
        ("push", ["first"]),
        ("store", ["second"]),
        ("push", ["second"]),
    ]
