"""The base every ``api/**.py`` handler extends: JSON in and out, limits, auth, errors.

Vercel's Python runtime serves ``class handler(BaseHTTPRequestHandler)`` with a threaded stdlib
server, so this is plain ``http.server``: a route file defines ``get``/``post`` methods that take an
:class:`ApiRequest` and return ``(status, data)`` or raise :class:`ApiError`. Everything a client can
send ends as a JSON error with a 4xx status; only a real fault here answers 5xx.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ValidationError

from sorastudio.settings import Settings, get_settings
from sorastudio.tokens import TokenError, User, verify_access_token

MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_FIELDS = 32
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

log = logging.getLogger("sorastudio.api")
M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An error answer: ``{"error": {"code", "message", "fields"?}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


def field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field": "payload.videoUrl", "message": …}]`` (no input echoed)."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in (*prefix, *err["loc"])) or "body"
        out.append({"field": loc, "message": err["msg"]})
    return out


def invalid(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> ApiError:
    return ApiError(400, "invalid_request", "Some fields are missing or invalid.", fields=field_errors(exc, prefix))


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    settings: Settings
    _user: User | None = field(default=None, repr=False)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (400 when missing or not an object)."""
        if not self.body:
            raise ApiError(400, "invalid_json", "A JSON request body is required.")
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError):
            raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
        return data

    def parse(self, model: type[M], data: dict[str, Any] | None = None) -> M:
        """The JSON body (or ``data``) validated as ``model``: 400 with field errors."""
        try:
            return model.model_validate(self.json_object() if data is None else data)
        except ValidationError as exc:
            raise invalid(exc) from None

    def bearer_token(self) -> str:
        """The raw access token (call :meth:`user` first: this does not verify it)."""
        return self.header("authorization").partition(" ")[2].strip()

    def user(self) -> User:
        """The caller, from a verified ``Authorization: Bearer`` access token (401 otherwise)."""
        if self._user is None:
            scheme, _, token = self.header("authorization").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise ApiError(401, "unauthorized", "Log in first: send Authorization: Bearer <accessToken>.",
                               headers={"WWW-Authenticate": "Bearer"})
            if len(token) > 8192:
                raise ApiError(401, "invalid_token", "The access token is not valid.",
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            try:
                self._user = verify_access_token(token, self.settings)
            except TokenError as exc:
                if exc.code == "auth_unavailable":
                    raise ApiError(503, exc.code, exc.message) from None
                raise ApiError(401, exc.code, exc.message,
                               headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        return self._user

    def required_query(self, name: str) -> str:
        """A query parameter that must be present (400 naming it otherwise)."""
        value = self.query.get(name, "")
        if not value:
            raise ApiError(400, "invalid_request", f"{name} is required.",
                           fields=[{"field": name, "message": "required"}])
        return value

    def query_int(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
            raise ApiError(400, "invalid_request", f"{name} must be a whole number from {low} to {high}.",
                           fields=[{"field": name, "message": f"must be an integer from {low} to {high}"}])
        return int(raw)


Result = tuple[int, Any]
Route = Callable[[ApiRequest], Result]


class ApiHandler(BaseHTTPRequestHandler):
    """Subclass it in ``api/<route>.py`` as ``class handler(ApiHandler)`` and define get/post."""

    protocol_version = "HTTP/1.1"
    server_version = "sorastudio"
    error_content_type = "application/json"
    # After the response is sent (e.g. waking workers). Set per request by the route.
    after_response: Callable[[], None] | None = None
    allowed_methods: ClassVar[tuple[str, ...]] = ()
    _body_consumed = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.allowed_methods = tuple(m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if hasattr(cls, m.lower()))

    def setup(self) -> None:
        super().setup()
        try:  # one response = one send; avoid the Nagle/delayed-ACK stall on keep-alive
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # The stdlib logs the request line with the query string; keep logs free of user data.
        pass

    # http.server calls send_error for malformed request lines/headers: answer JSON there too.
    # Those are all the client's doing (501 = unknown method, 505 = bad version): never a 5xx.
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        codes = {404: "not_found", 408: "request_timeout", 414: "uri_too_long", 431: "headers_too_large"}
        self.close_connection = True
        if code == 501:
            allow = ", ".join(self.allowed_methods)
            error = ApiError(405, "method_not_allowed", f"Use {allow} here.", headers={"Allow": allow})
        else:
            status = code if 400 <= code < 500 else 400
            error = ApiError(status, codes.get(status, "bad_request"), message or "The request could not be read.")
        self._write(error.status, error.body(), error.headers)

    def _write(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        lines = [
            f"{self.protocol_version} {status} {self.responses.get(status, ('',))[0]}",
            "Content-Type: application/json; charset=utf-8",
            f"Content-Length: {len(body)}",
            "Cache-Control: no-store",
            "X-Content-Type-Options: nosniff",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + (b"" if self.command == "HEAD" else body))
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes:
        self._body_consumed = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ApiError(411, "length_required", "Send the body with a Content-Length, not chunked.")
        raw = self.headers.get("Content-Length", "0").strip() or "0"
        if not (raw.isascii() and raw.isdigit()):
            self.close_connection = True
            raise ApiError(400, "bad_request", "Content-Length must be a number.")
        length = int(raw)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # don't read it; the client is told and the socket closed
            raise ApiError(413, "body_too_large", f"The request body must be at most {MAX_BODY_BYTES} bytes.")
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            self.close_connection = True
            raise ApiError(400, "bad_request", "The request body ended early.")
        if body:
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
                raise ApiError(415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json).")
        return body

    def _dispatch(self) -> None:
        self.after_response = None
        self._body_consumed = False
        try:
            status, data, extra = self._handle()
        except ApiError as exc:
            status, data, extra = exc.status, exc.body(), exc.headers
        except Exception:  # a real fault: log it without request data, answer 500
            log.exception("unhandled error in %s", type(self).__module__)
            status, data, extra = 500, ApiError(500, "internal_error", "Something went wrong on our side.").body(), {}
        if not self._body_consumed and self.headers.get("Content-Length", "0").strip() not in ("", "0"):
            self.close_connection = True  # keep-alive would read the leftover body as a request
        self._write(status, data, extra)
        if self.after_response is not None:
            try:
                self.after_response()
            except Exception:
                log.exception("after-response hook failed")

    def _handle(self) -> tuple[int, Any, dict[str, str]]:
        route = getattr(self, self.command.lower(), None) if self.command in self.allowed_methods else None
        if route is None:
            # Drain a small body so keep-alive stays in sync; a large one closes the connection.
            self._read_body_quietly()
            raise ApiError(405, "method_not_allowed", f"Use {' or '.join(self.allowed_methods)} here.",
                           headers={"Allow": ", ".join(self.allowed_methods)})
        body = self._read_body()  # first: an unread body would be parsed as the next request
        parts = urlsplit(self.path)
        try:
            pairs = parse_qs(parts.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS,
                             errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_query", "The query string could not be read.") from None
        request = ApiRequest(
            method=self.command,
            path=parts.path,
            query={k: v[0] for k, v in pairs.items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            settings=get_settings(),
        )
        status, data = route(request)
        return status, data, {}

    def _read_body_quietly(self) -> None:
        try:
            self._read_body()
        except ApiError:
            pass

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET


def configure_logging() -> None:
    """JSON-ish one-line logs to stderr (Vercel collects stderr)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
