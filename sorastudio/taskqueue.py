"""The queue protocol: every Redis key, Lua script and state transition in one place.

Keys
    tasks:queue           List of queued task ids (producers RPUSH, workers claim from the head)
    tasks:queue:gpu       The same for task types only GPU workers run (so CPU workers never
                          wade through a backlog they can't take; GPU workers poll both)
    tasks:leases          Sorted set: running task id -> lease deadline (unix ms)
    tasks:dead            List of task ids that failed for good after losing their worker
    tasks:delayed         Sorted set: task id -> when (unix ms) a retry may run again
                          (tasks:delayed:gpu for tasks:queue:gpu)
    task:<id>             String: the task as JSON (see ``models.Task``)
    user:<uid>:tasks      Sorted set (all scores 0) of the user's task ids; ids are time-ordered
                          ULIDs, so ZREVRANGEBYLEX pages newest first
    idem:<uid>:<hash>     String "<taskId>:<request fingerprint>" for Idempotency-Key replays
    workers:alive:<type>  String (a worker id, EX 120 s): some worker that runs <type> polled lately;
                          set by every poll at no extra request, read by the status calls

Design
    JSON is only ever built and parsed client-side: Upstash does not document ``cjson`` in Lua.
    Lua does the parts that must be atomic: every state change is a compare-and-set on the whole
    task document (the exact string last read) plus the bookkeeping that goes with it (queue,
    leases, TTL) in the same script. A change that loses the race gets the current document back
    and decides again. The SDK retries a request once, so every script is safe to run twice.

Retention
    Finished tasks get ``EX retention``; the per-user index expires ``retention`` after the user's
    last new task and drops ids whose task has expired whenever it is listed.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from upstash_redis import Redis

from sorastudio.models import GPU_TASK_TYPES, Task, TaskError, TaskStatus, now_iso

QUEUE_KEY = "tasks:queue"
LEASES_KEY = "tasks:leases"
DEAD_KEY = "tasks:dead"
DELAYED_KEY = "tasks:delayed"
GPU_QUEUE_KEY = "tasks:queue:gpu"
GPU_DELAYED_KEY = "tasks:delayed:gpu"
TASK_PREFIX = "task:"
ALIVE_PREFIX = "workers:alive:"
ALIVE_SECONDS = 120  # a worker polls at least every 30 s (POLL_MAX_SECONDS), so 120 s means "gone"


def task_key(task_id: str) -> str:
    return f"{TASK_PREFIX}{task_id}"


def queue_key(task_type: str) -> str:
    """The list a task of ``task_type`` waits in."""
    return GPU_QUEUE_KEY if task_type in GPU_TASK_TYPES else QUEUE_KEY


def delayed_key(task_type: str) -> str:
    return GPU_DELAYED_KEY if task_type in GPU_TASK_TYPES else DELAYED_KEY


def user_index_key(user_id: str) -> str:
    return f"user:{user_id}:tasks"


def idempotency_key(user_id: str, key: str) -> str:
    # Hash the client's key: it can be any string, and Redis key names should stay short and plain.
    return f"idem:{user_id}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


# KEYS: task, queue, user index, idempotency key (or the task key again when unused)
# ARGV: task json, task id, request fingerprint, idempotency ttl, index ttl, task key prefix, use idem
_CREATE = """
local function position(id)
  local p = redis.call('LPOS', KEYS[2], id)
  if p then return p + 1 end
  return 0
end
if ARGV[7] == '1' then
  local prior = redis.call('GET', KEYS[4])
  if prior then
    local sep = string.find(prior, ':', 1, true)
    local pid = string.sub(prior, 1, sep - 1)
    local doc = redis.call('GET', ARGV[6] .. pid)
    if doc then
      if string.sub(prior, sep + 1) ~= ARGV[3] then return {'conflict', pid, 0} end
      return {'existing', doc, position(pid)}
    end
  end
end
local current = redis.call('GET', KEYS[1])
if current then return {'existing', current, position(ARGV[2])} end
redis.call('SET', KEYS[1], ARGV[1])
local len = redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[5])
if ARGV[7] == '1' then
  redis.call('SET', KEYS[4], ARGV[2] .. ':' .. ARGV[3], 'EX', ARGV[4])
end
return {'created', ARGV[1], len}
"""

# KEYS: task, queue, gpu queue, workers:alive:<type> for each type only some workers run
# ARGV: task id   ->  {} | {json, position (0 = not queued), alive flag per alive key}
_READ = """
local doc = redis.call('GET', KEYS[1])
if not doc then return {} end
local p = redis.call('LPOS', KEYS[2], ARGV[1]) or redis.call('LPOS', KEYS[3], ARGV[1])
local out = {doc, p and (p + 1) or 0}
for i = 4, #KEYS do table.insert(out, redis.call('EXISTS', KEYS[i])) end
return out
"""

# KEYS: queue, gpu queue, then workers:alive:<type> keys   ARGV: task key prefix, id, id, ...
# -> {alive flag per alive key..., json or '', position (0 = not queued), json, position, ...}
_READ_MANY = """
local out = {}
for i = 3, #KEYS do table.insert(out, redis.call('EXISTS', KEYS[i])) end
for i = 2, #ARGV do
  local doc = redis.call('GET', ARGV[1] .. ARGV[i])
  local p = false
  if doc then p = redis.call('LPOS', KEYS[1], ARGV[i]) or redis.call('LPOS', KEYS[2], ARGV[i]) end
  table.insert(out, doc or '')
  table.insert(out, p and (p + 1) or 0)
end
return out
"""

# Shared by the scripts that turn ids into documents: appends id, json pairs to ``out`` and calls
# ``gone(id)`` for ids whose task has expired (each caller drops them from its own structure).
_COLLECT = """
local function collect(out, ids, prefix, gone)
  for _, id in ipairs(ids) do
    local doc = redis.call('GET', prefix .. id)
    if doc then
      table.insert(out, id)
      table.insert(out, doc)
    else
      gone(id)
    end
  end
end
"""

# KEYS: user index   ARGV: start ('+' or '(' .. id), count, task key prefix
# -> {last id scanned or '', id, json, id, json, ...}; ids whose task expired are dropped from the index.
_LIST = _COLLECT + """
local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {''}
if #ids == tonumber(ARGV[2]) then out[1] = ids[#ids] end
collect(out, ids, ARGV[3], function(id) redis.call('ZREM', KEYS[1], id) end)
return out
"""

# KEYS: task, queue, leases, dead-letter list, delayed zset
# ARGV: expected json, new json, ttl (0 = none), queue op, lease op, lease deadline, task id,
#       dead-letter ('1' pushes the id), retry time (ms, for the 'delay' queue op)
# -> {1, new json} when applied (or already applied by a retried request), {0, current json or ''}.
_TRANSITION = """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then
  if cur == ARGV[2] then return {1, cur} end
  return {0, cur or ''}
end
if ARGV[3] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
local id = ARGV[7]
if ARGV[4] == 'remove' then
  redis.call('LREM', KEYS[2], 0, id)
  redis.call('ZREM', KEYS[5], id)
elseif ARGV[4] == 'push' then redis.call('RPUSH', KEYS[2], id)
elseif ARGV[4] == 'pushfront' then redis.call('LPUSH', KEYS[2], id)
elseif ARGV[4] == 'delay' then redis.call('ZADD', KEYS[5], ARGV[9], id) end
if ARGV[5] == 'set' then redis.call('ZADD', KEYS[3], ARGV[6], id)
elseif ARGV[5] == 'remove' then redis.call('ZREM', KEYS[3], id) end
if ARGV[8] == '1' then
  redis.call('RPUSH', KEYS[4], id)
  redis.call('LTRIM', KEYS[4], -10000, -1)
end
return {1, ARGV[2]}
"""

# Workers look before they claim: move due retries into their queue, then return ``count`` ids
# from ``offset`` of each queue served, with their documents (ids whose task expired are dropped),
# and how many leases have run out (so the reaper is only called when there is work for it).
# KEYS: leases, then (queue, delayed) pairs, most preferred first
# ARGV: now ms, count, task key prefix, offset, worker id, alive ttl, then the types this worker
# runs (each gets its workers:alive:<type> refreshed)  -> {expired lease count, id, json, id, json, ...}
_PEEK = _COLLECT + """
for i = 7, #ARGV do
  redis.call('SET', 'workers:alive:' .. ARGV[i], ARGV[5], 'EX', ARGV[6])
end
local out = {redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])}
local first = tonumber(ARGV[4])
for q = 2, #KEYS, 2 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[q + 1], '-inf', ARGV[1], 'LIMIT', 0, 100)
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[q + 1], id)
    redis.call('RPUSH', KEYS[q], id)
  end
  local ids = redis.call('LRANGE', KEYS[q], first, first + tonumber(ARGV[2]) - 1)
  collect(out, ids, ARGV[3], function(id) redis.call('LREM', KEYS[q], 0, id) end)
end
return out
"""

# Leases past their deadline, with their documents: the reaper's view (ids without a task dropped).
# KEYS: leases   ARGV: now ms, count, task key prefix  -> {id, json, ...}
_EXPIRED = _COLLECT + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
collect(out, ids, ARGV[3], function(id) redis.call('ZREM', KEYS[1], id) end)
return out
"""


class QueueOp(StrEnum):
    NONE = "none"
    REMOVE = "remove"  # take the id out of tasks:queue (and tasks:delayed)
    PUSH = "push"  # append to tasks:queue
    PUSH_FRONT = "pushfront"  # put back at the head (a released task keeps its turn)
    DELAY = "delay"  # park in tasks:delayed until ``retry_at_ms``


class LeaseOp(StrEnum):
    NONE = "none"
    SET = "set"
    REMOVE = "remove"


class CreateOutcome(StrEnum):
    CREATED = "created"
    EXISTING = "existing"  # idempotent replay (or the SDK's retry of our own request)
    CONFLICT = "conflict"  # same Idempotency-Key, different request


@dataclass(frozen=True)
class Created:
    outcome: CreateOutcome
    task: Task | None
    queue_position: int
    conflicting_id: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """A task as read, with the exact stored string (the compare-and-set token)."""

    task: Task
    raw: str
    queue_position: int  # 1 = next to run; 0 when not queued
    worker_seen: bool = True  # False: no worker that runs this type has polled lately

    def public(self) -> dict[str, Any]:
        """The task as the API shows it, saying so when it waits for a kind of worker none has."""
        data = self.task.public(self.queue_position)
        if self.task.status is TaskStatus.QUEUED and not self.worker_seen:
            data["stage"] = "waiting for a GPU worker"
        return data


@dataclass(frozen=True)
class Page:
    tasks: list[Task]
    next_cursor: str | None


_ALIVE_KEYS = [f"{ALIVE_PREFIX}{t}" for t in sorted(GPU_TASK_TYPES)]


def _worker_seen(task: Task, flags: list[Any]) -> bool:
    if task.type not in GPU_TASK_TYPES:
        return True
    return bool(int(flags[sorted(GPU_TASK_TYPES).index(task.type)]))


def request_fingerprint(task_type: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps([task_type, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class TaskQueue:
    """Task storage and queue over one Upstash REST client. Each method is one REST request."""

    def __init__(self, redis: Redis, *, retention_seconds: int, idempotency_ttl_seconds: int = 86400) -> None:
        self.redis = redis
        self.retention_seconds = retention_seconds
        self.idempotency_ttl_seconds = idempotency_ttl_seconds

    # -- producers --------------------------------------------------------------------------

    def create(self, task: Task, idempotency: str | None = None) -> Created:
        """Store ``task`` as queued and enqueue it atomically (one EVAL)."""
        fingerprint = request_fingerprint(task.type, task.payload)
        tkey = task_key(task.id)
        ikey = idempotency_key(task.owner, idempotency) if idempotency else tkey
        reply = self.redis.eval(
            _CREATE,
            keys=[tkey, queue_key(task.type), user_index_key(task.owner), ikey],
            args=[
                task.to_json(), task.id, fingerprint, str(self.idempotency_ttl_seconds),
                str(self.retention_seconds), TASK_PREFIX, "1" if idempotency else "0",
            ],
        )
        outcome = CreateOutcome(reply[0])
        if outcome is CreateOutcome.CONFLICT:
            return Created(outcome, None, 0, conflicting_id=reply[1])
        return Created(outcome, Task.model_validate_json(reply[1]), int(reply[2]))

    # -- readers ----------------------------------------------------------------------------

    def read(self, task_id: str) -> Snapshot | None:
        """The task, its queue position and worker availability (one EVAL); None when unknown."""
        reply = self.redis.eval(_READ, keys=[task_key(task_id), QUEUE_KEY, GPU_QUEUE_KEY, *_ALIVE_KEYS],
                                args=[task_id])
        if not reply:
            return None
        task = Task.model_validate_json(reply[0])
        return Snapshot(task, reply[0], int(reply[1]), _worker_seen(task, reply[2:]))

    def read_many(self, task_ids: list[str]) -> list[Snapshot]:
        """Several tasks with queue positions in one EVAL (the page's poll); missing ones skipped."""
        if not task_ids:
            return []
        reply = self.redis.eval(_READ_MANY, keys=[QUEUE_KEY, GPU_QUEUE_KEY, *_ALIVE_KEYS],
                                args=[TASK_PREFIX, *task_ids])
        flags, rest = reply[:len(_ALIVE_KEYS)], reply[len(_ALIVE_KEYS):]
        snaps = []
        for doc, pos in zip(rest[0::2], rest[1::2], strict=True):
            if doc:
                task = Task.model_validate_json(doc)
                snaps.append(Snapshot(task, doc, int(pos), _worker_seen(task, flags)))
        return snaps

    def list_for_user(self, user_id: str, *, limit: int, cursor: str | None = None) -> Page:
        """The user's tasks newest first, ``limit`` index entries from ``cursor`` (one EVAL).

        A page can hold fewer than ``limit`` tasks when some expired; continue while
        ``next_cursor`` is set.
        """
        start = f"({cursor}" if cursor else "+"
        reply = self.redis.eval(_LIST, keys=[user_index_key(user_id)], args=[start, str(limit), TASK_PREFIX])
        last = reply[0] or None
        tasks = [Task.model_validate_json(doc) for doc in reply[2::2]]
        return Page([t for t in tasks if t.owner == user_id], last)

    def depth(self) -> dict[str, int]:
        """Queue gauges for health checks (one pipeline)."""
        pipe = self.redis.pipeline()
        for key in (QUEUE_KEY, GPU_QUEUE_KEY, DEAD_KEY):
            pipe.llen(key)
        for key in (LEASES_KEY, DELAYED_KEY, GPU_DELAYED_KEY):
            pipe.zcard(key)
        cpu, gpu, dead, running, delayed, gpu_delayed = (int(n) for n in pipe.exec())  # type: ignore[arg-type]
        return {"depth": cpu + gpu, "gpuDepth": gpu, "running": running, "deadLetter": dead,
                "delayed": delayed + gpu_delayed}

    # -- state changes ----------------------------------------------------------------------

    def transition(
        self,
        before: Snapshot,
        after: Task,
        *,
        queue: QueueOp = QueueOp.NONE,
        lease: LeaseOp = LeaseOp.NONE,
        lease_deadline_ms: int = 0,
        retry_at_ms: int = 0,
        dead_letter: bool = False,
    ) -> tuple[bool, Snapshot | None]:
        """Compare-and-set ``before`` -> ``after`` with its bookkeeping, atomically (one EVAL).

        Returns (applied, current): when another party changed the task first, ``applied`` is
        False and ``current`` is what is stored now (None if it expired).
        """
        # A fresh revision makes this write's document unique: the script's "already applied"
        # answer then means *this* request was applied (an SDK retry), never someone else's.
        after = after.model_copy(update={"rev": secrets.token_hex(6)})
        new = after.to_json()
        ttl = self.retention_seconds if after.status.is_final else 0
        reply = self.redis.eval(
            _TRANSITION,
            keys=[task_key(after.id), queue_key(after.type), LEASES_KEY, DEAD_KEY, delayed_key(after.type)],
            args=[before.raw, new, str(ttl), queue.value, lease.value, str(lease_deadline_ms), after.id,
                  "1" if dead_letter else "0", str(retry_at_ms)],
        )
        applied, raw = bool(int(reply[0])), reply[1]
        if not raw:
            return applied, None
        return applied, Snapshot(Task.model_validate_json(raw), raw, 0)

    # -- workers ----------------------------------------------------------------------------

    def peek(self, now_ms: int, count: int = 8, offset: int = 0, *, worker_id: str = "",
             advertise: Collection[str] = (), gpu: bool = False) -> tuple[list[Snapshot], int]:
        """Promote due retries, then ``count`` queued tasks from ``offset`` of each queue served
        (the GPU queue first when ``gpu``), and the number of expired leases (one EVAL).

        ``advertise``: the task types the polling worker runs, recorded as alive for 120 s.
        """
        queues = [GPU_QUEUE_KEY, GPU_DELAYED_KEY] if gpu else []
        reply = self.redis.eval(_PEEK, keys=[LEASES_KEY, *queues, QUEUE_KEY, DELAYED_KEY],
                                args=[str(now_ms), str(count), TASK_PREFIX, str(offset), worker_id,
                                      str(ALIVE_SECONDS), *sorted(advertise)])
        docs = reply[2::2]
        return [Snapshot(Task.model_validate_json(doc), doc, 0) for doc in docs], int(reply[0])

    def expired_leases(self, now_ms: int, count: int = 10) -> list[Snapshot]:
        """Running tasks whose lease ran out (their worker died or hung), for the reaper."""
        reply = self.redis.eval(_EXPIRED, keys=[LEASES_KEY], args=[str(now_ms), str(count), TASK_PREFIX])
        return [Snapshot(Task.model_validate_json(doc), doc, 0) for doc in reply[1::2]]

    def cancel(self, snapshot: Snapshot, *, attempts: int = 3) -> tuple[str, Snapshot | None]:
        """Cancel a task: a queued one at once, a running one by flagging it for its worker.

        Returns (outcome, snapshot) where outcome is ``canceled``, ``requested`` (running, the
        worker will stop it), ``final`` (already finished: nothing changed), ``gone`` (expired)
        or ``busy`` (lost the race ``attempts`` times in a row: nothing changed, try again).
        """
        current: Snapshot | None = snapshot
        for _ in range(attempts):
            if current is None:
                return "gone", None
            task = current.task
            if task.status.is_final:
                return "final", current
            now = now_iso()
            if task.status is TaskStatus.QUEUED:
                after = task.model_copy(update={
                    "status": TaskStatus.CANCELED, "stage": "canceled", "updated_at": now, "finished_at": now,
                })
                applied, latest = self.transition(current, after, queue=QueueOp.REMOVE)
                outcome = "canceled"
            else:
                if task.cancel_requested:
                    return "requested", current
                after = task.model_copy(update={"cancel_requested": True, "updated_at": now})
                applied, latest = self.transition(current, after)
                outcome = "requested"
            if applied:
                return outcome, latest
            current = latest
        return "busy", current


# --- the worker's side of the protocol ---------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def retry_delay_seconds(attempt: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential back-off with full jitter (AWS's "full jitter"): uniform in [base, base*2^n]."""
    return random.uniform(base, min(cap, base * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class Beat:
    """What a heartbeat found: keep going, stop because the user canceled, or stop because lost."""

    snapshot: Snapshot | None
    cancel_requested: bool = False
    lost: bool = False  # someone else owns the task now (reaped) or it is gone


class Lifecycle:
    """Claim, heartbeat, finish, retry, release and reap: every worker transition, each one CAS."""

    def __init__(self, queue: TaskQueue, worker_id: str, *, lease_seconds: float = 30.0) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.lease_ms = int(lease_seconds * 1000)
        self.expired_leases = 0  # as of the last claim's peek

    # How far a worker looks past tasks it can't run (other types waiting for other workers):
    # 8 at first, then wider pages; each page is one request, spent only when the head is blocked.
    PEEK_PAGES = ((0, 8), (8, 32), (40, 160), (200, 800))

    def claim(self, can_run: Callable[[Task], bool] = lambda t: True, types: Collection[str] = ()
              ) -> Snapshot | None:
        """Take the first runnable queued task: queued -> running with a lease, attempts+1.

        ``types`` (what this worker runs) are advertised as alive by the first peek; a worker
        that runs a GPU type also serves the GPU queue, first. Sets ``expired_leases`` from the
        peek so the caller reaps only when a lease has run out.
        """
        gpu = any(t in GPU_TASK_TYPES for t in types)
        for offset, count in self.PEEK_PAGES:
            page, self.expired_leases = self.queue.peek(
                now_ms(), count, offset, worker_id=self.worker_id, advertise=types if offset == 0 else (), gpu=gpu)
            candidates = [c for c in page if c.task.status is TaskStatus.QUEUED and can_run(c.task)]
            # Competing workers start at different places in the head so they rarely collide.
            head = candidates[:count]
            random.shuffle(head)
            for snap in head + candidates[count:]:
                now = now_iso()
                running = snap.task.model_copy(update={
                    "status": TaskStatus.RUNNING, "stage": "starting", "progress": 0,
                    "attempts": snap.task.attempts + 1, "started_at": now, "updated_at": now,
                    "worker_id": self.worker_id, "error": None,
                })
                applied, current = self.queue.transition(
                    snap, running, queue=QueueOp.REMOVE, lease=LeaseOp.SET,
                    lease_deadline_ms=now_ms() + self.lease_ms)
                if applied and current is not None:
                    return current
            if len(page) < count * (2 if gpu else 1):
                return None  # the end of the queue(s)
        return None

    def heartbeat(self, snap: Snapshot, progress: int, stage: str) -> Beat:
        """Extend the lease and record progress, only while this worker still owns the task."""
        after = snap.task.model_copy(update={"progress": max(0, min(100, progress)), "stage": stage[:120],
                                             "updated_at": now_iso()})
        applied, current = self.queue.transition(snap, after, lease=LeaseOp.SET,
                                                 lease_deadline_ms=now_ms() + self.lease_ms)
        if applied:
            return Beat(current)
        return self._why_not(current)

    def _why_not(self, current: Snapshot | None) -> Beat:
        if current is None or current.task.status is not TaskStatus.RUNNING or current.task.worker_id != self.worker_id:
            return Beat(current, lost=True)
        if current.task.cancel_requested:
            return Beat(current, cancel_requested=True)
        return Beat(current)  # changed but still ours (e.g. our own retried write): continue from it

    def _settle(self, snap: Snapshot, decide: Callable[[Task, str], tuple[str, Task, dict[str, Any]]]
                ) -> tuple[str, Snapshot | None]:
        """Apply a worker's final step, re-deciding from the stored task after each lost race.

        A cancel requested meanwhile wins (the task ends canceled); a task someone else owns now
        is left alone ("lost").
        """
        for _ in range(3):
            if snap.task.cancel_requested:
                return self.canceled(snap)
            outcome, after, ops = decide(snap.task, now_iso())
            applied, current = self.queue.transition(snap, after, **ops)
            if applied:
                return outcome, current
            beat = self._why_not(current)
            if beat.lost or beat.snapshot is None:
                return "lost", current
            snap = beat.snapshot
        return "lost", snap

    def finish(self, snap: Snapshot, result: dict[str, Any]) -> tuple[str, Snapshot | None]:
        """running -> done (or canceled, if the user asked meanwhile: no result over a cancel)."""
        def decide(task: Task, now: str) -> tuple[str, Task, dict[str, Any]]:
            done = task.model_copy(update={"status": TaskStatus.DONE, "progress": 100, "stage": "done",
                                           "result": result, "updated_at": now, "finished_at": now})
            return "done", done, {"lease": LeaseOp.REMOVE}

        return self._settle(snap, decide)

    def canceled(self, snap: Snapshot) -> tuple[str, Snapshot | None]:
        """running -> canceled (the worker stopped on the user's request)."""
        now = now_iso()
        after = snap.task.model_copy(update={"status": TaskStatus.CANCELED, "stage": "canceled",
                                             "updated_at": now, "finished_at": now})
        applied, current = self.queue.transition(snap, after, lease=LeaseOp.REMOVE)
        return ("canceled" if applied else "lost"), current

    def fail(self, snap: Snapshot, code: str, message: str, *, retryable: bool) -> tuple[str, Snapshot | None]:
        """running -> queued again after a back-off (transient, attempts left) or -> failed."""
        error = TaskError(code=code, message=message[:500])

        def decide(task: Task, now: str) -> tuple[str, Task, dict[str, Any]]:
            if retryable and task.attempts < task.max_attempts:
                delay = retry_delay_seconds(task.attempts)
                after = task.model_copy(update={"status": TaskStatus.QUEUED, "stage": f"retrying in {delay:.0f}s",
                                                "error": error, "updated_at": now, "worker_id": None})
                return "retry", after, {"queue": QueueOp.DELAY, "lease": LeaseOp.REMOVE,
                                        "retry_at_ms": now_ms() + int(delay * 1000)}
            after = task.model_copy(update={"status": TaskStatus.FAILED, "stage": "failed", "error": error,
                                            "updated_at": now, "finished_at": now})
            return "failed", after, {"lease": LeaseOp.REMOVE}

        return self._settle(snap, decide)

    def release(self, snap: Snapshot) -> tuple[str, Snapshot | None]:
        """Give a running task back (shutdown): to the head of the queue, the attempt not counted."""
        now = now_iso()
        after = snap.task.model_copy(update={"status": TaskStatus.QUEUED, "stage": "requeued (worker stopping)",
                                             "attempts": max(0, snap.task.attempts - 1), "progress": 0,
                                             "updated_at": now, "worker_id": None})
        applied, current = self.queue.transition(snap, after, queue=QueueOp.PUSH_FRONT, lease=LeaseOp.REMOVE)
        return ("released" if applied else "lost"), current

    def reap(self, limit: int = 10) -> list[tuple[str, str]]:
        """Requeue tasks whose worker died; dead-letter them after ``maxAttempts``.

        Each is a CAS on the document read with the expired lease, so two reapers can't both act
        and a heartbeat that lands first wins. Returns (task id, "requeued" | "dead") pairs.
        """
        done = []
        for snap in self.queue.expired_leases(now_ms(), limit):
            task = snap.task
            now = now_iso()
            if task.status is not TaskStatus.RUNNING:
                continue
            if task.cancel_requested:
                outcome, _ = self.canceled(snap)
                if outcome == "canceled":
                    done.append((task.id, "canceled"))
                continue
            if task.attempts >= task.max_attempts:
                after = task.model_copy(update={
                    "status": TaskStatus.FAILED, "stage": "failed", "updated_at": now, "finished_at": now,
                    "error": TaskError(code="worker_lost", message=(
                        f"The worker running this task stopped responding {task.attempts} times; giving up.")),
                })
                applied, _ = self.queue.transition(snap, after, lease=LeaseOp.REMOVE, dead_letter=True)
                outcome = "dead"
            else:
                after = task.model_copy(update={"status": TaskStatus.QUEUED, "stage": "requeued (worker lost)",
                                                "progress": 0, "updated_at": now, "worker_id": None})
                applied, _ = self.queue.transition(snap, after, queue=QueueOp.PUSH_FRONT, lease=LeaseOp.REMOVE)
                outcome = "requeued"
            if applied:
                done.append((task.id, outcome))
        return done
