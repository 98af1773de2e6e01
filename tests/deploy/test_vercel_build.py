"""The real ``vercel build`` on a copy of the project, then the built functions over HTTP.

One build per test process (module fixture). The CLI, ``uv`` and a ``python3.12`` come from
``.tools/bin`` (``scripts/install-vercel-cli.sh``); when they are missing or the build fails the
tests fail with the reason, never skip: a project that can't build can't deploy.

The built functions run with Vercel's own launcher (``vc__handler__python``) from a self-contained
folder made from ``.vc-config.json``'s ``filePathMap``, with only the bundle and ``cloud.env`` —
so a file the bundle lacks (a module left out by ``excludeFiles``, a missing dependency) shows up
here as an import error, not in production.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.stack import LocalCloud
from devstack.vercel import discover_routes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("vercel_build")]

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
SETUP = "scripts/install-vercel-cli.sh"
BUILD_TIMEOUT_S = 600
START_TIMEOUT_S = 60
BUNDLE_LIMIT_BYTES = 250 * 1024 * 1024  # Vercel's unzipped function size limit
# Never copied into the build tree: environments, caches, local data and our own tool folder.
COPY_SKIP = {".git", ".venv", ".data", ".tools", ".vercel", "node_modules", "__pycache__",
             ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "test-artifacts"}
# What a function bundle may hold besides _vendor/: the code and the builder's own manifests.
BUNDLE_APP_DIRS = ("api/", "sorastudio/")
BUNDLE_MANIFESTS = {"requirements.txt", "pyproject.toml", "uv.lock"}
SOURCE_SUFFIXES = {".py", ".pyc", ".toml", ".ini", ".cfg", ".lock", ".sql", ".sh", ".md"}
SECURITY_HEADERS = {"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy", "Permissions-Policy", "Strict-Transport-Security"}


@dataclass
class Build:
    project: Path  # the temporary copy the CLI built in
    output: Path  # project/.vercel/output
    log: str

    @property
    def functions(self) -> dict[str, Path]:
        """URL path -> ``.func`` folder."""
        base = self.output / "functions"
        return {"/" + f.relative_to(base).with_suffix("").as_posix(): f for f in sorted(base.rglob("*.func"))}

    def vc_config(self, route: str) -> dict[str, Any]:
        config: dict[str, Any] = json.loads((self.functions[route] / ".vc-config.json").read_text())
        return config


def _project_files() -> list[Path]:
    """Tracked plus untracked-but-not-ignored files (what a git deploy would see), relative."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout
        names = [Path(n) for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a checkout: walk the tree instead
        names = [p.relative_to(ROOT) for p in ROOT.rglob("*") if p.is_file() or p.is_symlink()]
    return [n for n in names if not COPY_SKIP.intersection(n.parts) and (ROOT / n).is_file()]


def _tool_env() -> dict[str, str]:
    missing = [t for t in ("vercel", "uv", "python3.12") if not os.access(TOOLS_BIN / t, os.X_OK)]
    if missing:
        pytest.fail(f"vercel build can't run: {', '.join(missing)} missing from {TOOLS_BIN}; "
                    f"run `bash {SETUP}` once (needs npm and the package registries)", pytrace=False)
    # Drop anything that would point the CLI at a real Vercel project or at our own venv.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VERCEL_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    if "VERCEL_RUNTIME_PYTHON" in os.environ:  # a deliberate runtime override passes through
        env["VERCEL_RUNTIME_PYTHON"] = os.environ["VERCEL_RUNTIME_PYTHON"]
    env.update(PATH=f"{TOOLS_BIN}{os.pathsep}{env.get('PATH', '')}", VERCEL_TELEMETRY_DISABLED="1",
               NO_UPDATE_NOTIFIER="1", FORCE_COLOR="0")
    return env


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    env = _tool_env()
    project = tmp_path_factory.mktemp("vercel") / "project"
    for rel in _project_files():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, project / rel)
    # The CLI's link to a project; with `settings` it builds offline instead of asking the API.
    (project / ".vercel").mkdir()
    (project / ".vercel" / "project.json").write_text(json.dumps(
        {"projectId": "prj_local", "orgId": "team_local", "settings": {"framework": None}}))
    try:
        proc = subprocess.run(["vercel", "build", "--yes"], cwd=project, env=env, capture_output=True,
                              text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:  # its output is bytes even with text=True
        out = b"".join(x for x in (exc.stdout, exc.stderr) if isinstance(x, bytes)).decode(errors="replace")
        pytest.fail(f"vercel build took over {BUILD_TIMEOUT_S} s:\n{out[-6000:]}", pytrace=False)
    log = f"{proc.stdout}\n{proc.stderr}"
    output = project / ".vercel" / "output"
    if proc.returncode != 0 or not (output / "config.json").is_file():
        # Exit 0 without config.json is how the CLI says it built nothing (e.g. no project settings).
        pytest.fail(f"vercel build failed (exit {proc.returncode}, config.json "
                    f"{'present' if (output / 'config.json').exists() else 'missing'}):\n{log[-6000:]}",
                    pytrace=False)
    return Build(project, output, log)


# --- what the build emitted ------------------------------------------------------------------


def test_one_function_per_route(build: Build) -> None:
    expected = set(discover_routes(ROOT))
    assert {"/api/health", "/api/task", "/api/status", "/api/auth/register"} <= expected
    assert set(build.functions) == expected, "vercel build and devstack disagree on the routes"


def test_static_is_exactly_public(build: Build) -> None:
    public = ROOT / "public"
    static = build.output / "static"
    want = {p.relative_to(public).as_posix() for p in public.rglob("*") if p.is_file()}
    got = {p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file()}
    # An empty public/ makes Vercel publish every non-api file, the source included.
    assert "index.html" in want, "public/index.html is missing"
    assert got == want
    leaked = sorted(n for n in got if Path(n).suffix in SOURCE_SUFFIXES or Path(n).name.startswith(".env")
                    or n.startswith(("tests/", "api/", "sorastudio/")) or n == "requirements.txt")
    assert not leaked, f"source published as static files: {leaked}"


def test_function_bundles_hold_only_function_code(build: Build) -> None:
    config = json.loads((ROOT / "vercel.json").read_text())
    (settings,) = config["functions"].values()
    core = {p.relative_to(ROOT).as_posix() for p in (ROOT / "sorastudio").rglob("*.py")}
    for route in build.functions:
        vc = build.vc_config(route)
        assert vc["runtime"] == "python3.12" and vc["handler"] == "vc__handler__python.vc_handler"
        assert vc["maxDuration"] == settings["maxDuration"]
        files = vc["filePathMap"]
        app = {k for k in files if not k.startswith("_vendor/")}
        assert f"{route.lstrip('/')}.py" in app
        assert core <= app, f"{route}: sorastudio/ incomplete: {sorted(core - app)}"
        stray = sorted(k for k in app if not k.startswith(BUNDLE_APP_DIRS) and k not in BUNDLE_MANIFESTS)
        assert not stray, f"{route} bundles files that aren't function code (extend excludeFiles): {stray}"
        assert not [k for k in app if k.startswith(BUNDLE_APP_DIRS) and not k.endswith(".py")]
        size = sum((build.project / src).stat().st_size for src in files.values())
        assert size < BUNDLE_LIMIT_BYTES, f"{route} bundle is {size / 1e6:.0f} MB"


def test_security_headers_reach_the_routing_config(build: Build) -> None:
    routes = json.loads((build.output / "config.json").read_text())["routes"]
    headers = next((r["headers"] for r in routes if r.get("continue") and "headers" in r), None)
    assert headers is not None and set(headers) >= SECURITY_HEADERS
    csp = dict(d.strip().split(" ", 1) for d in headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert "unsafe" not in headers["Content-Security-Policy"]
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert headers["X-Frame-Options"] == "DENY"
    # Storage is https in production and loopback http under `make dev` (same headers there).
    for directive in ("connect-src", "img-src", "media-src"):
        assert {"https:", "http://127.0.0.1:*"} <= set(csp[directive].split()), directive


# --- the built functions, started the way Vercel starts them ---------------------------------


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    ipc: socket.socket
    port: int
    log: Path
    messages: list[dict[str, Any]] = field(default_factory=list)


class Launcher:
    """Starts built functions on first use; each in its own folder, process and IPC socket."""

    def __init__(self, build: Build, env: dict[str, str], workdir: Path) -> None:
        self.build = build
        self.env = env
        self.workdir = workdir
        self.running: dict[str, Running] = {}

    def stage(self, route: str) -> Path:
        """A self-contained function folder: the launcher plus every file of ``filePathMap``."""
        func = self.build.functions[route]
        folder = self.workdir / route.strip("/").replace("/", "_")
        for dest, src in self.build.vc_config(route)["filePathMap"].items():
            target = folder / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            try:  # hard links: seven ~40 MB copies would cost more than the build
                os.link(self.build.project / src, target)
            except OSError:
                shutil.copy2(self.build.project / src, target)
        shutil.copy2(func / "vc__handler__python.py", folder / "vc__handler__python.py")
        return folder

    def url(self, route: str) -> str:
        if route not in self.running:
            self.running[route] = self._start(route)
        return f"http://127.0.0.1:{self.running[route].port}"

    def _start(self, route: str) -> Running:
        folder = self.stage(route)
        vc_env = self.build.vc_config(route).get("environment", {})
        # AF_UNIX paths are limited to ~107 bytes: keep the socket in a short temp dir.
        sock_path = Path(tempfile.mkdtemp(prefix="vcipc")) / "ipc.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(sock_path))
        server.listen(1)
        server.settimeout(START_TIMEOUT_S)
        # Only the bundle and the function's settings: nothing leaks in from the test's own venv.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **vc_env,
               "PYTHONPATH": ".:_vendor", "PYTHONNOUSERSITE": "1", "VERCEL_IPC_PATH": str(sock_path),
               **self.env}
        log = folder.with_suffix(".log")
        with log.open("wb") as sink:
            proc = subprocess.Popen([str(TOOLS_BIN / "python3.12"), "-c", "import vc__handler__python"],
                                    cwd=folder, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            conn, _ = server.accept()
            conn.settimeout(START_TIMEOUT_S)
            buf = b""
            while b"\0" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError as exc:
            proc.kill()
            proc.wait()
            pytest.fail(f"{route} never reported server-started ({exc!r}):\n{log.read_text()[-4000:]}",
                        pytrace=False)
        finally:
            server.close()
            sock_path.unlink(missing_ok=True)
            sock_path.parent.rmdir()
        first, _, rest = buf.partition(b"\0")
        try:
            message = json.loads(first)
        except ValueError:
            proc.kill()
            proc.wait()
            pytest.fail(f"{route} did not start:\n{log.read_text()[-4000:]}", pytrace=False)
        assert message["type"] == "server-started", message
        running = Running(proc, conn, int(message["payload"]["httpPort"]), log, [message])
        # Keep reading: a runtime whose IPC writes back up would stall its requests.
        threading.Thread(target=self._drain, args=(running, rest), daemon=True).start()
        return running

    @staticmethod
    def _drain(running: Running, buf: bytes) -> None:
        running.ipc.settimeout(None)
        while True:
            *done, buf = buf.split(b"\0")
            running.messages.extend(json.loads(m) for m in done if m)
            try:
                chunk = running.ipc.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk

    def close(self) -> None:
        for r in self.running.values():
            r.proc.terminate()
        for r in self.running.values():
            try:
                r.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
            r.ipc.close()


@pytest.fixture(scope="module")
def built(build: Build, cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    launcher = Launcher(build, dict(cloud.env), tmp_path_factory.mktemp("funcs"))
    yield launcher
    launcher.close()


def call(built: Launcher, method: str, route: str, query: str = "", **kwargs: Any) -> httpx.Response:
    """One request to the built function for ``route`` (the path it sees is the public one)."""
    with httpx.Client(base_url=built.url(route), timeout=30) as client:
        return client.request(method, route + query, **kwargs)


def test_built_functions_serve_the_api(built: Launcher) -> None:
    r = call(built, "GET", "/api/health")
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and isinstance(r.json()["queue"], dict)

    r = call(built, "POST", "/api/auth/register",
             json={"email": f"built-{uuid.uuid4().hex[:12]}@example.com", "password": "correct horse battery"})
    assert r.status_code == 201, r.text
    token = r.json()["session"]["accessToken"]
    auth = {"Authorization": f"Bearer {token}"}

    r = call(built, "POST", "/api/task", headers=auth,
             json={"type": "video_analysis", "payload": {"videoUrl": "https://example.com/v.mp4"}})
    assert r.status_code == 201, r.text
    task_id = r.json()["taskId"]

    r = call(built, "GET", "/api/status", f"?taskId={task_id}", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["task"]["id"] == task_id and r.json()["task"]["status"] == "queued"

    r = call(built, "GET", "/api/status", f"?taskId={task_id}")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")

    r = call(built, "GET", "/api/task", headers=auth)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_built_function_runs_under_the_vercel_runtime(built: Launcher) -> None:
    """The IPC protocol was really in use: the runtime reported the request it handled."""
    call(built, "GET", "/api/health")
    running = built.running["/api/health"]
    deadline = time.monotonic() + 5  # the drain thread reads the IPC messages asynchronously
    while time.monotonic() < deadline and not any(m["type"] == "handler-started" for m in running.messages):
        time.sleep(0.05)
    assert running.messages[0]["payload"]["httpPort"] == running.port
    assert any(m["type"] == "handler-started" for m in running.messages), running.messages
