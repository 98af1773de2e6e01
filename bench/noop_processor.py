"""A processor that does (almost) nothing, so the worker protocol benches measure the worker, not the work.

Register it with ``WORKER_PROCESSORS=video_analysis=bench.noop_processor:run``. Payload ``seconds``
(default 0: return at once) makes it sleep that long, reporting progress as it goes, so heartbeats
carry a changing progress value.
"""

from __future__ import annotations

import time
from typing import Any

from studio_worker.worker import Job


def run(job: Job) -> dict[str, Any]:
    """Return at once, or sleep ``payload.seconds`` while reporting progress and honouring stops."""
    seconds = float(job.task.payload.get("seconds", 0) or 0)
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        job.check()
        job.progress(int(100 * elapsed / seconds), "sleeping")
        time.sleep(0.02)
    return {"slept": seconds}
