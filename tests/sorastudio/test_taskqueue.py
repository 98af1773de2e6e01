"""The queue protocol (``sorastudio.taskqueue``) against real Redis, through the official
``upstash-redis`` SDK and the local Upstash REST stand-in of this test process's cloud.

The store is shared by every test in the process, so each test works with its own user ids and
looks only at its own task ids; ``tasks:queue`` may hold other tests' ids.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from upstash_redis import Redis

from devstack.stack import LocalCloud
from sorastudio import taskqueue
from sorastudio.models import Task, TaskError, TaskStatus, new_task_id, now_iso
from sorastudio.taskqueue import (
    DEAD_KEY,
    DELAYED_KEY,
    LEASES_KEY,
    QUEUE_KEY,
    CreateOutcome,
    LeaseOp,
    QueueOp,
    Snapshot,
    TaskQueue,
    task_key,
    user_index_key,
)

RETENTION = 3600


@pytest.fixture(scope="module")
def redis(cloud: LocalCloud) -> Iterator[Redis]:
    with Redis(url=cloud.env["UPSTASH_REDIS_REST_URL"], token=cloud.env["UPSTASH_REDIS_REST_TOKEN"],
               allow_telemetry=False) as client:
        yield client


@pytest.fixture
def queue(redis: Redis) -> TaskQueue:
    return TaskQueue(redis, retention_seconds=RETENTION, idempotency_ttl_seconds=600)


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex}"


class Stats:
    """The stand-in's request counters (``/__devstack/stats``)."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.url = cloud.env["UPSTASH_REDIS_REST_URL"]
        self.headers = {"Authorization": f"Bearer {cloud.env['UPSTASH_REDIS_REST_TOKEN']}"}

    def reset(self) -> None:
        httpx.post(f"{self.url}/__devstack/stats/reset", headers=self.headers).raise_for_status()

    def read(self) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/__devstack/stats", headers=self.headers)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture
def stats(cloud: LocalCloud) -> Stats:
    return Stats(cloud)


def make_task(owner: str, url: str = "https://videos.example.com/clip.mp4") -> Task:
    now = now_iso()
    return Task(id=new_task_id(), type="video_analysis", payload={"videoUrl": url}, owner=owner,
                created_at=now, updated_at=now)


def create(queue: TaskQueue, owner: str, url: str = "https://videos.example.com/clip.mp4") -> Snapshot:
    created = queue.create(make_task(owner, url))
    assert created.outcome is CreateOutcome.CREATED
    snap = queue.read(created.task.id)  # type: ignore[union-attr]
    assert snap is not None
    return snap


def queued_ids(redis: Redis) -> list[str]:
    return [str(x) for x in redis.lrange(QUEUE_KEY, 0, -1)]


def claim(queue: TaskQueue, snap: Snapshot) -> Snapshot:
    """What a worker's claim does: queued -> running, out of the queue, under a lease."""
    now = now_iso()
    running = snap.task.model_copy(update={
        "status": TaskStatus.RUNNING, "stage": "starting", "attempts": snap.task.attempts + 1,
        "started_at": now, "updated_at": now,
    })
    applied, current = queue.transition(snap, running, queue=QueueOp.REMOVE, lease=LeaseOp.SET,
                                        lease_deadline_ms=int(time.time() * 1000) + 30_000)
    assert applied and current is not None
    return current


def finish(task: Task) -> Task:
    now = now_iso()
    return task.model_copy(update={"status": TaskStatus.DONE, "progress": 100, "stage": "done",
                                   "result": {"ok": True}, "updated_at": now, "finished_at": now})


# --- create ----------------------------------------------------------------------------------


def test_create_is_one_request_storing_queueing_and_indexing(queue: TaskQueue, redis: Redis, stats: Stats,
                                                             user: str) -> None:
    """create: task JSON stored as queued, id RPUSHed and added to the user's index, in one EVAL."""
    task = make_task(user)
    stats.reset()
    created = queue.create(task)
    assert stats.read() == {"requests": 1, "commands": 1, "byCommand": {"EVAL": 1}}

    assert created.outcome is CreateOutcome.CREATED
    assert created.task == task
    assert Task.model_validate_json(str(redis.get(task_key(task.id)))).status is TaskStatus.QUEUED
    assert queued_ids(redis)[-1] == task.id
    assert created.queue_position == redis.llen(QUEUE_KEY)
    assert redis.zscore(user_index_key(user), task.id) == 0
    assert 0 < redis.ttl(user_index_key(user)) <= RETENTION
    assert redis.ttl(task_key(task.id)) == -1  # queued tasks never expire under a worker


def test_every_queue_call_is_one_rest_request(queue: TaskQueue, stats: Stats, user: str) -> None:
    """read, list_for_user, transition and cancel each cost one REST request (cheap API calls)."""
    snap = create(queue, user)

    def requests_for(call: Any) -> int:
        stats.reset()
        call()
        return int(stats.read()["requests"])

    assert requests_for(lambda: queue.read(snap.task.id)) == 1
    assert requests_for(lambda: queue.list_for_user(user, limit=10)) == 1
    staged = snap.task.model_copy(update={"stage": "staged"})
    assert requests_for(lambda: queue.transition(snap, staged)) == 1
    latest = queue.read(snap.task.id)
    assert requests_for(lambda: queue.cancel(latest)) == 1  # type: ignore[arg-type]


def test_retried_create_with_same_id_enqueues_once(queue: TaskQueue, redis: Redis, user: str) -> None:
    """The SDK may resend a create: the same task id is stored and queued only once."""
    task = make_task(user)
    first = queue.create(task)
    again = queue.create(task)
    assert first.outcome is CreateOutcome.CREATED
    assert again.outcome is CreateOutcome.EXISTING
    assert again.task == task and again.queue_position == first.queue_position
    assert queued_ids(redis).count(task.id) == 1


def test_idempotency_key_replays_the_same_task(queue: TaskQueue, redis: Redis, user: str) -> None:
    """Same user, same Idempotency-Key, same request: the first task comes back, nothing new queued."""
    first = queue.create(make_task(user), "key-1")
    replay = queue.create(make_task(user), "key-1")
    assert first.outcome is CreateOutcome.CREATED
    assert replay.outcome is CreateOutcome.EXISTING
    assert replay.task == first.task
    assert replay.queue_position == first.queue_position
    assert first.task is not None
    assert queued_ids(redis).count(first.task.id) == 1
    assert redis.zcard(user_index_key(user)) == 1


def test_idempotency_key_with_a_different_request_conflicts(queue: TaskQueue, redis: Redis, user: str) -> None:
    """Reusing a key for a different payload is a conflict and stores nothing."""
    first = queue.create(make_task(user, "https://videos.example.com/a.mp4"), "key-1")
    other = make_task(user, "https://videos.example.com/b.mp4")
    conflict = queue.create(other, "key-1")
    assert conflict.outcome is CreateOutcome.CONFLICT
    assert conflict.task is None
    assert first.task is not None and conflict.conflicting_id == first.task.id
    assert queue.read(other.id) is None
    assert other.id not in queued_ids(redis)


def test_idempotency_keys_are_per_user(queue: TaskQueue, user: str) -> None:
    """Another user sending the same key gets a task of their own."""
    mine = queue.create(make_task(user), "shared-key")
    theirs = queue.create(make_task(f"{user}-other"), "shared-key")
    assert theirs.outcome is CreateOutcome.CREATED
    assert mine.task is not None and theirs.task is not None
    assert theirs.task.id != mine.task.id and theirs.task.owner == f"{user}-other"


def test_idempotency_key_of_an_expired_task_creates_a_new_one(queue: TaskQueue, redis: Redis, user: str) -> None:
    """Once the replayed task is gone, the key no longer pins it: a new task is created."""
    first = queue.create(make_task(user), "key-1")
    assert first.task is not None
    redis.delete(task_key(first.task.id))
    second = queue.create(make_task(user), "key-1")
    assert second.outcome is CreateOutcome.CREATED
    assert second.task is not None and second.task.id != first.task.id


# --- read and list ---------------------------------------------------------------------------


def test_read_reports_queue_positions_in_order(queue: TaskQueue, redis: Redis, user: str) -> None:
    """Positions count from the head (1 = next); cancelling one moves the later ones up."""
    base = redis.llen(QUEUE_KEY)
    snaps = [create(queue, user) for _ in range(4)]
    assert [queue.read(s.task.id).queue_position for s in snaps] == [  # type: ignore[union-attr]
        base + 1, base + 2, base + 3, base + 4]
    outcome, _ = queue.cancel(snaps[1])
    assert outcome == "canceled"
    assert [queue.read(s.task.id).queue_position for s in snaps] == [  # type: ignore[union-attr]
        base + 1, 0, base + 2, base + 3]


def test_read_of_unknown_task_is_none(queue: TaskQueue) -> None:
    assert queue.read(new_task_id()) is None


def test_list_pages_newest_first_without_gaps_or_duplicates(queue: TaskQueue, user: str) -> None:
    """Following next_cursor visits every task once, in descending id (= creation) order."""
    ids = [create(queue, user).task.id for _ in range(7)]
    create(queue, f"{user}-other")  # someone else's task never shows up
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = queue.list_for_user(user, limit=3, cursor=cursor)
        assert len(page.tasks) <= 3
        seen += [t.id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert cursor is None, "paging did not end"
    assert seen == sorted(ids, reverse=True)


def test_list_drops_ids_whose_task_expired(queue: TaskQueue, redis: Redis, user: str) -> None:
    """An index entry whose task key is gone is skipped and pruned from the user's index."""
    ids = [create(queue, user).task.id for _ in range(5)]
    gone = {ids[1], ids[3]}
    for task_id in gone:
        redis.delete(task_key(task_id))
    page = queue.list_for_user(user, limit=10)
    assert [t.id for t in page.tasks] == sorted(set(ids) - gone, reverse=True)
    assert page.next_cursor is None
    assert set(redis.zrange(user_index_key(user), 0, -1)) == set(ids) - gone


def test_list_continues_past_a_page_of_expired_tasks(queue: TaskQueue, redis: Redis, user: str) -> None:
    """A page whose tasks all expired is empty but still hands out a cursor to the older ones."""
    older = create(queue, user).task.id
    time.sleep(0.002)
    newer = [create(queue, user).task.id for _ in range(2)]
    for task_id in newer:
        redis.delete(task_key(task_id))
    page = queue.list_for_user(user, limit=2)
    assert page.tasks == [] and page.next_cursor is not None
    rest = queue.list_for_user(user, limit=2, cursor=page.next_cursor)
    assert [t.id for t in rest.tasks] == [older]


# --- transitions -----------------------------------------------------------------------------


def test_transition_with_a_stale_snapshot_fails_and_returns_the_current_task(queue: TaskQueue, user: str) -> None:
    """Compare-and-set: a writer that read before another's change loses and sees that change."""
    snap = create(queue, user)
    running = claim(queue, snap)
    late = snap.task.model_copy(update={"stage": "late writer", "updated_at": now_iso()})
    applied, current = queue.transition(snap, late)
    assert not applied
    assert current is not None and current.raw == running.raw
    assert queue.read(snap.task.id).raw == running.raw  # type: ignore[union-attr]


def test_reapplying_the_same_transition_counts_as_applied(queue: TaskQueue, redis: Redis, user: str) -> None:
    """The SDK's retry of an applied transition (the same EVAL sent again) reports success and
    does no bookkeeping twice; a different writer producing the same fields is not mistaken for it."""
    snap = create(queue, user)
    after = snap.task.model_copy(update={"status": TaskStatus.RUNNING, "updated_at": now_iso(), "rev": "r1"})
    keys = [task_key(snap.task.id), QUEUE_KEY, LEASES_KEY, DEAD_KEY, DELAYED_KEY]
    args = [snap.raw, after.to_json(), "0", "remove", "none", "0", snap.task.id, "0", "0"]
    first = redis.eval(taskqueue._TRANSITION, keys=keys, args=args)
    args[3] = "push"  # were the retry's bookkeeping re-run, the id would be back in the queue
    second = redis.eval(taskqueue._TRANSITION, keys=keys, args=args)
    assert first[0] == 1 and second[0] == 1 and second[1] == after.to_json()
    assert snap.task.id not in queued_ids(redis)
    # another caller computing the same change from the same snapshot gets a fresh rev: refused
    applied, current = queue.transition(snap, after)
    assert not applied and current is not None and current.raw == after.to_json()


def test_transition_to_a_final_state_sets_the_retention_ttl(queue: TaskQueue, redis: Redis, user: str) -> None:
    """Running tasks never expire; done/failed/canceled ones expire after the retention period."""
    running = claim(queue, create(queue, user))
    assert redis.ttl(task_key(running.task.id)) == -1
    progress = running.task.model_copy(update={"progress": 50, "stage": "half way", "updated_at": now_iso()})
    applied, running = queue.transition(running, progress)  # type: ignore[assignment]
    assert applied and redis.ttl(task_key(progress.id)) == -1
    applied, _ = queue.transition(running, finish(progress), lease=LeaseOp.REMOVE)
    assert applied
    assert RETENTION - 5 <= redis.ttl(task_key(progress.id)) <= RETENTION
    assert redis.zscore(LEASES_KEY, progress.id) is None

    failed_run = claim(queue, create(queue, user))
    now = now_iso()
    failed = failed_run.task.model_copy(update={"status": TaskStatus.FAILED, "updated_at": now, "finished_at": now,
                                                "error": TaskError(code="boom", message="it broke")})
    assert queue.transition(failed_run, failed)[0]
    assert RETENTION - 5 <= redis.ttl(task_key(failed.id)) <= RETENTION


def test_claim_moves_the_task_from_the_queue_to_the_leases(queue: TaskQueue, redis: Redis, user: str) -> None:
    snap = create(queue, user)
    running = claim(queue, snap)
    assert snap.task.id not in queued_ids(redis)
    assert redis.zscore(LEASES_KEY, snap.task.id) is not None
    assert running.task.status is TaskStatus.RUNNING
    redis.zrem(LEASES_KEY, snap.task.id)


def test_transition_of_a_vanished_task_returns_none(queue: TaskQueue, redis: Redis, user: str) -> None:
    snap = create(queue, user)
    redis.delete(task_key(snap.task.id))
    applied, current = queue.transition(snap, snap.task.model_copy(update={"stage": "x"}))
    assert not applied and current is None
    assert queue.read(snap.task.id) is None


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_of_a_queued_task_removes_it_from_the_queue(queue: TaskQueue, redis: Redis, user: str) -> None:
    snap = create(queue, user)
    outcome, current = queue.cancel(snap)
    assert outcome == "canceled"
    assert current is not None and current.task.status is TaskStatus.CANCELED
    assert current.task.finished_at is not None
    assert snap.task.id not in queued_ids(redis)
    assert RETENTION - 5 <= redis.ttl(task_key(snap.task.id)) <= RETENTION


def test_cancel_of_a_running_task_flags_it_for_its_worker(queue: TaskQueue, redis: Redis, user: str) -> None:
    running = claim(queue, create(queue, user))
    outcome, current = queue.cancel(running)
    assert outcome == "requested"
    assert current is not None
    assert current.task.status is TaskStatus.RUNNING and current.task.cancel_requested
    assert redis.ttl(task_key(running.task.id)) == -1
    again, latest = queue.cancel(current)
    assert again == "requested" and latest is not None and latest.raw == current.raw


def test_cancel_of_a_final_task_changes_nothing(queue: TaskQueue, user: str) -> None:
    running = claim(queue, create(queue, user))
    applied, done = queue.transition(running, finish(running.task))
    assert applied and done is not None
    outcome, current = queue.cancel(done)
    assert outcome == "final"
    assert current is not None and current.raw == done.raw
    assert queue.read(done.task.id).raw == done.raw  # type: ignore[union-attr]


def test_cancel_with_a_stale_snapshot_of_a_task_that_finished_meanwhile(queue: TaskQueue, user: str) -> None:
    """cancel() decides again on the current task: a task that finished meanwhile stays done."""
    running = claim(queue, create(queue, user))
    assert queue.transition(running, finish(running.task))[0]
    outcome, current = queue.cancel(running)
    assert outcome == "final"
    assert current is not None and current.task.status is TaskStatus.DONE


def test_cancel_of_an_expired_task_is_gone(queue: TaskQueue, redis: Redis, user: str) -> None:
    snap = create(queue, user)
    redis.delete(task_key(snap.task.id))
    assert queue.cancel(snap) == ("gone", None)


def test_worker_with_a_stale_snapshot_cannot_finish_a_canceled_task(queue: TaskQueue, user: str) -> None:
    """The core invariant: cancel vs finish is one atomic race; the loser's write never lands."""
    # Cancelled while running: the worker's `done` built from its pre-cancel snapshot is refused.
    running = claim(queue, create(queue, user))
    outcome, flagged = queue.cancel(running)
    assert outcome == "requested" and flagged is not None
    applied, current = queue.transition(running, finish(running.task), lease=LeaseOp.REMOVE)
    assert not applied
    assert current is not None and current.raw == flagged.raw

    # The worker then acknowledges the cancel; a second stale `done` still cannot overwrite it.
    now = now_iso()
    canceled = flagged.task.model_copy(update={"status": TaskStatus.CANCELED, "stage": "canceled",
                                               "updated_at": now, "finished_at": now})
    assert queue.transition(flagged, canceled, lease=LeaseOp.REMOVE)[0]
    applied, current = queue.transition(running, finish(running.task))
    assert not applied
    assert current is not None and current.task.status is TaskStatus.CANCELED
    assert queue.read(running.task.id).task.status is TaskStatus.CANCELED  # type: ignore[union-attr]


def test_worker_with_a_stale_snapshot_cannot_claim_a_canceled_task(queue: TaskQueue, redis: Redis,
                                                                   user: str) -> None:
    """A queued task cancelled after a worker read it is not claimed (and not re-queued)."""
    snap = create(queue, user)
    assert queue.cancel(snap)[0] == "canceled"
    running = snap.task.model_copy(update={"status": TaskStatus.RUNNING, "updated_at": now_iso()})
    applied, current = queue.transition(snap, running, queue=QueueOp.REMOVE, lease=LeaseOp.SET,
                                        lease_deadline_ms=int(time.time() * 1000) + 30_000)
    assert not applied
    assert current is not None and current.task.status is TaskStatus.CANCELED
    assert redis.zscore(LEASES_KEY, snap.task.id) is None


def run_together(n: int, fn: Any) -> list[Any]:
    """Run ``fn(i)`` on ``n`` threads released at once; return the results in index order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


def test_concurrent_transitions_from_one_snapshot_exactly_one_applies(queue: TaskQueue, user: str) -> None:
    """Distinct writers racing from the same snapshot: one wins, the others see its write."""
    snap = create(queue, user)
    afters = [snap.task.model_copy(update={"stage": f"writer {i}"}) for i in range(8)]
    results = run_together(8, lambda i: queue.transition(snap, afters[i]))
    winners = [i for i, (applied, _) in enumerate(results) if applied]
    assert len(winners) == 1
    stored = queue.read(snap.task.id)
    assert stored is not None and stored.task.stage == afters[winners[0]].stage
    assert all(current.raw == stored.raw for _, current in results)


def test_concurrent_cancels_exactly_one_applies(queue: TaskQueue, redis: Redis, user: str) -> None:
    """Several cancels of one queued task at once: exactly one caller cancels, the rest see `final`."""
    for _ in range(8):  # several rounds: cancels landing in the same millisecond are the hard case
        snap = create(queue, user)
        results = run_together(8, lambda i, snap=snap: queue.cancel(snap))
        winners = [current.task.updated_at for outcome, current in results if outcome == "canceled"]
        assert len(winners) == 1, f"{len(winners)} callers were told they canceled it (updatedAt {winners})"
        assert sorted(o for o, _ in results) == ["canceled"] + ["final"] * 7
        assert snap.task.id not in queued_ids(redis)
        assert queue.read(snap.task.id).task.status is TaskStatus.CANCELED  # type: ignore[union-attr]
