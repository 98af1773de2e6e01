"""text_to_video pieces that run in the main venv (no torch): MP4/poster encoding and the CPU image's
answer to a text_to_video task. The pipeline itself is exercised end to end in test_text_to_video_e2e."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest
from studio_worker.config import WorkerSettings
from studio_worker.errors import PermanentError
from studio_worker.generation import pipeline
from studio_worker.generation.encode import to_uint8, write_mp4, write_poster


def test_frames_become_a_faststart_h264_mp4_and_a_webp_poster(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = to_uint8(rng.random((1, 9, 48, 80, 3), dtype=np.float32))  # the pipeline's (batch, f, h, w, c)
    assert frames.shape == (9, 48, 80, 3) and frames.dtype == np.uint8
    mp4 = write_mp4(frames, tmp_path / "video.mp4", fps=8)
    data = mp4.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert stream.average_rate == 8
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 9 and decoded[0].shape == (48, 80, 3)
    poster = write_poster(frames, tmp_path / "poster.webp").read_bytes()
    assert poster[:4] == b"RIFF" and poster[8:12] == b"WEBP"


def test_out_of_range_values_are_clipped() -> None:
    frames = to_uint8(np.array([[[[-0.5, 0.5, 1.5]]]], dtype=np.float32))
    assert frames.tolist() == [[[[0, 128, 255]]]]
    with pytest.raises(ValueError, match="frames"):
        to_uint8(np.zeros((4, 4, 3)))


def test_dtype_choice_on_cpu_needs_no_gpu() -> None:
    assert pipeline.pick_dtype("auto", "cpu") == "float32"
    assert pipeline.pick_dtype("float16", "cuda") == "float16"
    assert pipeline.pick_device("cpu") == "cpu"


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="this venv has torch")
def test_a_worker_without_torch_fails_the_task_with_model_unavailable() -> None:
    with pytest.raises(PermanentError) as info:
        pipeline.get_pipeline(WorkerSettings())
    assert info.value.code == "model_unavailable" and "torch" in info.value.message
