"""Frames (the pipeline's ``output_type="np"``) to a web-ready MP4 and a poster image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def to_uint8(frames: Any) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """(frames, H, W, 3) uint8 from the pipeline's float [0, 1] array (first video of the batch)."""
    arr = np.asarray(frames)
    if arr.ndim == 5:  # (batch, frames, H, W, C)
        arr = arr[0]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected (frames, H, W, 3) frames, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(arr)


def write_mp4(frames: np.ndarray[Any, np.dtype[np.uint8]], path: Path, fps: int, crf: int = 18) -> Path:
    """H.264 (libx264), yuv420p, moov atom first (``+faststart``): plays in every browser and can
    start before it has fully downloaded. ``crf`` 18 is visually lossless for generated clips."""
    import av

    height, width = frames.shape[1:3]
    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"  # 4:2:0: what browsers and phones decode in hardware
        stream.options = {"crf": str(crf), "preset": "medium"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):  # flush the encoder's delayed frames
            container.mux(packet)
    return path


def write_poster(frames: np.ndarray[Any, np.dtype[np.uint8]], path: Path, quality: int = 85) -> Path:
    """The middle frame as WebP (the first frame of a generated clip is often the least settled)."""
    import cv2

    frame = frames[len(frames) // 2]
    if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality]):
        raise OSError(f"could not write {path}")
    return path
