"""Generate small real test videos with PyAV whose scene cuts are known exactly.

Reusable by any worker test: ``make_video`` returns a ``VideoSpec`` whose ``cuts`` are the frame
numbers where a new scene starts (frame 0 excluded). Each scene has its own colour *and* pattern plus
a moving box, so every cut is a visible content change and every scene has some motion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# name -> (RGB base colour, pattern). Neighbouring entries differ in luma as well as hue, so a cut
# between any two of them is a hard content change for a luma or an HSV detector alike.
STYLES: dict[str, tuple[tuple[int, int, int], str]] = {
    "red": ((200, 30, 30), "box"),
    "green": ((30, 170, 60), "stripes"),
    "blue": ((30, 50, 190), "checker"),
    "yellow": ((230, 220, 40), "box"),
    "dark": ((25, 25, 35), "stripes"),
    "white": ((235, 235, 235), "checker"),
    "teal": ((20, 140, 150), "gradient"),
    "purple": ((120, 40, 150), "box"),
    "orange": ((240, 140, 20), "gradient"),
    "noise": ((110, 110, 110), "noise"),
}
STYLE_CYCLE: tuple[str, ...] = tuple(STYLES)

SceneArg = tuple[int, str] | int


@dataclass(frozen=True)
class VideoSpec:
    """What was written: ``cuts`` are the first frame numbers of scenes 2..n."""

    path: Path
    width: int
    height: int
    fps: Fraction
    n_frames: int
    cuts: list[int]
    scene_lengths: list[int] = field(default_factory=list)
    audio: bool = False

    @property
    def duration(self) -> float:
        return float(self.n_frames / self.fps)


def _render(style: str, i: int, width: int, height: int, rng: np.random.Generator, fade: float) -> np.ndarray:
    """One RGB frame of ``style`` at in-scene index ``i``; ``fade`` in [0, 1] scales towards black."""
    base, pattern = STYLES[style]
    img = np.empty((height, width, 3), np.uint8)
    img[:] = base
    ys, xs = np.ogrid[:height, :width]
    if pattern == "stripes":
        mask = ((xs + 2 * i) // max(4, width // 16)) % 2 == 0
        img[np.broadcast_to(mask, (height, width))] = np.clip(np.array(base) + 40, 0, 255)
    elif pattern == "checker":
        cell = max(4, width // 10)
        mask = ((xs // cell) + (ys // cell)) % 2 == 0
        img[mask] = np.clip(np.array(base) - 50, 0, 255)
    elif pattern == "gradient":
        ramp = (xs * 80 // max(1, width)).astype(np.int16)
        img[:] = np.clip(np.array(base)[None, None, :] + ramp[..., None] - 40, 0, 255).astype(np.uint8)
    elif pattern == "noise":
        img[:] = rng.integers(60, 180, size=(height, width, 1), dtype=np.uint8)
    # A moving box: in-scene motion for the "motion energy" number and for codecs' inter prediction.
    bw, bh = max(4, width // 6), max(4, height // 4)
    x0 = int((width - bw) * (0.5 + 0.45 * math.sin(i / 6.0)))
    y0 = int((height - bh) * (0.5 + 0.4 * math.cos(i / 9.0)))
    img[y0 : y0 + bh, x0 : x0 + bw] = (255 - np.array(base)) // 2 + 60
    if fade < 1.0:
        img = (img.astype(np.float32) * fade).astype(np.uint8)
    return img


def make_video(
    path: Path,
    *,
    width: int = 320,
    height: int = 180,
    fps: float | Fraction | int = 25,
    scenes: Sequence[SceneArg] = ((30, "red"), (30, "green"), (30, "blue")),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: bool = False,
    audio_rate: int = 48000,
    audio_layout: str = "stereo",
    rotation: int | None = None,
    fade_out_last: int = 0,
    gop: int | None = None,
    x264_preset: str = "ultrafast",
    seed: int = 1,
) -> VideoSpec:
    """Write a video of ``scenes`` (``(n_frames, style)`` or just ``n_frames``) and return its truth.

    ``rotation`` stores a display matrix (clockwise degrees, like a phone's ``rotate`` tag).
    ``fade_out_last`` fades the last N frames of every scene to black (a soft transition, not a cut).
    """
    rate = Fraction(fps).limit_denominator(1001)
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = 1 / rate
        if codec == "libx264":
            # ultrafast: quick to encode for tests; a benchmark asks for a realistic preset (CABAC, B-frames).
            stream.options = {"preset": x264_preset, "g": str(gop or 50)}
        elif gop:
            stream.codec_context.gop_size = gop
        if rotation is not None:
            # FFmpeg's display matrix angle is counter-clockwise; the tag convention is clockwise.
            stream.set_display_rotation(-rotation)
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=audio_rate, layout=audio_layout)
        cuts: list[int] = []
        lengths: list[int] = []
        n = 0
        for k, scene in enumerate(scenes):
            count, style = (scene, STYLE_CYCLE[k % len(STYLE_CYCLE)]) if isinstance(scene, int) else scene
            if k:
                cuts.append(n)
            lengths.append(count)
            for i in range(count):
                fade = 1.0
                if fade_out_last and i >= count - fade_out_last:
                    fade = (count - i - 1) / fade_out_last
                frame = av.VideoFrame.from_ndarray(_render(style, i, width, height, rng, fade), format="rgb24")
                frame.pts = n
                out.mux(stream.encode(frame))
                n += 1
        out.mux(stream.encode(None))
        if astream is not None:
            _write_tone(out, astream, seconds=float(n / rate), rate=audio_rate)
    return VideoSpec(Path(path), width, height, rate, n, cuts, lengths, audio)


def _write_tone(out: av.container.OutputContainer, astream: av.AudioStream, *, seconds: float, rate: int) -> None:
    """A 440 Hz tone as long as the video (after it in the file: fine for a demuxer)."""
    channels = astream.codec_context.layout.nb_channels
    total = int(seconds * rate)
    chunk = 1024
    for start in range(0, total, chunk):
        t = (np.arange(start, min(total, start + chunk)) / rate).astype(np.float32)
        samples = np.tile(0.2 * np.sin(2 * np.pi * 440 * t), (channels, 1)).astype(np.float32)
        aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout=astream.codec_context.layout.name)
        aframe.sample_rate = rate
        aframe.pts = start
        out.mux(astream.encode(aframe))
    out.mux(astream.encode(None))


def make_audio_only(path: Path, *, seconds: float = 1.0, rate: int = 44100) -> Path:
    """An .m4a with one AAC stream and no video."""
    with av.open(str(path), "w", format="mp4") as out:
        astream = out.add_stream("aac", rate=rate, layout="mono")
        _write_tone(out, astream, seconds=seconds, rate=rate)
    return Path(path)


def make_html(path: Path) -> Path:
    """What a broken signed URL often downloads: an HTML error page saved as .mp4."""
    Path(path).write_text("<!doctype html><html><head><title>403</title></head><body>Forbidden</body></html>\n" * 20)
    return Path(path)


def make_corrupt(src: Path, path: Path, *, mode: str = "truncate") -> Path:
    """Damage a real video: ``truncate`` keeps the first 30 % (a faststart-less mp4 loses its index),
    ``garble`` overwrites a band of bytes in the middle (decode errors mid-file, file still opens),
    ``head`` garbles the first KiB (the container cannot be recognised)."""
    data = bytearray(Path(src).read_bytes())
    if mode == "truncate":
        data = data[: len(data) * 3 // 10]
    elif mode == "garble":
        rng = np.random.default_rng(7)
        a, b = len(data) * 2 // 5, len(data) * 3 // 5
        data[a:b] = rng.integers(0, 256, size=b - a, dtype=np.uint8).tobytes()
    elif mode == "head":
        data[:1024] = bytes(1024)
    else:
        raise ValueError(mode)
    Path(path).write_bytes(bytes(data))
    return Path(path)


def make_large_dims(path: Path, *, width: int = 8200, height: int = 16) -> Path:
    """A one-frame video wider than 8192 px, cheap to make (FFV1, tiny height)."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return Path(path)


def make_image_video(path: Path, image_rgb: np.ndarray, *, frames: int = 10, fps: int = 10) -> Path:
    """A short still video of one RGB image (e.g. a face photo); width/height rounded down to even."""
    h, w = image_rgb.shape[0] // 2 * 2, image_rgb.shape[1] // 2 * 2
    img = np.ascontiguousarray(image_rgb[:h, :w, :3])
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return Path(path)
