"""A real SMTP server for tests (aiosmtpd), recording what it accepts and able to refuse."""

import asyncio
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.servers import free_port


class Mailbox:
    """What an SMTP server accepted, and over how many connections. `refuse_next` answers that
    many DATA commands with `refusal` first; `delay_seconds` slows every message down."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_next = 0
        self.refusal = "451 4.3.0 try again later"
        self.delay_seconds = 0.0
        self.attempts = 0
        # Each SMTP session (connection) that sent a DATA command, once.
        self.sessions: list[object] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        with self.lock:
            self.attempts += 1
            if not any(seen is session for seen in self.sessions):
                self.sessions.append(session)
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return self.refusal
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """The accepted messages addressed to `address`."""
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port, in a thread of the test process."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
