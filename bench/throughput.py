"""Throughput and latency of ``POST /api/task`` and ``GET /api/status`` through the local stack,
beside raw ``upstash_redis`` calls doing the same Redis work (``TaskQueue.create`` / ``.read``).

Each client is a thread with its own keep-alive client. Trials alternate stack and raw runs so both
see the same machine noise and the same queue length; medians over trials are reported.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from upstash_redis import Redis

from bench.harness import TASK_BODY, Stack, create_task, median, percentile
from sorastudio.models import CreateTaskRequest, Task, new_task_id, now_iso
from sorastudio.settings import Settings
from sorastudio.taskqueue import CreateOutcome, TaskQueue

CLIENTS = 8
STATUS_TASKS = 32  # distinct tasks the status runs read, round robin
RUN_DEADLINE_S = 30.0  # one run stops here even if not all requests were sent

# A worker builds (op, close) in its own thread, connected before the clock starts (the stand-ins'
# listen backlog is 5: eight simultaneous connects can stall one by a 1 s SYN retransmit);
# op(i) makes request i and raises on a wrong answer.
Op = Callable[[int], None]
OpFactory = Callable[[], tuple[Op, Callable[[], None]]]


def run_load(factory: OpFactory, total: int, clients: int = CLIENTS) -> dict[str, Any]:
    """Send ``total`` requests from ``clients`` threads; return rate and latency figures."""
    counter = itertools.count()
    barrier = threading.Barrier(clients + 1, timeout=60)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    deadline = [float("inf")]

    def worker(slot: int) -> None:
        try:
            op, close = factory()
        except Exception as exc:
            errors.append(repr(exc))
            barrier.abort()
            return
        try:
            barrier.wait()
            mine = latencies[slot]
            while (i := next(counter)) < total and time.perf_counter() < deadline[0]:
                began = time.perf_counter()
                op(i)
                mine.append(time.perf_counter() - began)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + RUN_DEADLINE_S + 60  # provisional, until all are ready
    barrier.wait()
    started = time.perf_counter()
    deadline[0] = started + RUN_DEADLINE_S
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    flat = [x for per in latencies for x in per]
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed, first: {errors[0]}")
    return {
        "requests": len(flat),
        "wall_s": wall,
        "rps": len(flat) / wall,
        "p50_ms": percentile(flat, 50) * 1000,
        "p99_ms": percentile(flat, 99) * 1000,
        "cut_by_deadline": len(flat) < total,
    }


def stack_factory(stack: Stack, kind: str, ids: list[str]) -> OpFactory:
    """Requests through the router -> function process -> Upstash stand-in -> Redis."""

    def factory() -> tuple[Op, Callable[[], None]]:
        client = stack.client()

        def create(i: int) -> None:
            resp = client.post("/api/task", json=TASK_BODY)
            if resp.status_code != 201:
                raise RuntimeError(f"POST /api/task -> {resp.status_code} {resp.text[:200]}")

        def status(i: int) -> None:
            resp = client.get(f"/api/status?taskId={ids[i % len(ids)]}")
            if resp.status_code != 200:
                raise RuntimeError(f"GET /api/status -> {resp.status_code} {resp.text[:200]}")

        status(0)  # open the keep-alive connection before the clock starts
        return (create if kind == "create" else status), client.close

    return factory


def raw_factory(stack: Stack, kind: str, ids: list[str]) -> OpFactory:
    """The same Redis work straight from this process: ``TaskQueue`` over ``upstash_redis.Redis``."""
    settings = Settings.from_env(stack.env)
    payload = CreateTaskRequest.model_validate(TASK_BODY).validated_payload()

    def factory() -> tuple[Op, Callable[[], None]]:
        redis = Redis(url=settings.upstash_url, token=settings.upstash_token, allow_telemetry=False)
        queue = TaskQueue(redis, retention_seconds=settings.task_retention_seconds,
                          idempotency_ttl_seconds=settings.idempotency_ttl_seconds)

        def create(i: int) -> None:
            now = now_iso()
            task = Task(id=new_task_id(), type="video_analysis", payload=payload, owner=stack.user_id,
                        max_attempts=settings.task_max_attempts, created_at=now, updated_at=now)
            if queue.create(task).outcome is not CreateOutcome.CREATED:
                raise RuntimeError("TaskQueue.create did not create")

        def status(i: int) -> None:
            if queue.read(ids[i % len(ids)]) is None:
                raise RuntimeError("TaskQueue.read found nothing")

        status(0)  # open the keep-alive connection before the clock starts
        return (create if kind == "create" else status), redis.close

    return factory


def measure(stack: Stack, total: int, trials: int) -> dict[str, Any]:
    """``trials`` alternating stack/raw runs of ``total`` requests for each endpoint."""
    with stack.client() as client:
        ids = [create_task(client) for _ in range(STATUS_TASKS)]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {k: {"stack": [], "raw": []} for k in ("status", "create")}
    for kind in runs:  # warm-up: connections, function processes, caches
        run_load(stack_factory(stack, kind, ids), 4 * CLIENTS)
        run_load(raw_factory(stack, kind, ids), 4 * CLIENTS)
    for trial in range(trials):
        for kind in runs:
            order = ("stack", "raw") if trial % 2 == 0 else ("raw", "stack")
            for side in order:
                factory = stack_factory if side == "stack" else raw_factory
                runs[kind][side].append(run_load(factory(stack, kind, ids), total))
    out: dict[str, Any] = {"clients": CLIENTS, "requests_per_run": total, "trials": trials, "endpoints": {}}
    for kind, sides in runs.items():
        summary = {side: {m: median([r[m] for r in results]) for m in ("rps", "p50_ms", "p99_ms")}
                   for side, results in sides.items()}
        per_trial = [r["rps"] / s["rps"] for s, r in zip(sides["stack"], sides["raw"], strict=True)]
        out["endpoints"][kind] = {
            **summary,
            "throughput_overhead": median(per_trial),  # raw rps / stack rps, median over trials
            "p50_overhead": summary["stack"]["p50_ms"] / summary["raw"]["p50_ms"],
            "cut_by_deadline": any(r["cut_by_deadline"] for rs in sides.values() for r in rs),
            "runs": sides,
        }
    return out


LABELS = {"create": "POST /api/task", "status": "GET /api/status"}


def report(result: dict[str, Any]) -> list[str]:
    lines = [f"throughput ({result['clients']} clients, {result['requests_per_run']} requests per run, "
             f"median of {result['trials']} trials; raw = TaskQueue over upstash_redis, same Redis work)"]
    for kind, row in result["endpoints"].items():
        s, r = row["stack"], row["raw"]
        lines.append(f"  {LABELS[kind]}: stack {s['rps']:.0f} req/s p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms"
                     f" | raw {r['rps']:.0f} req/s p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms")
        cut = " (some runs cut at the deadline)" if row["cut_by_deadline"] else ""
        lines.append(f"    function overhead: {row['throughput_overhead']:.2f}x throughput, "
                     f"{row['p50_overhead']:.2f}x p50{cut}")
    return lines
