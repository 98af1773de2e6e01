"""Video analysis engine for the ``video_analysis`` task: a pure library (no queue or network code).

``analyze(path, out_dir, progress=...)`` decodes the video once and returns an ``AnalysisResult``:
container/stream metadata, hard scene cuts with per-scene brightness and motion, one thumbnail per
scene plus a poster (files in ``out_dir``), and faces per scene from OpenCV's Haar cascade.
"""

from .analyze import analyze, scan_cuts
from .models import AnalysisResult, AudioInfo, Limits, MediaInfo, ModelInfo, Options, Scene, VideoInfo

__all__ = [
    "AnalysisResult",
    "AudioInfo",
    "Limits",
    "MediaInfo",
    "ModelInfo",
    "Options",
    "Scene",
    "VideoInfo",
    "analyze",
    "scan_cuts",
]
