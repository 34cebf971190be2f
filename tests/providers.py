"""A local HTTP endpoint standing in for a provider (Twilio, a push service, a webhook
receiver): it records every request and answers with the statuses it is told to. And a
browser's side of Web Push: its subscription keys, and VAPID keys for the server."""

import base64
import json
import os
import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

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


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Browser:
    """A browser's push keys: what `PushSubscription.toJSON()` would hand the server."""

    def __init__(self, endpoint: str) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self) -> dict:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


def vapid_keys() -> dict[str, str]:
    """A fresh VAPID key pair as the two settings."""
    keys = Vapid02()
    keys.generate_keys()
    public = keys.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = keys.private_key.private_numbers().private_value.to_bytes(32, "big")
    return {"VAPID_PUBLIC_KEY": b64url(public), "VAPID_PRIVATE_KEY": b64url(private)}
