"""The worker's HTTP side on port 7860 (Spaces route traffic there and need an answer).

``GET /health`` says what the worker is doing; ``POST /wake`` (bearer ``WORKER_WAKE_TOKEN``) makes
an idle worker poll at once, so a new task doesn't wait out the idle back-off.
"""

from __future__ import annotations

import hmac
import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from studio_worker.worker import Worker


def make_server(worker: Worker, host: str, port: int, wake_token: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def _send(self, status: int, data: Any) -> None:
            body = json.dumps(data).encode()
            head = (f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    "Cache-Control: no-store\r\n\r\n").encode()
            self.wfile.write(head + body)

        def do_GET(self) -> None:
            if self.path.split("?")[0] in ("/health", "/"):
                self._send(200, worker.health())
            else:
                self._send(404, {"error": {"code": "not_found", "message": "GET /health or POST /wake"}})

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "0")
            if length.isdigit() and int(length) <= 4096:
                self.rfile.read(int(length))
            else:
                self.close_connection = True
            if self.path.split("?")[0] != "/wake":
                self._send(404, {"error": {"code": "not_found", "message": "GET /health or POST /wake"}})
                return
            sent = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not wake_token or not hmac.compare_digest(sent.encode(), wake_token.encode()):
                self._send(401, {"error": {"code": "unauthorized", "message": "A valid wake token is required."}})
                return
            worker.wake()
            self._send(202, {"ok": True})

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
