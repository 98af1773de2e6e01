"""``python -m devstack`` (what ``make dev`` runs): starts the whole local cloud, stops every
child on SIGTERM, and keeps users and tasks across a restart on the same data dir."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.redisserver import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60
STOP_TIMEOUT = 15


@dataclass
class Launcher:
    """A running ``python -m devstack`` and everything it printed."""

    proc: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)


def start_launcher(port: int, data_dir: Path) -> Launcher:
    env = {k: v for k, v in os.environ.items() if k != "DEV_WORKER"}  # make dev's default: with a worker
    env.update({"PORT": str(port), "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: queue.Queue[str | None] = queue.Queue()
    launcher = Launcher(proc, f"http://127.0.0.1:{port}")

    def pump() -> None:  # keep draining stdout so the launcher never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            launcher.lines.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    expected = f"running at http://127.0.0.1:{port}/"
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None or time.monotonic() > deadline:
            stop(launcher)
            pytest.fail(f"launcher did not start; output:\n{''.join(launcher.lines)}")
        if expected in line:
            return launcher


def stop(launcher: Launcher) -> None:
    """Kill a launcher that is still running, and its children (cleanup after a failure)."""
    if launcher.proc.poll() is None:
        children = launcher.descendants()
        launcher.proc.kill()
        launcher.proc.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def launchers() -> Iterator[list[Launcher]]:
    """Launchers a test started; killed (with their children) if the test failed midway."""
    started: list[Launcher] = []
    yield started
    for launcher in started:
        stop(launcher)


@pytest.mark.slow
def test_launcher_serves_stops_cleanly_and_keeps_data(tmp_path: Path, launchers: list[Launcher]) -> None:
    """make dev: a working studio; SIGTERM stops it and all its children; data survives a restart."""
    assert not (ROOT / ".env").exists(), (
        f"{ROOT / '.env'} exists: the launcher would use the services it names; move it away to run this test")
    port, data_dir = free_port(), tmp_path / "data"
    first = start_launcher(port, data_dir)
    launchers.append(first)

    email, password = f"dev-{uuid.uuid4().hex[:10]}@example.com", "long-enough-pw"
    with httpx.Client(base_url=first.url, timeout=30) as http:
        assert http.get("/").status_code == 200
        r = http.post("/api/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        token = r.json()["session"]["accessToken"]
        r = http.post("/api/task", json={"type": "video_analysis",
                                          "payload": {"videoUrl": "https://videos.example.com/clip.mp4"}},
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
        task_id = r.json()["taskId"]

    children = first.descendants()
    names = " ".join(" ".join(c.cmdline()) for c in children)
    assert "redis-server" in names and "devstack.upstash" in names and "devstack.supabase" in names
    assert "devstack.funchost" in names and "studio_worker" in names

    began = time.monotonic()
    first.proc.send_signal(signal.SIGTERM)
    try:
        first.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"launcher still running {STOP_TIMEOUT}s after SIGTERM; output:\n{''.join(first.lines)}")
    assert first.proc.returncode == 0, "".join(first.lines)
    left = [c for c in children if not gone(c)]
    assert not left, f"still running after the launcher exited ({time.monotonic() - began:.1f}s): " + \
        ", ".join(f"{c.pid} {' '.join(c.cmdline())}" for c in left)

    second = start_launcher(port, data_dir)
    launchers.append(second)
    with httpx.Client(base_url=second.url, timeout=30) as http:
        r = http.post("/api/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['session']['accessToken']}"}
        r = http.get("/api/status", params={"taskId": task_id}, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["task"]["id"] == task_id
        assert r.json()["task"]["status"] in ("queued", "running", "done", "failed")
        listed = http.get("/api/tasks", headers=auth)
        assert listed.status_code == 200, listed.text
        assert [t["id"] for t in listed.json()["tasks"]] == [task_id]
    second.proc.send_signal(signal.SIGTERM)
    second.proc.wait(timeout=STOP_TIMEOUT)
