"""Helpers for the text_to_video tests and bench: the tiny pipeline and worker processes.

The text-to-video worker runs under ``.venv-t2v`` (Python 3.11 + CPU torch + diffusers, made by
``scripts/setup-t2v.sh``); the tests themselves run in the main venv and talk to it over HTTP/Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack.stack import LocalCloud, stop_process
from devstack.stack import start_worker as devstack_start_worker

ROOT = Path(__file__).resolve().parents[3]
T2V_PYTHON = ROOT / ".venv-t2v" / "bin" / "python"
BUILDER = Path(__file__).resolve().parent / "build_tiny_wan.py"

# Short timings: a fast heartbeat makes every denoising step's stage visible in /api/status.
FAST_ENV = {
    "HEARTBEAT_SECONDS": "0.05",
    "LEASE_SECONDS": "5",
    "POLL_MIN_SECONDS": "0.1",
    "POLL_MAX_SECONDS": "0.3",
    "REAP_SECONDS": "1",
    "SHUTDOWN_GRACE_SECONDS": "1",
}


def require_t2v_python() -> Path:
    if not T2V_PYTHON.exists():
        raise RuntimeError(f"{T2V_PYTHON} is missing: run scripts/setup-t2v.sh (make setup does)")
    return T2V_PYTHON


def build_tiny_pipeline(out: Path, timeout: float = 120) -> Path:
    """Write the tiny random WanPipeline to ``out`` (a subprocess under .venv-t2v, offline)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(out.parent / "hf-home")}
    subprocess.run([str(require_t2v_python()), str(BUILDER), str(out)], check=True, env=env, timeout=timeout,
                   capture_output=True)
    return out


@dataclass
class WorkerProc:
    """One ``python -m studio_worker`` process; its stdout (JSON events) goes to ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    err: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (event is None or record.get("event") == event) and all(
                    record.get(k) == v for k, v in match.items()):
                found.append(record)
        return found

    def wait_event(self, event: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.events(event, **match):
                return found[-1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no {event} {match} (exit={self.proc.poll()}); "
                             f"stderr: {self.err.read_text(errors='replace')[-3000:]}")

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/health", timeout=5)

    def stop(self) -> None:
        stop_process(self.proc)


def start_worker(cloud: LocalCloud, name: str, log_dir: Path, *, python: Path | None = None,
                 **env: str) -> WorkerProc:
    """Start a worker like the Docker image does, under ``python`` (default: this interpreter)."""
    work_dir = log_dir / f"{name}-tmp"
    work_dir.mkdir(parents=True, exist_ok=True)
    log, err = log_dir / f"{name}.out", log_dir / f"{name}.err"
    started = devstack_start_worker(
        cloud, python=python, stdout=log, stderr=err, wakeable=False,
        # later entries win: a test's own settings over the fast defaults
        **{**FAST_ENV, "WORKER_ID": name, "WORK_DIR": str(work_dir),
           "HF_HUB_OFFLINE": "1",  # the tests never reach the Hub
           "HF_HOME": str(log_dir / "hf-home"), **env},
    )
    worker = WorkerProc(name, started.proc, started.port, log, err)
    try:
        worker.wait_event("worker_started", timeout=20)
    except BaseException:
        worker.stop()
        raise
    return worker


def wait_task(http: httpx.Client, headers: dict[str, str], task_id: str, timeout: float = 60,
              poll: float = 0.03) -> dict[str, Any]:
    """Poll /api/status until the task ends; ``task["_seen"]`` lists every (status, stage) observed."""
    deadline = time.monotonic() + timeout
    seen: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        task = http.get(f"/api/status?taskId={task_id}", headers=headers).json()["task"]
        if not seen or seen[-1] != (task["status"], task["stage"]):
            seen.append((task["status"], task["stage"]))
        if task["status"] in ("done", "failed", "canceled"):
            task["_seen"] = seen
            return task  # type: ignore[no-any-return]
        time.sleep(poll)
    raise AssertionError(f"task {task_id} did not finish: {seen[-8:]}")
