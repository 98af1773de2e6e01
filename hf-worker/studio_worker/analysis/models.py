"""Result and option models of the ``video_analysis`` task (camelCase JSON via an alias generator)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class Limits(_Model):
    """What a worker refuses to analyse (each breach is a ``PermanentError``)."""

    max_width: int = 8192
    max_height: int = 8192
    max_pixels: int = 40_000_000
    max_duration_s: float = 4 * 3600
    # Guards streams whose container lies about (or has no) duration: 4 h at 120 fps.
    max_frames: int = 4 * 3600 * 120


class Options(_Model):
    """Tuning knobs; the defaults are what the tests and the benchmark use."""

    # Scene-cut detector on 64x36 YUV frames (score: mean abs diff of all Y+U+V bytes, 0..255).
    cut_floor: float = 12.0
    cut_ratio: float = 3.0  # a cut must beat ``cut_ratio`` x the median score of the recent window
    cut_window: int = 24
    min_scene_s: float = 0.4
    # swscale filter for the 64x36 frames: AREA averages every pixel (robust to grain and fine
    # texture); FAST_BILINEAR samples sparsely and costs ~1/5 of the CPU at 720p.
    tiny_interpolation: Literal["AREA", "BILINEAR", "FAST_BILINEAR"] = "AREA"
    thumb_width: int = 320
    poster_width: int = 640
    poster_at: float = 0.10  # fraction of the duration
    image_format: Literal["webp", "jpg"] = "webp"
    image_quality: int = 80
    faces: bool = True


class AudioInfo(_Model):
    codec: str
    profile: str | None = None
    sample_rate: int
    channels: int
    channel_layout: str | None = None


class VideoInfo(_Model):
    codec: str
    profile: str | None = None
    width: int
    height: int
    sample_aspect_ratio: str = Field(description='"num:den", "1:1" when the file does not say')
    display_aspect_ratio: str
    display_width: int = Field(description="width as shown: SAR applied, then rotation")
    display_height: int
    fps: float
    fps_rational: str = Field(description='average frame rate as "num/den"')
    frame_count: int = Field(description="frames actually decoded during the scan")
    container_frame_count: int | None = Field(None, description="what the container claims, when it does")
    pixel_format: str | None = None
    rotation: int = Field(0, description="clockwise degrees to display upright (0/90/180/270), like a rotate tag")
    bitrate: int | None = None


class MediaInfo(_Model):
    container: str = Field(description="FFmpeg format name, e.g. 'mov,mp4,m4a,3gp,3g2,mj2'")
    duration: float = Field(description="seconds (container's claim; frame count / fps when it has none)")
    size: int = Field(description="bytes")
    bitrate: int | None = None
    video: VideoInfo
    audio: AudioInfo | None = None


class Scene(_Model):
    """One shot. Frames are inclusive (``start_frame``..``end_frame``); ``end_time`` is where the next starts."""

    index: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    cut_score: float | None = Field(None, description="detector score at the cut that opened this scene")
    mean_brightness: float = Field(description="mean luma 0..255")
    motion_energy: float = Field(description="mean score between consecutive frames inside the scene")
    thumbnail: str
    thumbnail_frame: int
    faces: int | None = None


class ModelInfo(_Model):
    name: str
    licence: str
    package: str


class AnalysisResult(_Model):
    media: MediaInfo
    scenes: list[Scene]
    poster: str
    poster_frame: int
    poster_time: float
    model: ModelInfo | None = None
    decode_errors: int = 0
    warnings: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
