"""Every function answers bad requests with the right JSON error and changes nothing."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from devstack.localkeys import LOCAL_JWT_SECRET, anon_key
from tests.api.conftest import Account, analysis
from tests.conftest import Api

# route -> the one method it answers
ROUTES = {
    "/api/auth/register": "POST",
    "/api/auth/login": "POST",
    "/api/task": "POST",
    "/api/status": "GET",
    "/api/tasks": "GET",
    "/api/cancel": "POST",
    "/api/health": "GET",
}
AUTHED = ["/api/task", "/api/status", "/api/tasks", "/api/cancel"]


def token(sub: str = "00000000-0000-0000-0000-000000000001", **overrides: object) -> str:
    now = int(time.time())
    claims = {"sub": sub, "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 600,
              **overrides}
    secret = str(claims.pop("_secret", LOCAL_JWT_SECRET))
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    if code:
        assert err["code"] == code, err


@pytest.mark.parametrize("route", AUTHED)
def test_missing_or_bad_tokens_are_401(http: httpx.Client, route: str) -> None:
    method = ROUTES[route]
    bad = {
        "none": {},
        "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
        "empty": {"Authorization": "Bearer"},
        "garbage": {"Authorization": "Bearer abc.def.ghi"},
        "expired": {"Authorization": f"Bearer {token(exp=int(time.time()) - 3600)}"},
        "other secret": {"Authorization": f"Bearer {token(_secret='x' * 40)}"},
        "wrong audience": {"Authorization": f"Bearer {token(aud='someone-else')}"},
        "no sub": {"Authorization": f"Bearer {token(sub=None)}"},
        "anon key": {"Authorization": f"Bearer {anon_key(LOCAL_JWT_SECRET)}"},
        "alg none": {"Authorization": "Bearer " + jwt.encode({"sub": "x", "aud": "authenticated",
                                                               "exp": int(time.time()) + 60}, None, algorithm="none")},
        "huge": {"Authorization": "Bearer " + "a" * 10000},
    }
    for name, headers in bad.items():
        r = http.request(method, route + "?taskId=01ZZZZZZZZZZZZZZZZZZZZZZZZ", headers=headers,
                         json=analysis() if method == "POST" else None)
        assert_error(r, 401)
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), name
    r = http.request(method, route, headers={"Authorization": f"Bearer {token(exp=int(time.time()) - 3600)}"})
    assert r.json()["error"]["code"] == "token_expired"


@pytest.mark.parametrize("route", list(ROUTES))
def test_other_methods_are_405_with_allow(http: httpx.Client, route: str) -> None:
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]:
        if method == ROUTES[route]:
            continue
        r = http.request(method, route)
        assert_error(r, 405, "method_not_allowed")
        assert r.headers["allow"] == ROUTES[route]


@pytest.mark.parametrize("route", [r for r, m in ROUTES.items() if m == "POST"])
def test_body_limits_and_types(http: httpx.Client, alice: Account, route: str) -> None:
    headers = alice.auth
    big = b'{"x":"' + b"a" * (64 * 1024) + b'"}'
    assert_error(http.post(route, content=big, headers={**headers, "Content-Type": "application/json"}), 413,
                 "body_too_large")
    assert_error(http.post(route, content=b"email=a", headers={**headers, "Content-Type": "text/plain"}), 415,
                 "unsupported_media_type")
    assert_error(http.post(route, content=b"{not json", headers={**headers, "Content-Type": "application/json"}),
                 400)


def test_chunked_body_is_refused_not_misread(api: Api, alice: Account) -> None:
    """Vercel's runtime delivers a chunked body as 0 bytes: it must be refused, never half-read."""
    parts = urlsplit(api.url)
    body = b'{"type":"video_analysis","payload":{"videoUrl":"https://e.com/a.mp4"}}'
    request = (
        f"POST /api/task HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice.access_token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(request)
        reply = s.recv(65536).decode()
    assert reply.startswith(("HTTP/1.1 411", "HTTP/1.1 400")), reply


def test_task_field_errors(http: httpx.Client, alice: Account) -> None:
    cases = {
        "ftp url": ({"type": "video_analysis", "payload": {"videoUrl": "ftp://e.com/a.mp4"}}, "payload.videoUrl"),
        "relative url": ({"type": "video_analysis", "payload": {"videoUrl": "/a.mp4"}}, "payload.videoUrl"),
        "credentials": ({"type": "video_analysis", "payload": {"videoUrl": "https://u:p@e.com/a"}}, "payload.videoUrl"),
        "javascript": ({"type": "video_analysis", "payload": {"videoUrl": "javascript:alert(1)"}},
                       "payload.videoUrl"),
        "missing url": ({"type": "video_analysis", "payload": {}}, "payload"),
        "both inputs": ({"type": "video_analysis",
                         "payload": {"videoUrl": "https://e.com/a", "storagePath": "u/a.mp4"}}, "payload"),
        "traversal": ({"type": "video_analysis", "payload": {"storagePath": "../etc/passwd"}}, "payload.storagePath"),
        "not own folder": ({"type": "video_analysis", "payload": {"storagePath": "someone-else/a.mp4"}},
                           "payload.storagePath"),
        "extra field": ({"type": "video_analysis", "payload": {"videoUrl": "https://e.com/a", "x": 1}}, "payload.x"),
        "unknown type": ({"type": "mine_bitcoin", "payload": {}}, "type"),
        "no payload": ({"type": "video_analysis"}, "payload"),
        "payload list": ({"type": "video_analysis", "payload": [1]}, "payload"),
        "url number": ({"type": "video_analysis", "payload": {"videoUrl": 5}}, "payload.videoUrl"),
    }
    for name, (body, field) in cases.items():
        r = http.post("/api/task", json=body, headers=alice.auth)
        assert_error(r, 400, "invalid_request")
        fields = [f["field"] for f in r.json()["error"]["fields"]]
        assert field in fields, (name, fields)
    for raw in [b"[]", b"null", b"1", b'"x"']:
        r = http.post("/api/task", content=raw, headers={**alice.auth, "Content-Type": "application/json"})
        assert_error(r, 400, "invalid_json")
    r = http.post("/api/task", json=analysis(), headers={**alice.auth, "Idempotency-Key": "x" * 300})
    assert_error(r, 400, "invalid_idempotency_key")


def test_unknown_api_path_is_json_404(http: httpx.Client) -> None:
    assert_error(http.get("/api/nope"), 404)
