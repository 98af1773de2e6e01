"""public/openapi.json for ``text_to_video``: live answers of the real functions match the spec, and the
stored payload (seed and frame count filled in by the API) is a valid ``TextToVideoPayload``.

Runs against the shared local cloud, which has no worker: a generation stays queued and says it is
waiting for a GPU worker. A finished generation's result is checked against ``TextToVideoResult`` by
``test_generate_browser.py``, which has a worker that runs text_to_video.
"""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator

from tests.public.test_openapi import (  # noqa: F401 - the fixtures are used by name
    Checker,
    _bearer,
    _register,
    check,
    http,
    registry,
    spec,
)


def _valid(document: dict[str, Any], name: str, value: Any) -> list[str]:
    schema = document["components"]["schemas"][name]
    return [e.message for e in Draft202012Validator(schema).iter_errors(value)]


def test_text_to_video_create_status_and_errors_match_spec(
        http: httpx.Client, check: Checker, spec: dict[str, Any]) -> None:  # noqa: F811
    auth = _bearer(_register(http, check)["session"]["accessToken"])
    request = {"type": "text_to_video", "payload": {"prompt": "a red ball", "resolution": "tiny", "durationSeconds": 1,
                                                    "fps": 8, "steps": 2}}
    r = http.post("/api/task", json=request, headers=auth)
    body = check(r, "/api/task", "post")
    assert r.status_code == 201, r.text
    stored = body["task"]["payload"]
    assert stored["numFrames"] == 9 and "durationSeconds" not in stored and 0 <= stored["seed"] < 2**32, stored
    assert _valid(spec, "TextToVideoPayload", stored) == []
    assert _valid(spec, "TextToVideoPayload", request["payload"]) == []

    r = http.get(f"/api/status?taskId={body['taskId']}", headers=auth)
    task = check(r, "/api/status", "get")["task"]
    assert task["status"] == "queued" and task["stage"] == "waiting for a GPU worker", task

    for payload, field in (({"prompt": "x", "numFrames": 10}, "payload.numFrames"),
                           ({"prompt": "x", "resolution": "8k"}, "payload.resolution"),
                           ({"prompt": "x", "seed": 2**32}, "payload.seed"),
                           ({"prompt": " "}, "payload.prompt")):
        r = http.post("/api/task", json={"type": "text_to_video", "payload": payload}, headers=auth)
        error = check(r, "/api/task", "post")["error"]
        assert r.status_code == 400 and error["code"] == "invalid_request", r.text
        assert [f["field"] for f in error["fields"]] == [field], error
        assert _valid(spec, "TextToVideoPayload", payload) != [], payload
