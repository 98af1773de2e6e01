"""Bring up the local cloud: real Redis, the Upstash and Supabase stand-ins, and the router.

Used by ``make dev`` (``python -m devstack``) and by the tests. With real credentials in the
environment (``UPSTASH_REDIS_REST_URL``, ``SUPABASE_URL``) the matching stand-ins are not started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devstack.httpkit import make_server
from devstack.localkeys import LOCAL_JWT_SECRET, anon_key, service_role_key
from devstack.redisserver import free_port, redis_url, start_redis, wait_for_port
from devstack.vercel import MAX_FUNCTION_BODY, VercelDev

ROOT = Path(__file__).resolve().parent.parent
LOCAL_UPSTASH_TOKEN = "local-dev-upstash-token"  # local stand-in only; never a real credential
LOCAL_WAKE_TOKEN = "local-dev-wake-token"


@dataclass
class LocalCloud:
    """The running services and the environment the functions and workers need to reach them."""

    data_dir: Path
    env: dict[str, str]
    redis_url: str | None = None
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start_child(self, name: str, args: list[str], port: int) -> None:
        """Start a child process (own process group, so Ctrl-C reaches us first) and wait for its port."""
        proc = subprocess.Popen(args, cwd=str(ROOT), start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs.append((name, proc))
        wait_for_port(port, proc=proc)

    def stop(self) -> None:
        """Stop every child, newest first; escalate to SIGKILL after a grace period."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM ``proc`` (if still running) and wait; SIGKILL it after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_local_cloud(
    data_dir: Path,
    *,
    settings_env: Mapping[str, str] | None = None,
    persist: bool = True,
    jwt_alg: str = "HS256",
) -> LocalCloud:
    """Start what ``settings_env`` does not already point at; return the function environment."""
    given = {k: v for k, v in (settings_env or {}).items() if v}
    cloud = LocalCloud(data_dir=data_dir, env=dict(given))
    python = sys.executable
    try:
        if not given.get("UPSTASH_REDIS_REST_URL"):
            rport = free_port()
            redis_proc = start_redis(data_dir / "redis", rport, persist=persist)
            cloud.procs.append(("redis", redis_proc))
            cloud.redis_url = redis_url(rport)
            uport = free_port()
            cloud.start_child("upstash", [python, "-m", "devstack.upstash", "--port", str(uport),
                                          "--redis-url", cloud.redis_url, "--token", LOCAL_UPSTASH_TOKEN], uport)
            cloud.env["UPSTASH_REDIS_REST_URL"] = f"http://127.0.0.1:{uport}"
            cloud.env["UPSTASH_REDIS_REST_TOKEN"] = LOCAL_UPSTASH_TOKEN
        if not given.get("SUPABASE_URL"):
            sport = free_port()
            cloud.start_child("supabase", [python, "-m", "devstack.supabase", "--port", str(sport),
                                           "--data-dir", str(data_dir / "supabase"),
                                           "--jwt-secret", LOCAL_JWT_SECRET, "--jwt-alg", jwt_alg], sport)
            cloud.env.update({
                "SUPABASE_URL": f"http://127.0.0.1:{sport}",
                "SUPABASE_ANON_KEY": anon_key(LOCAL_JWT_SECRET),
                "SUPABASE_SERVICE_ROLE_KEY": service_role_key(LOCAL_JWT_SECRET),
                "SUPABASE_JWT_SECRET": LOCAL_JWT_SECRET if jwt_alg == "HS256" else "",
            })
        cloud.env.setdefault("WORKER_WAKE_TOKEN", LOCAL_WAKE_TOKEN)
    except BaseException:
        cloud.stop()
        raise
    return cloud


@dataclass
class Worker:
    """A worker process started by :func:`start_worker`."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_worker(
    cloud: LocalCloud,
    port: int | None = None,
    *,
    python: Path | str | None = None,
    stdout: Path | int | None = None,
    stderr: Path | int | None = None,
    wakeable: bool = True,
    **overrides: str,
) -> Worker:
    """Start one worker (``python -m studio_worker``, as the Docker image runs it) and wait for its port.

    ``python``: another interpreter (e.g. the text-to-video venv). ``stdout``/``stderr``: a file to
    append the JSON event lines to, or ``subprocess.PIPE``. ``wakeable``: add its URL to
    ``WORKER_WAKE_URLS`` so functions started afterwards wake it. ``overrides``: environment.
    """
    port = port or free_port()
    work_dir = cloud.data_dir / "worker-tmp"
    work_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **cloud.env, "WORKER_PORT": str(port), "WORKER_HOST": "127.0.0.1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "hf-worker")]), "PYTHONUNBUFFERED": "1",
           "WORK_DIR": str(work_dir), **overrides}
    with ExitStack() as files:
        out, err = (files.enter_context(target.open("ab")) if isinstance(target, Path) else target
                    for target in (stdout, stderr))
        proc = subprocess.Popen([str(python or sys.executable), "-m", "studio_worker"], cwd=str(ROOT),
                                start_new_session=True, env=env, stdout=out, stderr=err)
    cloud.procs.append(("worker", proc))
    try:
        wait_for_port(port, proc=proc)
    except BaseException:
        stop_process(proc)
        raise
    worker = Worker(port, proc)
    if wakeable:
        urls = [u for u in cloud.env.get("WORKER_WAKE_URLS", "").split(",") if u]
        cloud.env["WORKER_WAKE_URLS"] = ",".join([*urls, worker.url])
    return worker


def start_router(env: Mapping[str, str], port: int = 0, root: Path = ROOT) -> tuple[ThreadingHTTPServer, VercelDev]:
    """Bind the Vercel-style server (not yet serving: call ``serve_forever``)."""
    app = VercelDev(root=root, env=dict(env))
    server = make_server(app, "127.0.0.1", port, max_body=MAX_FUNCTION_BODY)
    return server, app


@dataclass
class Router:
    """The Vercel-style server running on a background thread (tests and benchmarks)."""

    server: ThreadingHTTPServer
    app: VercelDev

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        """Stop serving, then stop its function processes."""
        self.server.shutdown()
        self.server.server_close()
        self.app.close()


def serve_router(env: Mapping[str, str], port: int = 0, root: Path = ROOT) -> Router:
    """:func:`start_router`, already serving on a daemon thread."""
    server, app = start_router(env, port, root)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Router(server, app)
