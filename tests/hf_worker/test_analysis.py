"""video_analysis engine: cuts against generated truth and PySceneDetect, metadata against ffprobe,
thumbnails, faces, failure codes (with no files left behind), cancel and progress."""

from __future__ import annotations

import importlib.util
import itertools
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from studio_worker.analysis import AnalysisResult, Limits, analyze
from studio_worker.errors import Canceled, PermanentError

from tests.hf_worker.videos import (
    VideoSpec,
    make_audio_only,
    make_corrupt,
    make_html,
    make_image_video,
    make_large_dims,
    make_video,
)

FFPROBE = shutil.which("ffprobe")

# (name, make_video kwargs): several sizes, rates, codecs/containers, with and without audio.
CASES: dict[str, dict] = {
    "h264_25fps": {
        "width": 320,
        "height": 180,
        "fps": 25,
        "scenes": [(30, "red"), (24, "green"), (40, "blue"), (26, "white")],
    },
    "h264_ntsc_audio": {
        "width": 256,
        "height": 144,
        "fps": Fraction(30000, 1001),
        "scenes": [(20, "dark"), (33, "yellow"), (21, "noise"), (28, "teal")],
        "audio": True,
    },
    "mpeg4_mkv_50fps_mono": {
        "width": 192,
        "height": 108,
        "fps": 50,
        "codec": "mpeg4",
        "scenes": [(40, "purple"), (45, "orange"), (30, "green")],
        "audio": True,
        "audio_rate": 44100,
        "audio_layout": "mono",
        "ext": "mkv",
    },
    "h264_rotated_12fps_short_scenes": {
        "width": 160,
        "height": 120,
        "fps": 12,
        "scenes": [(8, "red"), (6, "blue"), (10, "yellow"), (7, "dark")],
        "rotation": 90,
    },
}


def _make(tmp: Path, name: str) -> VideoSpec:
    kwargs = dict(CASES[name])
    ext = kwargs.pop("ext", "mp4")
    return make_video(tmp / f"{name}.{ext}", **kwargs)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, VideoSpec]:
    tmp = tmp_path_factory.mktemp("videos")
    return {name: _make(tmp, name) for name in CASES}


@pytest.fixture(scope="module")
def results(
    videos: dict[str, VideoSpec], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[AnalysisResult, Path, list]]:
    out = tmp_path_factory.mktemp("out")
    done = {}
    for name, spec in videos.items():
        events: list[tuple[int, str]] = []
        result = analyze(spec.path, out / name, progress=lambda p, s, ev=events: ev.append((p, s)))
        done[name] = (result, out / name, events)
    return done


def _cuts(result: AnalysisResult) -> list[int]:
    return [s.start_frame for s in result.scenes[1:]]


def _near(found: list[int], truth: list[int], tol: int = 1) -> bool:
    return len(found) == len(truth) and all(abs(a - b) <= tol for a, b in zip(found, truth, strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_cuts_match_truth(name: str, videos: dict[str, VideoSpec], results: dict) -> None:
    spec, (result, _, _) = videos[name], results[name]
    assert _near(_cuts(result), spec.cuts), (_cuts(result), spec.cuts)
    scenes = result.scenes
    assert scenes[0].start_frame == 0 and scenes[-1].end_frame == spec.n_frames - 1
    for a, b in itertools.pairwise(scenes):
        assert b.start_frame == a.end_frame + 1
        assert b.start_time == pytest.approx(a.end_time, abs=1e-6)
        assert b.start_time == pytest.approx(b.start_frame / float(spec.fps), abs=1e-3)
    assert scenes[-1].end_time == pytest.approx(spec.duration, abs=1e-3)
    assert result.media.video.frame_count == spec.n_frames
    for s in scenes:
        assert 0 < s.mean_brightness < 255 and s.motion_energy >= 0
        assert s.start_frame <= s.thumbnail_frame <= s.end_frame
        # The scan keeps a thinned set of candidates: the thumbnail is near, not always at, the middle.
        assert abs(s.thumbnail_frame - (s.start_frame + s.end_frame) // 2) <= max(1, (s.end_frame - s.start_frame) // 8)


def test_per_scene_numbers(results: dict) -> None:
    result = results["h264_25fps"][0]
    by_style = dict(zip(["red", "green", "blue", "white"], result.scenes, strict=True))
    assert by_style["white"].mean_brightness > by_style["blue"].mean_brightness + 50
    # The moving box gives every scene some motion, far below a cut's score.
    assert all(0 < s.motion_energy < 12 for s in result.scenes)
    assert all(s.cut_score is not None and s.cut_score > 12 for s in result.scenes[1:])


def test_thumbnails_and_poster(results: dict) -> None:
    for result, out_dir, _ in results.values():
        files = sorted(p.name for p in out_dir.iterdir())
        assert files == sorted([s.thumbnail for s in result.scenes] + [result.poster])
        v = result.media.video
        for s in result.scenes:
            img = cv2.imread(str(out_dir / s.thumbnail))
            assert img is not None and img.shape[1] <= 320
            # Upright (rotation applied) and with the display aspect ratio.
            assert img.shape[1] / img.shape[0] == pytest.approx(v.display_width / v.display_height, rel=0.05)
        poster = cv2.imread(str(out_dir / result.poster))
        assert poster is not None and poster.shape[1] <= 640
        assert 0 <= result.poster_frame < v.frame_count


def test_rotation_is_applied(results: dict) -> None:
    result, out_dir, _ = results["h264_rotated_12fps_short_scenes"]
    v = result.media.video
    assert (v.rotation, v.width, v.height, v.display_width, v.display_height) == (90, 160, 120, 120, 160)
    assert cv2.imread(str(out_dir / result.scenes[0].thumbnail)).shape[:2] == (160, 120)


def test_progress_is_monotone_with_real_stages(results: dict) -> None:
    for _, _, events in results.values():
        pcts = [p for p, _ in events]
        assert pcts == sorted(pcts) and pcts[-1] == 100
        stages = [s for _, s in events]
        assert stages[0] == "probing"
        assert any(s.startswith("scanning scenes ") and s.endswith("%") for s in stages)
        assert "thumbnails" in stages and "detecting faces" in stages


def test_json_is_camel_case(results: dict) -> None:
    data = json.loads(results["h264_ntsc_audio"][0].model_dump_json())
    assert {"media", "scenes", "poster", "posterFrame", "model", "decodeErrors"} <= data.keys()
    assert {"frameCount", "containerFrameCount", "fpsRational", "displayAspectRatio"} <= data["media"]["video"].keys()
    assert {"startFrame", "endTime", "meanBrightness", "motionEnergy", "faces"} <= data["scenes"][0].keys()
    assert data["media"]["audio"] == {
        "codec": "aac",
        "profile": "LC",
        "sampleRate": 48000,
        "channels": 2,
        "channelLayout": "stereo",
    }
    assert data["model"]["package"].startswith("opencv-python-headless==4.")
    assert AnalysisResult.model_validate(data) == results["h264_ntsc_audio"][0]


def _ffprobe(path: Path) -> dict:
    out = subprocess.run(
        [
            FFPROBE or "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return json.loads(out)


@pytest.mark.parametrize("name", list(CASES))
def test_metadata_matches_ffprobe(name: str, videos: dict[str, VideoSpec], results: dict) -> None:
    media = results[name][0].media
    info = _ffprobe(videos[name].path)
    fmt = info["format"]
    vs = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert media.container == fmt["format_name"]
    assert media.duration == pytest.approx(float(fmt["duration"]), abs=1e-3)
    assert media.size == int(fmt["size"])
    # Same formula (size / duration); FFmpeg versions round the mp4 duration a hair differently.
    assert media.bitrate == pytest.approx(int(fmt["bit_rate"]), rel=1e-3)
    v = media.video
    assert (v.codec, v.width, v.height, v.pixel_format) == (vs["codec_name"], vs["width"], vs["height"], vs["pix_fmt"])
    assert v.profile == vs.get("profile")
    assert v.fps_rational == vs["avg_frame_rate"]
    assert v.frame_count == int(vs["nb_read_frames"])  # ffprobe decoded and counted them too
    assert v.container_frame_count == (int(vs["nb_frames"]) if "nb_frames" in vs else None)
    if "display_aspect_ratio" in vs:
        assert v.display_aspect_ratio == vs["display_aspect_ratio"]
    rotation = next((sd["rotation"] for sd in vs.get("side_data_list", []) if "rotation" in sd), 0)
    assert v.rotation == -int(rotation) % 360
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    if not audio:
        assert media.audio is None
    else:
        assert media.audio is not None
        a = audio[0]
        assert (media.audio.codec, media.audio.sample_rate, media.audio.channels) == (
            a["codec_name"],
            int(a["sample_rate"]),
            a["channels"],
        )


@pytest.mark.parametrize("name", ["h264_25fps", "h264_ntsc_audio", "mpeg4_mkv_50fps_mono"])
def test_same_cuts_as_pyscenedetect(name: str, videos: dict[str, VideoSpec], results: dict) -> None:
    import scenedetect  # a dev requirement (scenedetect-headless)
    scenes = scenedetect.detect(str(videos[name].path), scenedetect.ContentDetector(), show_progress=False)
    reference = [start.frame_num for start, _ in scenes[1:]]
    assert _near(_cuts(results[name][0]), reference), (_cuts(results[name][0]), reference)


def test_fades_do_not_multiply_cuts(tmp_path: Path) -> None:
    # Every scene fades to black over its last 15 frames: the cuts (black -> next scene) stay the only cuts.
    spec = make_video(tmp_path / "fade.mp4", scenes=[(40, "white"), (40, "yellow"), (40, "teal")], fade_out_last=15)
    result = analyze(spec.path, tmp_path / "out", progress=lambda *_: None)
    assert _near(_cuts(result), spec.cuts)
    # A single scene that fades out over 2 s: no cut at all.
    spec = make_video(tmp_path / "fade1.mp4", scenes=[(60, "white")], fade_out_last=50)
    assert len(analyze(spec.path, tmp_path / "out1", progress=lambda *_: None).scenes) == 1


def _face_png() -> Path | None:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / "astronaut.png"  # ships in the scikit-image wheel
    return path if path.exists() else None


def test_faces(tmp_path: Path, results: dict) -> None:
    for result, _, _ in results.values():
        assert result.model is not None and "Haar" in result.model.name and "BSD" in result.model.licence
        assert all(s.faces == 0 for s in result.scenes)  # synthetic colour fields hold no faces
    png = _face_png()
    assert png is not None, "scikit-image (a dev requirement) ships the astronaut.png face sample"
    img = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    canvas = np.full((288, 512, 3), 40, np.uint8)  # a 16:9 frame with the portrait in the middle
    canvas[:, 112:400] = cv2.resize(img, (288, 288), interpolation=cv2.INTER_AREA)
    path = make_image_video(tmp_path / "face.mp4", canvas, frames=10)
    result = analyze(path, tmp_path / "out", progress=lambda *_: None)
    assert [s.faces for s in result.scenes] == [1]


# --- failures: each has its code and leaves nothing behind ---------------------------------------


def _fails(path: Path, out_dir: Path, code: str, limits: Limits | None = None) -> PermanentError:
    with pytest.raises(PermanentError) as info:
        analyze(path, out_dir, progress=lambda *_: None, limits=limits)
    assert info.value.code == code, info.value
    assert not out_dir.exists()
    return info.value


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    _fails(tmp_path / "empty.mp4", tmp_path / "out", "empty_file")


def test_missing_file(tmp_path: Path) -> None:
    _fails(tmp_path / "nope.mp4", tmp_path / "out", "file_not_found")


def test_html_is_not_a_video(tmp_path: Path) -> None:
    _fails(make_html(tmp_path / "page.mp4"), tmp_path / "out", "not_a_video")


def test_audio_only(tmp_path: Path) -> None:
    _fails(make_audio_only(tmp_path / "a.m4a"), tmp_path / "out", "no_video_stream")


def test_huge_dimensions(tmp_path: Path, videos: dict[str, VideoSpec]) -> None:
    _fails(make_large_dims(tmp_path / "wide.mkv"), tmp_path / "out", "video_too_large")
    _fails(videos["h264_25fps"].path, tmp_path / "out", "video_too_large", Limits(max_pixels=320 * 180 - 1))


def test_too_long(tmp_path: Path, videos: dict[str, VideoSpec]) -> None:
    _fails(videos["h264_25fps"].path, tmp_path / "out", "video_too_long", Limits(max_duration_s=2))
    # A stream whose length is only known by decoding it: the frame limit stops the scan.
    _fails(videos["h264_25fps"].path, tmp_path / "out", "video_too_long", Limits(max_frames=50))


def test_raw_stream_without_duration(tmp_path: Path) -> None:
    spec = make_video(tmp_path / "raw.h264", scenes=[(20, "red"), (20, "blue")])
    result = analyze(spec.path, tmp_path / "out", progress=lambda *_: None)
    assert _cuts(result) == spec.cuts and result.media.video.frame_count == 40
    _fails(spec.path, tmp_path / "out2", "video_too_long", Limits(max_frames=30))


def test_corrupt_files(tmp_path: Path, videos: dict[str, VideoSpec]) -> None:
    src = videos["h264_25fps"].path
    _fails(make_corrupt(src, tmp_path / "head.mp4", mode="head"), tmp_path / "out", "not_a_video")
    # An mp4 cut short loses its index (moov at the end): recognisably a video, but damaged.
    _fails(make_corrupt(src, tmp_path / "trunc.mp4", mode="truncate"), tmp_path / "out", "corrupt_video")


def test_garbled_middle_is_best_effort(tmp_path: Path, videos: dict[str, VideoSpec]) -> None:
    path = make_corrupt(videos["h264_25fps"].path, tmp_path / "garbled.mp4", mode="garble")
    try:
        result = analyze(path, tmp_path / "out", progress=lambda *_: None)
    except PermanentError as exc:
        assert exc.code == "corrupt_video"
        assert not (tmp_path / "out").exists()
        return
    assert result.decode_errors > 0 and result.warnings
    assert 0 < result.media.video.frame_count <= videos["h264_25fps"].n_frames


# --- cancel ---------------------------------------------------------------------------------------


def test_cancel_before_start(tmp_path: Path, videos: dict[str, VideoSpec]) -> None:
    with pytest.raises(Canceled):
        analyze(videos["h264_25fps"].path, tmp_path / "out", progress=lambda *_: None, should_stop=lambda: True)
    assert not (tmp_path / "out").exists()


def test_cancel_mid_scan(tmp_path: Path, videos: dict[str, VideoSpec]) -> None:
    calls: list[int] = []
    stages: list[str] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 4  # a few polls in: the scan is under way

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("not ours")
    with pytest.raises(Canceled):
        analyze(videos["h264_25fps"].path, out, progress=lambda _p, s: stages.append(s), should_stop=should_stop)
    assert any(s.startswith("scanning") for s in stages) and "thumbnails" not in stages
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
