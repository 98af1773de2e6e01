"""The data every part shares: tasks, their per-type payloads, and the API's request bodies.

Python attributes are snake_case; the JSON (API and Redis) is camelCase through aliases.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Strict JSON model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED)


# --- payloads, one model per task type -------------------------------------------------------

MAX_URL_LENGTH = 2048


def check_http_url(value: str) -> str:
    """Accept an absolute http(s) URL with a host and no embedded credentials."""
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in value) or any(ord(c) < 32 for c in value):
        raise ValueError("must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError("must be a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not host:
        raise ValueError("must include a host name")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials")
    return value


MAX_STORAGE_PATH = 512


def check_storage_path(value: str) -> str:
    """A relative object path like ``<userId>/clip.mp4``: no traversal, no odd characters."""
    if not 3 <= len(value) <= MAX_STORAGE_PATH:
        raise ValueError(f"must be 3-{MAX_STORAGE_PATH} characters")
    parts = value.split("/")
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts) or len(parts) < 2:
        raise ValueError("must be a path like <userId>/<file name> inside the uploads bucket")
    if any(ord(c) < 32 or c in "\\?#%*:|\"<>" for c in value):
        raise ValueError("contains characters that are not allowed in a storage path")
    return value


class VideoAnalysisPayload(CamelModel):
    """Analyse a video given by link or by an object in the uploads bucket (exactly one)."""

    video_url: str | None = Field(None, description="http(s) URL of the video to analyse")
    storage_path: str | None = Field(None, description="object path in the uploads bucket: <userId>/<name>")

    @field_validator("video_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("storage_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else check_storage_path(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> VideoAnalysisPayload:
        if (self.video_url is None) == (self.storage_path is None):
            raise ValueError("give either videoUrl or storagePath")
        return self


# Output sizes a text-to-video model is asked for (width, height; multiples of 16). "tiny" exists
# for smoke tests and CPU previews; 480p is Wan2.1-1.3B's native size, 720p needs a larger model.
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "tiny": (64, 64),
    "240p": (416, 240),
    "480p": (832, 480),
    "720p": (1280, 720),
}
MAX_FRAMES = 121  # Wan/LTX take 4k+1 frames; 81 at 16 fps is Wan's 5 s clip
MAX_SEED = 2**32 - 1


class TextToVideoPayload(CamelModel):
    """Generate a clip from a prompt. Values are checked here, never discovered by the worker."""

    prompt: str = Field(min_length=1, max_length=2000)
    negative_prompt: str | None = Field(None, max_length=2000)
    resolution: Literal["tiny", "240p", "480p", "720p"] = "480p"
    num_frames: int | None = Field(None, ge=5, le=MAX_FRAMES)
    duration_seconds: float | None = Field(None, gt=0, le=10)
    fps: int = Field(16, ge=4, le=30)
    steps: int = Field(30, ge=1, le=100)
    guidance_scale: float = Field(5.0, ge=0, le=20)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("num_frames")
    @classmethod
    def _frames(cls, value: int | None) -> int | None:
        if value is not None and (value - 1) % 4:
            raise ValueError("must be 4k+1 (5, 9, 13, … 121): the video models compress time in steps of 4")
        return value

    @model_validator(mode="after")
    def _complete(self) -> TextToVideoPayload:
        if self.num_frames is not None and self.duration_seconds is not None:
            raise ValueError("give numFrames or durationSeconds, not both")
        if self.duration_seconds is not None:
            frames = round(self.duration_seconds * self.fps)
            frames = max(5, 4 * round((frames - 1) / 4) + 1)  # nearest 4k+1
            if frames > MAX_FRAMES:
                raise ValueError(f"durationSeconds x fps gives more than {MAX_FRAMES} frames")
            self.num_frames, self.duration_seconds = frames, None
        if self.num_frames is None:
            self.num_frames = 33
        if self.seed is None:  # chosen now, so the task reports it and Retry reproduces it
            self.seed = int.from_bytes(os.urandom(4), "big")
        return self

    @property
    def size(self) -> tuple[int, int]:
        return RESOLUTIONS[self.resolution]


TaskType = Literal["video_analysis", "text_to_video"]

PAYLOAD_MODELS: dict[str, type[CamelModel]] = {
    "video_analysis": VideoAnalysisPayload,
    "text_to_video": TextToVideoPayload,
}

# Task types only some workers can run; the API says so while none has been seen recently.
GPU_TASK_TYPES = frozenset({"text_to_video"})


# --- the task document (the JSON at task:<id>) ----------------------------------------------


class TaskError(BaseModel):
    code: str
    message: str


class Task(CamelModel):
    """One unit of work, as stored in Redis and returned by the API."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    id: str
    type: str
    payload: dict[str, Any]
    status: TaskStatus = TaskStatus.QUEUED
    progress: int = Field(0, ge=0, le=100)
    stage: str = "queued"
    result: dict[str, Any] | None = None
    error: TaskError | None = None
    owner: str
    attempts: int = 0
    max_attempts: int = 3
    cancel_requested: bool = False
    worker_id: str | None = None
    rev: str = ""  # a fresh nonce on every write, so two writers never produce the same document
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None

    def to_json(self) -> str:
        """The exact string stored in Redis (compare-and-set compares these strings)."""
        return self.model_dump_json(by_alias=True)

    def public(self, queue_position: int | None = None) -> dict[str, Any]:
        """The task as the API shows it; ``queuePosition`` (1 = next) only while in the queue.

        A task waiting out a retry back-off is queued but not yet in line: no position.
        The worker's id (a host name) is infrastructure detail and stays internal.
        """
        data = self.model_dump(mode="json", by_alias=True, exclude={"worker_id", "rev"})
        if self.status is TaskStatus.QUEUED and queue_position:
            data["queuePosition"] = queue_position
        return data


# --- request bodies --------------------------------------------------------------------------


class Credentials(CamelModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        local, sep, domain = value.rpartition("@")
        if not sep or not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
            raise ValueError("must be an email address like name@example.com")
        if any(c.isspace() for c in value):
            raise ValueError("must not contain spaces")
        return value.lower()


class RegisterRequest(Credentials):
    password: str = Field(min_length=6, max_length=72)


class RefreshRequest(CamelModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class CreateTaskRequest(CamelModel):
    type: TaskType
    payload: dict[str, Any]

    def validated_payload(self) -> dict[str, Any]:
        """The payload checked against its type's model, re-serialised in canonical form.

        Raises ``ValidationError`` (locations relative to ``payload``).
        """
        model = PAYLOAD_MODELS[self.type].model_validate(self.payload)
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)


MAX_UPLOAD_BYTES = 500 * 1024 * 1024  # the uploads bucket's file_size_limit (supabase/schema.sql)
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo",
               "video/mpeg", "video/mp2t", "video/ogg", "video/3gpp", "video/x-flv")


class UploadRequest(CamelModel):
    """Ask for a signed URL to upload one video straight from the browser to Storage."""

    filename: str = Field(min_length=1, max_length=255)
    size: int = Field(gt=0, le=MAX_UPLOAD_BYTES)
    content_type: str = Field(max_length=100)

    @field_validator("content_type")
    @classmethod
    def _video(cls, value: str) -> str:
        value = value.split(";")[0].strip().lower()
        if value not in VIDEO_TYPES:
            raise ValueError("must be a video type such as video/mp4, video/quicktime or video/webm")
        return value

    @field_validator("filename")
    @classmethod
    def _name(cls, value: str) -> str:
        if any(ord(c) < 32 for c in value):
            raise ValueError("must not contain control characters")
        return value

    def object_name(self) -> str:
        """A safe, unique object name that keeps a readable hint of the original name."""
        stem, dot, ext = self.filename.rpartition(".")
        base = stem if dot else self.filename
        safe = "-".join("".join(c if c.isascii() and (c.isalnum() or c in "_") else " " for c in base).split())[:60]
        ext = "".join(c for c in ext.lower() if c.isascii() and c.isalnum())[:8] if dot else ""
        return f"{os.urandom(8).hex()}-{safe or 'video'}{'.' + ext if ext else ''}"


# --- ids and clocks --------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_task_id() -> str:
    """A ULID-shaped id: 48-bit ms timestamp + 80 random bits, Crockford base32 (26 chars).

    Ids sort by creation time, so the per-user index can page by id alone.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def is_task_id(value: str) -> bool:
    return len(value) == 26 and all(c in _CROCKFORD for c in value)


def now_iso() -> str:
    """UTC now as ISO 8601 with milliseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
