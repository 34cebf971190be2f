"""The send coalescer's failure paths (app/services/coalesce.py): whatever fails while a group
is stored or announced, every send of the group is woken with its result or its error, and the
lead passes on, so that the sends queued behind the group are stored. Real threads, as in the
threading async mode; stand-ins for the sessions and for `send_notifications`."""

import threading
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from app.services import coalesce
from app.services.coalesce import SendCoalescer
from tests.waiting import wait_until

# Long enough for any healthy wait on a busy machine: past it, a send is taken to hang.
TIMEOUT = 5.0


class StandInSession:
    """What the coalescer calls of a request's session; counts the commits and rollbacks."""

    def __init__(self) -> None:
        self.commits = 0
        self.rollbacks = 0

    def close(self) -> None:
        """A waiting send holds no connection; nothing to give back here."""

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1


class Store:
    """Stands in for `send_notifications`: records each batch (its sends' users), holds it
    while `holding` until the test gives it a turn, then raises what `failures` names for that
    batch, or gives each send the result `"<user> stored"`."""

    def __init__(self, failures: dict[tuple[str, ...], BaseException] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.failures = failures or {}
        self.holding = True
        self.turns = threading.Semaphore(0)

    def __call__(self, session: StandInSession, sends: list[SimpleNamespace]) -> list[str]:
        users = [send.request.to[0] for send in sends]
        self.batches.append(users)
        if self.holding:
            assert self.turns.acquire(timeout=TIMEOUT), f"{users} were never let through"
        failure = self.failures.get(tuple(users))
        if failure is not None:
            raise failure
        return [f"{user} stored" for user in users]


class Announcer:
    """Stands in for `announce_in_order` or `announce`: records each group's results; for the
    group `failing`, waits until `first` holds (if given), then raises `error`."""

    def __init__(
        self,
        failing: list[str] | None = None,
        error: BaseException | None = None,
        first: Callable[[], bool] | None = None,
    ) -> None:
        self.calls: list[list[str]] = []
        self.failing, self.error, self.first = failing, error, first

    def __call__(self, results: list[str]) -> None:
        self.calls.append(list(results))
        if results == self.failing:
            if self.first is not None:
                wait_until(self.first, "the announcer's condition", TIMEOUT)
            assert self.error is not None
            raise self.error


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Store:
    stand_in = Store()
    monkeypatch.setattr(coalesce, "send_notifications", stand_in)
    return stand_in


def send_in_waves(
    coalescer: SendCoalescer, store: Store, waves: list[list[str]]
) -> tuple[dict[str, object], dict[str, StandInSession]]:
    """Sends each wave's users, each from its own thread and session. The first wave is one
    send, which leads at once; each later wave queues, in order, while the batch before it is
    held in the store, so that each wave is taken as one batch. Then lets everything through
    and waits for every send: what each returned or raised, and each one's session."""
    outcomes: dict[str, object] = {}
    sessions: dict[str, StandInSession] = {}
    threads: dict[str, threading.Thread] = {}
    stored_before = len(store.batches)
    store.holding = True

    def send(user: str) -> None:
        request = SimpleNamespace(request=SimpleNamespace(to=[user]))
        try:
            outcomes[user] = coalescer.send(sessions[user], request)
        except Exception as error:
            outcomes[user] = error

    for number, wave in enumerate(waves):
        for queued, user in enumerate(wave, start=1):
            sessions[user] = StandInSession()
            # Daemons, so that a send that hangs fails its test without stopping the run.
            threads[user] = threading.Thread(target=send, args=(user,), daemon=True)
            threads[user].start()
            if number:
                wait_until(
                    lambda q=queued: len(coalescer._waiting) == q, f"{user} to wait", TIMEOUT
                )
        if number:
            store.turns.release()
        wait_until(
            lambda n=number: len(store.batches) == stored_before + n + 1, f"wave {wave}", TIMEOUT
        )
    store.holding = False
    store.turns.release()
    for thread in threads.values():
        thread.join(TIMEOUT)
    assert [user for user, thread in threads.items() if thread.is_alive()] == []
    return outcomes, sessions


def commits(sessions: dict[str, StandInSession]) -> dict[str, int]:
    return {user: session.commits for user, session in sessions.items()}


def assert_only_bens_send_failed(
    outcomes: dict[str, object],
    sessions: dict[str, StandInSession],
    store: Store,
    in_order: Announcer,
    error: BaseException,
) -> None:
    """After the waves [first], [ben, cara], [dan] with an announcement of Ben's group
    failing: every group was stored and pushed in turn, and only Ben, its leader, raises."""
    assert outcomes == {
        "first": "first stored",
        "ben": error,
        "cara": "cara stored",
        "dan": "dan stored",
    }
    assert store.batches == [["first"], ["ben", "cara"], ["dan"]]
    assert commits(sessions) == {"first": 1, "ben": 1, "cara": 0, "dan": 1}
    assert in_order.calls == [["first stored"], ["ben stored", "cara stored"], ["dan stored"]]


def test_when_announcing_in_order_fails_the_leader_raises_and_the_others_get_their_results(
    store: Store,
):
    """The group was committed before the push failed, so the sends that waited get their
    results: failing them would tell their callers that what is stored was not (and invite a
    duplicate on retry). Only the leader, whose thread ran the push, raises its error. The
    group's jobs are not queued (the relay queues them), and the lead still passes on: the
    send queued behind the group is stored and announced after it."""
    error = RuntimeError("the push failed")
    in_order = Announcer(failing=["ben stored", "cara stored"], error=error)
    announce = Announcer()
    coalescer = SendCoalescer(100, in_order, announce)

    outcomes, sessions = send_in_waves(coalescer, store, [["first"], ["ben", "cara"], ["dan"]])

    assert_only_bens_send_failed(outcomes, sessions, store, in_order, error)
    assert announce.calls == [["first stored"], ["dan stored"]]


def test_when_announcing_fails_the_lead_has_passed_and_the_others_get_their_results(
    store: Store,
):
    """`announce` runs after the hand-over: while it is failing, the next group is already
    being stored. The failed group was committed and pushed, so the sends that waited get
    their results; only the leader raises the error."""
    error = RuntimeError("Redis is down")
    announce = Announcer(
        failing=["ben stored", "cara stored"],
        error=error,
        first=lambda: ["dan"] in store.batches,
    )
    in_order = Announcer()
    coalescer = SendCoalescer(100, in_order, announce)

    outcomes, sessions = send_in_waves(coalescer, store, [["first"], ["ben", "cara"], ["dan"]])

    assert_only_bens_send_failed(outcomes, sessions, store, in_order, error)
    # Dan's group announces while Ben's announcement may still be on its way.
    assert sorted(announce.calls) == [
        ["ben stored", "cara stored"],
        ["dan stored"],
        ["first stored"],
    ]


def test_when_storing_fails_unexpectedly_the_whole_batch_gets_the_error_and_the_next_leads(
    store: Store,
):
    """An error that is not the database's or a template's cannot be pinned on one send, and
    nothing was committed: every send of the batch raises it, none is announced, and the send
    queued behind the batch still gets the lead and is stored."""
    error = RuntimeError("the store broke")
    store.failures = {("ben", "cara"): error}
    in_order, announce = Announcer(), Announcer()
    coalescer = SendCoalescer(100, in_order, announce)

    outcomes, sessions = send_in_waves(coalescer, store, [["first"], ["ben", "cara"], ["dan"]])

    assert outcomes == {"first": "first stored", "ben": error, "cara": error, "dan": "dan stored"}
    assert store.batches == [["first"], ["ben", "cara"], ["dan"]]
    assert commits(sessions) == {"first": 1, "ben": 0, "cara": 0, "dan": 1}
    assert in_order.calls == announce.calls == [["first stored"], ["dan stored"]]


@pytest.mark.parametrize("failing", ["store", "announce_in_order", "announce"])
def test_a_lone_send_that_fails_leaves_the_lead_free_for_the_next_send(store: Store, failing: str):
    """With nobody waiting, a failure gives the lead back: a later send leads at once and is
    stored, instead of waiting forever for a leader that is gone."""
    error = RuntimeError(f"{failing} failed")
    if failing == "store":
        store.failures = {("first",): error}
    in_order = Announcer(["first stored"], error) if failing == "announce_in_order" else Announcer()
    announce = Announcer(["first stored"], error) if failing == "announce" else Announcer()
    coalescer = SendCoalescer(100, in_order, announce)

    first, _ = send_in_waves(coalescer, store, [["first"]])
    second, _ = send_in_waves(coalescer, store, [["second"]])

    assert first == {"first": error}
    assert second == {"second": "second stored"}
    assert store.batches == [["first"], ["second"]]
    assert in_order.calls[-1] == announce.calls[-1] == ["second stored"]


def test_a_database_error_fails_only_its_own_send_and_the_rest_of_the_batch_is_stored(
    store: Store,
):
    """The database error (the template error's path is covered end to end in
    tests/integration/test_coalescing.py) rolls the batch back; each send is then stored
    alone, so only the one at fault fails. The others are committed one by one and announced
    together."""
    error = OperationalError("INSERT INTO notifications", {}, Exception("bad row"))
    store.failures = {("ben", "bad", "cara"): error, ("bad",): error}
    in_order, announce = Announcer(), Announcer()
    coalescer = SendCoalescer(100, in_order, announce)

    outcomes, sessions = send_in_waves(coalescer, store, [["first"], ["ben", "bad", "cara"]])

    assert outcomes == {
        "first": "first stored",
        "ben": "ben stored",
        "bad": error,
        "cara": "cara stored",
    }
    assert store.batches == [["first"], ["ben", "bad", "cara"], ["ben"], ["bad"], ["cara"]]
    # Ben leads: his session wrote the whole batch, then each send alone.
    assert (sessions["ben"].rollbacks, sessions["ben"].commits) == (2, 2)
    assert in_order.calls == announce.calls == [["first stored"], ["ben stored", "cara stored"]]


def test_a_send_committed_in_the_retry_is_not_failed_by_a_later_sends_unexpected_error(
    store: Store,
):
    """After a database error the batch is stored send by send: Ben's send is committed alone
    before Bad's raises an unexpected error. Ben's send must still answer with its result
    (`send` promises that another send's failure does not fail this one); an error would tell
    his caller that a stored notification was not, and a retry would store it twice. Cara's,
    after Bad's, is still stored."""
    unexpected = RuntimeError("the store broke")
    store.failures = {
        ("ben", "bad", "cara"): OperationalError("INSERT", {}, Exception("bad row")),
        ("bad",): unexpected,
    }
    coalescer = SendCoalescer(100, Announcer(), Announcer())

    outcomes, sessions = send_in_waves(coalescer, store, [["first"], ["ben", "bad", "cara"]])

    assert store.batches == [["first"], ["ben", "bad", "cara"], ["ben"], ["bad"], ["cara"]]
    assert sessions["ben"].commits == 2
    assert outcomes["bad"] is unexpected
    assert outcomes["ben"] == "ben stored"
    assert outcomes["cara"] == "cara stored"
