"""Pick scene-middle frames during the single scan and write thumbnails and the poster."""

from __future__ import annotations

import cv2
import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from .models import Options

# Candidates kept per scene. The middle of a scene is unknown until its end, so we keep frames at a
# stride that doubles whenever this many are held: memory stays bounded, the chosen frame is within
# ~len/CAP of the true middle, and only ~CAP + CAP/2*log2(len/CAP) frames per scene get converted.
CAP = 16


def frame_size(width: int, height: int, sar: float, rotation: int, max_width: int) -> tuple[int, int]:
    """Stored (pre-rotation) size whose *displayed* width is at most ``max_width``, even numbers."""
    disp_w, disp_h = width * sar, float(height)
    if rotation in (90, 270):
        disp_w, disp_h = disp_h, disp_w
    scale = min(1.0, max_width / disp_w)
    out_w, out_h = max(2, round(disp_w * scale / 2) * 2), max(2, round(disp_h * scale / 2) * 2)
    return (out_h, out_w) if rotation in (90, 270) else (out_w, out_h)


def upright(img: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a stored BGR image clockwise by ``rotation`` degrees for display."""
    return np.ascontiguousarray(np.rot90(img, k=-(rotation // 90))) if rotation else img


class MiddlePicker:
    """Keeps a bounded, evenly spaced set of small BGR frames of the current scene."""

    def __init__(self, start: int, size: tuple[int, int], reformatter: VideoReformatter) -> None:
        self.start, self.size, self.stride = start, size, 1
        self.reformatter = reformatter
        self.frames: list[tuple[int, np.ndarray]] = []

    def offer(self, index: int, frame: VideoFrame) -> None:
        if (index - self.start) % self.stride:
            return
        self.frames.append((index, small_yuv(self.reformatter, frame, self.size)))
        if len(self.frames) > CAP:
            self.frames = self.frames[::2]
            self.stride *= 2

    def pick(self, end: int) -> tuple[int, np.ndarray]:
        """The kept frame nearest the middle of ``start..end`` (inclusive), as BGR."""
        middle = (self.start + end) // 2
        index, yuv = min(self.frames, key=lambda item: (abs(item[0] - middle), item[0]))
        return index, yuv_to_bgr(yuv)


def small_yuv(reformatter: VideoReformatter, frame: VideoFrame, size: tuple[int, int]) -> np.ndarray:
    """Downscale to ``size`` as planar YUV 4:2:0 (h*3/2 x w bytes).

    YUV rather than BGR: most candidates are thrown away, so the colour conversion is paid only for
    the picked one. threads=1: swscale's automatic slice threads cost ~3x the CPU on small outputs.
    """
    w, h = size
    return reformatter.reformat(
        frame, width=w, height=h, format="yuv420p", interpolation="AREA", threads=1
    ).to_ndarray()


def yuv_to_bgr(yuv: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)


def encode_image(img: np.ndarray, options: Options) -> bytes:
    """BGR -> WebP or JPEG bytes."""
    fmt, quality = options.image_format, options.image_quality
    params = [cv2.IMWRITE_WEBP_QUALITY, quality] if fmt == "webp" else [cv2.IMWRITE_JPEG_QUALITY, quality]
    ok, buf = cv2.imencode(f".{fmt}", img, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {img.shape} image as {fmt}")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise RuntimeError("OpenCV could not decode an image it encoded")
    return np.asarray(img)
