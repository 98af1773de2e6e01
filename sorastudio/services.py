"""Process-wide clients, built on first use (functions are short-lived, threaded processes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sorastudio.settings import Settings
from sorastudio.taskqueue import TaskQueue
from sorastudio.web import ApiError

_lock = threading.Lock()
_queues: dict[tuple[str, str], TaskQueue] = {}


def get_queue(settings: Settings) -> TaskQueue:
    """The task queue over one shared Upstash client (httpx's client is thread-safe)."""
    if not settings.upstash_url or not settings.upstash_token:
        raise ApiError(503, "not_configured", "The task store is not configured (UPSTASH_REDIS_REST_URL/TOKEN).")
    key = (settings.upstash_url, settings.upstash_token)
    with _lock:
        queue = _queues.get(key)
        if queue is None:
            from upstash_redis import Redis

            redis = Redis(url=settings.upstash_url, token=settings.upstash_token, allow_telemetry=False)
            queue = TaskQueue(
                redis,
                retention_seconds=settings.task_retention_seconds,
                idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
            )
            _queues[key] = queue
        return queue


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn an unreachable or failing Upstash into a 503 instead of a 500."""
    import httpx
    from upstash_redis.errors import UpstashError

    try:
        yield
    except (httpx.HTTPError, UpstashError, OSError) as exc:
        raise ApiError(503, "store_unavailable", "The task store is unavailable; try again shortly.") from exc
