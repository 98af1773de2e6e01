"""``video_analysis``: fetch the video safely, analyse it with PyAV, put the images in Storage.

Stages and their share of the progress bar: downloading 0-20, analysis (probing, scanning scenes
n%, thumbnails, detecting faces) 20-90, uploading 90-99. The result references images by their
object path in the ``results`` bucket (``<userId>/<taskId>/…``); the API signs them when read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sorastudio.models import VideoAnalysisPayload
from studio_worker.analysis import Limits, analyze
from studio_worker.errors import PermanentError
from studio_worker.fetch import fetch_to_file
from studio_worker.storage import RESULTS_BUCKET, ResultStore
from studio_worker.worker import Job


def _fetch(job: Job, payload: VideoAnalysisPayload, store: ResultStore) -> Path:
    job.progress(0, "downloading")
    if payload.storage_path:
        if not payload.storage_path.startswith(f"{job.task.owner}/"):
            raise PermanentError("upload_not_found", "The uploaded file does not belong to this account.")
        return store.download_upload(payload.storage_path, job.work_dir / "source")

    def on_bytes(got: int, total: int | None) -> None:
        mb = got / 1_000_000
        pct = int(20 * got / total) if total else min(19, int(mb))
        job.progress(pct, f"downloading {mb:.1f} MB" + (f" of {total / 1_000_000:.1f} MB" if total else ""))

    assert payload.video_url is not None
    fetched = fetch_to_file(
        payload.video_url, job.work_dir, allow_private=job.settings.allow_private_urls,
        max_bytes=job.worker.max_download_bytes, timeout_s=job.worker.time_limit(job.task.type),
        progress=on_bytes, should_stop=job.should_stop,
    )
    return fetched.path


def process(job: Job) -> dict[str, Any]:
    """Run one analysis; raises PermanentError/TransientError/Canceled as the worker expects."""
    payload = VideoAnalysisPayload.model_validate(job.task.payload)
    store = ResultStore(job.settings)
    source = _fetch(job, payload, store)
    job.check()
    out_dir = job.work_dir / "out"
    result = analyze(
        source, out_dir, limits=Limits(),
        progress=lambda pct, stage: job.progress(20 + int(pct * 0.7), stage),
        should_stop=job.should_stop,
    )
    source.unlink(missing_ok=True)  # free the disk before uploading

    prefix = f"{job.task.owner}/{job.task.id}"
    names = [s.thumbnail for s in result.scenes] + [result.poster]
    paths: dict[str, str] = {}
    for i, name in enumerate(names):
        job.check()
        job.progress(90 + int(9 * i / len(names)), f"uploading {i + 1}/{len(names)}")
        paths[name] = store.upload_result(out_dir / name, f"{prefix}/{name}")
    data = result.model_dump(mode="json", by_alias=True)
    for scene in data["scenes"]:
        scene["thumbnail"] = paths[scene["thumbnail"]]
    data["poster"] = paths[data["poster"]]
    data["bucket"] = RESULTS_BUCKET
    data["source"] = {"videoUrl": payload.video_url} if payload.video_url else {"storagePath": payload.storage_path}
    return data
