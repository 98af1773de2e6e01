"""Streaming hard-cut detection on tiny frames: one score per frame, an adaptive threshold, no lookahead."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

# 64x36 keeps the per-frame cost at a few microseconds while a hard cut still changes most of the
# image; YUV rather than gray so that two shots of equal brightness but different colour still differ.
TINY_W, TINY_H = 64, 36


def frame_score(prev: np.ndarray, cur: np.ndarray) -> float:
    """Mean absolute difference of two tiny YUV420 frames (all planes), 0..255."""
    # cv2.absdiff on uint8 is exact |a - b| and ~5x cheaper than numpy's widen-subtract-abs.
    return cv2.mean(cv2.absdiff(prev, cur))[0]


class CutDetector:
    """Decides, frame by frame, whether a frame opens a new scene.

    A cut is a score above ``max(floor, ratio * median(recent scores))`` at least ``min_len`` frames
    after the previous cut. The median tracks the shot's own motion, so a pan or a slow fade (many
    moderate scores in a row) raises the bar instead of firing every frame; ``min_len`` keeps a fast
    fade or a flash to at most one cut.
    """

    def __init__(self, *, floor: float, ratio: float, window: int, min_len: int) -> None:
        self.floor, self.ratio, self.min_len = floor, ratio, max(1, min_len)
        self.recent: deque[float] = deque(maxlen=max(3, window))
        self.last_cut = 0

    def threshold(self) -> float:
        if not self.recent:
            return self.floor
        return max(self.floor, self.ratio * float(np.median(self.recent)))

    def update(self, index: int, score: float) -> bool:
        """``score`` compares frame ``index`` with ``index - 1``; True when ``index`` starts a scene."""
        # The threshold is never below the floor, so the median is only computed for candidates.
        is_cut = score > self.floor and index - self.last_cut >= self.min_len and score > self.threshold()
        if is_cut:
            self.last_cut = index
        else:
            # Cut scores stay out of the window: they say nothing about the shot's own motion.
            self.recent.append(score)
        return is_cut


@dataclass
class SceneStats:
    """Running per-scene numbers, accumulated from the same tiny frames as the detector."""

    start_frame: int
    start_time: float
    cut_score: float | None = None
    frames: int = 0
    luma_sum: float = 0.0
    motion_sum: float = 0.0
    motion_n: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def add(self, luma: float, score: float | None) -> None:
        self.frames += 1
        self.luma_sum += luma
        if score is not None:
            self.motion_sum += score
            self.motion_n += 1

    @property
    def mean_brightness(self) -> float:
        return self.luma_sum / self.frames if self.frames else 0.0

    @property
    def motion_energy(self) -> float:
        return self.motion_sum / self.motion_n if self.motion_n else 0.0
