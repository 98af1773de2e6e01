"""Open a file with PyAV, read its metadata and refuse what the worker must not analyse."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.stream import Disposition
from av.video.stream import VideoStream

from studio_worker.errors import PermanentError

from .models import AudioInfo, Limits, MediaInfo, VideoInfo


@dataclass
class Probe:
    """An open container plus what was read from its headers (frame count is filled by the scan)."""

    container: InputContainer
    stream: VideoStream
    media: MediaInfo
    fps: Fraction
    claimed_duration: float | None


def _ratio(value: object) -> Fraction | None:
    """PyAV's AVRational (or None, or 0/1 for "unknown") as a positive Fraction, else None."""
    num, den = getattr(value, "numerator", 0), getattr(value, "denominator", 0)
    return Fraction(num, den) if num > 0 and den > 0 else None


def display_rotation(stream: VideoStream) -> int:
    """Clockwise degrees from the display matrix side data, else the legacy ``rotate`` tag."""
    # PyAV 19 exposes the codec's side data; PyAV 18 (the newest on Python 3.11) has no such
    # attribute, and there the rotate tag below is the only source.
    side_data = getattr(stream.codec_context, "coded_side_data", None) if stream.codec_context else None
    matrix = side_data.get("display_matrix") if side_data is not None else None
    if matrix and len(matrix) >= 36:
        m = struct.unpack("<9i", matrix[:36])
        # Same maths as FFmpeg's av_display_rotation_get (which is counter-clockwise, hence the sign).
        s0, s1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
        if s0 and s1:
            ccw = -math.degrees(math.atan2(m[1] / s1, m[0] / s0))
            return round(-ccw / 90) * 90 % 360
    tag = stream.metadata.get("rotate")
    try:
        return round(float(tag) / 90) * 90 % 360 if tag else 0
    except ValueError:
        return 0


def _pick_video(container: InputContainer) -> VideoStream | None:
    # Cover art in an .m4a/.mp3 is a one-frame "video" stream flagged attached_pic: not a video.
    streams = [s for s in container.streams.video if not (s.disposition & Disposition.attached_pic)]
    return max(streams, key=lambda s: (s.width or 0) * (s.height or 0), default=None)


# Signatures of common containers: a file that starts like one but will not open is damaged, not alien.
_MAGIC = (b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"FLV", b"\x00\x00\x01\xba")  # mkv/webm, avi, ogg, flv, mpeg-ps


def _looks_like_media(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):  # ISO BMFF / QuickTime
        return True
    return head.startswith(_MAGIC)


def probe(path: Path, limits: Limits) -> Probe:
    """Open ``path``; raise ``PermanentError`` for empty, non-video, audio-only, oversized or overlong input."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise PermanentError("file_not_found", f"input file {path.name!r} does not exist") from exc
    if size == 0:
        raise PermanentError("empty_file", "the uploaded file is empty (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if _looks_like_media(path):
            raise PermanentError("corrupt_video", f"the video file is damaged or truncated: {exc}") from exc
        raise PermanentError("not_a_video", f"not a recognisable media file: {exc}") from exc
    try:
        return _describe(container, size, limits)
    except BaseException:
        container.close()
        raise


def _describe(container: InputContainer, size: int, limits: Limits) -> Probe:
    stream = _pick_video(container)
    if stream is None:
        if container.streams.audio:
            raise PermanentError("no_video_stream", "the file has audio but no video stream")
        raise PermanentError("not_a_video", "no audio or video stream found in the file")
    cc = stream.codec_context
    width, height = stream.width or 0, stream.height or 0
    if width <= 0 or height <= 0 or cc is None:
        raise PermanentError("not_a_video", "the video stream has no usable dimensions or codec")
    if width > limits.max_width or height > limits.max_height or width * height > limits.max_pixels:
        raise PermanentError(
            "video_too_large",
            f"{width}x{height} exceeds the limit ({limits.max_width}x{limits.max_height}, "
            f"{limits.max_pixels / 1e6:g} MP)",
        )

    duration: float | None = None
    if container.duration and container.duration > 0:
        duration = container.duration / av.time_base
    elif stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    if duration is not None and duration > limits.max_duration_s:
        raise PermanentError(
            "video_too_long", f"{duration:.0f} s is longer than the {limits.max_duration_s:.0f} s limit"
        )

    fps = _ratio(stream.average_rate) or _ratio(stream.guessed_rate) or _ratio(stream.base_rate) or Fraction(25)
    sar = _ratio(stream.sample_aspect_ratio) or Fraction(1)
    dar = Fraction(width * sar.numerator, height * sar.denominator)
    rotation = display_rotation(stream)
    disp_w, disp_h = max(1, round(width * sar)), height
    if rotation in (90, 270):
        disp_w, disp_h = disp_h, disp_w

    video = VideoInfo(
        codec=cc.name,
        profile=stream.profile,
        width=width,
        height=height,
        sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}",
        display_aspect_ratio=f"{dar.numerator}:{dar.denominator}",
        display_width=disp_w,
        display_height=disp_h,
        fps=float(fps),
        fps_rational=f"{fps.numerator}/{fps.denominator}",
        frame_count=0,
        container_frame_count=stream.frames or None,
        pixel_format=getattr(cc, "pix_fmt", None),
        rotation=rotation,
        bitrate=cc.bit_rate or None,
    )
    audio = None
    if container.streams.audio:
        a = container.streams.audio[0]
        acc = a.codec_context
        audio = AudioInfo(
            codec=acc.name,
            profile=a.profile,
            sample_rate=acc.sample_rate or a.rate or 0,
            channels=acc.channels,
            channel_layout=acc.layout.name if acc.layout else None,
        )
    media = MediaInfo(
        container=container.format.name,
        duration=duration or 0.0,
        size=size,
        bitrate=container.bit_rate or None,
        video=video,
        audio=audio,
    )
    return Probe(container, stream, media, fps, duration)
