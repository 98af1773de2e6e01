"""text_to_video end to end: API -> GPU queue -> a real worker (.venv-t2v: torch + diffusers) running a
tiny random WanPipeline on CPU -> MP4 + poster in Storage -> signed URL -> decoded with PyAV.

One local cloud and router for the module; each test says which workers it needs (``studio.use``)
and the others are stopped, since any worker that runs text_to_video takes the GPU queue's tasks.
The tests run in order on one xdist worker (they share the tiny model and the warm worker; each
cold text-to-video worker spends seconds importing torch and diffusers, so there are only two).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from devstack.stack import LocalCloud, serve_router, start_local_cloud
from tests.api.conftest import Account, sign_up
from tests.hf_worker.t2v.t2v_env import (
    WorkerProc,
    build_tiny_pipeline,
    require_t2v_python,
    start_worker,
    wait_task,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("text_to_video")]

# The "gpu" worker loads the tiny model as a Hub repo id from a local Hugging Face cache, offline
# (HF_HUB_OFFLINE=1): the path a production worker takes once the weights are downloaded.
HUB_ID = "sorastudio/tiny-wan"
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
RETRY_SECONDS = 2.0  # T2V_LOAD_RETRY_SECONDS of the workers here
TINY = {"prompt": "a red ball", "resolution": "tiny", "numFrames": 9, "steps": 2, "fps": 8}


class Studio:
    def __init__(self, cloud: LocalCloud, url: str, tiny: Path, logs: Path) -> None:
        self.cloud, self.url, self.tiny, self.logs = cloud, url, tiny, logs
        self.missing = logs / "not-there-yet"  # the "broken" worker's model: absent until a test adds it
        self.workers: dict[str, WorkerProc] = {}

    def _start(self, name: str) -> WorkerProc:
        if name == "cpu":  # the main venv (3.12, no torch): what the CPU Docker image runs
            return start_worker(self.cloud, name, self.logs, WORKER_TASK_TYPES="video_analysis")
        # text_to_video only: video_analysis needs PyAV 19 (Python 3.12+), .venv-t2v is 3.11 with PyAV 18
        model = HUB_ID if name == "gpu" else str(self.missing)
        return start_worker(self.cloud, name, self.logs, python=require_t2v_python(), WORKER_TASK_TYPES="text_to_video",
                            T2V_MODEL_ID=model, T2V_LOAD_RETRY_SECONDS=str(RETRY_SECONDS))

    def use(self, *names: str) -> dict[str, WorkerProc]:
        """Exactly these workers running ("gpu": the tiny model by Hub id from the cache, "broken": a
        local model folder that doesn't exist yet, "cpu": the main venv, no torch)."""
        for name in [n for n in self.workers if n not in names]:
            self.workers.pop(name).stop()
        for name in names:
            if name not in self.workers or self.workers[name].proc.poll() is not None:
                self.workers[name] = self._start(name)
        return self.workers

    def create(self, http: httpx.Client, who: Account, payload: dict[str, Any]) -> str:
        r = http.post("/api/task", json={"type": "text_to_video", "payload": payload}, headers=who.auth)
        assert r.status_code == 201, r.text
        return str(r.json()["taskId"])

    def download(self, result: dict[str, Any], key: str) -> bytes:
        """The object behind ``result[key]``, by the signed URL the status read made for this user."""
        url = (result.get("urls") or {}).get(result[key])
        assert url is not None and result["urlsExpireAt"] > time.time(), result.get("urls")
        r = httpx.get(url)  # no header: the signature is the permission
        assert r.status_code == 200, r.text
        return r.content


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    require_t2v_python()
    base = tmp_path_factory.mktemp("t2v")
    built: list[BaseException] = []

    def build() -> None:
        try:
            build_tiny_pipeline(base / "tiny-wan")
        except BaseException as exc:  # re-raised below, in the test's thread
            built.append(exc)

    builder = threading.Thread(target=build)
    builder.start()  # the builder (torch imports, ~5 s) overlaps with starting the cloud
    cloud = start_local_cloud(base / "cloud", persist=False)
    try:
        router = serve_router(cloud.env)
        builder.join()
        if built:
            raise built[0]
        s = Studio(cloud, router.url, base / "tiny-wan", base)
        # HF_HOME of every worker here is base/hf-home (t2v_env.start_worker): the hub cache layout
        repo = base / "hf-home" / "hub" / f"models--{HUB_ID.replace('/', '--')}"
        shutil.copytree(s.tiny, repo / "snapshots" / HUB_COMMIT)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(HUB_COMMIT)
        yield s
        s.use()
        router.close()
    finally:
        cloud.stop()


@pytest.fixture(scope="module")
def http(studio: Studio) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=studio.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def who(http: httpx.Client) -> Account:
    return sign_up(http)


@pytest.mark.parametrize(("change", "field"), [
    ({"numFrames": 10}, "payload.numFrames"),
    ({"resolution": "8k"}, "payload.resolution"),
    ({"steps": 0}, "payload.steps"),
    ({"prompt": ""}, "payload.prompt"),
    ({"prompt": "x" * 2001}, "payload.prompt"),
])
def test_invalid_payloads_are_400_field_errors(http: httpx.Client, who: Account, change: dict[str, Any],
                                               field: str) -> None:
    r = http.post("/api/task", json={"type": "text_to_video", "payload": {**TINY, **change}}, headers=who.auth)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in [f["field"] for f in error["fields"]], error


def test_waits_for_a_gpu_worker_then_runs(studio: Studio, http: httpx.Client, who: Account) -> None:
    cpu = studio.use("cpu")["cpu"]
    # No text_to_video worker polled lately (any earlier one is stopped): clear its 120 s
    # advertisement instead of waiting it out. This test runs first so its GPU worker stays warm.
    from upstash_redis import Redis

    Redis(url=studio.cloud.env["UPSTASH_REDIS_REST_URL"], token=studio.cloud.env["UPSTASH_REDIS_REST_TOKEN"],
          allow_telemetry=False).delete("workers:alive:text_to_video")
    task_id = studio.create(http, who, TINY)
    created = time.time()
    while cpu.health().json()["lastPollAt"] < created + 0.5:  # the CPU worker polled since, and left it
        time.sleep(0.05)
    task = http.get(f"/api/status?taskId={task_id}", headers=who.auth).json()["task"]
    assert task["status"] == "queued" and task["stage"] == "waiting for a GPU worker", task
    assert not cpu.events("claim", taskId=task_id)

    gpu = studio.use("cpu", "gpu")["gpu"]
    task = wait_task(http, who.auth, task_id)
    assert task["status"] == "done", task["error"]
    assert gpu.events("done", taskId=task_id) and not cpu.events("claim", taskId=task_id)


def test_generates_an_mp4_and_poster(studio: Studio, http: httpx.Client, who: Account) -> None:
    studio.use("gpu")
    task = wait_task(http, who.auth, studio.create(http, who, {**TINY, "seed": 7}))
    assert task["status"] == "done", task["error"]
    result = task["result"]
    prefix = f"{who.id}/{task['id']}/"
    assert result["video"] == prefix + "video.mp4" and result["poster"] == prefix + "poster.webp"
    assert result["bucket"] == "results"
    assert (result["width"], result["height"], result["frameCount"], result["fps"]) == (64, 64, 9, 8)
    assert result["duration"] == pytest.approx(9 / 8) and result["seed"] == 7 and result["prompt"] == "a red ball"
    assert result["model"]["pipeline"] == "WanPipeline" and result["model"]["id"] == HUB_ID
    assert result["model"]["revision"] == HUB_COMMIT and result["model"]["savedWith"]
    assert result["model"]["device"] == "cpu" and result["model"]["dtype"] == "float32"
    assert set(result["timings"]) == {"load", "generate", "encode", "upload"}

    data = studio.download(result, "video")
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart: playable before fully downloaded
    mp4 = studio.logs / "got.mp4"
    mp4.write_bytes(data)
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 9 and frames[0].shape == (64, 64, 3)
    poster = studio.download(result, "poster")
    assert poster[:4] == b"RIFF" and poster[8:12] == b"WEBP"

    # the same seed again: the warm pipeline (no reload) reproduces the clip
    again = wait_task(http, who.auth, studio.create(http, who, {**TINY, "seed": 7}))
    assert again["status"] == "done" and again["result"]["model"]["warm"] is True
    assert studio.workers["gpu"].events("claim", taskId=again["id"])


def test_cancel_mid_generation(studio: Studio, http: httpx.Client, who: Account) -> None:
    studio.use("gpu")
    task_id = studio.create(http, who, {**TINY, "steps": 100})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = http.get(f"/api/status?taskId={task_id}", headers=who.auth).json()["task"]
        if task["stage"].startswith("denoising ") and task["stage"] != "denoising 0/100":
            break
        assert task["status"] in ("queued", "running"), task
        time.sleep(0.02)
    else:
        raise AssertionError("never saw a denoising step")
    # per-step progress reached the API: "denoising i/n" with i >= 1 while running
    assert task["status"] == "running" and int(task["stage"].split()[1].split("/")[0]) >= 1
    r = http.post(f"/api/cancel?taskId={task_id}", headers=who.auth)
    assert r.status_code == 200, r.text
    task = wait_task(http, who.auth, task_id)
    assert task["status"] == "canceled" and task["result"] is None
    step = int(task["_seen"][-2][1].split()[1].split("/")[0]) if len(task["_seen"]) > 1 else 0
    assert step < 100  # stopped between steps, long before the end
    studio.workers["gpu"].wait_event("canceled", taskId=task_id)


def test_unloadable_model_fails_the_task_not_the_worker(studio: Studio, http: httpx.Client, who: Account) -> None:
    broken = studio.use("broken")["broken"]
    first = wait_task(http, who.auth, studio.create(http, who, TINY))
    assert first["status"] == "failed" and first["error"]["code"] == "model_unavailable", first
    assert first["attempts"] == 1 and first["result"] is None
    assert str(studio.missing) in first["error"]["message"]
    failed_at = time.monotonic()
    # a burst fails fast from the remembered failure, and the worker keeps serving
    second = wait_task(http, who.auth, studio.create(http, who, TINY))
    assert second["error"] == first["error"]
    assert broken.health().status_code == 200 and broken.proc.poll() is None

    # the operator puts the model in place; after the retry window the next task loads it
    shutil.copytree(studio.tiny, studio.missing)
    time.sleep(max(0.0, RETRY_SECONDS - (time.monotonic() - failed_at)))
    third = wait_task(http, who.auth, studio.create(http, who, TINY))
    assert third["status"] == "done", third["error"]
    assert broken.events("done", taskId=third["id"]) and broken.proc.poll() is None
    assert third["result"]["model"]["id"] == str(studio.missing) and third["result"]["model"]["revision"] is None
    shutil.rmtree(studio.missing)
