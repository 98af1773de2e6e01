"""Property tests: no input of any shape makes a function answer 500 or change state when refused."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from upstash_redis import Redis

from devstack.vercel import discover_routes
from tests.api.conftest import Account, sign_up
from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
ROUTES = sorted(discover_routes(ROOT))
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(["email", "password", "refreshToken", "type", "payload", "videoUrl", "taskId", "x"])
shaped = st.dictionaries(field_names, json_values | st.dictionaries(field_names, json_values, max_size=3),
                         max_size=4)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=200).map(str.encode),
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data", "", "application/ld+json"])
query_values = st.text(max_size=40) | st.sampled_from(["%", "%zz", "%ff%fe", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "-1",
                                                        "99999999999999999999", "queued"])
queries = st.dictionaries(st.sampled_from(["taskId", "limit", "cursor", "status", "x", ""]), query_values, max_size=4)


def encode_query(query: dict[str, str]) -> str:
    # Some values are deliberately broken percent-encodings: pass those through raw.
    parts = []
    for k, v in query.items():
        value = v if v.startswith("%") else quote(v, safe="")
        parts.append(f"{quote(k, safe='')}={value}")
    return "&".join(parts)


@pytest.fixture(scope="module")
def fuzz_user(api: Api) -> Account:
    with api.client() as http:
        return sign_up(http)


def store_state(redis: Redis) -> tuple[int, int]:
    return redis.dbsize(), redis.llen("tasks:queue")


@pytest.mark.parametrize("route", ROUTES)
def test_no_input_makes_a_500_or_changes_state(api: Api, fuzz_user: Account, redis: Redis, route: str) -> None:
    http = api.client()

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(method=st.sampled_from(METHODS), body=bodies, ctype=content_types, query=queries,
           auth=st.sampled_from(["valid", "none", "junk"]), junk=header_text, idem=header_text)
    def check(method: str, body: bytes, ctype: str, query: dict[str, str], auth: str, junk: str, idem: str) -> None:
        headers = {"Content-Type": ctype} if ctype else {}
        if auth == "valid":
            headers["Authorization"] = f"Bearer {fuzz_user.access_token}"
        elif auth == "junk":
            headers["Authorization"] = junk
        if idem.strip():
            headers["Idempotency-Key"] = idem
        before = store_state(redis)
        r = http.request(method, f"{route}?{encode_query(query)}", content=body if method != "GET" else None,
                         headers=headers)
        assert r.status_code < 500 or (route == "/api/health" and r.status_code == 503), (r.status_code, r.text)
        if method != "HEAD":
            data = r.json()
        if r.status_code >= 400:
            assert method == "HEAD" or set(data["error"]) >= {"code", "message"}
            assert store_state(redis) == before

    try:
        check()
    finally:
        http.close()


@pytest.fixture(scope="module")
def function_ports(api: Api) -> Iterator[dict[str, int]]:
    """Each function in its own process, reached directly (no router in between)."""
    procs, ports = [], {}
    for route, file in discover_routes(ROOT).items():
        p = subprocess.Popen([sys.executable, "-m", "devstack.funchost", str(ROOT), str(file)],
                             stdout=subprocess.PIPE, text=True, env={**api.cloud.env, "PATH": "/usr/bin:/bin"},
                             cwd=str(ROOT))
        assert p.stdout is not None
        ports[route] = json.loads(p.stdout.readline())["port"]
        procs.append(p)
    yield ports
    for p in procs:
        p.terminate()
        p.wait()


RAW_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /api/x HTTP/9.9\r\n\r\n",
    b"POST {path} HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST {path} HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST {path} HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST {path} HTTP/1.1\r\nContent-Length: 10\r\nContent-Type: application/json\r\n\r\n{\"a\"",
    b"GET {path}?taskId=%ff%fe%00 HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
    b"GET {path} HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
    b"GET {path} HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n",
    b"BREW {path} HTTP/1.1\r\n\r\n",
]


@pytest.mark.parametrize("raw", RAW_REQUESTS, ids=range(len(RAW_REQUESTS)))
def test_malformed_http_gets_a_json_4xx(function_ports: dict[str, int], raw: bytes) -> None:
    for route, port in function_ports.items():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(raw.replace(b"{path}", route.encode()))
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        assert 400 <= status < 500, (route, raw[:40], reply[:200])
        assert "error" in json.loads(body), (route, body[:200])


def test_huge_json_nesting_is_a_400(http: httpx.Client, fuzz_user: Account) -> None:
    body = b"[" * 30000 + b"]" * 30000
    r = http.post("/api/task", content=body[:60000], headers={**{"Authorization": f"Bearer {fuzz_user.access_token}"},
                                                               "Content-Type": "application/json"})
    assert r.status_code == 400
