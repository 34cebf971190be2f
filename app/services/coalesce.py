"""Concurrent sends stored in one transaction (group commit).

A send is a few statements and a commit, each a round trip and each planned by PostgreSQL;
under load those dominate. Sends that arrive while a transaction is being written wait for
it, then go together in the next one: one recipients query, one INSERT per table and one
commit for all of them. On an idle server a send goes alone, at once, with no added wait.

The first waiting send's request does the writing (it leads), with its own database session,
then hands the lead to the next waiting send if there is one, so no request writes for others
for longer than one transaction. After the commit the leader announces what the whole group
stored at once, then wakes the sends it stored. It hands the lead over between the two parts
of the announcement: the events go before, so that no later group's can pass them on the way
to a tab; the jobs after, since they wait on Redis.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.services.send import Send, SendResult, send_notifications
from app.services.templates import TemplateRenderError


@dataclass(eq=False)
class _Waiting:
    send: Send
    # Set when the send is stored (or failed), or when this send is to lead.
    woken: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    result: SendResult | None = None
    error: BaseException | None = None

    def finish(self, result: SendResult | None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.woken.set()

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None


class SendCoalescer:
    """Stores and commits sends, each with whichever others are waiting beside it."""

    def __init__(
        self,
        max_recipients: int,
        announce_in_order: Callable[[list[SendResult]], None],
        announce: Callable[[list[SendResult]], None],
    ) -> None:
        # A transaction takes waiting sends until their recipients pass this (at least one).
        self.max_recipients = max_recipients
        # Both are called once per committed group with its sends' results and must not raise.
        # This one in commit order, before the next group is stored: it must not wait.
        self.announce_in_order = announce_in_order
        self.announce = announce
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._leading = False

    def send(self, session: Session, send: Send) -> SendResult:
        """Store and commit `send`, and announce it; its result once committed. Raises
        `TemplateRenderError` for its template, or what the database raised for it; another
        send's failure does not fail this one."""
        # A waiting send holds no connection: the pool must have one for whoever leads.
        session.close()
        mine = _Waiting(send)
        with self._lock:
            self._waiting.append(mine)
            mine.leads = not self._leading
            self._leading = True
        if not mine.leads:
            mine.woken.wait()
        if not mine.finished:
            self._lead(session)
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _take(self) -> list[_Waiting]:
        with self._lock:
            taken, recipients = 0, 0
            for waiting in self._waiting:
                recipients += len(waiting.send.request.to)
                if taken and recipients > self.max_recipients:
                    break
                taken += 1
            batch = self._waiting[:taken]
            del self._waiting[:taken]
            return batch

    def _lead(self, session: Session) -> None:
        batch = self._take()
        outcomes: list[Outcome] = []
        try:
            try:
                outcomes = _store(session, batch)
                results = [result for _, result, _ in outcomes if result is not None]
                self.announce_in_order(results)
            finally:
                self._hand_over()
            self.announce(results)
        except BaseException as error:
            outcomes = outcomes or [(waiting, None, error) for waiting in batch]
            raise
        finally:
            for waiting, result, error in outcomes:
                waiting.finish(result, error)

    def _hand_over(self) -> None:
        with self._lock:
            if self._waiting:
                successor = self._waiting[0]
                successor.leads = True
                successor.woken.set()
            else:
                self._leading = False


Outcome = tuple[_Waiting, SendResult | None, BaseException | None]


def _store(session: Session, batch: list[_Waiting]) -> list[Outcome]:
    """One transaction for the batch; if it fails, each send alone, so that only the one at
    fault fails. Each send's result or error."""
    try:
        results = send_notifications(session, [waiting.send for waiting in batch])
        session.commit()
    except (TemplateRenderError, SQLAlchemyError) as error:
        session.rollback()
        if len(batch) == 1:
            return [(batch[0], None, error)]
        return [outcome for waiting in batch for outcome in _store_alone(session, waiting)]
    return [(waiting, result, None) for waiting, result in zip(batch, results, strict=True)]


def _store_alone(session: Session, waiting: _Waiting) -> list[Outcome]:
    """One send of a failed batch, in a transaction of its own. Whatever it raises is its own
    outcome: escaping, it would fail the sends of the batch already committed alone (their
    callers told a stored notification was not, and storing it again on a retry)."""
    try:
        return _store(session, [waiting])
    except Exception as error:
        session.rollback()
        return [(waiting, None, error)]
