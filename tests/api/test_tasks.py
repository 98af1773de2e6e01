"""The task functions over real HTTP: create, status, list, cancel, health, isolation, idempotency."""

from __future__ import annotations

import threading
import uuid

import httpx
from upstash_redis import Redis

from sorastudio.models import Task, TaskStatus, now_iso
from sorastudio.taskqueue import QUEUE_KEY, LeaseOp, QueueOp, Snapshot, TaskQueue
from tests.api.conftest import Account, analysis, create, sign_up


def queue_for(redis: Redis) -> TaskQueue:
    return TaskQueue(redis, retention_seconds=3600)


def start_running(redis: Redis, task_id: str) -> Snapshot:
    """Do what a worker's claim does (the worker itself arrives with the next issue)."""
    queue = queue_for(redis)
    snap = queue.read(task_id)
    assert snap is not None
    running = snap.task.model_copy(update={"status": TaskStatus.RUNNING, "stage": "downloading",
                                           "attempts": 1, "started_at": now_iso()})
    applied, current = queue.transition(snap, running, queue=QueueOp.REMOVE, lease=LeaseOp.SET,
                                        lease_deadline_ms=2**40)
    assert applied and current is not None
    return current


def test_create_stores_a_queued_task(http: httpx.Client, alice: Account, redis: Redis) -> None:
    body = create(http, alice, "https://videos.example.com/a.mp4")
    task = body["task"]
    assert body["taskId"] == task["id"] and len(task["id"]) == 26
    assert task["status"] == "queued" and task["progress"] == 0
    assert task["payload"] == {"videoUrl": "https://videos.example.com/a.mp4"}
    assert task["owner"] == alice.id and task["attempts"] == 0
    assert task["result"] is None and task["error"] is None
    assert task["queuePosition"] >= 1
    stored = Task.model_validate_json(redis.get(f"task:{task['id']}"))
    assert stored.status is TaskStatus.QUEUED
    assert redis.lpos(QUEUE_KEY, task["id"]) is not None


def test_status_shows_queue_position(http: httpx.Client, alice: Account) -> None:
    first = create(http, alice)["taskId"]
    second = create(http, alice)["taskId"]
    p1 = http.get(f"/api/status?taskId={first}", headers=alice.auth).json()["task"]["queuePosition"]
    p2 = http.get(f"/api/status?taskId={second}", headers=alice.auth).json()["task"]["queuePosition"]
    assert p2 == p1 + 1


def test_status_of_someone_elses_or_unknown_task_is_404(http: httpx.Client, alice: Account, bob: Account) -> None:
    task_id = create(http, alice)["taskId"]
    for tid in [task_id, "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "nope", "../../etc/passwd", "task:x"]:
        r = http.get("/api/status", params={"taskId": tid}, headers=bob.auth)
        assert r.status_code == 404, tid
        assert r.json()["error"]["code"] == "task_not_found"
    r = http.get("/api/status", headers=alice.auth)
    assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "taskId"


def test_list_is_newest_first_paged_and_private(http: httpx.Client, bob: Account) -> None:
    carol = sign_up(http)
    mine = [create(http, carol, f"https://v.example.com/{i}.mp4")["taskId"] for i in range(5)]
    create(http, bob)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = http.get("/api/tasks", params=params, headers=carol.auth)
        assert r.status_code == 200
        page = r.json()
        assert len(page["tasks"]) <= 2
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine))
    assert all(t["owner"] == carol.id for t in http.get("/api/tasks", headers=carol.auth).json()["tasks"])


def test_list_filters_by_status(http: httpx.Client) -> None:
    dave = sign_up(http)
    ids = [create(http, dave)["taskId"] for _ in range(3)]
    assert http.post(f"/api/cancel?taskId={ids[1]}", headers=dave.auth).status_code == 200
    r = http.get("/api/tasks?status=canceled", headers=dave.auth)
    assert [t["id"] for t in r.json()["tasks"]] == [ids[1]]
    r = http.get("/api/tasks?status=queued&limit=1", headers=dave.auth)
    page = r.json()
    assert [t["id"] for t in page["tasks"]] == [ids[2]]
    r = http.get("/api/tasks", params={"status": "queued", "cursor": page["nextCursor"]}, headers=dave.auth)
    assert [t["id"] for t in r.json()["tasks"]] == [ids[0]]


def test_list_rejects_bad_parameters(http: httpx.Client, alice: Account) -> None:
    for params in [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"limit": "-1"},
                   {"status": "exploded"}, {"cursor": "not-a-cursor"}]:
        r = http.get("/api/tasks", params=params, headers=alice.auth)
        assert r.status_code == 400, params
        assert r.json()["error"]["code"] == "invalid_request"


def test_idempotency_key_returns_the_same_task(http: httpx.Client, alice: Account, bob: Account,
                                               redis: Redis) -> None:
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    depth = redis.llen(QUEUE_KEY)
    first = create(http, alice, headers=key)
    again = create(http, alice, headers=key)
    assert again["taskId"] == first["taskId"] and again["replayed"] is True
    assert redis.llen(QUEUE_KEY) == depth + 1
    # same key, different request: refused, nothing created
    r = http.post("/api/task", json=analysis("https://other.example.com/b.mp4"), headers={**alice.auth, **key})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_key_reused"
    # another user's identical key is their own
    assert create(http, bob, headers=key)["taskId"] != first["taskId"]
    assert redis.llen(QUEUE_KEY) == depth + 2


def test_concurrent_idempotent_creates_make_one_task(http: httpx.Client, alice: Account, api: object) -> None:
    key = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
    ids: list[str] = []

    def go() -> None:
        with httpx.Client(base_url=str(http.base_url), timeout=30) as c:
            r = c.post("/api/task", json=analysis(), headers={**alice.auth, **key})
            assert r.status_code == 201
            ids.append(r.json()["taskId"])

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 6 and len(set(ids)) == 1


def test_cancel_queued_task_is_immediate(http: httpx.Client, alice: Account, redis: Redis) -> None:
    task_id = create(http, alice)["taskId"]
    r = http.post(f"/api/cancel?taskId={task_id}", headers=alice.auth)
    assert r.status_code == 200
    task = r.json()["task"]
    assert task["status"] == "canceled" and task["finishedAt"]
    assert redis.lpos(QUEUE_KEY, task_id) is None  # it will never run
    assert 0 < redis.ttl(f"task:{task_id}") <= 7 * 24 * 3600  # retention applies to finished tasks
    r = http.post(f"/api/cancel?taskId={task_id}", headers=alice.auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "task_finished"


def test_cancel_running_task_marks_it_for_the_worker(http: httpx.Client, alice: Account, redis: Redis) -> None:
    task_id = create(http, alice)["taskId"]
    start_running(redis, task_id)
    r = http.post(f"/api/cancel?taskId={task_id}", headers=alice.auth)
    assert r.status_code == 200
    task = r.json()["task"]
    assert task["status"] == "running" and task["cancelRequested"] is True
    # asking twice is harmless
    assert http.post(f"/api/cancel?taskId={task_id}", headers=alice.auth).status_code == 200


def test_cancel_races_with_a_finishing_worker(http: httpx.Client, alice: Account, redis: Redis) -> None:
    """A worker holding the pre-cancel snapshot cannot write its result over the cancellation."""
    task_id = create(http, alice)["taskId"]
    running = start_running(redis, task_id)
    assert http.post(f"/api/cancel?taskId={task_id}", headers=alice.auth).status_code == 200
    done = running.task.model_copy(update={"status": TaskStatus.DONE, "result": {"x": 1}, "progress": 100})
    applied, current = queue_for(redis).transition(running, done, lease=LeaseOp.REMOVE)
    assert not applied and current is not None and current.task.cancel_requested
    assert current.task.result is None


def test_cancel_of_finished_task_is_409(http: httpx.Client, alice: Account, redis: Redis) -> None:
    task_id = create(http, alice)["taskId"]
    running = start_running(redis, task_id)
    done = running.task.model_copy(update={"status": TaskStatus.DONE, "progress": 100, "result": {"ok": True}})
    assert queue_for(redis).transition(running, done, lease=LeaseOp.REMOVE)[0]
    r = http.post(f"/api/cancel?taskId={task_id}", headers=alice.auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "task_finished"


def test_concurrent_cancels_agree(http: httpx.Client, alice: Account) -> None:
    task_id = create(http, alice)["taskId"]
    codes: list[int] = []

    def go() -> None:
        with httpx.Client(base_url=str(http.base_url), timeout=30) as c:
            codes.append(c.post(f"/api/cancel?taskId={task_id}", headers=alice.auth).status_code)

    threads = [threading.Thread(target=go) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(200) >= 1 and set(codes) <= {200, 409}
    final = http.get(f"/api/status?taskId={task_id}", headers=alice.auth).json()["task"]
    assert final["status"] == "canceled"


def test_cancel_someone_elses_task_is_404_and_changes_nothing(http: httpx.Client, alice: Account,
                                                              bob: Account) -> None:
    task_id = create(http, alice)["taskId"]
    r = http.post(f"/api/cancel?taskId={task_id}", headers=bob.auth)
    assert r.status_code == 404
    assert http.get(f"/api/status?taskId={task_id}", headers=alice.auth).json()["task"]["status"] == "queued"


def test_health_needs_no_auth_and_reveals_nothing_private(http: httpx.Client, alice: Account) -> None:
    create(http, alice)
    r = http.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["queue"]["depth"] >= 1
    assert alice.id not in r.text and "token" not in r.text.lower()
