"""A Vercel-style server for the local cloud: ``public/`` at ``/`` and one process per function.

Routing follows Vercel's file conventions: ``api/status.py`` answers ``/api/status``; files or
folders starting with ``_`` or ``.`` are not functions, and a file is a function only if it defines
a top-level ``class handler``/``Handler`` (an imported alias makes none on Vercel either). Each
function runs in its own process, started on its first request (a cold start), and the router
proxies to it. Response headers come from ``vercel.json`` ``headers`` rules, as on Vercel.
"""

from __future__ import annotations

import ast
import http.client
import json
import mimetypes
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from devstack.httpkit import Request, Response

MAX_FUNCTION_BODY = 4_500_000  # Vercel's request body limit for functions
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}


def is_function_file(path: Path) -> bool:
    """True when Vercel would make ``path`` a function: a top-level ``class handler``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return False
    return any(isinstance(node, ast.ClassDef) and node.name in ("handler", "Handler") for node in tree.body)


def discover_routes(root: Path) -> dict[str, Path]:
    """Map URL path -> function file (relative to ``root``) for every function under ``api/``."""
    routes: dict[str, Path] = {}
    for file in sorted((root / "api").rglob("*.py")):
        rel = file.relative_to(root)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if not is_function_file(file):
            continue
        route = "/" + rel.with_suffix("").as_posix()
        if route.endswith("/index"):
            route = route[: -len("/index")] or "/"
        routes[route] = rel
    return routes


def _source_regex(source: str) -> re.Pattern[str]:
    """Vercel's path-to-regexp subset used in ``headers`` rules: ``(.*)``, ``:name``, ``:name*``."""
    pattern = re.sub(r":\w+\*", ".*", source)
    pattern = re.sub(r":\w+", "[^/]+", pattern)
    return re.compile(f"^{pattern}$")


@dataclass
class FunctionProcess:
    file: Path
    proc: subprocess.Popen[str]
    port: int
    # Idle keep-alive connections: a new TCP connection per request would overflow the
    # function's small accept backlog under concurrent load and stall for a second.
    idle: queue.SimpleQueue[http.client.HTTPConnection] = field(default_factory=queue.SimpleQueue)

    def connection(self) -> http.client.HTTPConnection:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)


@dataclass
class VercelDev:
    """The router: static files, functions and ``vercel.json`` headers."""

    root: Path
    env: dict[str, str]
    routes: dict[str, Path] = field(default_factory=dict)
    header_rules: list[tuple[re.Pattern[str], dict[str, str]]] = field(default_factory=list)
    _procs: dict[str, FunctionProcess] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.routes = discover_routes(self.root)
        config_file = self.root / "vercel.json"
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
        for rule in config.get("headers", []):
            values = {h["key"]: h["value"] for h in rule.get("headers", [])}
            self.header_rules.append((_source_regex(rule["source"]), values))

    # -- functions ------------------------------------------------------------------------

    def _function(self, route: str) -> FunctionProcess:
        with self._lock:
            fp = self._procs.get(route)
            if fp is not None and fp.proc.poll() is None:
                return fp
            env = {**os.environ, **self.env, "PYTHONDONTWRITEBYTECODE": "1"}
            # funchost lives in devstack/, which a served project need not contain; the project's own
            # folder still comes first on sys.path (funchost puts it there, as Vercel does).
            here = str(Path(__file__).resolve().parents[1])
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH", "")]))
            proc = subprocess.Popen(
                [sys.executable, "-m", "devstack.funchost", str(self.root), str(self.routes[route])],
                stdout=subprocess.PIPE, stderr=None, text=True, env=env, cwd=str(self.root),
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                proc.wait()
                raise RuntimeError(f"function {route} failed to start (exit {proc.returncode})")
            fp = FunctionProcess(self.routes[route], proc, int(json.loads(line)["port"]))
            self._procs[route] = fp
            return fp

    def _proxy(self, route: str, req: Request) -> Response:
        if len(req.body) > MAX_FUNCTION_BODY:
            return Response.json({"error": {"code": "FUNCTION_PAYLOAD_TOO_LARGE",
                                            "message": "Request body exceeds 4.5 MB."}}, 413)
        try:
            fp = self._function(route)
        except Exception as exc:  # a function that can't import is Vercel's 500 FUNCTION_INVOCATION_FAILED
            return Response.json({"error": {"code": "FUNCTION_INVOCATION_FAILED", "message": str(exc)}}, 500)
        headers = {k: v for k, v in req.headers.items() if k not in HOP_BY_HOP and k != "content-length"}
        headers.setdefault("x-forwarded-for", "127.0.0.1")
        headers["x-forwarded-proto"] = "http"
        headers["x-vercel-id"] = "dev1::local"
        for attempt in range(2):  # a pooled connection the function closed meanwhile: retry on a new one
            conn = fp.connection() if attempt == 0 else http.client.HTTPConnection("127.0.0.1", fp.port, timeout=300)
            try:
                conn.putrequest(req.method, req.raw_path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers.items():
                    conn.putheader(k, v)
                if req.body or req.method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(req.body)))
                conn.endheaders(req.body or None)
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if attempt == 0:
                    continue
                return Response.json({"error": {"code": "FUNCTION_INVOCATION_FAILED", "message": repr(exc)}}, 502)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                return Response.json({"error": {"code": "FUNCTION_INVOCATION_FAILED", "message": repr(exc)}}, 502)
            if resp.will_close:
                conn.close()
            else:
                fp.idle.put(conn)
            out = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}}
            return Response(resp.status, body, out)
        raise AssertionError("unreachable")

    # -- static files ---------------------------------------------------------------------

    def _static(self, req: Request) -> Response:
        public = self.root / "public"
        rel = req.path.lstrip("/")
        candidates = [rel or "index.html"]
        if rel and not Path(rel).suffix:
            candidates += [f"{rel}.html", f"{rel.rstrip('/')}/index.html"]
        for name in candidates:
            target = (public / name).resolve()
            if target.is_relative_to(public.resolve()) and target.is_file():
                ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
                    ctype += "; charset=utf-8"
                return Response(200, target.read_bytes(), {"Content-Type": ctype})
        not_found = public / "404.html"
        if not_found.is_file():
            return Response(404, not_found.read_bytes(), {"Content-Type": "text/html; charset=utf-8"})
        return Response(404, b"Not Found", {"Content-Type": "text/plain; charset=utf-8"})

    # -- entry point ----------------------------------------------------------------------

    def __call__(self, req: Request) -> Response:
        route = req.path.rstrip("/") or "/"
        if route in self.routes:
            resp = self._proxy(route, req)
        elif route.startswith("/api/"):
            resp = Response.json({"error": {"code": "NOT_FOUND", "message": "The page could not be found."}}, 404)
        elif req.method not in ("GET", "HEAD"):
            resp = Response(405, b"Method Not Allowed", {"Allow": "GET, HEAD", "Content-Type": "text/plain"})
        else:
            resp = self._static(req)
        for pattern, values in self.header_rules:
            if pattern.match(req.path):
                resp.headers.update(values)
        return resp

    def close(self) -> None:
        """Stop every function process."""
        with self._lock:
            for fp in self._procs.values():
                fp.proc.terminate()
            for fp in self._procs.values():
                try:
                    fp.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    fp.proc.kill()
            self._procs.clear()
