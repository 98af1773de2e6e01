"""POST /api/upload hands out a signed upload URL under the caller's folder; the browser PUTs there."""

from __future__ import annotations

import httpx

from tests.api.conftest import Account, create


def ask(http: httpx.Client, who: Account, **body: object) -> httpx.Response:
    payload = {"filename": "My Holiday (final).mp4", "size": 1234, "contentType": "video/mp4", **body}
    return http.post("/api/upload", json=payload, headers=who.auth)


def test_upload_url_is_under_the_users_folder_and_works(http: httpx.Client, alice: Account) -> None:
    r = ask(http, alice)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["storagePath"].startswith(f"{alice.id}/") and body["storagePath"].endswith("-My-Holiday-final.mp4")
    # the browser's part: PUT the bytes to the signed URL, no auth header needed
    put = httpx.put(body["uploadUrl"], files={"file": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\0" * 64,
                                                      "video/mp4")})
    assert put.status_code == 200, put.text
    # the task can now point at it, and only at the user's own folder
    r = http.post("/api/task", json={"type": "video_analysis", "payload": {"storagePath": body["storagePath"]}},
                  headers=alice.auth)
    assert r.status_code == 201 and r.json()["task"]["payload"] == {"storagePath": body["storagePath"]}


def test_upload_refuses_non_video_and_too_large(http: httpx.Client, alice: Account) -> None:
    for body, field in [({"contentType": "text/html"}, "contentType"), ({"contentType": "image/png"}, "contentType"),
                        ({"size": 600 * 1024 * 1024}, "size"), ({"size": 0}, "size"), ({"filename": ""}, "filename")]:
        r = ask(http, alice, **body)
        assert r.status_code == 400, body
        assert [f["field"] for f in r.json()["error"]["fields"]] == [field]


def test_upload_needs_a_token(http: httpx.Client) -> None:
    r = http.post("/api/upload", json={"filename": "a.mp4", "size": 1, "contentType": "video/mp4"})
    assert r.status_code == 401


def test_batch_status_returns_only_own_tasks(http: httpx.Client, alice: Account, bob: Account) -> None:
    mine = [create(http, alice)["taskId"] for _ in range(3)]
    theirs = create(http, bob)["taskId"]
    r = http.get("/api/tasks", params={"ids": ",".join([*mine, theirs, "01ZZZZZZZZZZZZZZZZZZZZZZZZ"])},
                 headers=alice.auth)
    assert r.status_code == 200
    tasks = r.json()["tasks"]
    assert [t["id"] for t in tasks] == mine
    assert all(t["queuePosition"] >= 1 for t in tasks)
    for bad in ["", "x", ",".join(mine * 20)]:
        assert http.get("/api/tasks", params={"ids": bad}, headers=alice.auth).status_code == 400
