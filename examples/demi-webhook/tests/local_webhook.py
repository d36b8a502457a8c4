"""A real HTTP server on 127.0.0.1, run in a thread, that records what it receives."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The bearer token every test configures; distinctive, so a leak is easy to spot.
TOKEN = "tok-5f3c9e1d-never-shown"


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-exchange (a cancelled request) is expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """GET /health 200, GET /down 503; POST /hook echoes JSON, /text answers text,
    /fail answers 500; anything else 404."""

    server: _Server

    def do_GET(self) -> None:
        self._record(b"")
        if self.path == "/health":
            self._reply(200, b'{"status": "ok"}')
        elif self.path == "/down":
            self._reply(503, b'{"status": "down"}')
        else:
            self._reply(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._record(body)
        try:
            payload = json.loads(body)
        except ValueError:  # a client that gave up half-way through its body
            self._reply(400, b'{"error": "not JSON"}')
            return
        if self.path == "/hook":
            self._reply(200, json.dumps({"received": payload}).encode())
        elif self.path == "/text":
            self._reply(200, b"thanks", "text/plain")
        elif self.path == "/fail":
            self._reply(500, b'{"error": "boom"}')
        else:
            self._reply(404, b'{"error": "not found"}')

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def _record(self, body: bytes) -> None:
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.server.received.append(Received(self.command, self.path, headers, body))

    def _reply(
        self, status: int, body: bytes, content_type: str = "application/json"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class WebhookServer:
    """The running server: its URLs, what it received, and configs pointing at it."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"

    @property
    def received(self) -> list[Received]:
        """Every request so far, in order."""
        return list(self._server.received)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    def config(
        self, hook: str = "/hook", health: str = "/health", **extra: Any
    ) -> dict[str, Any]:
        """A webhook platform configuration that delivers to this server."""
        return {
            "url": self.url(hook),
            "health_url": self.url(health),
            "token": TOKEN,
            **extra,
        }


@contextmanager
def serving() -> Iterator[WebhookServer]:
    """Serve from a thread until the block ends."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield WebhookServer(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
