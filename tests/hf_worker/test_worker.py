"""The worker against the real queue: real worker processes, real Redis behind the Upstash stand-in.

Every test uses its own task type (fixture ``task_type``) so its workers only claim its own tasks.
Timings are shortened through the environment (heartbeat 0.3 s, lease 2 s, reap every 0.5 s).
The invariants: a task's final write happens exactly once whatever dies when, a stale worker can
never overwrite the owner, cancel/retry/time limit/shutdown end in the documented states.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from studio_worker import __version__

from devstack.httpkit import serve_in_thread
from devstack.stack import LocalCloud
from devstack.upstash import make_app as make_upstash
from sorastudio.models import Task, TaskStatus, new_task_id, now_iso
from sorastudio.taskqueue import DEAD_KEY, DELAYED_KEY, LEASES_KEY, QUEUE_KEY, Lifecycle, TaskQueue, task_key
from tests.hf_worker.conftest import HOLD_PROCESSOR, WorkerProcess

StartWorker = Callable[..., WorkerProcess]

DONE, FAILED, QUEUED, RUNNING, CANCELED = (
    TaskStatus.DONE,
    TaskStatus.FAILED,
    TaskStatus.QUEUED,
    TaskStatus.RUNNING,
    TaskStatus.CANCELED,
)


# --- helpers -----------------------------------------------------------------------------------


def create(queue: TaskQueue, task_type: str, *, max_attempts: int = 3, **payload: Any) -> str:
    """Enqueue a task the way the API does (one EVAL); return its id."""
    now = now_iso()
    task = Task(
        id=new_task_id(),
        type=task_type,
        payload=payload,
        owner="u1",
        max_attempts=max_attempts,
        created_at=now,
        updated_at=now,
    )
    queue.create(task)
    return task.id


def read(queue: TaskQueue, task_id: str) -> Task:
    snap = queue.read(task_id)
    assert snap is not None, f"task {task_id} vanished"
    return snap.task


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


def wait_status(queue: TaskQueue, task_id: str, status: TaskStatus, timeout: float) -> Task:
    """Wait until the task is final (or has ``status``); assert it is ``status``."""

    def settled() -> Task | None:
        task = read(queue, task_id)
        return task if task.status is status or task.status.is_final else None

    task = wait_until(settled, timeout, what=f"{task_id} to become {status}")
    assert task.status is status, task.model_dump()
    return task


def marker_files(marker: Path, task_id: str) -> list[Path]:
    return sorted(marker.glob(f"{task_id}-*"))


def task_events(workers: list[WorkerProcess], task_id: str) -> list[dict[str, Any]]:
    """Every worker's events about one task, in time order."""
    return sorted((e for w in workers for e in w.find_all() if e.get("taskId") == task_id), key=lambda e: e["ts"])


def assert_never_two_owners(workers: list[WorkerProcess], task_id: str) -> None:
    """A task is claimed again only after its previous run ended (done/fail/...) or was reaped."""
    owned_by: str | None = None
    for event in task_events(workers, task_id):
        if event["event"] == "claim":
            assert owned_by is None, f"{task_id} claimed by {event['workerId']} while {owned_by} owned it"
            owned_by = event["workerId"]
        elif event["event"] in ("requeue", "dead", "done", "fail", "canceled", "lost", "released"):
            owned_by = None


def mget_tasks(queue: TaskQueue, ids: list[str]) -> list[Task | None]:
    """All the task documents in one request."""
    raws = queue.redis.mget(*[task_key(i) for i in ids])
    return [Task.model_validate_json(r) if r else None for r in raws]


def queue_positions(queue: TaskQueue, task_id: str) -> list[int]:
    return list(queue.redis.lpos(QUEUE_KEY, task_id, count=0) or [])


def only(task_id: str) -> Callable[[Task], bool]:
    return lambda t: t.id == task_id


# --- 1. kill -9 at any point: the task still finishes exactly once ------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["claim", "progress"])
def test_killed_worker_task_is_reaped_and_finishes_exactly_once(
    start_worker: StartWorker, queue: TaskQueue, task_type: str, tmp_path: Path, kill_at: str
) -> None:
    """SIGKILL right after the claim or mid-run: another worker reaps the expired lease, runs the task
    again and it ends done exactly once (one completed run, attempts 2, result from the survivor)."""
    marker = tmp_path / "marker"
    marker.mkdir()
    first = start_worker()
    task_id = create(queue, task_type, seconds=1.5 if kill_at == "claim" else 3, marker=str(marker))
    first.wait_for("claim", taskId=task_id)
    if kill_at == "progress":
        first.wait_for("progress", taskId=task_id, count=2, where=lambda e: e["progress"] > 0)
    first.kill()
    orphan = read(queue, task_id)
    assert orphan.status is RUNNING and orphan.worker_id == first.worker_id

    second = start_worker()
    task = wait_status(queue, task_id, DONE, timeout=20)

    assert len(marker_files(marker, task_id)) == 1
    assert task.attempts == 2
    assert task.worker_id == second.worker_id
    assert task.result == {"slept": task.payload["seconds"], "worker": second.worker_id}
    second.wait_for("requeue", taskId=task_id)  # the survivor's reaper requeued it
    second.wait_for("done", taskId=task_id)  # printed just after the final write
    assert len(second.find("done", taskId=task_id)) == 1
    assert not first.find("done", taskId=task_id)
    assert_never_two_owners([first, second], task_id)
    assert queue.redis.zscore(LEASES_KEY, task_id) is None


@pytest.mark.slow
def test_worker_killed_after_upload_before_final_write_result_is_written_once(
    start_worker: StartWorker, queue: TaskQueue, task_type: str, tmp_path: Path
) -> None:
    """SIGKILL after the processor's output was uploaded but before the task document was written:
    the run is repeated (work is at-least-once) but the final write happens once, by the survivor;
    the killed worker's partial work never produces a ``done``."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    processors = {"WORKER_PROCESSORS": f"{task_type}={HOLD_PROCESSOR}"}
    first = start_worker(**processors)
    task_id = create(queue, task_type, uploads=str(uploads), holdAttempts=1)
    wait_until(lambda: list(uploads.glob(f"{task_id}-1-*")), timeout=10, what="the first upload")
    first.kill()
    assert read(queue, task_id).result is None

    second = start_worker(**processors)
    task = wait_status(queue, task_id, DONE, timeout=20)

    assert task.result == {"worker": second.worker_id, "attempt": 2}
    assert task.attempts == 2
    second.wait_for("done", taskId=task_id)
    done_events = [e for e in task_events([first, second], task_id) if e["event"] == "done"]
    assert [e["workerId"] for e in done_events] == [second.worker_id]
    assert [p.read_text() for p in sorted(uploads.iterdir(), key=lambda p: p.name)] == [
        first.worker_id,
        second.worker_id,
    ]
    assert_never_two_owners([first, second], task_id)


# --- 2. two workers racing --------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_race_on_200_tasks_and_run_each_exactly_once(
    start_worker: StartWorker, queue: TaskQueue, task_type: str, tmp_path: Path
) -> None:
    """Two processes (concurrency 2 each) drain 200 quick tasks: every task is claimed once, done once,
    completes one run, and the whole batch finishes in bounded time."""
    marker = tmp_path / "marker"
    marker.mkdir()
    workers = [start_worker(WORKER_CONCURRENCY="2", LEASE_SECONDS="10") for _ in range(2)]
    started = time.monotonic()
    ids = [create(queue, task_type, seconds=0, marker=str(marker)) for _ in range(200)]

    def all_final() -> list[Task] | None:
        tasks = mget_tasks(queue, ids)
        return tasks if all(t is not None and t.status.is_final for t in tasks) else None

    tasks = wait_until(all_final, timeout=60, interval=0.25, what="200 tasks to finish")
    elapsed = time.monotonic() - started
    # Each event is printed just after its write: wait for the stragglers before counting.
    wait_until(lambda: sum(len(w.find("done")) for w in workers) >= 200, timeout=5, what="200 done events")

    assert Counter(t.status for t in tasks) == {DONE: 200}
    assert all(t.attempts == 1 for t in tasks)
    files = Counter(p.name.split("-")[0] for p in marker.iterdir())
    assert files == dict.fromkeys(ids, 1)
    claims = Counter(e["taskId"] for w in workers for e in w.find("claim"))
    assert claims == dict.fromkeys(ids, 1), "a task was claimed twice"
    dones = Counter(e["taskId"] for w in workers for e in w.find("done"))
    assert dones == dict.fromkeys(ids, 1)
    for w in workers:
        assert not w.find("lost") and not w.find("requeue")
    per_worker = [len(w.find("claim")) for w in workers]
    assert all(n > 0 for n in per_worker), per_worker
    assert elapsed < 45, f"200 tasks took {elapsed:.1f}s"
    print(f"200 tasks in {elapsed:.1f}s, claims per worker {per_worker}")


# --- 3. cancel --------------------------------------------------------------------------------


def test_cancel_stops_a_running_task_within_a_heartbeat_and_a_canceled_queued_task_never_runs(
    start_worker: StartWorker, queue: TaskQueue, task_type: str, tmp_path: Path
) -> None:
    """Cancel as the API does it: a running task stops within about one heartbeat and ends canceled
    with no result; a queued task is canceled at once, leaves the queue and is never claimed."""
    marker = tmp_path / "marker"
    marker.mkdir()
    worker = start_worker()  # concurrency 1: while it runs, the next task stays queued
    running_id = create(queue, task_type, seconds=20, marker=str(marker))
    worker.wait_for("progress", taskId=running_id)
    queued_id = create(queue, task_type, seconds=0, marker=str(marker))

    outcome, _ = queue.cancel(queue.read(queued_id))
    assert outcome == "canceled"
    snap = queue.read(queued_id)
    assert snap is not None and snap.task.status is CANCELED and snap.queue_position == 0

    outcome, _ = queue.cancel(queue.read(running_id))
    assert outcome == "requested"
    asked = time.monotonic()
    worker.wait_for("canceled", taskId=running_id, timeout=5)
    latency = time.monotonic() - asked
    task = wait_status(queue, running_id, CANCELED, timeout=5)
    assert latency < 1.5, f"stopped {latency:.2f}s after the cancel (heartbeat 0.3s)"
    assert task.result is None and task.finished_at is not None
    assert queue.redis.zscore(LEASES_KEY, running_id) is None

    # The worker is free again; a probe task behind the canceled one runs, the canceled one doesn't.
    probe_id = create(queue, task_type, seconds=0, marker=str(marker))
    wait_status(queue, probe_id, DONE, timeout=10)
    assert not worker.find("claim", taskId=queued_id)
    assert read(queue, queued_id).status is CANCELED
    assert marker_files(marker, running_id) == [] and marker_files(marker, queued_id) == []
    print(f"cancel latency {latency:.2f}s")


# --- 4. retries -------------------------------------------------------------------------------


@pytest.mark.slow
def test_transient_failures_retry_after_back_off_and_permanent_ones_fail_at_once(
    start_worker: StartWorker, queue: TaskQueue, task_type: str
) -> None:
    """Transient once: requeued via tasks:delayed with the error shown, done on attempt 2.
    Permanent: failed at once (bad_input, attempt 1). Transient always with maxAttempts 2: failed
    after exactly 2 attempts."""
    worker = start_worker(WORKER_CONCURRENCY="3")
    flaky = create(queue, task_type, fail="transient", failTimes=1)
    bad = create(queue, task_type, fail="permanent")
    hopeless = create(queue, task_type, fail="transient", max_attempts=2)

    first_failure = worker.wait_for("fail", taskId=flaky)
    assert first_failure["retryable"] is True and first_failure["outcome"] == "retry"
    waiting = read(queue, flaky)
    assert waiting.status is QUEUED and waiting.stage.startswith("retrying in")
    assert waiting.error is not None and waiting.error.code == "source_unavailable"
    assert waiting.worker_id is None and waiting.attempts == 1
    assert queue.redis.zscore(DELAYED_KEY, flaky) is not None
    assert queue_positions(queue, flaky) == []

    failed = wait_status(queue, bad, FAILED, timeout=10)
    assert failed.error is not None and failed.error.code == "bad_input"
    assert failed.attempts == 1 and failed.result is None
    assert len(worker.find("claim", taskId=bad)) == 1

    done = wait_status(queue, flaky, DONE, timeout=15)
    assert done.attempts == 2 and done.error is None and done.result is not None
    second_claim = worker.wait_for("claim", taskId=flaky, count=2)
    assert second_claim["ts"] - first_failure["ts"] >= 1.9, "retried before the 2 s minimum back-off"

    gave_up = wait_status(queue, hopeless, FAILED, timeout=15)
    assert gave_up.attempts == 2
    assert gave_up.error is not None and gave_up.error.code == "source_unavailable"
    assert len(worker.find("claim", taskId=hopeless)) == 2
    for task_id in (flaky, bad, hopeless):
        assert queue.redis.zscore(LEASES_KEY, task_id) is None
        assert queue.redis.zscore(DELAYED_KEY, task_id) is None


# --- 5. dead letter and racing reapers --------------------------------------------------------


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_task_whose_worker_keeps_dying_is_dead_lettered(queue: TaskQueue, task_type: str, max_attempts: int) -> None:
    """Claimed and never heartbeaten ``maxAttempts`` times: the reaper requeues it until the last
    attempt, then fails it with worker_lost and pushes its id onto tasks:dead."""
    task_id = create(queue, task_type, max_attempts=max_attempts)
    dying = Lifecycle(queue, "dying-worker", lease_seconds=0.1)
    reaper = Lifecycle(queue, "reaper")
    for attempt in range(1, max_attempts + 1):
        snap = dying.claim(only(task_id))
        assert snap is not None and snap.task.attempts == attempt
        time.sleep(0.15)
        outcome = dict(reaper.reap(limit=100)).get(task_id)
        if attempt < max_attempts:
            assert outcome == "requeued"
            assert queue_positions(queue, task_id) == [0], "requeued at the head"
        else:
            assert outcome == "dead"
    task = read(queue, task_id)
    assert task.status is FAILED and task.attempts == max_attempts
    assert task.error is not None and task.error.code == "worker_lost"
    assert task_id in queue.redis.lrange(DEAD_KEY, -1000, -1)
    assert queue.redis.zscore(LEASES_KEY, task_id) is None
    assert queue_positions(queue, task_id) == []


@pytest.mark.slow
def test_worker_killed_on_its_last_attempt_is_dead_lettered_by_another_worker(
    start_worker: StartWorker, queue: TaskQueue, task_type: str
) -> None:
    """Real processes: SIGKILL on the only attempt; the other worker's reaper dead-letters it."""
    first = start_worker()
    task_id = create(queue, task_type, max_attempts=1, seconds=5)
    first.wait_for("claim", taskId=task_id)
    first.kill()
    second = start_worker()
    task = wait_status(queue, task_id, FAILED, timeout=15)
    assert task.error is not None and task.error.code == "worker_lost" and task.attempts == 1
    second.wait_for("dead", taskId=task_id)
    assert not second.find("claim", taskId=task_id)
    assert task_id in queue.redis.lrange(DEAD_KEY, -1000, -1)


def test_two_reapers_racing_on_one_expired_lease_requeue_it_once(queue: TaskQueue, task_type: str) -> None:
    """Two reap() calls released together on the same expired task: exactly one requeues it and the
    id is in tasks:queue once (repeated to give the race a chance)."""
    reapers = [Lifecycle(queue, f"reaper-{i}") for i in range(2)]
    double_reports = 0  # both reapers computed the same document in the same ms: both told "applied"
    for _ in range(15):
        task_id = create(queue, task_type)
        assert Lifecycle(queue, "dying-worker", lease_seconds=0.05).claim(only(task_id)) is not None
        time.sleep(0.08)
        barrier = threading.Barrier(len(reapers))
        results: list[list[tuple[str, str]]] = [[] for _ in reapers]

        def reap(i: int, barrier: threading.Barrier = barrier, results: list[Any] = results) -> None:
            barrier.wait()
            results[i] = reapers[i].reap(limit=100)

        threads = [threading.Thread(target=reap, args=(i,)) for i in range(len(reapers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        outcomes = [o for r in results for tid, o in r if tid == task_id]
        assert outcomes and set(outcomes) == {"requeued"}, outcomes
        double_reports += len(outcomes) - 1
        assert queue_positions(queue, task_id) == [0]
        assert queue.redis.zscore(LEASES_KEY, task_id) is None
        snap = queue.read(task_id)
        assert snap is not None and snap.task.status is QUEUED
        assert queue.cancel(snap)[0] == "canceled"  # out of the way of the next rounds
    print(f"rounds where both reapers were told they requeued: {double_reports}/15")


# --- 6. a revived worker can't overwrite the new owner ------------------------------------------


def test_late_heartbeat_or_finish_from_a_revived_worker_is_lost(queue: TaskQueue, task_type: str) -> None:
    """A claims, stalls past its lease, is reaped, B claims: every write A makes from its old
    snapshot is refused (lost) and the task still belongs to B, who finishes it."""
    task_id = create(queue, task_type)
    a = Lifecycle(queue, "worker-A", lease_seconds=0.1)
    b = Lifecycle(queue, "worker-B", lease_seconds=30)
    stale = a.claim(only(task_id))
    assert stale is not None
    time.sleep(0.15)
    assert (task_id, "requeued") in Lifecycle(queue, "reaper").reap(limit=100)
    owned = b.claim(only(task_id))
    assert owned is not None and owned.task.attempts == 2

    assert a.heartbeat(stale, 50, "late").lost
    assert a.finish(stale, {"from": "A"})[0] == "lost"
    assert a.fail(stale, "oops", "late failure", retryable=True)[0] == "lost"
    assert a.release(stale)[0] == "lost"
    assert a.canceled(stale)[0] == "lost"
    now = read(queue, task_id)
    assert now.worker_id == "worker-B" and now.status is RUNNING and now.result is None and now.progress == 0

    outcome, final = b.finish(owned, {"from": "B"})
    assert outcome == "done" and final is not None
    assert read(queue, task_id).result == {"from": "B"}
    assert queue.redis.zscore(LEASES_KEY, task_id) is None


# --- 7. SIGTERM drain ---------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_finishes_short_tasks_releases_long_ones_to_the_head_and_exits_0(
    start_worker: StartWorker, queue: TaskQueue, task_type: str, tmp_path: Path
) -> None:
    """SIGTERM with a 1 s grace: the task that ends within it is done; the longer one is released to
    the head of the queue (queued, attempt not counted) and another worker completes it."""
    marker = tmp_path / "marker"
    marker.mkdir()
    filler = create(queue, f"nobody_{task_type}")  # a queued task no worker claims, behind which...
    try:
        check_sigterm_drain(start_worker, queue, task_type, marker, filler)
    finally:
        queue.cancel(queue.read(filler))


def check_sigterm_drain(start_worker: StartWorker, queue: TaskQueue, task_type: str, marker: Path,
                        filler: str) -> None:
    worker = start_worker(WORKER_CONCURRENCY="2", SHUTDOWN_GRACE_SECONDS="1")
    short = create(queue, task_type, seconds=0.4, marker=str(marker))
    long = create(queue, task_type, seconds=2.5, marker=str(marker))
    worker.wait_for("claim", taskId=short)
    worker.wait_for("claim", taskId=long)
    worker.terminate()
    assert worker.wait_exit(timeout=15) == 0

    assert read(queue, short).status is DONE
    released = queue.read(long)
    assert released is not None
    assert released.task.status is QUEUED and released.task.attempts == 0 and released.task.worker_id is None
    assert released.queue_position == 1, "...the released task goes to the head"
    assert len(queue_positions(queue, filler)) == 1
    assert queue.redis.zscore(LEASES_KEY, long) is None
    assert worker.find("requeue", taskId=long, reason="shutdown", outcome="released")
    assert worker.wait_for("worker_stopped")["released"] == 1
    assert marker_files(marker, long) == []

    successor = start_worker()
    task = wait_status(queue, long, DONE, timeout=15)
    assert task.attempts == 1 and task.worker_id == successor.worker_id
    assert len(marker_files(marker, long)) == 1


# --- 7b. claim looks past tasks it can't run ------------------------------------------------------


def test_tasks_of_other_types_at_the_head_do_not_starve_a_worker(
        start_worker: StartWorker, queue: TaskQueue, task_type: str) -> None:
    """A worker claims only its own types; tasks of other types waiting at the head of the queue (no
    worker for them yet, e.g. GPU work) must not keep it from the runnable task behind them."""
    others = [create(queue, f"nobody_{task_type}") for _ in range(8)]
    try:
        worker = start_worker()
        task_id = create(queue, task_type, seconds=0)
        task = wait_status(queue, task_id, DONE, timeout=5)
        assert task.worker_id == worker.worker_id
    finally:
        for other in others:
            queue.cancel(queue.read(other))


# --- 8. /health and /wake -----------------------------------------------------------------------


def test_health_reports_the_running_task_and_wake_needs_the_token_and_polls_at_once(
    start_worker: StartWorker, queue: TaskQueue, task_type: str, cloud: Any
) -> None:
    """/health shows the worker and its current task; /wake without or with a wrong token is 401,
    with WORKER_WAKE_TOKEN 202, and makes an idle worker (5 s poll interval) claim a new task at once."""
    worker = start_worker(POLL_MIN_SECONDS="5", POLL_MAX_SECONDS="30")
    with httpx.Client(base_url=worker.url, timeout=5) as http:
        idle = wait_until(lambda: (h := http.get("/health").json())["lastPollAt"] and h, timeout=5)
        assert idle["workerId"] == worker.worker_id and idle["version"] == __version__
        assert idle["processors"] == [task_type] and idle["currentTasks"] == []
        assert isinstance(idle["uptimeSeconds"], (int, float)) and idle["uptimeSeconds"] >= 0

        assert http.post("/wake").status_code == 401
        assert http.post("/wake", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert worker.find("claim") == []

        time.sleep(0.5)  # now well inside its 5 s idle wait
        task_id = create(queue, task_type, seconds=2)
        woke = time.monotonic()
        r = http.post("/wake", headers={"Authorization": f"Bearer {cloud.env['WORKER_WAKE_TOKEN']}"})
        assert r.status_code == 202
        worker.wait_for("claim", taskId=task_id, timeout=4)
        latency = time.monotonic() - woke
        assert latency < 1.0, f"claimed {latency:.2f}s after /wake"

        busy = wait_until(lambda: (h := http.get("/health").json())["currentTasks"] and h, timeout=5)
        [current] = busy["currentTasks"]
        assert current["taskId"] == task_id and current["type"] == task_type
        assert busy["uptimeSeconds"] >= idle["uptimeSeconds"]
        assert busy["lastPollAt"] >= idle["lastPollAt"]
    print(f"wake-to-claim latency {latency * 1000:.0f} ms")


# --- 9. time limit ------------------------------------------------------------------------------


def test_task_over_its_type_time_limit_fails_with_time_limit_exceeded(
    start_worker: StartWorker, queue: TaskQueue, task_type: str
) -> None:
    """TIME_LIMIT_<TYPE>=1 with a 5 s task: stopped after ~1 s, failed with time_limit_exceeded."""
    worker = start_worker(**{f"TIME_LIMIT_{task_type.upper()}": "1"})
    task_id = create(queue, task_type, seconds=5)
    task = wait_status(queue, task_id, FAILED, timeout=8)
    assert task.error is not None and task.error.code == "time_limit_exceeded"
    assert task.result is None and task.attempts == 1
    worker.wait_for("fail", taskId=task_id, code="time_limit_exceeded")


# --- 10. idle cost ------------------------------------------------------------------------------


@pytest.mark.slow
def test_idle_worker_backs_off_and_makes_few_requests(start_worker: StartWorker, cloud: LocalCloud) -> None:
    """An idle worker (poll 0.2 s doubling to 1.6 s) facing an empty queue makes few REST requests
    over ~5 s, and fewer in the second half than in the first (it backs off). It gets a store of its
    own (another Redis database behind its own stand-in): the shared one holds other tests' tasks."""
    assert cloud.redis_url is not None
    token = "idle-test-token"
    server = serve_in_thread(make_upstash(cloud.redis_url.rsplit("/", 1)[0] + "/3", token))
    url = f"http://127.0.0.1:{server.server_port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        start_worker(POLL_MIN_SECONDS="0.2", POLL_MAX_SECONDS="1.6", REAP_SECONDS="30",
                     UPSTASH_REDIS_REST_URL=url, UPSTASH_REDIS_REST_TOKEN=token)
        httpx.post(f"{url}/__devstack/stats/reset", headers=headers)
        time.sleep(2.5)
        first = httpx.get(f"{url}/__devstack/stats", headers=headers).json()
        time.sleep(2.5)
        total = httpx.get(f"{url}/__devstack/stats", headers=headers).json()
    finally:
        server.shutdown()
    first_half = first["requests"]
    second_half = total["requests"] - first_half
    print(
        f"idle requests: first 2.5s {first_half}, second 2.5s {second_half}, "
        f"by command {json.dumps(total['byCommand'])}"
    )
    assert total["requests"] <= 10
    assert second_half < first_half
