"""Shared plumbing: the local cloud for one bench run, a bench user, stats and percentiles."""

from __future__ import annotations

import math
import secrets
import statistics
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from devstack.stack import ROOT, LocalCloud, start_local_cloud, start_router
from devstack.vercel import VercelDev

TASK_BODY = {"type": "video_analysis", "payload": {"videoUrl": "https://example.com/bench.mp4"}}
PASSWORD = "bench-password-1"  # a throwaway account on the local GoTrue stand-in only


@dataclass
class Stack:
    """The local cloud, the router serving ``api/``, and a logged-in bench user."""

    cloud: LocalCloud
    server: ThreadingHTTPServer
    app: VercelDev
    url: str
    email: str
    user_id: str
    token: str

    @property
    def env(self) -> dict[str, str]:
        return self.cloud.env

    def client(self) -> httpx.Client:
        """A keep-alive client for the router, authenticated as the bench user."""
        return httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.token}"})


def new_email() -> str:
    return f"bench-{secrets.token_hex(6)}@example.com"


def start_stack(data_dir: Path) -> Stack:
    """Start Redis, the stand-ins and the router; register and log in a fresh bench user."""
    cloud = start_local_cloud(data_dir, persist=False)
    try:
        server, app = start_router(cloud.env, 0, ROOT)
    except BaseException:
        cloud.stop()
        raise
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        email = new_email()
        with httpx.Client(base_url=url, timeout=60) as client:
            reg = client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
            reg.raise_for_status()
            login = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            login.raise_for_status()
        data = login.json()
        return Stack(cloud, server, app, url, email, data["user"]["id"], data["session"]["accessToken"])
    except BaseException:
        stop_stack_parts(cloud, server, app)
        raise


def stop_stack_parts(cloud: LocalCloud, server: ThreadingHTTPServer, app: VercelDev) -> None:
    """Stop the router, its function processes, then the stand-ins and Redis."""
    try:
        server.shutdown()
        server.server_close()
        app.close()
    finally:
        cloud.stop()


def stop_stack(stack: Stack) -> None:
    stop_stack_parts(stack.cloud, stack.server, stack.app)


def create_task(client: httpx.Client) -> str:
    """Create one task through the router; return its id."""
    resp = client.post("/api/task", json=TASK_BODY)
    resp.raise_for_status()
    return str(resp.json()["taskId"])


def upstash_stats(env: dict[str, str], *, reset: bool = False) -> dict[str, Any]:
    """Read (or reset) the Upstash stand-in's request/command counters."""
    path = "/__devstack/stats/reset" if reset else "/__devstack/stats"
    headers = {"Authorization": f"Bearer {env['UPSTASH_REDIS_REST_TOKEN']}"}
    resp = httpx.request("POST" if reset else "GET", env["UPSTASH_REDIS_REST_URL"] + path,
                         headers=headers, timeout=10)
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()
    return data


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0-100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"
