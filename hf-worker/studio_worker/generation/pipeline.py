"""Load the text-to-video pipeline once per process, keep it warm, run one generation at a time.

The pipeline is whatever ``T2V_MODEL_ID`` names (``DiffusionPipeline.from_pretrained`` picks the
class from ``model_index.json``: WanPipeline for the default, LTXPipeline, CogVideoXPipeline, …).
A failed load is remembered for ``T2V_LOAD_RETRY_SECONDS``, so a burst of tasks fails fast instead
of each retrying a multi-GB download, and a later task tries again (the operator may have fixed it).
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio_worker.config import WorkerSettings
from studio_worker.errors import Canceled, PermanentError


@dataclass
class LoadedPipeline:
    """A warm pipeline and what the result reports about it."""

    pipe: Any
    model_id: str
    revision: str | None  # the Hub commit the weights came from (None for a local folder)
    device: str
    dtype: str
    offload: bool
    load_seconds: float
    saved_with: str | None = None  # the diffusers version that wrote model_index.json
    call_params: frozenset[str] = field(default_factory=frozenset)  # what pipe.__call__ accepts

    def describe(self) -> dict[str, Any]:
        import diffusers

        return {
            "id": self.model_id,
            "revision": self.revision,
            "pipeline": type(self.pipe).__name__,
            "savedWith": self.saved_with,
            "diffusersVersion": diffusers.__version__,
            "device": self.device,
            "dtype": self.dtype,
            "cpuOffload": self.offload,
        }


_Key = tuple[str, str | None, str, str, bool]

_lock = threading.Lock()  # guards _loaded/_failure and serialises loading
_run_lock = threading.Lock()  # one generation at a time: a pipeline object is not thread-safe
_loaded: tuple[_Key, LoadedPipeline] | None = None
_failure: tuple[_Key, str, float] | None = None  # key, message, monotonic time it expires


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def pick_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(setting: str, device: str) -> str:
    """bf16 on Ampere and newer, fp16 on older GPUs (T4, V100), fp32 on CPU."""
    if setting != "auto":
        return setting
    if not device.startswith("cuda"):
        return "float32"  # half precision on CPU is slow or unsupported in many kernels
    import torch

    # including_emulation=False: the default also says yes on a T4, where bf16 is emulated and slow.
    return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float16"


def _key(config: WorkerSettings) -> _Key:
    device = pick_device(config.t2v_device)
    return (config.t2v_model_id, config.t2v_model_revision, device, pick_dtype(config.t2v_dtype, device),
            config.t2v_cpu_offload and device.startswith("cuda"))


def _resolve(model_id: str, revision: str | None) -> tuple[str, str | None]:
    """The local folder to load from and the Hub commit it holds (downloads when online)."""
    if Path(model_id).is_dir():
        return model_id, None
    from diffusers import DiffusionPipeline

    folder = str(DiffusionPipeline.download(model_id, revision=revision, local_files_only=_offline()))
    path = Path(folder)
    commit = path.name if path.parent.name == "snapshots" else revision
    return folder, commit


def _load(key: _Key) -> LoadedPipeline:
    import torch
    from diffusers import DiffusionPipeline

    model_id, revision, device, dtype, offload = key
    started = time.monotonic()
    folder, commit = _resolve(model_id, revision)
    torch_dtype = getattr(torch, dtype)
    pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch_dtype, local_files_only=True)
    vae = getattr(pipe, "vae", None)
    if vae is not None and type(vae).__name__ == "AutoencoderKLWan" and torch_dtype != torch.float32:
        # As the Wan diffusers example does: the VAE (small) in float32, the rest in half precision.
        vae.to(dtype=torch.float32)
    if offload:
        pipe.enable_model_cpu_offload(device=device)  # moves each model to the GPU only while it runs
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)  # tqdm would write to the worker's log on every step
    params = frozenset(inspect.signature(pipe.__call__).parameters)
    index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    return LoadedPipeline(pipe=pipe, model_id=model_id, revision=commit, device=device, dtype=dtype,
                          offload=offload, load_seconds=time.monotonic() - started,
                          saved_with=index.get("_diffusers_version"), call_params=params)


def get_pipeline(config: WorkerSettings) -> tuple[LoadedPipeline, bool]:
    """The warm pipeline for ``config`` (loading it on first use) and whether it was already warm.

    Raises :class:`PermanentError` ``model_unavailable`` when it cannot be loaded.
    """
    global _loaded, _failure
    with _lock:
        try:
            key = _key(config)
        except ImportError as exc:  # a CPU image (no torch) told to run text_to_video
            raise PermanentError("model_unavailable", "This worker has no torch/diffusers (install "
                                 "requirements-gpu.txt or use the GPU image).") from exc
        if _loaded is not None and _loaded[0] == key:
            return _loaded[1], True
        if _failure is not None and _failure[0] == key and time.monotonic() < _failure[2]:
            raise PermanentError("model_unavailable", _failure[1])
        _loaded = None  # a different model was configured: drop the old one before loading
        release_memory()
        try:
            loaded = _load(key)
        except Exception as exc:  # offline without a cached copy, bad id, missing files, too little memory
            text = str(exc).strip()
            detail = text.splitlines()[0][:300] if text else ""
            message = (f"The text-to-video model {key[0]!r} could not be loaded on this worker "
                       f"({type(exc).__name__}{': ' + detail if detail else ''}).")
            _failure = (key, message, time.monotonic() + config.t2v_load_retry_seconds)
            release_memory()
            raise PermanentError("model_unavailable", message) from exc
        _failure = None
        _loaded = (key, loaded)
        return loaded, False


def run_exclusive(should_stop: Callable[[], bool], on_wait: Callable[[], None],
                  work: Callable[[], Any]) -> Any:
    """Run ``work`` holding the generation lock; while another task holds it, wait (cancellable)."""
    if not _run_lock.acquire(blocking=False):
        on_wait()
        while not _run_lock.acquire(timeout=0.25):
            if should_stop():
                raise Canceled()
    try:
        return work()
    finally:
        _run_lock.release()


def release_memory() -> None:
    """Hand cached GPU blocks back to the driver (the weights stay: the pipeline is kept warm), so a
    long-lived worker's footprint doesn't grow to its largest clip. Nothing to do on CPU: tensors
    free on release, and a gc pass costs ~0.2 s with diffusers loaded."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gc.collect()  # tensors caught in reference cycles (exceptions, callbacks) hold GPU memory
        torch.cuda.empty_cache()

