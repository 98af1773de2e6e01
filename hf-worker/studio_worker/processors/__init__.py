"""Task type -> processor. A processor takes a :class:`studio_worker.worker.Job`, returns the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio_worker.worker import Job


def _video_analysis(job: Job) -> dict[str, Any]:
    # Imported on first use: PyAV/OpenCV load slowly and only this processor needs them.
    from studio_worker.processors.video_analysis import process

    return process(job)


def _text_to_video(job: Job) -> dict[str, Any]:
    # Imported on first use: torch/diffusers exist only in the GPU image (requirements-gpu.txt), and
    # a worker claims text_to_video only when WORKER_TASK_TYPES lists it.
    from studio_worker.processors.text_to_video import process

    return process(job)


BUILTIN = {"video_analysis": _video_analysis, "text_to_video": _text_to_video}
