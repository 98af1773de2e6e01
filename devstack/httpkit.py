"""A tiny request/response layer shared by the local stand-ins.

Each stand-in is a plain function ``app(Request) -> Response``; :func:`serve` puts it behind a
threaded stdlib HTTP server. Responses are written in one ``sendall`` with ``TCP_NODELAY`` so
loopback requests don't stall on Nagle/delayed-ACK (~40 ms each otherwise).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Request:
    method: str
    path: str  # percent-decoded path, no query
    query: dict[str, str]  # first value of each query parameter
    headers: dict[str, str]  # lower-cased names
    body: bytes
    raw_path: str = ""  # the request target as received

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it isn't)."""
        return json.loads(self.body or b"null")

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return cls(status, json.dumps(data, separators=(",", ":")).encode(), h)


App = Callable[[Request], Response]

_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content", 302: "Found",
    304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 411: "Length Required",
    413: "Payload Too Large", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable",
}


def _handler_for(app: App, max_body: int | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "sorastudio-devstack"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def _serve(self) -> None:
            raw_length = (self.headers.get("Content-Length") or "0").strip()
            length = int(raw_length) if raw_length.isdigit() else -1
            if length < 0 or (max_body is not None and length > max_body):
                self.close_connection = True  # the unread body would desync keep-alive
                self._send(Response.json({"error": "request body too large or malformed length"},
                                         413 if length > 0 else 400))
                return
            body = self.rfile.read(length) if length > 0 else b""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self.close_connection = True  # like Vercel: a chunked body arrives as 0 bytes
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            req = Request(
                method=self.command,
                path=unquote(parts.path),
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw_path=self.path,
            )
            try:
                resp = app(req)
            except Exception as exc:  # a stand-in bug must still answer, and say what broke
                resp = Response.json({"error": f"devstack internal error: {exc!r}"}, 500)
            self._send(resp)

        def _send(self, resp: Response) -> None:
            head = [f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'Status')}"]
            headers = dict(resp.headers)
            headers.setdefault("Content-Length", str(len(resp.body)))
            if self.close_connection:
                headers["Connection"] = "close"
            head += [f"{k}: {v}" for k, v in headers.items()]
            payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            if self.command != "HEAD":
                payload += resp.body
            self.wfile.write(payload)
            self.wfile.flush()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the stdlib's 5 stalls concurrent clients for a second under load


def make_server(
    app: App, host: str = "127.0.0.1", port: int = 0, *, max_body: int | None = None
) -> ThreadingHTTPServer:
    """Bind a threaded server for ``app`` (port 0 picks a free port: read ``server_port``).

    ``max_body`` refuses larger request bodies with 413 before reading them.
    """
    server = _Server((host, port), _handler_for(app, max_body))
    server.daemon_threads = True
    return server


def serve_in_thread(
    app: App, host: str = "127.0.0.1", port: int = 0, *, max_body: int | None = None
) -> ThreadingHTTPServer:
    """Start ``app`` on a daemon thread and return the running server (for tests)."""
    server = make_server(app, host, port, max_body=max_body)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
