"""The gate that socket connects pass through: a bounded number at once, the rest in turn."""

import threading
import time

from app.realtime.admission import ConnectGate


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


def _connects(gate: ConnectGate, count: int) -> tuple[list[int], list[int]]:
    """`count` connects through the gate, each arriving once the one before is in or
    waiting, and each holding its slot until all have arrived: the order they got in, and
    how many were in at once as each got in."""
    entered: list[int] = []
    inside_when_entered: list[int] = []
    inside = 0
    lock = threading.Lock()
    all_arrived = threading.Event()

    def connect(number: int) -> None:
        nonlocal inside
        with gate.slot():
            with lock:
                inside += 1
                entered.append(number)
                inside_when_entered.append(inside)
            all_arrived.wait()
            with lock:
                inside -= 1

    threads = [threading.Thread(target=connect, args=(number,)) for number in range(count)]
    for arrived, thread in enumerate(threads, start=1):
        thread.start()
        _wait_until(lambda arrived=arrived: len(entered) + gate.waiting == arrived)
    all_arrived.set()
    for thread in threads:
        thread.join(timeout=5)
    return entered, inside_when_entered


def test_past_its_slots_connects_wait_their_turn():
    gate = ConnectGate(2)
    entered, inside = _connects(gate, 6)
    assert sorted(entered) == list(range(6))
    assert max(inside) == 2
    assert gate.waiting == 0


def test_waiting_connects_go_in_arrival_order():
    gate = ConnectGate(1)
    entered, _ = _connects(gate, 6)
    assert entered == list(range(6))


def test_a_freed_slot_goes_to_the_waiter_not_a_newcomer():
    gate = ConnectGate(1)
    order: list[str] = []
    first_in = threading.Event()
    let_first_out = threading.Event()

    def hold(name: str, inside: threading.Event | None = None) -> None:
        with gate.slot():
            order.append(name)
            if inside is not None:
                inside.set()
                let_first_out.wait()

    first = threading.Thread(target=hold, args=("first", first_in))
    first.start()
    first_in.wait(5)
    waiter = threading.Thread(target=hold, args=("waiter",))
    waiter.start()
    _wait_until(lambda: gate.waiting == 1)
    let_first_out.set()
    first.join(5)
    # The slot was handed over on release: a newcomer now waits behind the waiter.
    hold("newcomer")
    waiter.join(5)
    assert order == ["first", "waiter", "newcomer"]


def test_a_holder_that_fails_frees_its_slot():
    gate = ConnectGate(1)
    try:
        with gate.slot():
            raise RuntimeError("the database went away")
    except RuntimeError:
        pass
    entered = threading.Event()

    def connect() -> None:
        with gate.slot():
            entered.set()

    thread = threading.Thread(target=connect)
    thread.start()
    assert entered.wait(5)
    thread.join(5)
