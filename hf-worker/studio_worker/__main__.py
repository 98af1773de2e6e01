"""``python -m studio_worker``: the worker process (the Docker image and the tests run this)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from types import FrameType

from upstash_redis import Redis

from sorastudio.settings import get_settings
from sorastudio.taskqueue import TaskQueue
from studio_worker.config import WorkerSettings
from studio_worker.server import make_server
from studio_worker.worker import Worker, emit, load_processors


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Upstash request is noise
    settings = get_settings()
    config = WorkerSettings()
    if not settings.upstash_url or not settings.upstash_token:
        emit("config_error", message="UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN are required")
        return 2
    import os

    redis = Redis(url=settings.upstash_url, token=settings.upstash_token, allow_telemetry=False)
    queue = TaskQueue(redis, retention_seconds=settings.task_retention_seconds)
    worker = Worker(settings, config, queue, load_processors(os.environ.get("WORKER_PROCESSORS", "")))
    server = make_server(worker, config.worker_host, config.port, settings.worker_wake_token)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emit("listening", workerId=config.worker_id, port=server.server_port)
    # The handler only flips a flag and the main thread polls it: an Event.wait() with no timeout
    # can miss the signal, and Event.set() inside a handler can deadlock on the Event's own lock.
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    while not stopping:
        time.sleep(0.2)
    worker.stop()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
