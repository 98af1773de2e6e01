"""The cold-start baseline: a bare stdlib handler that does nothing, served by devstack.funchost."""

from http.server import BaseHTTPRequestHandler


class handler(BaseHTTPRequestHandler):  # noqa: N801 - the name funchost and Vercel look for
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        # Headers only, so the response leaves in one send (no Nagle stall to flatter the ratio).
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass
