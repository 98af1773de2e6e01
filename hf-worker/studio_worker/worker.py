"""The worker: poll, claim with a lease, run the processor, heartbeat, finish; reap the dead.

Threads, not asyncio: processors are CPU/IO-bound library calls (PyAV, diffusers) that don't
yield. One poller thread claims tasks while fewer than ``worker_concurrency`` run; each claimed
task runs in its own thread with a heartbeat thread beside it. Every Redis state change goes
through :class:`sorastudio.taskqueue.Lifecycle` (compare-and-set), so a worker that dies at any
point leaves a task that the reaper requeues, and a worker that comes back late can't overwrite
anything.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sorastudio.models import Task
from sorastudio.settings import Settings
from sorastudio.taskqueue import Lifecycle, Snapshot, TaskQueue
from studio_worker import __version__
from studio_worker.config import WorkerSettings
from studio_worker.errors import Canceled, TaskFailure

log = logging.getLogger("studio_worker")


def emit(event: str, **fields: Any) -> None:
    """One JSON line per event on stdout (claim, progress, done, fail, requeue, …)."""
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


@dataclass
class Job:
    """What a processor gets: the task, a private scratch dir, and the ways to report and stop."""

    task: Task
    work_dir: Path
    settings: Settings
    worker: WorkerSettings
    progress: Callable[[int, str], None]
    should_stop: Callable[[], bool]

    def check(self) -> None:
        """Raise :class:`Canceled` when the task must stop (cancel, lost lease, time limit, shutdown)."""
        if self.should_stop():
            raise Canceled()


Processor = Callable[[Job], dict[str, Any]]


def load_processors(spec: str = "") -> dict[str, Processor]:
    """The built-in processors plus ``type=module:function`` entries from ``spec`` (comma-separated)."""
    from studio_worker.processors import BUILTIN

    processors: dict[str, Processor] = dict(BUILTIN)
    for item in filter(None, (s.strip() for s in spec.split(","))):
        task_type, _, target = item.partition("=")
        module, _, name = target.partition(":")
        processors[task_type] = getattr(importlib.import_module(module), name)
    return processors


@dataclass
class Running:
    """A task in flight and why it may have to stop."""

    snapshot: Snapshot
    deadline: float
    progress: int = 0
    stage: str = "starting"
    stop_reason: str | None = None  # canceled | lost | timeout | shutdown
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)


class Worker:
    """One worker process's engine; start() runs it, stop() drains it."""

    def __init__(self, settings: Settings, config: WorkerSettings, queue: TaskQueue,
                 processors: dict[str, Processor]) -> None:
        self.settings = settings
        self.config = config
        self.queue = queue
        self.processors = processors
        self.lifecycle = Lifecycle(queue, config.worker_id, lease_seconds=config.lease_seconds)
        self.started_at = time.time()
        self.last_poll: float | None = None
        self.running: dict[str, Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- what /health shows ---------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        with self._lock:
            current = [{"taskId": tid, "type": r.snapshot.task.type, "progress": r.progress, "stage": r.stage}
                       for tid, r in self.running.items()]
        return {
            "ok": not self._stopping.is_set(),
            "workerId": self.config.worker_id,
            "version": __version__,
            "uptimeSeconds": round(time.time() - self.started_at, 1),
            "concurrency": self.config.worker_concurrency,
            "currentTasks": current,
            "lastPollAt": self.last_poll,
            "processors": sorted(self.claimable_types()),
            "stopping": self._stopping.is_set(),
        }

    def claimable_types(self) -> set[str]:
        return set(self.processors) & self.config.task_types

    def wake(self) -> None:
        """Poll now (the API calls POST /wake after creating a task)."""
        self._wake.set()

    # -- the poll loop ----------------------------------------------------------------------

    def start(self) -> None:
        poller = threading.Thread(target=self._poll_loop, name="poller", daemon=True)
        poller.start()
        self._threads.append(poller)
        emit("worker_started", workerId=self.config.worker_id, processors=sorted(self.claimable_types()))

    def _poll_loop(self) -> None:
        delay = self.config.poll_min_seconds
        next_reap = 0.0
        types = self.claimable_types()
        while not self._stopping.is_set():
            claimed = False
            try:
                # Each poll's peek counts expired leases, so an idle worker reaps only when a lease
                # has run out; a busy one (not peeking) checks every REAP_SECONDS.
                busy = len(self.running) >= self.config.worker_concurrency
                if self.lifecycle.expired_leases or (busy and time.monotonic() >= next_reap):
                    for task_id, outcome in self.lifecycle.reap():
                        emit("requeue" if outcome == "requeued" else outcome, taskId=task_id,
                             workerId=self.config.worker_id, reason="lease expired")
                    next_reap = time.monotonic() + self.config.reap_seconds
                if len(self.running) < self.config.worker_concurrency:
                    self.last_poll = time.time()
                    snap = self.lifecycle.claim(lambda t: t.type in types, types)
                    if snap is not None:
                        claimed = True
                        self._launch(snap)
            except Exception as exc:  # Upstash hiccup: log, back off, keep going
                emit("poll_error", workerId=self.config.worker_id, error=repr(exc))
            if claimed:
                delay = self.config.poll_min_seconds
                continue  # there may be more work: poll again at once
            if len(self.running) >= self.config.worker_concurrency:
                self._wake.wait(0.2)  # a slot frees when a task ends; it sets _wake
            else:
                woke = self._wake.wait(delay)
                delay = self.config.poll_min_seconds if woke else min(delay * 2, self.config.poll_max_seconds)
            self._wake.clear()

    def _launch(self, snap: Snapshot) -> None:
        task = snap.task
        run = Running(snapshot=snap, deadline=time.monotonic() + self.config.time_limit(task.type))
        with self._lock:
            self.running[task.id] = run
        emit("claim", taskId=task.id, workerId=self.config.worker_id, type=task.type, attempt=task.attempts)
        t = threading.Thread(target=self._run, args=(run,), name=f"task-{task.id}", daemon=True)
        t.start()
        self._threads.append(t)

    # -- one task ---------------------------------------------------------------------------

    def _run(self, run: Running) -> None:
        task = run.snapshot.task
        beat = threading.Thread(target=self._heartbeat_loop, args=(run,), daemon=True)
        beat.start()
        work_dir = Path(tempfile.mkdtemp(prefix=f"task-{task.id}-", dir=self.config.work_dir))

        def progress(pct: int, stage: str) -> None:
            with run.lock:
                run.progress, run.stage = int(pct), stage

        def should_stop() -> bool:
            if run.stop_reason is None and time.monotonic() > run.deadline:
                run.stop_reason = "timeout"
            return run.stop_reason is not None

        job = Job(task=task, work_dir=work_dir, settings=self.settings, worker=self.config,
                  progress=progress, should_stop=should_stop)
        outcome: tuple[str, Snapshot | None]
        try:
            try:
                result = self.processors[task.type](job)
                # A result in hand is kept even if a time limit or shutdown arrived meanwhile:
                # only a lost lease (someone else owns the task now) means not to write it.
                if run.stop_reason == "lost":
                    raise Canceled()
            except Canceled:
                outcome = self._stopped(run)
            except TaskFailure as exc:
                outcome = self._fail(run, exc)
            except Exception as exc:  # a processor bug: fail visibly, don't retry forever
                log.exception("processor crashed")
                outcome = self._fail(run, TaskFailure(
                    "internal_error", f"The {task.type} processor failed unexpectedly ({type(exc).__name__})."))
            else:
                outcome = self._with_latest(run, lambda s: self.lifecycle.finish(s, result))
                emit("done" if outcome[0] == "done" else outcome[0], taskId=task.id,
                     workerId=self.config.worker_id)
        except Exception as exc:  # Redis unreachable while finishing: the lease expires, the reaper retries
            emit("finalize_error", taskId=task.id, workerId=self.config.worker_id, error=repr(exc))
        finally:
            run.done.set()
            beat.join(timeout=5)
            shutil.rmtree(work_dir, ignore_errors=True)
            with self._lock:
                self.running.pop(task.id, None)
            self._wake.set()

    def _fail(self, run: Running, exc: TaskFailure) -> tuple[str, Snapshot | None]:
        outcome = self._with_latest(run, lambda s: self.lifecycle.fail(s, exc.code, exc.message,
                                                                       retryable=exc.retryable))
        emit("fail", taskId=run.snapshot.task.id, workerId=self.config.worker_id, code=exc.code,
             retryable=exc.retryable, outcome=outcome[0])
        return outcome

    def _with_latest(self, run: Running, step: Callable[[Snapshot], tuple[str, Snapshot | None]]
                     ) -> tuple[str, Snapshot | None]:
        if run.stop_reason == "lost":
            return "lost", None
        with run.lock:
            snap = run.snapshot
        return step(snap)

    def _stopped(self, run: Running) -> tuple[str, Snapshot | None]:
        task_id = run.snapshot.task.id
        reason = run.stop_reason or "canceled"
        if reason == "lost":
            emit("lost", taskId=task_id, workerId=self.config.worker_id)
            return "lost", None
        if reason == "shutdown":
            outcome = self._with_latest(run, self.lifecycle.release)
            emit("requeue", taskId=task_id, workerId=self.config.worker_id, reason="shutdown", outcome=outcome[0])
            return outcome
        if reason == "timeout":
            limit = self.config.time_limit(run.snapshot.task.type)
            outcome = self._with_latest(run, lambda s: self.lifecycle.fail(
                s, "time_limit_exceeded", f"The task ran longer than its {limit:.0f} s limit.", retryable=False))
            emit("fail", taskId=task_id, workerId=self.config.worker_id, code="time_limit_exceeded")
            return outcome
        outcome = self._with_latest(run, self.lifecycle.canceled)
        emit("canceled", taskId=task_id, workerId=self.config.worker_id, outcome=outcome[0])
        return outcome

    def _heartbeat_loop(self, run: Running) -> None:
        last_sent: tuple[int, str] | None = None
        while not run.done.wait(self.config.heartbeat_seconds):
            with run.lock:
                snap, progress, stage = run.snapshot, run.progress, run.stage
            try:
                beat = self.lifecycle.heartbeat(snap, progress, stage)
            except Exception as exc:  # keep trying: the lease is longer than a few beats
                emit("heartbeat_error", taskId=snap.task.id, workerId=self.config.worker_id, error=repr(exc))
                continue
            if beat.lost:
                run.stop_reason = "lost"
                return
            if beat.snapshot is not None:
                with run.lock:
                    run.snapshot = beat.snapshot
            if beat.cancel_requested and run.stop_reason is None:
                run.stop_reason = "canceled"
            if (progress, stage) != last_sent:
                emit("progress", taskId=snap.task.id, workerId=self.config.worker_id, progress=progress, stage=stage)
                last_sent = (progress, stage)

    # -- shutdown ---------------------------------------------------------------------------

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming; let running tasks finish within ``grace`` seconds, then release them."""
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + (self.config.shutdown_grace_seconds if grace is None else grace)
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            left = list(self.running.values())
        for run in left:
            if run.stop_reason is None:
                run.stop_reason = "shutdown"
        for run in left:
            run.done.wait(timeout=30)
        emit("worker_stopped", workerId=self.config.worker_id, released=len(left))
