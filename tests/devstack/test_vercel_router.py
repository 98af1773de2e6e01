"""The Vercel-style router (``devstack.vercel``) on a small project of its own: route discovery,
static files, ``vercel.json`` headers, one process per function, and the body size limit."""

from __future__ import annotations

import http.client
import json
import os
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.httpkit import Request, serve_in_thread
from devstack.vercel import MAX_FUNCTION_BODY, VercelDev, discover_routes

HANDLER = textwrap.dedent('''\
    import json
    import os
    from http.server import BaseHTTPRequestHandler


    class handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.dumps({"pid": os.getpid(), "path": self.path, "got": length}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._answer()

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer()
''')


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --- route discovery -------------------------------------------------------------------------


def test_discover_routes_follows_vercel_file_conventions(tmp_path: Path) -> None:
    write(tmp_path, "api/a.py", HANDLER)
    write(tmp_path, "api/upper.py", "from http.server import BaseHTTPRequestHandler\n"
                                    "class Handler(BaseHTTPRequestHandler):\n    pass\n")
    write(tmp_path, "api/nested/index.py", HANDLER)
    write(tmp_path, "api/nested/deep/b.py", HANDLER)
    write(tmp_path, "api/_private.py", HANDLER)
    write(tmp_path, "api/.hidden.py", HANDLER)
    write(tmp_path, "api/_lib/x.py", HANDLER)
    write(tmp_path, "api/.cache/y.py", HANDLER)
    write(tmp_path, "api/alias.py", "from http.server import BaseHTTPRequestHandler as handler\n")
    write(tmp_path, "api/assigned.py",
          "from http.server import BaseHTTPRequestHandler\nhandler = BaseHTTPRequestHandler\n")
    write(tmp_path, "api/nested_class.py", "def f():\n    class handler:\n        pass\n")
    write(tmp_path, "api/helpers.py", "def handler():\n    pass\n")
    write(tmp_path, "api/broken.py", "class handler(:\n")
    write(tmp_path, "api/notes.txt", "class handler: pass\n")
    assert discover_routes(tmp_path) == {
        "/api/a": Path("api/a.py"),
        "/api/upper": Path("api/upper.py"),
        "/api/nested": Path("api/nested/index.py"),
        "/api/nested/deep/b": Path("api/nested/deep/b.py"),
    }


def test_discover_routes_of_the_real_project() -> None:
    """Every file in the repository's api/ is a route (a helper there would be deployed as one)."""
    root = Path(__file__).resolve().parents[2]
    routes = discover_routes(root)
    assert {"/api/task", "/api/status", "/api/tasks", "/api/cancel", "/api/health",
            "/api/auth/login", "/api/auth/register"} <= set(routes)


# --- serving a project -----------------------------------------------------------------------

VERCEL_JSON = {
    "headers": [
        {"source": "/(.*)", "headers": [{"key": "X-Frame-Options", "value": "DENY"}]},
        {"source": "/api/:path*", "headers": [{"key": "Cache-Control", "value": "no-store"}]},
        {"source": "/assets/:name", "headers": [{"key": "X-Asset", "value": "yes"}]},
    ]
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vercel-project")
    write(root, "api/echo.py", HANDLER)
    write(root, "api/nested/index.py", HANDLER)
    write(root, "public/index.html", "<!doctype html><title>home</title>")
    write(root, "public/about.html", "<!doctype html><title>about</title>")
    write(root, "public/app.js", "console.log('hi');")
    write(root, "public/styles.css", "body{}")
    write(root, "public/logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")
    write(root, "public/data.json", "{}")
    write(root, "public/assets/pic.png", "not really a png")
    write(root, "public/docs/index.html", "<!doctype html><title>docs</title>")
    write(root, "secret.txt", "TOP SECRET")
    write(root, "index.html", "outside public")
    write(root, "vercel.json", json.dumps(VERCEL_JSON))
    return root


@pytest.fixture(scope="module")
def router(project: Path) -> Iterator[tuple[str, VercelDev]]:
    app = VercelDev(root=project, env={"FROM_ROUTER": "1"})
    server = serve_in_thread(app, max_body=MAX_FUNCTION_BODY)
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    server.server_close()
    app.close()


@pytest.fixture
def url(router: tuple[str, VercelDev]) -> str:
    return router[0]


def raw_get(base_url: str, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (clients normalise ``..`` away)."""
    port = int(base_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("path", "body", "ctype"),
    [
        ("/", b"<!doctype html><title>home</title>", "text/html; charset=utf-8"),
        ("/index.html", b"<!doctype html><title>home</title>", "text/html; charset=utf-8"),
        ("/about", b"<!doctype html><title>about</title>", "text/html; charset=utf-8"),
        ("/docs", b"<!doctype html><title>docs</title>", "text/html; charset=utf-8"),
        ("/app.js", b"console.log('hi');", "charset=utf-8"),
        ("/styles.css", b"body{}", "text/css; charset=utf-8"),
        ("/logo.svg", None, "image/svg+xml"),
        ("/data.json", b"{}", "application/json; charset=utf-8"),
        ("/assets/pic.png", None, "image/png"),
    ],
)
def test_static_files_are_served_with_their_content_type(url: str, path: str, body: bytes | None,
                                                         ctype: str) -> None:
    r = httpx.get(url + path)
    assert r.status_code == 200
    if body is not None:
        assert r.content == body
    assert ctype in r.headers["content-type"]
    if path == "/app.js":
        assert r.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")


@pytest.mark.parametrize(
    "target",
    ["/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/..%2fsecret.txt", "/assets/../../secret.txt",
     "/..", "/../index.html", "//etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd"],
)
def test_path_traversal_out_of_public_is_refused(url: str, target: str) -> None:
    status, body = raw_get(url, target)
    assert status == 404
    assert b"TOP SECRET" not in body and b"outside public" not in body and b"root:" not in body


def test_unknown_static_path_is_404(url: str) -> None:
    assert httpx.get(url + "/nope.html").status_code == 404


def test_unknown_api_route_is_a_json_404(url: str) -> None:
    r = httpx.get(url + "/api/x")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "NOT_FOUND"


def test_static_paths_refuse_other_methods(url: str) -> None:
    r = httpx.post(url + "/index.html", content=b"x")
    assert r.status_code == 405 and "GET" in r.headers["allow"]


def test_vercel_json_headers_apply_to_static_responses(url: str) -> None:
    page = httpx.get(url + "/")
    assert page.headers["x-frame-options"] == "DENY"
    assert "cache-control" not in page.headers
    asset = httpx.get(url + "/assets/pic.png")
    assert asset.headers["x-asset"] == "yes"
    assert httpx.get(url + "/nope.html").headers["x-frame-options"] == "DENY"


def test_vercel_json_headers_apply_to_function_responses(url: str) -> None:
    r = httpx.get(url + "/api/echo")
    assert r.status_code == 200, r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert httpx.get(url + "/api/missing").headers["cache-control"] == "no-store"


def test_function_runs_in_its_own_process(url: str) -> None:
    """Functions are separate processes (as on Vercel): a started one is reused, query intact."""
    first = httpx.get(url + "/api/echo?a=1&b=two")
    assert first.status_code == 200, first.text
    pid = first.json()["pid"]
    assert pid != os.getpid()
    assert first.json()["path"] == "/api/echo?a=1&b=two"
    assert httpx.get(url + "/api/echo").json()["pid"] == pid
    nested = httpx.get(url + "/api/nested/")
    assert nested.status_code == 200, nested.text
    assert nested.json()["pid"] not in (pid, os.getpid())


def test_function_receives_the_request_body(url: str) -> None:
    r = httpx.post(url + "/api/echo", content=b"x" * 100_000)
    assert r.status_code == 200, r.text
    assert r.json()["got"] == 100_000


def test_body_over_the_limit_is_413_before_any_function_starts(tmp_path: Path) -> None:
    """A body over 4.5 MB is refused from its Content-Length; no function process is started."""
    write(tmp_path, "api/echo.py", HANDLER)
    app = VercelDev(root=tmp_path, env={})
    server = serve_in_thread(app, max_body=MAX_FUNCTION_BODY)
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
            sock.sendall(f"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {MAX_FUNCTION_BODY + 1}\r\n\r\n".encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
        assert app._procs == {}

        # The router itself refuses too, for a body that reached it some other way.
        resp = app(Request("POST", "/api/echo", {}, {"content-type": "application/json"},
                           b"x" * (MAX_FUNCTION_BODY + 1), "/api/echo"))
        assert resp.status == 413
        assert json.loads(resp.body)["error"]["code"] == "FUNCTION_PAYLOAD_TOO_LARGE"
        assert app._procs == {}
    finally:
        server.shutdown()
        server.server_close()
        app.close()
