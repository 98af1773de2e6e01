"""Local stand-in for the Upstash Redis REST API, in front of a real ``redis-server``.

Speaks what the official ``upstash-redis`` SDK (sync and async) sends: ``POST /`` with one command as a
JSON array, ``POST /pipeline`` and ``POST /multi-exec`` with arrays of arrays, plus Upstash's path style
(``GET /set/foo/bar``, ``POST /set/foo`` with the value as the body). Replies are Upstash's
``{"result": ...}`` / ``{"error": ...}`` shapes, optionally base64-encoded (``Upstash-Encoding: base64``).

Redis is reached through raw redis-py connections (RESP2, no response callbacks), so results are the
bulk bytes / ints / arrays / nil that Upstash itself relays. Lua scripts may start with a
``#!lua flags=...`` line that Redis 6.2/7.0 reject: it is blanked before EVAL / SCRIPT LOAD, and the
digest the client computed (over the script as sent) is mapped to the one Redis knows.

Not an Upstash feature: ``GET /__devstack/stats`` and ``POST /__devstack/stats/reset`` count REST
requests and commands for the benchmarks.

Run: ``python -m devstack.upstash --port 8079 --redis-url redis://127.0.0.1:6390/0 --token dev``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import redis
from redis._parsers import _RESP2Parser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from devstack.httpkit import App, Request, Response, make_server

# Upstash's own wording (upstash.com/docs/redis/troubleshooting/http_unauthorized).
UNAUTHORIZED = "WRONGPASS invalid or missing auth token"

# Not available over Upstash REST: they block, need connection state, or switch protocol.
UPSTASH_BLOCKED = frozenset({
    "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP",
    "WATCH", "UNWATCH", "DISCARD", "MULTI", "EXEC",
    "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
    "MONITOR", "SYNC", "PSYNC", "REPLCONF",
})
# Refused by the stand-in (not necessarily by Upstash) because they would change the state of a pooled
# connection (SELECT, AUTH, HELLO, CLIENT, RESET, QUIT) or wreck the shared dev Redis.
DEVSTACK_BLOCKED = frozenset({
    "SELECT", "SWAPDB", "AUTH", "HELLO", "CLIENT", "RESET", "QUIT",
    "SHUTDOWN", "DEBUG", "REPLICAOF", "SLAVEOF", "FAILOVER", "MODULE", "ACL", "CONFIG",
})
# Block forever with the BLOCK option; Upstash REST has no blocking reads either.
_BLOCK_OPTION = frozenset({"XREAD", "XREADGROUP"})

_SCRIPT_EVAL = frozenset({"EVAL", "EVAL_RO"})
_SCRIPT_EVALSHA = frozenset({"EVALSHA", "EVALSHA_RO"})

_STATS_PATH = "/__devstack/stats"
_STATS_RESET_PATH = "/__devstack/stats/reset"


class BadRequest(Exception):
    """A request the stand-in refuses as a whole (answered 400 with this message)."""


class _RawErrorParser(_RESP2Parser):
    """RESP2 parser that keeps Redis error replies verbatim.

    redis-py strips known prefixes (``ERR ``, ``NOSCRIPT ``, ``EXECABORT ``) when it maps errors to
    exception classes; Upstash relays the full text and SDK fallbacks match on ``NOSCRIPT``.
    """

    @classmethod
    def parse_error(cls, response: str) -> ResponseError:
        error = super().parse_error(response)
        if isinstance(error, RedisConnectionError):  # e.g. "max number of clients": a real fault
            return error  # type: ignore[return-value]
        return ResponseError(response)


@dataclass
class _Prepared:
    """One command, ready to send (``args``) or refused (``error``); ``post`` rewrites its result."""

    name: str
    args: list[bytes]
    error: str | None = None
    post: Callable[[Any], Any] | None = None


class _Stats:
    """Thread-safe request/command counters (a benchmark aid, not an Upstash feature)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.by_command: Counter[str] = Counter()

    def record(self, names: list[str]) -> None:
        with self._lock:
            self.requests += 1
            self.by_command.update(names)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "commands": sum(self.by_command.values()),
                "byCommand": dict(self.by_command),
            }

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_command.clear()


class _Scripts:
    """Maps the SHA1 a client computed over a ``#!lua``-headed script to the SHA1 Redis caches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._to_redis: dict[bytes, bytes] = {}

    @staticmethod
    def strip(script: bytes) -> bytes:
        """Blank a leading ``#!lua ...`` line, keeping its newline so Lua error line numbers hold."""
        if not script.startswith(b"#!lua"):
            return script
        newline = script.find(b"\n")
        return b"" if newline < 0 else script[newline:]

    def prepare(self, script: bytes) -> tuple[bytes, bytes]:
        """(stripped script, client digest); remembers the digest mapping when they differ."""
        stripped = self.strip(script)
        client_sha = hashlib.sha1(script, usedforsecurity=False).hexdigest().encode()
        if stripped is not script:
            with self._lock:
                self._to_redis[client_sha] = hashlib.sha1(stripped, usedforsecurity=False).hexdigest().encode()
        return stripped, client_sha

    def translate(self, sha: bytes) -> bytes:
        """The digest to send to Redis for a client digest (unchanged when unknown)."""
        with self._lock:
            return self._to_redis.get(sha.lower(), sha)


def _arg_bytes(value: Any) -> bytes:
    """Stringify one JSON command argument the way Upstash does (numbers keep their JSON text)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):  # only from callers other than _parse_body (it keeps number text)
        return str(value).encode()
    raise BadRequest(f"ERR invalid command argument: {type(value).__name__ if value is not None else 'null'}")


class _JsonNumber(str):
    """A JSON number kept as its literal text, so ``1.50`` and ``10`` reach Redis as sent."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_body(body: bytes) -> Any:
    try:
        return json.loads(body, parse_int=_JsonNumber, parse_float=_JsonNumber, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"ERR failed to parse command: {exc}") from None


def _command_args(raw: Any) -> list[bytes]:
    """Validate one JSON command (a non-empty array of scalars) and encode its arguments."""
    if not isinstance(raw, list):
        raise BadRequest("ERR failed to parse command: a command must be a JSON array")
    if not raw:
        raise BadRequest("ERR empty command")
    return [_arg_bytes(a) for a in raw]


def _text(value: bytes) -> str:
    # Non-UTF-8 bytes (binary values) become U+FFFD instead of crashing; base64 mode is lossless.
    return value.decode("utf-8", "replace")


def _encode(value: Any, b64: bool) -> Any:
    """A raw RESP2 value as Upstash's JSON: strings (base64 on request, but never "OK"), ints, null, arrays."""
    if isinstance(value, bytes):
        if b64 and value != b"OK":
            return base64.b64encode(value).decode("ascii")
        return _text(value)
    if isinstance(value, list):
        return [_encode(v, b64) for v in value]
    if isinstance(value, ResponseError):  # an error nested in an array (e.g. from Lua): plain text
        return str(value)
    if value is None or isinstance(value, int):
        return value
    return str(value)  # RESP2 has nothing else; never hand json.dumps something it can't take


def _entry(value: Any, b64: bool) -> dict[str, Any]:
    """One pipeline/transaction entry."""
    if isinstance(value, ResponseError):
        return {"error": str(value)}
    return {"result": _encode(value, b64)}


class _UpstashApp:
    """The request handler; one instance per stand-in, shared by all server threads."""

    def __init__(self, redis_url: str, token: str) -> None:
        self.token = token.encode()
        self.pool = redis.ConnectionPool.from_url(
            redis_url,
            protocol=2,
            parser_class=_RawErrorParser,
            driver_info=None,  # skip CLIENT SETINFO: one round trip less per new connection
            socket_timeout=60,
        )
        self.stats = _Stats()
        self.scripts = _Scripts()
        self._sync = itertools.count(1)
        self._sync_lock = threading.Lock()

    # -- HTTP ---------------------------------------------------------------------------------

    def __call__(self, req: Request) -> Response:
        with self._sync_lock:
            sync_token = str(next(self._sync))
        headers = {"Upstash-Sync-Token": sync_token}
        if req.method not in ("GET", "POST"):
            return Response.json(
                {"error": f"ERR method not allowed: {req.method}"}, 405, {**headers, "Allow": "GET, POST"}
            )
        if not self._authorized(req):
            return Response.json({"error": UNAUTHORIZED}, 401, headers)
        path = urlsplit(req.raw_path).path if req.raw_path else req.path
        b64 = req.header("upstash-encoding").strip().lower() == "base64"
        try:
            if path in (_STATS_PATH, _STATS_RESET_PATH):
                return self._stats_endpoint(req, path, headers)
            if path in ("/pipeline", "/multi-exec"):
                if req.method != "POST":
                    return Response.json({"error": "ERR method not allowed"}, 405, {**headers, "Allow": "POST"})
                commands = _parse_body(req.body)
                if not isinstance(commands, list) or not commands:
                    raise BadRequest("ERR failed to parse command: expected a non-empty array of commands")
                prepared = [self._prepare(_command_args(c)) for c in commands]
                self.stats.record([p.name for p in prepared])
                if path == "/pipeline":
                    return Response.json(self._pipeline(prepared, b64), 200, headers)
                body, status = self._multi_exec(prepared, b64)
                return Response.json(body, status, headers)
            prepared_one = self._prepare(self._single_args(req, path))
            self.stats.record([prepared_one.name])
            entry = _entry(self._run_one(prepared_one), b64)
            return Response.json(entry, 400 if "error" in entry else 200, headers)
        except BadRequest as exc:
            return Response.json({"error": str(exc)}, 400, headers)
        except (RedisError, OSError) as exc:
            # The backing Redis is down or stuck: a server fault, not the client's.
            return Response.json({"error": f"ERR devstack: redis unavailable: {exc}"}, 503, headers)

    def _authorized(self, req: Request) -> bool:
        auth = req.header("authorization")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer":
            given = req.query.get("_token", "")  # Upstash also accepts ?_token=...
        return hmac.compare_digest(given.strip().encode(), self.token)

    def _stats_endpoint(self, req: Request, path: str, headers: dict[str, str]) -> Response:
        if path == _STATS_RESET_PATH:
            if req.method != "POST":
                return Response.json({"error": "ERR method not allowed"}, 405, {**headers, "Allow": "POST"})
            self.stats.reset()
        return Response.json(self.stats.snapshot(), 200, headers)

    @staticmethod
    def _single_args(req: Request, path: str) -> list[bytes]:
        """Arguments of a single command: the JSON body at ``/``, else Upstash's path style."""
        if path in ("", "/"):
            if req.method != "POST":
                raise BadRequest("ERR empty command")
            return _command_args(_parse_body(req.body))
        # Split the raw path before percent-decoding so an encoded "/" stays inside its argument.
        args = [unquote_to_bytes(seg) for seg in path.strip("/").split("/")]
        if req.method == "POST" and req.body:
            args.append(req.body)  # path style: the body is the last argument, verbatim
        if not args[0]:
            raise BadRequest("ERR empty command")
        return args

    # -- commands -----------------------------------------------------------------------------

    def _prepare(self, args: list[bytes]) -> _Prepared:
        """Refuse blocked commands; rewrite Lua scripts and digests (see :class:`_Scripts`)."""
        name = _text(args[0]).upper()
        if name in UPSTASH_BLOCKED or name in DEVSTACK_BLOCKED or (
            name in _BLOCK_OPTION and any(a.upper() == b"BLOCK" for a in args[1:])
        ):
            return _Prepared(name, args, error=f"ERR Command is not available: '{name}'")
        if name in _SCRIPT_EVAL and len(args) > 1:
            stripped, _ = self.scripts.prepare(args[1])
            return _Prepared(name, [args[0], stripped, *args[2:]])
        if name in _SCRIPT_EVALSHA and len(args) > 1:
            return _Prepared(name, [args[0], self.scripts.translate(args[1]), *args[2:]])
        if name == "SCRIPT" and len(args) > 1:
            sub = args[1].upper()
            if sub == b"LOAD" and len(args) == 3:
                stripped, client_sha = self.scripts.prepare(args[2])

                def loaded(result: Any, client_sha: bytes = client_sha) -> Any:
                    # Upstash answers with the digest of the script as sent, which clients EVALSHA.
                    return client_sha if isinstance(result, bytes) else result

                return _Prepared(name, [args[0], args[1], stripped], post=loaded)
            if sub == b"EXISTS":
                return _Prepared(name, [*args[:2], *(self.scripts.translate(s) for s in args[2:])])
        return _Prepared(name, args)

    def _run_one(self, cmd: _Prepared) -> Any:
        if cmd.error is not None:
            return ResponseError(cmd.error)
        return self._pipeline_raw([cmd])[0]

    def _pipeline_raw(self, commands: list[_Prepared]) -> list[Any]:
        """Send every runnable command in one write, read the replies; errors come back as values."""
        runnable = [c for c in commands if c.error is None]
        replies: list[Any] = []
        if runnable:
            conn = self.pool.get_connection()
            try:
                conn.send_packed_command(conn.pack_commands([c.args for c in runnable]))
                for _ in runnable:
                    try:
                        replies.append(conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
            except BaseException:
                conn.disconnect()  # the reply stream may be out of step: never reuse it
                raise
            finally:
                self.pool.release(conn)
        it = iter(replies)
        out: list[Any] = []
        for c in commands:
            if c.error is not None:
                out.append(ResponseError(c.error))
                continue
            reply = next(it)
            out.append(c.post(reply) if c.post and not isinstance(reply, ResponseError) else reply)
        return out

    def _pipeline(self, commands: list[_Prepared], b64: bool) -> list[dict[str, Any]]:
        return [_entry(r, b64) for r in self._pipeline_raw(commands)]

    def _multi_exec(self, commands: list[_Prepared], b64: bool) -> tuple[Any, int]:
        """Run the commands in a real MULTI/EXEC on one connection."""
        refused = next((c for c in commands if c.error is not None), None)
        if refused is not None:  # refuse before sending anything: no partial transaction
            return {"error": refused.error}, 400
        conn = self.pool.get_connection()
        try:
            batch = [[b"MULTI"], *(c.args for c in commands), [b"EXEC"]]
            conn.send_packed_command(conn.pack_commands(batch))
            replies: list[Any] = []
            for _ in batch:
                try:
                    replies.append(conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            conn.disconnect()
            raise
        finally:
            self.pool.release(conn)
        result = replies[-1]
        if isinstance(result, ResponseError):  # EXECABORT: a command was rejected while queueing
            return {"error": str(result)}, 400
        if not isinstance(result, list) or len(result) != len(commands):
            return {"error": "ERR transaction failed"}, 400
        out = [
            c.post(r) if c.post and not isinstance(r, ResponseError) else r
            for c, r in zip(commands, result, strict=True)
        ]
        return [_entry(r, b64) for r in out], 200


def make_app(redis_url: str, token: str) -> App:
    """The Upstash REST stand-in as an ``app(Request) -> Response`` (thread-safe)."""
    return _UpstashApp(redis_url, token)


def main(argv: list[str] | None = None) -> None:
    """``python -m devstack.upstash --port N --redis-url URL --token T``: serve forever."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8079)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6390/0")
    parser.add_argument("--token", required=True)
    opts = parser.parse_args(argv)
    server = make_server(make_app(opts.redis_url, opts.token), opts.host, opts.port)
    print(f"upstash stand-in on http://{opts.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
