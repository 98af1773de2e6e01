"""``analyze``: one decode pass -> metadata, scene cuts, per-scene numbers, thumbnails, poster, faces."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from studio_worker.errors import Canceled, PermanentError

from . import signals
from .frames import DecodeStats, decode_frames
from .models import AnalysisResult, Limits, Options, Scene
from .probe import Probe, probe
from .scenes import TINY_H, TINY_W, CutDetector, SceneStats, frame_score
from .thumbnails import MiddlePicker, decode_image, encode_image, frame_size, small_yuv, upright, yuv_to_bgr

ProgressFn = Callable[[int, str], None]
STOP_CHECK_FRAMES = 25  # should_stop() is polled this often during the scan: keep it a cheap flag read
PROGRESS_EVERY_S = 0.5
SCAN_PCT = (2, 88)  # the scan's share of the overall percentage


class _Progress:
    """Monotone, throttled progress: a new stage is always reported, repeats at most every 0.5 s."""

    def __init__(self, fn: ProgressFn) -> None:
        self.fn, self.pct, self.stage, self.at = fn, -1, "", 0.0

    def __call__(self, pct: int, stage: str, *, force: bool = False) -> None:
        pct = max(self.pct, min(100, int(pct)))
        now = time.monotonic()
        family = stage.rstrip("0123456789% ")  # "scanning scenes 41%" -> "scanning scenes"
        if family == self.stage and not force and (now - self.at < PROGRESS_EVERY_S or pct == self.pct):
            return
        self.pct, self.stage, self.at = pct, family, now
        self.fn(pct, stage)


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Canceled("video analysis canceled")


def analyze(
    path: Path,
    out_dir: Path,
    *,
    progress: ProgressFn,
    should_stop: Callable[[], bool] | None = None,
    limits: Limits | None = None,
    options: Options | None = None,
) -> AnalysisResult:
    """Analyse the video at ``path``, writing thumbnails and a poster into ``out_dir``.

    Raises ``PermanentError`` (codes: file_not_found, empty_file, not_a_video, corrupt_video,
    no_video_stream, video_too_large, video_too_long) or ``Canceled``; on any failure the files this
    call wrote are removed again (and ``out_dir`` too when this call created it).
    """
    limits, options = limits or Limits(), options or Options()
    report = _Progress(progress)
    written: list[Path] = []
    created_dir = not out_dir.exists()
    try:
        _check_stop(should_stop)
        report(1, "probing")
        t0 = time.perf_counter()
        info = probe(Path(path), limits)
        try:
            return _analyze(info, out_dir, report, should_stop, limits, options, written, t0)
        finally:
            info.container.close()
    except BaseException:
        for file in written:
            file.unlink(missing_ok=True)
        if created_dir and out_dir.exists():
            try:
                out_dir.rmdir()
            except OSError:
                pass  # someone else put files there: not ours to delete
        raise


def _analyze(
    info: Probe,
    out_dir: Path,
    report: _Progress,
    should_stop: Callable[[], bool] | None,
    limits: Limits,
    options: Options,
    written: list[Path],
    t0: float,
) -> AnalysisResult:
    timings = {"probe": time.perf_counter() - t0}
    _check_stop(should_stop)
    t1 = time.perf_counter()
    scan = _scan(info, report, should_stop, limits, options)
    timings["scan"] = time.perf_counter() - t1
    media = info.media
    rotation = media.video.rotation

    _check_stop(should_stop)
    report(90, "thumbnails")
    t2 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = options.image_format
    scenes: list[Scene] = []
    for i, (stats, end_frame, end_time, thumb_index, thumb) in enumerate(scan.scenes):
        name = f"scene-{i + 1:04d}.{ext}"
        _write(out_dir / name, thumb, written)
        scenes.append(
            Scene(
                index=i,
                start_frame=stats.start_frame,
                end_frame=end_frame,
                start_time=round(stats.start_time, 6),
                end_time=round(end_time, 6),
                cut_score=None if stats.cut_score is None else round(stats.cut_score, 3),
                mean_brightness=round(stats.mean_brightness, 3),
                motion_energy=round(stats.motion_energy, 3),
                thumbnail=name,
                thumbnail_frame=thumb_index,
            )
        )
    poster_index, poster_time, poster_img = scan.poster
    poster_name = f"poster.{ext}"
    _write(out_dir / poster_name, encode_image(upright(poster_img, rotation), options), written)
    timings["thumbnails"] = time.perf_counter() - t2

    model = None
    if options.faces:
        _check_stop(should_stop)
        report(95, "detecting faces")
        t3 = time.perf_counter()
        for scene, (*_, thumb) in zip(scenes, scan.scenes, strict=True):
            # On the thumbnail as written: what the user sees is what was counted.
            scene.faces = signals.count_faces(decode_image(thumb))
        model = signals.model_info()
        timings["faces"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    report(100, "done")
    return AnalysisResult(
        media=media,
        scenes=scenes,
        poster=poster_name,
        poster_frame=poster_index,
        poster_time=round(poster_time, 6),
        model=model,
        decode_errors=scan.stats.decode_errors + scan.stats.corrupt_frames,
        warnings=scan.stats.warnings,
        timings={k: round(v, 4) for k, v in timings.items()},
    )


def scan_cuts(path: Path, *, limits: Limits | None = None, options: Options | None = None) -> list[int]:
    """Only the decode pass: the first frame of every scene after the first (no files written)."""
    info = probe(Path(path), limits or Limits())
    try:
        scan = _scan(info, _Progress(lambda _p, _s: None), None, limits or Limits(), options or Options())
    finally:
        info.container.close()
    return [stats.start_frame for stats, *_ in scan.scenes[1:]]


def _write(path: Path, data: bytes, written: list[Path]) -> None:
    written.append(path)  # before writing: a half-written file is cleaned up too
    path.write_bytes(data)


class _ScanResult:
    def __init__(self) -> None:
        # (stats, end frame, end time, thumbnail frame, encoded upright thumbnail): ~10 KB a scene, so
        # a 4 h video with thousands of shots does not hold thousands of raw frames.
        self.scenes: list[tuple[SceneStats, int, float, int, bytes]] = []
        self.poster: tuple[int, float, np.ndarray] = (0, 0.0, np.zeros((2, 2, 3), np.uint8))
        self.stats = DecodeStats()


def _scan(
    info: Probe, report: _Progress, should_stop: Callable[[], bool] | None, limits: Limits, options: Options
) -> _ScanResult:
    """The single decode pass. Everything per-frame lives here, so keep it lean."""
    video, fps = info.media.video, info.fps
    sar = _sar(video.sample_aspect_ratio)
    thumb_size = frame_size(video.width, video.height, sar, video.rotation, options.thumb_width)
    poster_size = frame_size(video.width, video.height, sar, video.rotation, options.poster_width)
    duration = info.claimed_duration
    poster_at = duration * options.poster_at if duration else None
    detector = CutDetector(
        floor=options.cut_floor,
        ratio=options.cut_ratio,
        window=options.cut_window,
        min_len=max(1, round(options.min_scene_s * float(fps))),
    )
    # One reformatter per output size: each caches its swscale context across frames.
    tiny_rf, thumb_rf, poster_rf = VideoReformatter(), VideoReformatter(), VideoReformatter()
    tiny_interp = options.tiny_interpolation
    result = _ScanResult()
    span = SCAN_PCT[1] - SCAN_PCT[0]
    report(SCAN_PCT[0], "scanning scenes 0%", force=True)

    def poster_of(frame: VideoFrame) -> np.ndarray:
        return yuv_to_bgr(small_yuv(poster_rf, frame, poster_size))

    def finish(stats: SceneStats, picker: MiddlePicker, end_frame: int, end_time: float) -> None:
        thumb_index, thumb = picker.pick(end_frame)
        encoded = encode_image(upright(thumb, video.rotation), options)
        result.scenes.append((stats, end_frame, end_time, thumb_index, encoded))

    prev: np.ndarray | None = None
    first_time: float | None = None
    rel = 0.0
    current: SceneStats | None = None
    picker: MiddlePicker | None = None
    poster_done = False
    index = -1
    for index, frame in enumerate(decode_frames(info.container, info.stream, result.stats)):
        if index >= limits.max_frames:
            raise PermanentError("video_too_long", f"more than {limits.max_frames} frames")
        t = frame.time
        if t is None:
            t = index / float(fps)
        if first_time is None:
            first_time = t
        rel = t - first_time
        if rel > limits.max_duration_s:
            raise PermanentError("video_too_long", f"runs past the {limits.max_duration_s:.0f} s limit")
        tiny = tiny_rf.reformat(
            frame, width=TINY_W, height=TINY_H, format="yuv420p", interpolation=tiny_interp, threads=1
        ).to_ndarray()
        luma = float(tiny[:TINY_H].mean())
        score = None if prev is None else frame_score(prev, tiny)
        prev = tiny
        if current is None or (score is not None and detector.update(index, score)):
            if current is not None and picker is not None:
                finish(current, picker, index - 1, rel)
            current = SceneStats(start_frame=index, start_time=rel, cut_score=score)
            picker = MiddlePicker(index, thumb_size, thumb_rf)
            current.add(luma, None)
        else:
            current.add(luma, score)
        assert picker is not None
        picker.offer(index, frame)
        if index == 0:
            result.poster = (0, rel, poster_of(frame))  # fallback when the 10 % mark is never reached
        elif not poster_done and poster_at is not None and rel >= poster_at:
            result.poster = (index, rel, poster_of(frame))
            poster_done = True
        if index % STOP_CHECK_FRAMES == 0:
            _check_stop(should_stop)
            claimed = video.container_frame_count
            frac = rel / duration if duration else (index / claimed if claimed else 0.0)
            pct = min(99, int(frac * 100))
            report(SCAN_PCT[0] + pct * span // 100, f"scanning scenes {pct}%")

    frames = index + 1
    if frames == 0 or current is None or picker is None:
        raise PermanentError("corrupt_video", "no frame of the video stream could be decoded")
    end_time = rel + 1 / float(fps)
    finish(current, picker, index, end_time)
    report(SCAN_PCT[1], "scanning scenes 100%", force=True)
    video.frame_count = frames
    if not info.claimed_duration:
        info.media.duration = round(end_time, 6)
    stats = result.stats
    if stats.decode_errors or stats.corrupt_frames:
        stats.warnings.append(
            f"{stats.decode_errors} packets failed to decode, {stats.corrupt_frames} frames flagged corrupt"
        )
    return result


def _sar(text: str) -> float:
    num, den = text.split(":")
    return int(num) / int(den)
