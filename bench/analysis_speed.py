"""``python -m bench.analysis_speed``: how close the video_analysis scan gets to plain decoding speed.

Generates (once, cached in the system temp dir) a 60 s 1280x720 H.264 video with 20 hard cuts, then
times, 3 trials each (median): ``ffmpeg -i FILE -f null -`` (baseline), a PyAV decode-only loop, the
scene scan alone (``scan_cuts``), the whole ``analyze`` (thumbnails, poster, faces), seeking to each
scene middle (the alternative to capturing thumbnails during the scan) and PySceneDetect's
ContentDetector. Prints ``ffmpeg_time / ours`` ratios (targets: scan >= 0.8, full >= 0.5) and
writes ``bench/results/analysis_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hf-worker"))  # studio_worker lives there (pytest.ini does the same)

import av  # noqa: E402
import numpy as np  # noqa: E402
from studio_worker.analysis import Options, analyze, scan_cuts  # noqa: E402

from tests.hf_worker.videos import STYLE_CYCLE, make_video  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "analysis_speed.json"
CACHE = Path(tempfile.gettempdir()) / "sorastudio-bench"
TARGETS = {"scan": 0.8, "full": 0.5}


def bench_video(seconds: int = 60, cuts: int = 20, fps: int = 25) -> tuple[Path, list[int]]:
    """The cached benchmark video and its true cut frames (regenerated if missing)."""
    path = CACHE / f"analysis-720p-{seconds}s-{cuts}cuts-v1.mp4"
    truth = path.with_suffix(".json")
    if path.exists() and truth.exists():
        return path, json.loads(truth.read_text())
    CACHE.mkdir(parents=True, exist_ok=True)
    total = seconds * fps
    rng = np.random.default_rng(3)
    lengths = rng.integers(total // (cuts + 1) - 25, total // (cuts + 1) + 25, size=cuts + 1)
    lengths[-1] += total - lengths.sum()
    styles = [s for s in STYLE_CYCLE if s != "noise"]
    scenes = [(int(n), styles[i % len(styles)]) for i, n in enumerate(lengths)]
    print(f"generating {path} ({total} frames, once) ...", flush=True)
    tmp = path.with_suffix(".tmp.mp4")
    # veryfast keeps CABAC and B-frames (what phones/encoders produce); GOP 250 like x264's default.
    spec = make_video(tmp, width=1280, height=720, fps=fps, scenes=scenes, gop=250, x264_preset="veryfast")
    tmp.rename(path)
    truth.write_text(json.dumps(spec.cuts))
    return path, spec.cuts


def timed(fn: Callable[[], Any], trials: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(trials):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def ffmpeg_null(path: Path) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "null", "-"], check=True)


def pyav_decode(path: Path) -> int:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for _ in c.decode(s))


def seek_middles(path: Path, middles: list[int]) -> int:
    """The alternative thumbnail strategy: seek to the keyframe before each middle, decode up to it."""
    got = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        fps = s.average_rate
        for m in middles:
            target = int(m / fps / s.time_base)
            c.seek(target, stream=s, backward=True)
            for f in c.decode(s):
                if f.pts is not None and f.pts >= target:
                    f.reformat(width=320, height=180, format="bgr24").to_ndarray()
                    got += 1
                    break
    return got


def pyscenedetect(path: Path) -> list[int]:
    import scenedetect  # reference only: scenedetect-headless

    scenes = scenedetect.detect(str(path), scenedetect.ContentDetector(), show_progress=False)
    return [start.frame_num for start, _ in scenes[1:]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis_speed", description=__doc__)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--no-pyscenedetect", action="store_true")
    args = parser.parse_args(argv)

    path, truth = bench_video()
    out_root = Path(tempfile.mkdtemp(prefix="analysis-bench-"))
    rows: dict[str, dict[str, Any]] = {}
    try:
        if shutil.which("ffmpeg") is None:
            print("ffmpeg CLI not found (apt-get install ffmpeg): no baseline", file=sys.stderr)
            return 2
        runs: dict[str, Callable[[], Any]] = {
            "ffmpeg_null": lambda: ffmpeg_null(path),
            "pyav_decode": lambda: pyav_decode(path),
            "scan": lambda: scan_cuts(path),
            "scan_fast": lambda: scan_cuts(path, options=Options(tiny_interpolation="FAST_BILINEAR")),
        }
        full_dirs = iter(range(1000))
        runs["full"] = lambda: analyze(path, out_root / f"full{next(full_dirs)}", progress=lambda *_: None)
        # Trials round-robin over the contenders, so a noisy neighbour on a shared machine hits all alike.
        times: dict[str, list[float]] = {name: [] for name in runs}
        outs: dict[str, Any] = {}
        for _ in range(args.trials):
            for name, fn in runs.items():
                _, (t,), outs[name] = timed(fn, 1)
                times[name].append(t)
        for name, ts in times.items():
            med = statistics.median(ts)
            rows[name] = {"median_s": round(med, 4), "min_s": round(min(ts), 4), "trials_s": [round(t, 4) for t in ts]}
            print(f"{name:<14} {med:7.3f} s   {[round(t, 3) for t in ts]}", flush=True)
        for name in ("scan", "scan_fast"):
            found = outs[name]
            rows[name]["cuts_found"] = len(found)
            rows[name]["cuts_within_1_frame"] = len(found) == len(truth) and all(
                abs(a - b) <= 1 for a, b in zip(found, truth, strict=True)
            )
        rows["full"]["stages_s"] = outs["full"].timings
        middles = [s.thumbnail_frame for s in outs["full"].scenes]
        med, trials, _ = timed(lambda: seek_middles(path, middles), args.trials)
        rows["seek_thumbnails"] = {"median_s": round(med, 4), "trials_s": [round(t, 4) for t in trials]}
        print(f"{'seek_thumbs':<14} {med:7.3f} s   ({len(middles)} seeks; in-scan capture is part of 'scan')")
        if not args.no_pyscenedetect:
            try:
                med, trials, out = timed(lambda: pyscenedetect(path), args.trials)
            except ImportError:
                print("scenedetect-headless not installed: skipping the reference", file=sys.stderr)
            else:
                rows["pyscenedetect"] = {
                    "median_s": round(med, 4),
                    "trials_s": [round(t, 4) for t in trials],
                    "cuts_found": len(out),
                    "same_cuts_as_truth": len(out) == len(truth)
                    and all(abs(a - b) <= 1 for a, b in zip(out, truth, strict=True)),
                }
                print(f"{'pyscenedetect':<14} {med:7.3f} s")
    finally:
        shutil.rmtree(out_root, ignore_errors=True)

    base = rows["ffmpeg_null"]["median_s"]
    ratios = {k: round(base / v["median_s"], 3) for k, v in rows.items() if k != "ffmpeg_null"}
    ratios_best = {
        k: round(rows["ffmpeg_null"]["min_s"] / v["min_s"], 3)
        for k, v in rows.items()
        if k != "ffmpeg_null" and "min_s" in v
    }
    ok = {k: ratios[k] >= t for k, t in TARGETS.items()}
    print("\nffmpeg_time / ours:", ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    print("same, best trials:", ", ".join(f"{k} {v:.2f}" for k, v in ratios_best.items()))
    print("targets:", ", ".join(f"{k} >= {t} {'OK' if ok[k] else 'MISSED'}" for k, t in TARGETS.items()))
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    report = {
        "video": {
            "path": str(path),
            "seconds": 60,
            "size": "1280x720",
            "codec": "h264 (x264 veryfast, GOP 250)",
            "cuts": len(truth),
            "bytes": path.stat().st_size,
        },
        "trials": args.trials,
        "results": rows,
        "ratios_ffmpeg_over_ours": ratios,
        "ratios_best_trials": ratios_best,
        "targets": TARGETS,
        "targets_met": ok,
        "env": {
            "python": platform.python_version(),
            "pyav": av.__version__,
            "pyav_ffmpeg": str(getattr(av, "ffmpeg_version_info", "")),
            "ffmpeg_cli": ffmpeg_version,
            "cpus": __import__("os").cpu_count(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
