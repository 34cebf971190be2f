"""A local HTTP endpoint standing in for a provider (Twilio, a push service, a webhook
receiver): it records every request and answers with the statuses it is told to."""

import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers import free_port


@dataclass
class Received:
    """One request as the endpoint saw it."""

    method: str
    path: str
    headers: Message  # looked up without regard to case, as HTTP wants
    body: bytes


class Endpoint:
    """ThreadingHTTPServer on 127.0.0.1; `answers` are used up first, then `default_status`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []
        self.default_status = 201
        self.body = b'{"sid": "SM0000", "status": "queued"}'
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with endpoint.lock:
                    endpoint.received.append(Received("POST", self.path, self.headers, body))
                    status = (
                        endpoint.answers.pop(0) if endpoint.answers else endpoint.default_status
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(endpoint.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "Endpoint":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)
