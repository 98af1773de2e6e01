"""Learned-model signal: faces per scene with OpenCV's Haar frontal-face cascade (weights ship in the wheel)."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import version

import cv2
import numpy as np

from .models import ModelInfo

CASCADE = "haarcascade_frontalface_default.xml"


def model_info() -> ModelInfo:
    return ModelInfo(
        name=f"OpenCV Haar cascade {CASCADE} (Viola-Jones)",
        licence="Intel License Agreement for Open Source Computer Vision Library (BSD-3-style); OpenCV Apache-2.0",
        package=f"opencv-python-headless=={version('opencv-python-headless')}",
    )


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    folder: str = cv2.data.haarcascades  # type: ignore[attr-defined]  # missing from OpenCV's stubs
    classifier = cv2.CascadeClassifier(folder + CASCADE)
    if classifier.empty():
        raise RuntimeError(f"could not load {CASCADE} from {folder}")
    return classifier


def count_faces(bgr: np.ndarray) -> int:
    """Frontal faces in a small (thumbnail-size) upright BGR image; faces under ~20 px are missed."""
    gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))
    return len(found)
