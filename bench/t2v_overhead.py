"""text_to_video: what the worker adds to a task beyond the pipeline call itself (CPU, tiny model).

    .venv/bin/python -m bench.t2v_overhead [--trials 7] [--steps 10] [--heartbeat 5]

A tiny random WanPipeline (the default model's class, built offline) serves both sides:
- bare: ``pipe(...)`` in a .venv-t2v process that keeps the pipeline warm, timed around the call;
- task: ``POST /api/task`` through the router until the worker's ``done`` event (claim after the
  API's wake, load (warm), generation with per-step progress, MP4 + poster encode, two uploads,
  the finishing write), with the worker running under .venv-t2v and production timings.
Trials alternate bare/task so background load hits both alike; medians are reported. The ratio
(task - bare) / bare is large here only because a tiny pipeline call takes ~0.1-0.5 s; the fixed
costs are what carry over. Also timed: encoding a Wan-sized clip (81 frames at 832x480) with
synthetic frames, the part of the overhead that grows with the clip.

The default model (Wan2.1 1.3B) on a GPU was NOT measured: no GPU was available for this work.
Prints a table and writes ``bench/results/t2v_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.harness import PASSWORD, median, new_email
from devstack.stack import serve_router, start_local_cloud
from tests.hf_worker.t2v.t2v_env import build_tiny_pipeline, require_t2v_python, start_worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hf-worker"))  # studio_worker (as pytest.ini does)
RESULTS = Path(__file__).resolve().parent / "results" / "t2v_overhead.json"
PROMPT = "a red ball"

# Runs under .venv-t2v: load once, then one timed pipe() call per line on stdin (the line is the seed).
BARE = r"""
import json, sys, time, torch
from diffusers import DiffusionPipeline
pipe = DiffusionPipeline.from_pretrained(sys.argv[1], dtype=torch.float32, local_files_only=True)
pipe.set_progress_bar_config(disable=True)
steps = int(sys.argv[2])
def call(seed):
    with torch.inference_mode():
        return pipe(prompt=sys.argv[3], height=64, width=64, num_frames=9, num_inference_steps=steps,
                    guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(seed), output_type="np").frames
call(0)  # warm-up, as the worker's pipeline is warm after its first task
print("ready", flush=True)
for line in sys.stdin:
    t = time.perf_counter(); call(int(line)); print(json.dumps(time.perf_counter() - t), flush=True)
"""


def encode_480p(tmp: Path, frames: int = 81) -> dict[str, float]:
    """Seconds to encode + write the poster of a Wan-sized clip (moving gradients, not noise)."""
    from studio_worker.generation.encode import write_mp4, write_poster

    y, x = np.mgrid[0:480, 0:832].astype(np.float32)
    clip = np.stack([np.stack([(x + 8 * i) % 256, (y + 4 * i) % 256, (x + y + 6 * i) % 256], axis=-1)
                     for i in range(frames)]).astype(np.uint8)
    t = time.perf_counter()
    write_mp4(clip, tmp / "wan.mp4", fps=16)
    mp4 = time.perf_counter() - t
    t = time.perf_counter()
    write_poster(clip, tmp / "wan.webp")
    return {"mp4_s": mp4, "poster_s": time.perf_counter() - t, "mp4_bytes": (tmp / "wan.mp4").stat().st_size}


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    python = require_t2v_python()
    tiny = build_tiny_pipeline(tmp / "tiny-wan")
    bare = subprocess.Popen([str(python), "-c", BARE, str(tiny), str(args.steps), PROMPT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ,
                            "HF_HUB_OFFLINE": "1"})
    cloud = start_local_cloud(tmp / "cloud", persist=False)
    try:
        worker = start_worker(cloud, "bench-t2v", tmp, python=python, WORKER_TASK_TYPES="text_to_video",
                              T2V_MODEL_ID=str(tiny), HEARTBEAT_SECONDS=str(args.heartbeat), LEASE_SECONDS="30",
                              POLL_MIN_SECONDS="1", POLL_MAX_SECONDS="30", REAP_SECONDS="30")
        cloud.env["WORKER_WAKE_URLS"] = worker.url  # the API wakes it, as in production
        router = serve_router(cloud.env)
        try:
            return measure(args, bare, worker, router.url)
        finally:
            worker.stop()
            router.close()
    finally:
        cloud.stop()
        bare.kill()
        bare.wait()


def measure(args: argparse.Namespace, bare: subprocess.Popen[str], worker: Any, url: str) -> dict[str, Any]:
    assert bare.stdin is not None and bare.stdout is not None
    if bare.stdout.readline().strip() != "ready":
        raise RuntimeError("the bare pipeline process failed to start")
    with httpx.Client(base_url=url, timeout=60) as http:
        email = new_email()
        http.post("/api/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        login = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        http.headers["Authorization"] = f"Bearer {login.json()['session']['accessToken']}"
        payload = {"prompt": PROMPT, "resolution": "tiny", "numFrames": 9, "steps": args.steps, "fps": 8}

        def task(seed: int) -> dict[str, Any]:
            submitted = time.time()
            r = http.post("/api/task", json={"type": "text_to_video", "payload": {**payload, "seed": seed}})
            r.raise_for_status()
            task_id = r.json()["taskId"]
            done = worker.wait_event("done", timeout=120, taskId=task_id)
            claim = worker.wait_event("claim", timeout=1, taskId=task_id)
            result = http.get(f"/api/status?taskId={task_id}").json()["task"]["result"]
            return {"total_s": done["ts"] - submitted, "claim_s": claim["ts"] - submitted, **{
                f"{k}_s": v for k, v in result["timings"].items()}}

        task(0)  # the worker's first task loads the pipeline: not an overhead of every task
        bare_s: list[float] = []
        tasks: list[dict[str, Any]] = []
        for i in range(1, args.trials + 1):
            bare.stdin.write(f"{i}\n")
            bare.stdin.flush()
            bare_s.append(float(bare.stdout.readline()))
            tasks.append(task(i))
    return {"bare_s": bare_s, "tasks": tasks}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    tasks = raw["tasks"]
    med = {k: median([t[k] for t in tasks]) for k in tasks[0]}
    bare = median(raw["bare_s"])
    overhead = med["total_s"] - bare
    return {"bare_pipe_s": bare, "task_median": med, "overhead_s": overhead, "overhead_ratio": overhead / bare}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.t2v_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="denoising steps per call (tiny model)")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="HEARTBEAT_SECONDS (progress writes)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sorastudio-t2v-bench-") as tmp:
        raw = run(args, Path(tmp))
        wan = encode_480p(Path(tmp))
    summary = summarize(raw)
    m = summary["task_median"]
    lines = [
        f"text_to_video overhead, tiny WanPipeline on CPU (64x64, 9 frames, {args.steps} steps), "
        f"median of {args.trials}:",
        f"  bare pipe() call              {summary['bare_pipe_s'] * 1000:8.0f} ms",
        f"  task submit -> done           {m['total_s'] * 1000:8.0f} ms",
        f"    claim (after the wake)      {m['claim_s'] * 1000:8.0f} ms",
        f"    load (warm pipeline)        {m['load_s'] * 1000:8.0f} ms",
        f"    generate (pipe + callback)  {m['generate_s'] * 1000:8.0f} ms",
        f"    encode (MP4 + poster)       {m['encode_s'] * 1000:8.0f} ms",
        f"    upload (2 objects)          {m['upload_s'] * 1000:8.0f} ms",
        f"  overhead                      {summary['overhead_s'] * 1000:8.0f} ms "
        f"= {summary['overhead_ratio']:.2f}x the bare call",
        f"  encoding a Wan-sized clip (81 frames 832x480, CPU): MP4 {wan['mp4_s']:.2f} s, poster "
        f"{wan['poster_s'] * 1000:.0f} ms, {wan['mp4_bytes'] // 1024} KiB",
        "  NOT measured: the default model (Wan2.1 1.3B) on a GPU; no GPU was available for this work.",
    ]
    print("\n".join(lines))
    out = {"meta": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "args": vars(args),
                    "elapsed_s": time.perf_counter() - began,
                    "note": "tiny random pipeline on CPU; the default model on a GPU was not measured"},
           "summary": summary, "wan_sized_encode": wan, "raw": raw}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
