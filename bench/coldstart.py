"""Cold starts: a fresh function process until the complete answer to a realistic first request.

Each function is served by ``devstack.funchost`` (one process per function, like Vercel's runtime)
from a copy of the project without ``__pycache__`` (Vercel's bundle excludes it, so project code
is compiled on every cold start there too). The baseline is a bare ``BaseHTTPRequestHandler``
served the same way. Trials are interleaved across functions so noise hits all of them alike.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from bench.harness import PASSWORD, TASK_BODY, Stack, create_task, median, new_email, verdict
from devstack.stack import ROOT

TARGET_RATIO = 2.5
TARGETED = ("task", "status", "tasks", "cancel")
BASELINE = "baseline"

# (method, path, body, headers) for one request; built per trial so every trial gets fresh input.
RequestSpec = tuple[str, str, bytes | None, dict[str, str]]


@dataclass(frozen=True)
class Case:
    name: str
    file: str  # relative to the bundle root
    expect: int  # the status a correct first request gets
    request: Callable[[], RequestSpec]


def make_bundle(dest: Path) -> Path:
    """Copy what a function bundle holds (``api/``, ``sorastudio/``) plus the baseline, no bytecode."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("api", "sorastudio"):
        shutil.copytree(ROOT / part, dest / part, ignore=ignore)
    shutil.copy2(Path(__file__).with_name("baseline_handler.py"), dest / "bench_baseline.py")
    return dest


def function_env(stack: Stack) -> dict[str, str]:
    """The environment the router gives a function process."""
    return {**os.environ, **stack.env, "PYTHONDONTWRITEBYTECODE": "1"}


def cases(stack: Stack, client: httpx.Client) -> list[Case]:
    """The baseline and every function, each with a realistic first request."""
    auth = {"Authorization": f"Bearer {stack.token}"}
    as_json = {"Content-Type": "application/json"}
    status_id = create_task(client)

    def login() -> RequestSpec:
        body = json.dumps({"email": stack.email, "password": PASSWORD}).encode()
        return "POST", "/api/auth/login", body, as_json

    def register() -> RequestSpec:
        body = json.dumps({"email": new_email(), "password": PASSWORD}).encode()
        return "POST", "/api/auth/register", body, as_json

    def cancel() -> RequestSpec:
        return "POST", f"/api/cancel?taskId={create_task(client)}", None, auth

    return [
        Case(BASELINE, "bench_baseline.py", 200, lambda: ("GET", "/", None, {})),
        Case("health", "api/health.py", 200, lambda: ("GET", "/api/health", None, {})),
        Case("task", "api/task.py", 201,
             lambda: ("POST", "/api/task", json.dumps(TASK_BODY).encode(), {**auth, **as_json})),
        Case("status", "api/status.py", 200, lambda: ("GET", f"/api/status?taskId={status_id}", None, auth)),
        Case("tasks", "api/tasks.py", 200, lambda: ("GET", "/api/tasks?limit=20", None, auth)),
        Case("cancel", "api/cancel.py", 200, cancel),
        Case("auth/login", "api/auth/login.py", 200, login),
        Case("auth/register", "api/auth/register.py", 201, register),
    ]


def cold_request(
    root: Path, file: str, env: dict[str, str], spec: RequestSpec,
    python_args: tuple[str, ...] = (), stderr: IO[str] | None = None,
) -> tuple[float, int, float]:
    """Spawn a function process and time it until the full first response.

    Returns (wall seconds, HTTP status, CPU seconds the process used). CPU time is far less
    sensitive than wall time to other load on a shared machine, so it is reported beside it.
    """
    method, path, body, headers = spec
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *python_args, "-m", "devstack.funchost", str(root), file],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=str(ROOT))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{file} exited before listening")
        conn = http.client.HTTPConnection("127.0.0.1", int(json.loads(line)["port"]), timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            elapsed = time.perf_counter() - started
        finally:
            conn.close()
    finally:
        cpu = _stop(proc)
    return elapsed, resp.status, cpu


def _stop(proc: subprocess.Popen[str], timeout: float = 10.0) -> float:
    """Terminate and reap ``proc`` (SIGKILL after ``timeout``); return its user+system CPU seconds."""
    proc.terminate()
    deadline = time.monotonic() + timeout
    while True:
        pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(wait_status)
            if proc.stdout is not None:
                proc.stdout.close()
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.005)


def measure(stack: Stack, bundle: Path, trials: int) -> dict[str, Any]:
    """Median cold start per function over ``trials`` interleaved rounds (after one warm-up round)."""
    env = function_env(stack)
    samples: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[int]] = defaultdict(list)
    with stack.client() as client:
        all_cases = cases(stack, client)
        for round_no in range(trials + 1):
            for case in all_cases:
                seconds, status, cpu_s = cold_request(bundle, case.file, env, case.request())
                if status != case.expect:
                    errors[case.name].append(status)
                elif round_no > 0:  # round 0 warms the OS caches and is not counted
                    samples[case.name].append(seconds)
                    cpu[case.name].append(cpu_s)
    base = median(samples[BASELINE])
    base_cpu = median(cpu[BASELINE])
    rows = {}
    for case in all_cases:
        med = median(samples[case.name])
        rows[case.name] = {
            "file": case.file,
            "median_s": med,
            "min_s": min(samples[case.name], default=float("nan")),
            "samples_s": samples[case.name],
            "ratio": med / base,
            "cpu_median_s": median(cpu[case.name]),
            "cpu_ratio": median(cpu[case.name]) / base_cpu,
            "target_ratio": TARGET_RATIO if case.name in TARGETED else None,
            "bad_statuses": errors.get(case.name, []),
        }
    return {"trials": trials, "baseline_s": base, "baseline_cpu_s": base_cpu, "functions": rows}


def report(result: dict[str, Any]) -> list[str]:
    """Table rows for stdout; misses are marked MISS."""
    base = result["baseline_s"]
    lines = [f"cold start (spawn -> full first response, median of {result['trials']}; baseline = bare "
             f"BaseHTTPRequestHandler via funchost: {base:.3f} s wall, {result['baseline_cpu_s']:.3f} s cpu)"]
    for name, row in result["functions"].items():
        if name == BASELINE:
            continue
        line = f"  {name} cold start: {row['median_s']:.3f} s vs baseline {base:.3f} s = {row['ratio']:.2f}x"
        if row["target_ratio"] is not None:
            line += f" (target <= {row['target_ratio']}x) {verdict(row['ratio'] <= row['target_ratio'])}"
        line += f"  [cpu {row['cpu_median_s']:.3f} s = {row['cpu_ratio']:.2f}x]"
        if row["bad_statuses"]:
            line += f" ERROR: unexpected statuses {row['bad_statuses']}"
        lines.append(line)
    return lines


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)$")


def _self_times(importtime_log: str) -> tuple[float, dict[str, float]]:
    """(total ms, ms per top-level package) from ``-X importtime`` output; stdlib summed as ``(stdlib)``."""
    groups: dict[str, float] = defaultdict(float)
    for raw in importtime_log.splitlines():
        match = _IMPORT_LINE.match(raw)
        if match:
            top = match.group(4).split(".")[0]
            groups["(stdlib)" if top in sys.stdlib_module_names else top] += int(match.group(1)) / 1000
    return sum(groups.values()), groups


def import_breakdown(stack: Stack, bundle: Path, runs: int = 3) -> dict[str, Any]:
    """Every import a cold ``task`` function runs until its first response, grouped by package.

    Runs the real cold request under ``python -X importtime`` (so lazy imports on the hot path,
    such as httpcore when the first Upstash client is built, count too), beside the baseline's.
    Medians over ``runs`` runs, in ms of module execution.
    """
    with stack.client() as client:
        case = {c.name: c for c in cases(stack, client)}
    env = function_env(stack)
    totals: dict[str, list[float]] = defaultdict(list)
    per_run: list[dict[str, float]] = []
    for _ in range(runs):
        for name in (BASELINE, "task"):
            with tempfile.TemporaryFile("w+") as log:
                _, status, _ = cold_request(bundle, case[name].file, env, case[name].request(),
                                         python_args=("-X", "importtime"), stderr=log)
                log.seek(0)
                total, groups = _self_times(log.read())
            if status != case[name].expect:
                raise RuntimeError(f"{name} answered {status} under -X importtime")
            totals[name].append(total)
            if name == "task":
                per_run.append(groups)
    names = {n for g in per_run for n in g}
    packages = {n: median([g.get(n, 0.0) for g in per_run]) for n in names}
    return {
        "function": "task",
        "runs": runs,
        "total_ms": median(totals["task"]),
        "baseline_total_ms": median(totals[BASELINE]),
        "self_ms_by_package": dict(sorted(packages.items(), key=lambda kv: -kv[1])),
    }


def report_imports(result: dict[str, Any], top: int = 10) -> list[str]:
    total = result["total_ms"]
    lines = [f"imports until the first response of a cold {result['function']} function (python -X importtime, "
             f"median of {result['runs']}): {total:.0f} ms vs baseline {result['baseline_total_ms']:.0f} ms; "
             "self time by package:"]
    for name, ms in list(result["self_ms_by_package"].items())[:top]:
        lines.append(f"  {name:<22} {ms:7.1f} ms  {ms / total:6.1%}")
    return lines
