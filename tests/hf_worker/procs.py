"""Scripted processors for protocol tests: the worker is under test, not the work.

Payload: ``seconds`` to run (reporting progress), ``fail`` = "transient" | "permanent" to raise,
``failTimes`` (fail only the first N attempts), ``marker`` = a directory where each completed run
drops a file, so a test can count how often work really finished.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from studio_worker.errors import PermanentError, TransientError
from studio_worker.worker import Job


def sleep(job: Job) -> dict[str, Any]:
    payload = job.task.payload
    seconds = float(payload.get("seconds", 0))
    fail = payload.get("fail")
    if fail and job.task.attempts <= int(payload.get("failTimes", 99)):
        if fail == "transient":
            raise TransientError("source_unavailable", "scripted transient failure")
        raise PermanentError("bad_input", "scripted permanent failure")
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        job.check()
        job.progress(int(100 * (time.monotonic() - start) / max(seconds, 1e-9)), "sleeping")
        time.sleep(0.02)
    if marker := payload.get("marker"):
        (Path(marker) / f"{job.task.id}-{uuid.uuid4().hex}").write_text(job.worker.worker_id)
    return {"slept": seconds, "worker": job.worker.worker_id}
