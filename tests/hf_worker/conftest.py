"""Fixtures for driving real worker processes (``python -m studio_worker``) against the local cloud.

``start_worker(**env)`` starts one worker subprocess and returns a :class:`WorkerProcess` whose thread
collects the JSON events the worker writes on stdout. Every test gets its own task type, so its
workers never touch another test's tasks; all workers are SIGKILLed when the test ends.

This module also holds a processor the worker processes import (``tests.hf_worker.conftest:...``):
keep its top level light.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from studio_worker.worker import Job

    from devstack.stack import LocalCloud
    from sorastudio.taskqueue import TaskQueue

SLEEP_PROCESSOR = "tests.hf_worker.procs:sleep"
HOLD_PROCESSOR = "tests.hf_worker.conftest:upload_then_hold"

# Short timings so the whole file stays lean; a test overrides what it is about.
FAST_ENV = {
    "HEARTBEAT_SECONDS": "0.3",
    "LEASE_SECONDS": "2",
    "POLL_MIN_SECONDS": "0.1",
    "POLL_MAX_SECONDS": "0.5",
    "REAP_SECONDS": "0.5",
    "SHUTDOWN_GRACE_SECONDS": "1",
}


def upload_then_hold(job: Job) -> dict[str, Any]:
    """A processor that "uploads" its output (a file in ``payload.uploads``), then, on the first
    ``holdAttempts`` attempts, hangs before returning: the test kills the worker in that window,
    i.e. after the upload and before the final write of the task document.
    """
    payload = job.task.payload
    Path(payload["uploads"], f"{job.task.id}-{job.task.attempts}-{uuid.uuid4().hex[:8]}").write_text(
        job.worker.worker_id
    )
    if job.task.attempts <= int(payload.get("holdAttempts", 0)):
        time.sleep(120)  # the worker is killed here
    return {"worker": job.worker.worker_id, "attempt": job.task.attempts}


@dataclass
class WorkerProcess:
    """One running worker: its process, HTTP port and the events it printed so far."""

    proc: subprocess.Popen[bytes]
    port: int
    stderr_path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    other_lines: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def worker_id(self) -> str:
        return self.wait_for("worker_started")["workerId"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            with self.cond:
                if isinstance(record, dict) and "event" in record:
                    self.events.append(record)
                else:
                    self.other_lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def find_all(self) -> list[dict[str, Any]]:
        """A copy of every event printed so far."""
        with self.cond:
            return list(self.events)

    def find(self, event: str, **match: Any) -> list[dict[str, Any]]:
        """Events named ``event`` whose fields equal ``match``."""
        with self.cond:
            return [e for e in self.events if e["event"] == event and all(e.get(k) == v for k, v in match.items())]

    def wait_for(
        self,
        event: str,
        timeout: float = 10.0,
        count: int = 1,
        where: Callable[[dict[str, Any]], bool] = lambda e: True,
        **match: Any,
    ) -> dict[str, Any]:
        """Block until ``count`` matching events were printed; return the last of them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [e for e in self.find(event, **match) if where(e)]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader_alive()):
                    raise AssertionError(
                        f"no {count}x {event} {match} within {timeout}s (exit={self.proc.poll()}); "
                        f"events: {[e['event'] for e in self.events][-30:]}; stderr: {self.stderr()[-2000:]}"
                    )
                self.cond.wait(min(left, 0.5))

    def _reader_alive(self) -> bool:
        return self.reader is not None and self.reader.is_alive()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: the worker dies wherever it is, nothing is cleaned up."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.reader is not None:
            self.reader.join(timeout=5)

    def wait_exit(self, timeout: float) -> int:
        """The exit status; on timeout the worker is sent SIGABRT (faulthandler dumps every thread's
        stack to its stderr) and the test fails with that dump and the last events."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait(timeout=10)
            raise AssertionError(f"worker still running {timeout}s later; events: {self.find_all()[-15:]}; "
                                 f"stderr: {self.stderr()[-6000:]}") from None
        if self.reader is not None:
            self.reader.join(timeout=5)
        return code

    def terminate(self) -> None:
        """SIGTERM: ask for a graceful drain (the test waits for the exit itself)."""
        self.proc.send_signal(signal.SIGTERM)


@pytest.fixture
def task_type() -> str:
    """A task type only this test's workers claim (isolation within the shared local cloud)."""
    return f"sleep_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start_worker(cloud: LocalCloud, task_type: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: ``start_worker(**env)`` starts a worker for this test's task type and waits until it
    polls. Defaults: the scripted ``sleep`` processor and :data:`FAST_ENV`; keyword arguments override
    any environment variable. Every worker started is SIGKILLed at teardown.
    """
    from devstack.stack import start_worker as start_stack_worker  # here: worker processes import this module

    started: list[WorkerProcess] = []
    work_dir = tmp_path / "worker-tmp"
    work_dir.mkdir()

    def start(**overrides: str) -> WorkerProcess:
        stderr_path = tmp_path / f"worker-{len(started)}.stderr"
        env = {
            **FAST_ENV,
            "PYTHONFAULTHANDLER": "1",  # SIGABRT dumps every thread's stack (see wait_exit)
            "WORKER_TASK_TYPES": task_type,
            "WORKER_PROCESSORS": f"{task_type}={SLEEP_PROCESSOR}",
            "WORK_DIR": str(work_dir),
            **{k: str(v) for k, v in overrides.items()},
        }
        # Not wakeable: the shared cloud's later routers must not try to wake a worker that is gone.
        process = start_stack_worker(cloud, stdout=subprocess.PIPE, stderr=stderr_path, wakeable=False, **env)
        worker = WorkerProcess(proc=process.proc, port=process.port, stderr_path=stderr_path)
        worker.reader = threading.Thread(target=worker._read, daemon=True)
        worker.reader.start()
        started.append(worker)
        worker.wait_for("worker_started", timeout=20)
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture(scope="session")
def queue(cloud: LocalCloud) -> TaskQueue:
    """The queue protocol over the official SDK, against the same store the workers use."""
    from upstash_redis import Redis

    from sorastudio.taskqueue import TaskQueue

    redis = Redis(
        url=cloud.env["UPSTASH_REDIS_REST_URL"], token=cloud.env["UPSTASH_REDIS_REST_TOKEN"], allow_telemetry=False
    )
    return TaskQueue(redis, retention_seconds=3600)


@pytest.fixture
def upstash_stats(cloud: LocalCloud) -> Callable[..., dict[str, Any]]:
    """``upstash_stats(reset=False)``: the Upstash stand-in's counters {"requests", "commands",
    "byCommand"}; with ``reset=True`` they are zeroed first."""
    base = cloud.env["UPSTASH_REDIS_REST_URL"]
    headers = {"Authorization": f"Bearer {cloud.env['UPSTASH_REDIS_REST_TOKEN']}"}

    def stats(reset: bool = False) -> dict[str, Any]:
        if reset:
            r = httpx.post(f"{base}/__devstack/stats/reset", headers=headers, timeout=10)
        else:
            r = httpx.get(f"{base}/__devstack/stats", headers=headers, timeout=10)
        r.raise_for_status()
        return r.json()

    return stats
