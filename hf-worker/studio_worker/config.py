"""Worker settings from the environment (the shared ones come from ``sorastudio.settings``)."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Literal

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

    # text_to_video (GPU workers; needs torch + diffusers: requirements-gpu.txt). A Hub repo id or a
    # local folder written by save_pretrained; HF_HUB_OFFLINE / HF_TOKEN are read by huggingface_hub.
    t2v_model_id: str = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    t2v_model_revision: str | None = None  # a commit or tag pins the weights; None: the default branch
    t2v_device: str = "auto"  # auto (cuda when available, else cpu) | cuda | cuda:1 | cpu
    t2v_dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # auto: bf16 Ampere+, fp16 older, fp32 cpu
    t2v_cpu_offload: bool = False  # enable_model_cpu_offload(): less VRAM, slower (needs accelerate)
    t2v_load_retry_seconds: float = Field(60.0, ge=0)  # a failed load is remembered this long
    # The first task on a fresh worker may also download (many GB) and load the model.
    time_limit_text_to_video: float = Field(1800.0, gt=0)

    @property
    def task_types(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.worker_task_types.split(",") if t.strip())

    def time_limit(self, task_type: str) -> float:
        """Seconds a task of ``task_type`` may run: ``TIME_LIMIT_<TYPE>``, default 900."""
        declared = getattr(self, f"time_limit_{task_type}", None)
        if declared is not None:
            return float(declared)
        return float(os.environ.get(f"TIME_LIMIT_{task_type.upper()}", "900"))
