"""Worker settings from the environment (the shared ones come from ``sorastudio.settings``)."""

from __future__ import annotations

import os
import socket
import uuid

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    """Knobs of one worker process; environment variable names are the upper-case field names."""

    model_config = SettingsConfigDict(extra="ignore")

    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    worker_concurrency: int = Field(1, ge=1, le=64)
    worker_host: str = "0.0.0.0"
    port: int = Field(7860, alias="WORKER_PORT")
    worker_task_types: str = "video_analysis"  # comma-separated: what this worker may claim
    lease_seconds: float = Field(30.0, ge=1)
    heartbeat_seconds: float = Field(5.0, gt=0)
    poll_min_seconds: float = Field(1.0, gt=0)
    poll_max_seconds: float = Field(30.0, gt=0)
    reap_seconds: float = Field(30.0, gt=0)
    shutdown_grace_seconds: float = Field(20.0, ge=0)
    work_dir: str = Field(default_factory=lambda: os.environ.get("TMPDIR", "/tmp"))  # noqa: S108
    time_limit_video_analysis: float = Field(900.0, gt=0)
    max_download_bytes: int = Field(500 * 1024 * 1024, gt=0)

    @property
    def task_types(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.worker_task_types.split(",") if t.strip())

    def time_limit(self, task_type: str) -> float:
        """Seconds a task of ``task_type`` may run: ``TIME_LIMIT_<TYPE>``, default 900."""
        declared = getattr(self, f"time_limit_{task_type}", None)
        if declared is not None:
            return float(declared)
        return float(os.environ.get(f"TIME_LIMIT_{task_type.upper()}", "900"))
