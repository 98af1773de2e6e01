"""video_analysis end to end: API function -> queue -> real worker -> PyAV -> Storage -> signed URLs.

Its own local cloud with one worker (the shared ``cloud`` fixture must keep its tasks queued).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.httpkit import Request, Response, serve_in_thread
from devstack.stack import LocalCloud, serve_router, start_local_cloud, start_worker
from tests.api.conftest import Account, sign_up
from tests.hf_worker.videos import make_html, make_video

pytestmark = pytest.mark.slow


class Studio:
    def __init__(self, cloud: LocalCloud, url: str, media: str) -> None:
        self.cloud, self.url, self.media = cloud, url, media

    def wait(self, http: httpx.Client, who: Account, task_id: str, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            task = http.get(f"/api/status?taskId={task_id}", headers=who.auth).json()["task"]
            seen.append((task["status"], task["stage"]))
            if task["status"] in ("done", "failed", "canceled"):
                task["_seen"] = seen
                return task  # type: ignore[no-any-return]
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} did not finish: {seen[-5:]}")


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    media_dir = tmp_path_factory.mktemp("media")
    spec = make_video(media_dir / "cuts.mp4", scenes=((20, "red"), (25, "green"), (15, "blue")), fps=25)
    assert spec.cuts == [20, 45]
    make_html(media_dir / "page.mp4")

    def media(req: Request) -> Response:
        file = media_dir / req.path.lstrip("/")
        if req.path.count("/") != 1 or not file.is_file():
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        return Response(200, file.read_bytes(), {"Content-Type": "video/mp4"})

    media_server = serve_in_thread(media)
    cloud = start_local_cloud(tmp_path_factory.mktemp("studio"), persist=False)
    cloud.env["SORASTUDIO_ALLOW_PRIVATE_URLS"] = "true"
    try:
        start_worker(cloud, HEARTBEAT_SECONDS="0.3", POLL_MAX_SECONDS="2")
        router = serve_router(cloud.env)
        yield Studio(cloud, router.url, f"http://127.0.0.1:{media_server.server_port}")
        router.close()
    finally:
        cloud.stop()
        media_server.shutdown()


@pytest.fixture(scope="module")
def http(studio: Studio) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=studio.url, timeout=30) as client:
        yield client


def test_analysis_by_url_finishes_with_signed_thumbnails(studio: Studio, http: httpx.Client) -> None:
    who = sign_up(http)
    r = http.post("/api/task", json={"type": "video_analysis", "payload": {"videoUrl": f"{studio.media}/cuts.mp4"}},
                  headers=who.auth)
    assert r.status_code == 201
    task = studio.wait(http, who, r.json()["taskId"])
    assert task["status"] == "done", task["error"]
    result = task["result"]
    assert isinstance(result, dict)
    assert [s["startFrame"] for s in result["scenes"]] == [0, 20, 45]
    assert result["media"]["video"]["width"] == 320 and result["media"]["video"]["frameCount"] == 60
    prefix = f"{who.id}/{task['id']}/"
    paths = [result["poster"], *(s["thumbnail"] for s in result["scenes"])]
    assert all(p.startswith(prefix) for p in paths)
    # the status read signed every file for this user; the URLs work without any header
    assert set(result["urls"]) == set(paths) and result["urlsExpireAt"] > time.time()
    for path in paths:
        img = httpx.get(result["urls"][path])
        assert img.status_code == 200 and img.content[:4] == b"RIFF" and img.content[8:12] == b"WEBP"
    # another user cannot read them, even by status
    other = sign_up(http)
    assert http.get(f"/api/status?taskId={task['id']}", headers=other.auth).status_code == 404


def test_uploaded_file_is_analyzed(studio: Studio, http: httpx.Client, tmp_path: Path) -> None:
    who = sign_up(http)
    make_video(tmp_path / "mine.mp4", scenes=((15, "red"), (15, "blue")), fps=25)
    data = (tmp_path / "mine.mp4").read_bytes()
    r = http.post("/api/upload", json={"filename": "mine.mp4", "size": len(data), "contentType": "video/mp4"},
                  headers=who.auth)
    assert r.status_code == 201
    up = r.json()
    assert httpx.put(up["uploadUrl"], files={"file": ("mine.mp4", data, "video/mp4")}).status_code == 200
    r = http.post("/api/task", json={"type": "video_analysis", "payload": {"storagePath": up["storagePath"]}},
                  headers=who.auth)
    task = studio.wait(http, who, r.json()["taskId"])
    assert task["status"] == "done", task["error"]
    result = task["result"]
    assert isinstance(result, dict)
    assert [s["startFrame"] for s in result["scenes"]] == [0, 15]
    # the status read also signed the upload itself, so the page can play the source
    source = httpx.get(result["urls"][up["storagePath"]])
    assert source.status_code == 200 and source.content == data


@pytest.mark.parametrize(("name", "code"), [("missing.mp4", "source_not_found"), ("page.mp4", "not_a_video")])
def test_bad_sources_fail_with_a_clear_code(studio: Studio, http: httpx.Client, name: str, code: str) -> None:
    who = sign_up(http)
    r = http.post("/api/task", json={"type": "video_analysis", "payload": {"videoUrl": f"{studio.media}/{name}"}},
                  headers=who.auth)
    task = studio.wait(http, who, r.json()["taskId"])
    assert task["status"] == "failed" and task["error"]["code"] == code  # type: ignore[index]
    assert task["attempts"] == 1 and task["result"] is None
    leftovers = list((studio.cloud.data_dir / "worker-tmp").iterdir())
    assert leftovers == [], leftovers
