"""public/openapi.json: valid OpenAPI 3.1, in step with api/, and true of real responses.

The responses come from the real functions behind the local Vercel-style router (real Redis,
the Upstash and Supabase Auth stand-ins); each JSON body is validated against the schema the spec
gives for its status code, and the status code itself must be documented (not just ``default``).
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from devstack.localkeys import LOCAL_JWT_SECRET
from devstack.vercel import discover_routes
from tests.conftest import Api
from tests.public.conftest import Studio

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "public" / "openapi.json"
SPEC_URI = "urn:sorastudio:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def registry(spec: dict[str, Any]) -> Registry:
    """The whole spec as one JSON Schema resource, so ``#/components/...`` refs resolve."""
    return Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow an OpenAPI Reference Object (``{"$ref": "#/components/responses/X"}``) inside the spec."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


class Checker:
    """Validates a live response against the spec's operation for (path, method, status)."""

    def __init__(self, spec: dict[str, Any], registry: Registry) -> None:
        self.spec = spec
        self.registry = registry

    def __call__(self, resp: httpx.Response, path: str, method: str) -> dict[str, Any]:
        method = method.lower()
        operation = self.spec["paths"][path][method]
        status = str(resp.status_code)
        assert status in operation["responses"], f"{method.upper()} {path} answered undocumented {status}: {resp.text}"
        response = _resolve(self.spec, operation["responses"][status])
        assert resp.headers["content-type"].startswith("application/json"), resp.headers["content-type"]
        for name, header in response.get("headers", {}).items():
            if header.get("required") or name.lower() in ("allow", "www-authenticate"):
                assert name in resp.headers, f"{method.upper()} {path} {status}: missing {name} header"
        # Point at the schema where it sits in the spec, so its relative $refs resolve there.
        raw = operation["responses"][status]
        where = (
            _pointer("components", "responses", raw["$ref"].rsplit("/", 1)[1])
            if "$ref" in raw
            else _pointer("paths", path, method, "responses", status)
        )
        schema = {"$ref": f"{SPEC_URI}#{where}{_pointer('content', 'application/json', 'schema')}"}
        validator = Draft202012Validator(
            schema, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        body = resp.json()
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{method.upper()} {path} {status} does not match the spec: " + "; ".join(
            f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5]
        )
        return body


@pytest.fixture(scope="module")
def check(spec: dict[str, Any], registry: Registry) -> Checker:
    return Checker(spec, registry)


@pytest.fixture
def http(api: Api) -> httpx.Client:
    with api.client() as client:
        yield client


def _register(http: httpx.Client, check: Checker) -> dict[str, Any]:
    email = f"spec-{uuid.uuid4().hex[:12]}@example.com"
    r = http.post("/api/auth/register", json={"email": email, "password": "correct horse battery"})
    body = check(r, "/api/auth/register", "post")
    assert r.status_code == 201, r.text
    assert body["session"] is not None
    return {"email": email, "password": "correct horse battery", **body}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the document itself -----------------------------------------------------------------------


def test_spec_is_valid_openapi_31(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    validate_openapi(spec)


def test_spec_paths_and_methods_match_the_functions(spec: dict[str, Any]) -> None:
    served: dict[str, set[str]] = {}
    for route, rel in discover_routes(ROOT).items():
        module_spec = importlib.util.spec_from_file_location(f"_spec_route_{rel.stem}", ROOT / rel)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        handler = getattr(module, "handler", None) or module.Handler
        served[route] = {m.lower() for m in handler.allowed_methods}
    documented = {path: {m for m in item if m in HTTP_METHODS} for path, item in spec["paths"].items()}
    assert documented == served


def test_every_operation_documents_errors_and_security(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            responses = op["responses"]
            assert "405" in responses and "default" in responses, (path, method)
            if path.startswith("/api/auth/") or path == "/api/health":
                assert "security" not in op, (path, method)
            else:
                assert op["security"] == [{"bearerAuth": []}], (path, method)
                assert "401" in responses, (path, method)
            if method == "post":
                assert {"413", "415"} <= responses.keys(), (path, method)


# --- live responses against the spec -------------------------------------------------------------


def test_auth_responses_match_spec(http: httpx.Client, check: Checker) -> None:
    user = _register(http, check)

    r = http.post("/api/auth/register", json={"email": user["email"], "password": "another password"})
    assert r.status_code == 409 and check(r, "/api/auth/register", "post")["error"]["code"] == "email_taken"

    r = http.post("/api/auth/register", json={"email": "not-an-email"})
    body = check(r, "/api/auth/register", "post")
    assert r.status_code == 400 and body["error"]["code"] == "invalid_request"
    assert {f["field"] for f in body["error"]["fields"]} == {"email", "password"}

    r = http.post("/api/auth/register", content=b"email=a", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and check(r, "/api/auth/register", "post")

    r = http.post("/api/auth/login", json={"email": user["email"], "password": user["password"]})
    body = check(r, "/api/auth/login", "post")
    assert r.status_code == 200 and body["user"]["email"] == user["email"]

    r = http.post("/api/auth/login", json={"refreshToken": body["session"]["refreshToken"]})
    refreshed = check(r, "/api/auth/login", "post")
    assert r.status_code == 200 and refreshed["session"]["expiresAt"] > time.time()

    r = http.post("/api/auth/login", json={"email": user["email"], "password": "wrong password"})
    assert r.status_code == 401 and check(r, "/api/auth/login", "post")["error"]["code"] == "invalid_credentials"

    r = http.post("/api/auth/login", json={"refreshToken": "not-a-refresh-token"})
    assert r.status_code == 401
    assert check(r, "/api/auth/login", "post")["error"]["code"] == "invalid_refresh_token"

    r = http.get("/api/auth/login")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert check(r, "/api/auth/login", "post")["error"]["code"] == "method_not_allowed"


def test_task_lifecycle_responses_match_spec(http: httpx.Client, check: Checker) -> None:
    alice = _register(http, check)
    auth = _bearer(alice["session"]["accessToken"])
    key = uuid.uuid4().hex
    request = {"type": "video_analysis", "payload": {"videoUrl": "https://example.com/clip.mp4"}}

    r = http.post("/api/task", json=request, headers={**auth, "Idempotency-Key": key})
    created = check(r, "/api/task", "post")
    assert r.status_code == 201 and created["replayed"] is False
    task_id = created["taskId"]
    assert created["task"]["status"] == "queued" and created["task"]["queuePosition"] >= 1

    r = http.post("/api/task", json=request, headers={**auth, "Idempotency-Key": key})
    replay = check(r, "/api/task", "post")
    assert r.status_code == 201 and replay["replayed"] is True and replay["taskId"] == task_id

    other = {"type": "video_analysis", "payload": {"videoUrl": "https://example.com/other.mp4"}}
    r = http.post("/api/task", json=other, headers={**auth, "Idempotency-Key": key})
    assert r.status_code == 409 and check(r, "/api/task", "post")["error"]["code"] == "idempotency_key_reused"

    r = http.get("/api/status", params={"taskId": task_id}, headers=auth)
    status = check(r, "/api/status", "get")
    assert r.status_code == 200 and status["task"]["id"] == task_id and status["task"]["queuePosition"] >= 1

    r = http.get("/api/tasks", headers=auth)
    page = check(r, "/api/tasks", "get")
    assert r.status_code == 200 and [t["id"] for t in page["tasks"]] == [task_id]

    r = http.get("/api/tasks", params={"status": "queued", "limit": 1}, headers=auth)
    assert r.status_code == 200 and check(r, "/api/tasks", "get")["tasks"][0]["id"] == task_id

    r = http.post("/api/cancel", params={"taskId": task_id}, headers=auth)
    canceled = check(r, "/api/cancel", "post")
    assert r.status_code == 200 and canceled["task"]["status"] == "canceled"
    assert "queuePosition" not in canceled["task"]

    r = http.post("/api/cancel", params={"taskId": task_id}, headers=auth)
    assert r.status_code == 409 and check(r, "/api/cancel", "post")["error"]["code"] == "task_finished"

    r = http.get("/api/status", params={"taskId": task_id}, headers=auth)
    assert check(r, "/api/status", "get")["task"]["finishedAt"] is not None

    # Someone else's task reads exactly like a missing one.
    bob = _register(http, check)
    for path, method in (("/api/status", "get"), ("/api/cancel", "post")):
        r = http.request(method, path, params={"taskId": task_id}, headers=_bearer(bob["session"]["accessToken"]))
        assert r.status_code == 404 and check(r, path, method)["error"]["code"] == "task_not_found"


def test_task_error_responses_match_spec(http: httpx.Client, check: Checker) -> None:
    alice = _register(http, check)
    auth = _bearer(alice["session"]["accessToken"])
    good = {"type": "video_analysis", "payload": {"videoUrl": "https://example.com/clip.mp4"}}

    r = http.post("/api/task", json=good)
    assert r.status_code == 401 and check(r, "/api/task", "post")["error"]["code"] == "unauthorized"
    r = http.post("/api/task", json=good, headers=_bearer("not.a.jwt"))
    assert r.status_code == 401 and check(r, "/api/task", "post")["error"]["code"] == "invalid_token"
    expired = jwt.encode(
        {"sub": alice["user"]["id"], "aud": "authenticated", "role": "authenticated", "exp": int(time.time()) - 3600},
        LOCAL_JWT_SECRET,
        algorithm="HS256",
    )
    r = http.get("/api/tasks", headers=_bearer(expired))
    assert r.status_code == 401 and check(r, "/api/tasks", "get")["error"]["code"] == "token_expired"

    bad = {"type": "video_analysis", "payload": {"videoUrl": "ftp://example.com/clip.mp4"}}
    r = http.post("/api/task", json=bad, headers=auth)
    body = check(r, "/api/task", "post")
    assert r.status_code == 400 and body["error"]["fields"][0]["field"] == "payload.videoUrl"

    r = http.post("/api/task", json=good, headers={**auth, "Idempotency-Key": "x" * 256})
    assert r.status_code == 400 and check(r, "/api/task", "post")["error"]["code"] == "invalid_idempotency_key"

    r = http.post("/api/task", content=b"{}", headers={**auth, "Content-Type": "text/plain"})
    assert r.status_code == 415 and check(r, "/api/task", "post")["error"]["code"] == "unsupported_media_type"

    big = json.dumps({**good, "pad": "x" * (64 * 1024)}).encode()
    r = http.post("/api/task", content=big, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413 and check(r, "/api/task", "post")["error"]["code"] == "body_too_large"

    r = http.get("/api/task", headers=auth)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert check(r, "/api/task", "post")["error"]["code"] == "method_not_allowed"

    r = http.get("/api/status", headers=auth)
    assert r.status_code == 400 and check(r, "/api/status", "get")["error"]["fields"][0]["field"] == "taskId"
    r = http.get("/api/status", params={"taskId": "0" * 26}, headers=auth)
    assert r.status_code == 404 and check(r, "/api/status", "get")

    for params in ({"limit": "0"}, {"limit": "101"}, {"status": "lost"}, {"cursor": "nope"}):
        r = http.get("/api/tasks", params=params, headers=auth)
        assert r.status_code == 400 and check(r, "/api/tasks", "get")["error"]["code"] == "invalid_request"


def test_health_matches_spec(http: httpx.Client, check: Checker) -> None:
    r = http.get("/api/health")
    body = check(r, "/api/health", "get")
    assert r.status_code == 200 and body["ok"] is True
    r = http.post("/api/health", json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert check(r, "/api/health", "get")["error"]["code"] == "method_not_allowed"


def test_retrying_task_status_matches_spec(http: httpx.Client, check: Checker, api: Api) -> None:
    from upstash_redis import Redis

    from sorastudio.models import TaskStatus, now_iso
    from sorastudio.taskqueue import LeaseOp, Lifecycle, QueueOp, TaskQueue

    alice = _register(http, check)
    auth = _bearer(alice["session"]["accessToken"])
    request = {"type": "video_analysis", "payload": {"videoUrl": "https://example.com/retry.mp4"}}
    task_id = check(http.post("/api/task", json=request, headers=auth), "/api/task", "post")["taskId"]
    env = api.cloud.env
    queue = TaskQueue(
        Redis(url=env["UPSTASH_REDIS_REST_URL"], token=env["UPSTASH_REDIS_REST_TOKEN"], allow_telemetry=False),
        retention_seconds=3600,
    )
    # What a worker does: claim this task (as Lifecycle.claim does, but for this one), then fail
    # it with a retryable error, which parks it in tasks:delayed as queued.
    snap = queue.read(task_id)
    running = snap.task.model_copy(
        update={
            "status": TaskStatus.RUNNING,
            "stage": "starting",
            "attempts": 1,
            "started_at": now_iso(),
            "updated_at": now_iso(),
            "worker_id": "spec-test",
        }
    )
    applied, snap = queue.transition(
        snap, running, queue=QueueOp.REMOVE, lease=LeaseOp.SET, lease_deadline_ms=int(time.time() * 1000) + 30_000
    )
    assert applied and snap is not None
    outcome, _ = Lifecycle(queue, "spec-test").fail(
        snap, "fetch_failed", "The video host did not answer.", retryable=True
    )
    assert outcome == "retry"

    r = http.get("/api/status", params={"taskId": task_id}, headers=auth)
    body = check(r, "/api/status", "get")
    assert r.status_code == 200 and body["task"]["status"] == "queued"
    assert body["task"]["error"]["code"] == "fetch_failed"


def test_upload_and_batch_responses_match_spec(http: httpx.Client, check: Checker) -> None:
    alice = _register(http, check)
    auth = _bearer(alice["session"]["accessToken"])

    r = http.post("/api/upload", json={"filename": "clip <1>.mp4", "size": 1234, "contentType": "video/mp4"},
                  headers=auth)
    grant = check(r, "/api/upload", "post")
    assert r.status_code == 201 and grant["storagePath"].startswith(f"{alice['user']['id']}/")
    assert grant["method"] == "PUT" and grant["formField"] == "file"
    payload = {"storagePath": grant["storagePath"]}
    r = http.post("/api/task", json={"type": "video_analysis", "payload": payload}, headers=auth)
    assert r.status_code == 201 and check(r, "/api/task", "post")["task"]["payload"] == payload

    for body in ({"filename": "notes.txt", "size": 10, "contentType": "text/plain"},
                 {"filename": "big.mp4", "size": 500 * 1024 * 1024 + 1, "contentType": "video/mp4"}):
        r = http.post("/api/upload", json=body, headers=auth)
        assert r.status_code == 400 and check(r, "/api/upload", "post")["error"]["code"] == "invalid_request"
    r = http.post("/api/upload", json={"filename": "a.mp4", "size": 1, "contentType": "video/mp4"})
    assert r.status_code == 401 and check(r, "/api/upload", "post")
    r = http.get("/api/upload", headers=auth)
    assert r.status_code == 405 and check(r, "/api/upload", "post")["error"]["code"] == "method_not_allowed"

    # ?ids= answers exactly the caller's tasks among those asked for, with queue positions.
    link = {"type": "video_analysis", "payload": {"videoUrl": "https://example.com/batch.mp4"}}
    mine = [check(http.post("/api/task", json=link, headers=auth), "/api/task", "post")["taskId"] for _ in range(2)]
    bob = _register(http, check)
    theirs = check(http.post("/api/task", json=link, headers=_bearer(bob["session"]["accessToken"])),
                   "/api/task", "post")["taskId"]
    r = http.get("/api/tasks", params={"ids": ",".join([*mine, theirs, "0" * 26])}, headers=auth)
    batch = check(r, "/api/tasks", "get")
    assert r.status_code == 200 and sorted(t["id"] for t in batch["tasks"]) == sorted(mine)
    assert all(t["queuePosition"] >= 1 for t in batch["tasks"]) and batch["nextCursor"] is None
    r = http.get("/api/tasks", params={"ids": "not-an-id"}, headers=auth)
    assert r.status_code == 400 and check(r, "/api/tasks", "get")["error"]["fields"][0]["field"] == "ids"


@pytest.mark.slow
@pytest.mark.xdist_group("browser")  # shares the worker-backed ``studio`` stack with the page tests
def test_done_status_with_signed_urls_matches_spec(studio: Studio, check: Checker) -> None:
    with httpx.Client(base_url=studio.url, timeout=30) as http:
        who = _register(http, check)
        auth = _bearer(who["session"]["accessToken"])
        link = {"type": "video_analysis", "payload": {"videoUrl": f"{studio.media.url}/clip.mp4"}}
        task_id = check(http.post("/api/task", json=link, headers=auth), "/api/task", "post")["taskId"]
        deadline = time.monotonic() + 60
        while True:
            r = http.get("/api/status", params={"taskId": task_id}, headers=auth)
            task = check(r, "/api/status", "get")["task"]
            if task["status"] in ("done", "failed", "canceled") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert task["status"] == "done", task
        result = task["result"]
        assert set(result["urls"]) == {result["poster"], *(s["thumbnail"] for s in result["scenes"])}
        assert result["urlsExpireAt"] > time.time()
        r = http.get("/api/tasks", params={"ids": task_id}, headers=auth)
        listed = check(r, "/api/tasks", "get")["tasks"][0]["result"]
        assert "urls" not in listed  # only /api/status signs
