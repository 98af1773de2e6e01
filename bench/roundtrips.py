"""Upstash REST requests per API call, counted at the stand-in (reset, one call via the router, read).

The stand-in counts an EVAL as one command; Upstash bills an EVAL plus every ``redis.call`` in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness import TASK_BODY, Stack, create_task, upstash_stats, verdict


@dataclass(frozen=True)
class Op:
    name: str
    target: int  # most REST requests one call may cost
    expect: int  # HTTP status of a correct call
    call: Callable[[httpx.Client, str], httpx.Response]  # (client, fresh task id) -> response


OPS = (
    Op("create", 1, 201, lambda c, _: c.post("/api/task", json=TASK_BODY)),
    Op("status", 1, 200, lambda c, tid: c.get(f"/api/status?taskId={tid}")),
    Op("list", 2, 200, lambda c, _: c.get("/api/tasks?limit=20")),
    Op("list status=queued", 2, 200, lambda c, _: c.get("/api/tasks?limit=20&status=queued")),
    # No task is ever done here, so this filter scans as far as it may: the worst case.
    Op("list status=done", 2, 200, lambda c, _: c.get("/api/tasks?limit=20&status=done")),
    Op("cancel", 2, 200, lambda c, tid: c.post(f"/api/cancel?taskId={tid}")),
    Op("health", 1, 200, lambda c, _: c.get("/api/health")),
)


def measure(stack: Stack) -> dict[str, Any]:
    """Count REST requests and commands for one warm call of each operation."""
    rows: dict[str, Any] = {}
    with stack.client() as client:
        for op in OPS:
            op.call(client, create_task(client))  # warm the function process; not counted
            task_id = create_task(client)  # a fresh queued task, made before the reset
            upstash_stats(stack.env, reset=True)
            resp = op.call(client, task_id)
            stats = upstash_stats(stack.env)
            rows[op.name] = {
                "status": resp.status_code,
                "expected_status": op.expect,
                "requests": stats["requests"],
                "commands": stats["commands"],
                "by_command": stats["byCommand"],
                "target_requests": op.target,
            }
    return rows


def report(rows: dict[str, Any]) -> list[str]:
    lines = ["Upstash REST requests per API call (counted at the stand-in; an EVAL counts as 1 command here)"]
    for name, row in rows.items():
        cmds = ", ".join(f"{k} {v}" for k, v in sorted(row["by_command"].items()))
        line = (f"  {name} redis round trips: {row['requests']} request(s), {row['commands']} command(s) [{cmds}]"
                f" (target <= {row['target_requests']}) {verdict(row['requests'] <= row['target_requests'])}")
        if row["status"] != row["expected_status"]:
            line += f" ERROR: HTTP {row['status']}, expected {row['expected_status']}"
        lines.append(line)
    return lines
