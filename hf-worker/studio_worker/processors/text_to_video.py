"""``text_to_video``: a prompt through a diffusers pipeline to an MP4 and a poster in Storage.

Stages and their share of the progress bar: loading model 0-5, denoising i/n 5-90 (one update per
step, the worker's heartbeat throttles the writes), decoding frames 90, encoding 92, uploading 95-99.
Cancel is checked between denoising steps through diffusers' interrupt flag. The result references
``video.mp4`` and ``poster.webp`` by object path in the ``results`` bucket; the API signs them.
"""

from __future__ import annotations

import time
from typing import Any

from sorastudio.models import TextToVideoPayload
from studio_worker.errors import Canceled, PermanentError
from studio_worker.generation.encode import to_uint8, write_mp4, write_poster
from studio_worker.generation.pipeline import LoadedPipeline, get_pipeline, release_memory, run_exclusive
from studio_worker.storage import RESULTS_BUCKET, ResultStore
from studio_worker.worker import Job


def _generate(job: Job, loaded: LoadedPipeline, payload: TextToVideoPayload) -> Any:
    """One pipeline call; returns the frames, or raises :class:`Canceled` if stopped mid-way."""
    import torch

    steps = payload.steps
    width, height = payload.size
    interrupted = False

    def on_step_end(pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        nonlocal interrupted
        done = i + 1
        job.progress(5 + 85 * done // steps, f"denoising {done}/{steps}")
        if job.should_stop():
            pipe._interrupt = True  # diffusers skips the remaining steps (it still decodes the latents)
            interrupted = True
        elif done >= steps:
            job.progress(90, "decoding frames")
        return tensors

    # A CPU generator draws the same noise on any device: a seed reproduces the clip anywhere.
    kwargs: dict[str, Any] = {
        "prompt": payload.prompt,
        "negative_prompt": payload.negative_prompt,
        "height": height,
        "width": width,
        "num_frames": payload.num_frames,
        "num_inference_steps": steps,
        "guidance_scale": payload.guidance_scale,
        "generator": torch.Generator(device="cpu").manual_seed(int(payload.seed or 0)),
        "output_type": "np",
        "callback_on_step_end": on_step_end,
    }
    if "frame_rate" in loaded.call_params:  # LTX-Video conditions on the frame rate
        kwargs["frame_rate"] = payload.fps
    kwargs = {k: v for k, v in kwargs.items() if k in loaded.call_params or not loaded.call_params}
    job.progress(5, f"denoising 0/{steps}")
    try:
        with torch.inference_mode():
            output = loaded.pipe(**kwargs)
    except torch.cuda.OutOfMemoryError as exc:  # the same clip on the same worker would fail again
        raise PermanentError("out_of_memory", "The GPU ran out of memory for this clip: try a lower resolution "
                             "or fewer frames (or T2V_CPU_OFFLOAD=true on the worker).") from exc
    except ValueError as exc:  # the pipeline's check_inputs: e.g. LTX-Video wants sizes in multiples of 32
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        raise PermanentError("unsupported_settings",
                             f"The model {loaded.model_id!r} can't make this clip: {detail}") from exc
    if interrupted:
        raise Canceled()
    return output.frames


def process(job: Job) -> dict[str, Any]:
    """Generate one clip. Raises PermanentError (model_unavailable, out_of_memory, unsupported_settings),
    TransientError (Storage) or Canceled, as the worker expects."""
    payload = TextToVideoPayload.model_validate(job.task.payload)
    timings: dict[str, float] = {}

    job.progress(0, "loading model")
    started = time.monotonic()
    loaded, warm = get_pipeline(job.worker)
    timings["load"] = time.monotonic() - started
    job.check()

    started = time.monotonic()
    try:
        raw = run_exclusive(job.should_stop, lambda: job.progress(5, "waiting for the model"),
                            lambda: _generate(job, loaded, payload))
        frames = to_uint8(raw)
        del raw
    finally:
        release_memory()  # activations of this call go back to the allocator, canceled or not
    timings["generate"] = time.monotonic() - started
    job.check()

    started = time.monotonic()
    job.progress(92, "encoding")
    out_dir = job.work_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    video = write_mp4(frames, out_dir / "video.mp4", fps=payload.fps)
    poster = write_poster(frames, out_dir / "poster.webp")
    count, height, width = (int(n) for n in frames.shape[:3])
    del frames
    timings["encode"] = time.monotonic() - started

    started = time.monotonic()
    store = ResultStore(job.settings)
    prefix = f"{job.task.owner}/{job.task.id}"
    job.check()
    job.progress(95, "uploading 1/2")
    video_path = store.upload_result(video, f"{prefix}/{video.name}")
    job.progress(97, "uploading 2/2")
    poster_path = store.upload_result(poster, f"{prefix}/{poster.name}")
    timings["upload"] = time.monotonic() - started

    return {
        "video": video_path,
        "poster": poster_path,
        "bucket": RESULTS_BUCKET,
        "width": width,
        "height": height,
        "fps": payload.fps,
        "frameCount": count,
        "duration": round(count / payload.fps, 3),
        "seed": payload.seed,
        "steps": payload.steps,
        "guidanceScale": payload.guidance_scale,
        "prompt": payload.prompt,
        "negativePrompt": payload.negative_prompt,
        "model": {**loaded.describe(), "warm": warm},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "sizes": {"video": video.stat().st_size, "poster": poster.stat().st_size},
    }
