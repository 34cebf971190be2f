"""eventlet's HTTP handler as serving.py sets it up, driven in-process over a socket pair."""

import gc
import socket
import warnings
import weakref

with warnings.catch_warnings():
    # eventlet announces its deprecation on import.
    warnings.simplefilter("ignore")
    import eventlet.wsgi
    from eventlet import greenio

from serving import READ_BUFFER_BYTES, eventlet_protocol


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def test_a_closed_connection_is_freed_without_waiting_for_a_full_collection():
    handlers: list[weakref.ref] = []

    class Recorded(eventlet_protocol()):
        def setup(self):
            handlers.append(weakref.ref(self))
            super().setup()

    served, client = socket.socketpair()
    listener = greenio.GreenSocket(socket.socket())
    server = eventlet.wsgi.Server(listener, ("127.0.0.1", 0), hello, protocol=Recorded)
    filler = "".join(f"X-Filler-{n}: {'h' * 100}\r\n" for n in range(20))
    request = f"GET / HTTP/1.1\r\nHost: test\r\n{filler}Connection: close\r\n\r\n".encode()
    assert len(request) > READ_BUFFER_BYTES
    client.sendall(request)
    gc.disable()
    try:
        server.process_request([("127.0.0.1", 1), greenio.GreenSocket(served), 0])
        [handler] = handlers
        assert handler() is None, gc.get_referrers(handler())
    finally:
        gc.enable()
        listener.close()
    answer = client.recv(65536)
    client.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nhello")
