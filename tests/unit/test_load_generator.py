"""The load generator's own HTTP/1.1 (bench/load.py): answers read as servers frame them,
and connections kept, reused and dropped as they should be, against a real socket server."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bench.load import _answer, _Connections, _header


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """`asyncio.run(main)` in a thread of its own: the browser tests' Playwright (its sync
    API) leaves an event loop running in the suite's main thread until the session ends."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, main).result()


def answers_of(raw: bytes, count: int) -> list[tuple[int, bytes, bool]]:
    """The first `count` answers read off one connection that carried `raw`."""

    async def read() -> list[tuple[int, bytes, bool]]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return [await _answer(reader) for _ in range(count)]

    return run(read())


def answer_of(raw: bytes) -> tuple[int, bytes, bool]:
    return answers_of(raw, 1)[0]


def test_an_answer_with_a_length_keeps_its_connection():
    raw = b"HTTP/1.1 201 CREATED\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
    raw += b'{"a":1}'
    assert answers_of(raw + b"HTTP/1.1 204 No Content\r\n\r\n", 2) == [
        (201, b'{"a":1}', True),
        (204, b"", True),
    ]


def test_a_chunked_answer_is_joined():
    # As Node's http answers after writeHead without a length.
    raw = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        b'4\r\n{"a"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n'
    )
    assert answer_of(raw) == (201, b'{"a":1}', True)


def test_interim_answers_and_trailers_are_read_past():
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n"
    )
    # Nothing of this answer is left to be taken for the next one's.
    assert answers_of(raw + b"HTTP/1.1 204 No Content\r\n\r\n", 2) == [
        (200, b"ok", True),
        (204, b"", True),
    ]


def test_a_transfer_coding_wins_over_a_length():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert answer_of(raw + b"2\r\nok\r\n0\r\n\r\n") == (200, b"ok", True)


@pytest.mark.parametrize(
    ("head", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection:close", False),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close", False),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive", True),
        (b"HTTP/1.0 200 OK", False),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive", True),
    ],
)
def test_a_connection_stays_open_by_the_version_and_its_options(head, reusable):
    assert answer_of(head + b"\r\nContent-Length: 2\r\n\r\nok") == (200, b"ok", reusable)


def test_an_answer_that_closes_is_read_to_the_end_and_not_reused():
    assert answer_of(b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nbroken") == (
        500,
        b"broken",
        False,
    )
    assert answer_of(b"HTTP/1.1 204 No Content\r\nConnection: Close\r\n\r\n") == (
        204,
        b"",
        False,
    )


def test_an_answer_cut_short_is_an_error():
    with pytest.raises(asyncio.IncompleteReadError):
        answer_of(b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nshort")


@contextlib.asynccontextmanager
async def serving(handle: Callable[..., Awaitable[None]]) -> AsyncIterator[int]:
    """A local server that runs `handle(reader, writer, number)` for each connection (the
    first is 1) until either side ends it; its port."""
    accepted = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            await handle(reader, writer, accepted)
        except asyncio.IncompleteReadError:
            pass  # the client closed its connection
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)  # the handlers see the clients' ends and close theirs


async def request_body(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    return await reader.readexactly(int(_header(head.lower(), b"content-length") or 0))


def test_connections_are_reused_and_limited():
    connected: set[int] = set()
    in_flight = most_in_flight = 0

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int):
        nonlocal in_flight, most_in_flight
        connected.add(number)
        while not reader.at_eof():
            body = await request_body(reader)
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            answer = json.dumps({"got": json.loads(body)}).encode()
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(answer))
            writer.write(answer)
            await writer.drain()

    async def scenario() -> list[tuple[int, bytes]]:
        async with serving(echo) as port:
            connections = _Connections([f"http://127.0.0.1:{port}"], limit=2)

            async def post(n: int) -> tuple[int, bytes]:
                body = json.dumps({"n": n}).encode()
                head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                return await connections.exchange(0, head + body)

            answers = await asyncio.gather(*(post(n) for n in range(10)))
            connections.close()
        return answers

    answers = run(scenario())
    assert answers == [(201, json.dumps({"got": {"n": n}}).encode()) for n in range(10)]
    # Ten requests over at most two connections at a time, each kept for the next.
    assert connected == {1, 2}
    assert most_in_flight == 2


def test_connections_the_server_closed_or_a_timeout_cut_are_not_reused():
    connected: set[int] = set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int):
        # The first connection answers once, then closes as an idle server does; the second
        # stalls mid-answer; later ones answer every request.
        connected.add(number)
        while not reader.at_eof():
            await request_body(reader)
            if number == 2:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart")
                await asyncio.sleep(1)
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            if number == 1:
                return

    async def scenario() -> list[object]:
        async with serving(answer) as port:
            connections = _Connections([f"http://127.0.0.1:{port}"], limit=1)
            request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
            outcomes: list[object] = [await connections.exchange(0, request)]
            await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
            try:
                async with asyncio.timeout(0.2):
                    await connections.exchange(0, request)
            except TimeoutError as error:
                outcomes.append(type(error).__name__)
            outcomes.append(await connections.exchange(0, request))
            connections.close()
        return outcomes

    # The closed connection was passed over, the cut one dropped: three connections in all.
    assert run(scenario()) == [(200, b"ok"), "TimeoutError", (200, b"ok")]
    assert connected == {1, 2, 3}
