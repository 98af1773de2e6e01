"""Contract tests: the official ``upstash-redis`` SDK (sync and async) and raw HTTP against the
Upstash REST stand-in, in front of this test process's real redis-server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis
from upstash_redis.errors import UpstashError

from devstack.httpkit import Request, serve_in_thread
from devstack.redisserver import free_port
from devstack.upstash import UNAUTHORIZED, make_app

TOKEN = "contract-test-token"
FLAGGED = "#!lua flags=allow-key-locking\n"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def upstash_url(redis_server_url: str) -> Iterator[str]:
    server = serve_in_thread(make_app(redis_server_url, TOKEN))
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def k(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own (the Redis is shared by the whole test process)."""
    return f"t:{request.node.name}:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def sdk(upstash_url: str) -> Iterator[Redis]:
    with Redis(url=upstash_url, token=TOKEN, rest_retries=0) as client:
        yield client


@pytest.fixture
def http(upstash_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=upstash_url, headers=AUTH) as client:
        yield client


# -- the SDK, sync ------------------------------------------------------------------------------


def test_strings_round_trip_including_non_ascii_and_binary_unsafe_text(sdk: Redis, k: str) -> None:
    values = ["plain", "héllo wörld ✓ 日本語 🎬", 'a "quoted" {"json": [1, 2]}', "nul\x00byte\r\nline", "", "OK"]
    for i, value in enumerate(values):
        assert sdk.set(f"{k}{i}", value) is True
        assert sdk.get(f"{k}{i}") == value
    assert sdk.get(f"{k}missing") is None
    assert sdk.mget(f"{k}0", f"{k}missing") == ["plain", None]
    assert sdk.set(f"{k}0", "x", nx=True) is False  # NX on an existing key: nil reply
    assert sdk.getdel(f"{k}0") == "plain"


def test_plain_encoding_client_gets_utf8_text(upstash_url: str, k: str) -> None:
    with Redis(url=upstash_url, token=TOKEN, rest_encoding=None, rest_retries=0) as plain:
        plain.set(f"{k}s", "日本語 ✓")
        assert plain.get(f"{k}s") == "日本語 ✓"
        assert plain.lrange(f"{k}none", 0, -1) == []


def test_ints_and_expiry(sdk: Redis, k: str) -> None:
    assert sdk.incr(f"{k}n") == 1
    assert sdk.incrby(f"{k}n", 41) == 42
    assert sdk.get(f"{k}n") == "42"
    assert sdk.set(f"{k}e", "v", ex=10) is True
    assert 0 < sdk.ttl(f"{k}e") <= 10
    assert sdk.ttl(f"{k}n") == -1
    assert sdk.expire(f"{k}n", 5) is True
    assert sdk.incrbyfloat(f"{k}f", 1.5) == pytest.approx(1.5)


def test_lists(sdk: Redis, k: str) -> None:
    assert sdk.rpush(f"{k}q", "a", "b", "c") == 3
    assert sdk.lrange(f"{k}q", 0, -1) == ["a", "b", "c"]
    assert sdk.lmove(f"{k}q", f"{k}p", "LEFT", "RIGHT") == "a"
    assert sdk.lpos(f"{k}q", "c") == 1
    assert sdk.lpos(f"{k}q", "zz") is None
    assert sdk.lrange(f"{k}p", 0, -1) == ["a"]
    assert sdk.lrem(f"{k}q", 0, "b") == 1
    assert sdk.llen(f"{k}q") == 1


def test_hashes_sets_and_sorted_sets(sdk: Redis, k: str) -> None:
    assert sdk.hset(f"{k}h", values={"a": "1", "b": "二"}) == 2
    assert sdk.hgetall(f"{k}h") == {"a": "1", "b": "二"}
    assert sdk.hincrby(f"{k}h", "a", 2) == 3
    assert sdk.hget(f"{k}h", "nope") is None
    assert sdk.sadd(f"{k}s", "x", "y") == 2
    assert set(sdk.smembers(f"{k}s")) == {"x", "y"}
    assert sdk.sismember(f"{k}s", "x") is True
    assert sdk.zadd(f"{k}z", {"a": 1, "b": 2.5}) == 2
    assert sdk.zrange(f"{k}z", 0, -1, withscores=True) == [("a", 1.0), ("b", 2.5)]
    assert sdk.zscore(f"{k}z", "b") == 2.5
    assert sdk.zincrby(f"{k}z", 1, "a") == 2.0


def test_command_errors_raise_upstash_error(sdk: Redis, k: str) -> None:
    sdk.set(f"{k}s", "text")
    with pytest.raises(UpstashError, match="not an integer"):
        sdk.incr(f"{k}s")
    with pytest.raises(UpstashError, match="WRONGTYPE"):
        sdk.lpush(f"{k}s", "x")


def test_pipeline(sdk: Redis, k: str) -> None:
    pipe = sdk.pipeline()
    pipe.set(f"{k}a", "1")
    pipe.incr(f"{k}a")
    pipe.rpush(f"{k}l", "x", "y")
    pipe.get(f"{k}none")
    assert pipe.exec() == [True, 2, 2, None]
    failing = sdk.pipeline()
    failing.set(f"{k}b", "v")
    failing.incr(f"{k}b")  # fails; the SDK raises for the whole call, the SET still ran
    with pytest.raises(UpstashError):
        failing.exec()
    assert sdk.get(f"{k}b") == "v"


def test_multi_exec_transaction(sdk: Redis, k: str) -> None:
    tx = sdk.multi()
    tx.set(f"{k}a", "1")
    tx.incrby(f"{k}a", 9)
    tx.lpush(f"{k}l", "x")
    tx.get(f"{k}a")
    assert tx.exec() == [True, 10, 1, "10"]


def test_eval_with_and_without_flags_line(sdk: Redis, k: str) -> None:
    assert sdk.eval("return 1 + 1") == 2
    body = "redis.call('SET', KEYS[1], ARGV[1]); return {redis.call('GET', KEYS[1]), #KEYS}"
    assert sdk.eval(body, keys=[f"{k}a"], args=["v"]) == ["v", 1]
    assert sdk.eval(FLAGGED + body, keys=[f"{k}b"], args=["w"]) == ["w", 1]
    # EVAL caches the script, so EVALSHA of the digest of the script as sent works afterwards.
    assert sdk.evalsha(hashlib.sha1((FLAGGED + body).encode()).hexdigest(), keys=[f"{k}c"], args=["u"]) == ["u", 1]
    with pytest.raises(UpstashError, match="user_script:2:"):  # the blanked flags line keeps Lua line numbers
        sdk.eval(FLAGGED + "return nosuchfn()")


def test_script_load_and_evalsha_use_the_digest_of_the_script_as_sent(sdk: Redis, k: str) -> None:
    script = FLAGGED + f"return redis.call('INCRBY', KEYS[1], ARGV[1]) -- {k}"
    sha = sdk.script_load(script)
    assert sha == hashlib.sha1(script.encode()).hexdigest()
    assert sdk.evalsha(sha, keys=[f"{k}n"], args=["5"]) == 5
    assert sdk.evalsha(sha.upper(), keys=[f"{k}n"], args=["1"]) == 6
    assert sdk.script_exists(sha, "0" * 40) == [True, False]
    plain = f"return '{k}'"
    assert sdk.script_load(plain) == hashlib.sha1(plain.encode()).hexdigest()
    with pytest.raises(UpstashError, match=r"^NOSCRIPT"):
        sdk.evalsha(hashlib.sha1(f"never loaded {k}".encode()).hexdigest())


def test_async_sdk(upstash_url: str, k: str) -> None:
    async def scenario() -> None:
        async with AsyncRedis(url=upstash_url, token=TOKEN, rest_retries=0) as r:
            assert await r.set(f"{k}a", "ü") is True
            assert await r.get(f"{k}a") == "ü"
            results = await asyncio.gather(*(r.incr(f"{k}n") for _ in range(10)))
            assert sorted(results) == list(range(1, 11))
            pipe = r.pipeline()
            pipe.rpush(f"{k}l", "x")
            pipe.lrange(f"{k}l", 0, -1)
            assert await pipe.exec() == [1, ["x"]]
            tx = r.multi()
            tx.incr(f"{k}n")
            tx.get(f"{k}n")
            assert await tx.exec() == [11, "11"]
            sha = await r.script_load(FLAGGED + "return ARGV[1]")
            assert await r.evalsha(sha, args=["hi"]) == "hi"
            with pytest.raises(UpstashError):
                await r.incr(f"{k}a")

    asyncio.run(scenario())


def test_concurrent_clients_are_served_correctly(upstash_url: str, k: str) -> None:
    def worker() -> None:
        with Redis(url=upstash_url, token=TOKEN, rest_retries=0) as r:
            for _ in range(20):
                r.incr(f"{k}n")
                tx = r.multi()
                tx.rpush(f"{k}l", "x")
                tx.incr(f"{k}m")
                tx.exec()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Redis(url=upstash_url, token=TOKEN, rest_retries=0) as r:
        assert r.get(f"{k}n") == "120"
        assert r.get(f"{k}m") == "120"
        assert r.llen(f"{k}l") == 120


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text())
def test_any_text_round_trips_in_both_encodings(upstash_url: str, sdk: Redis, value: str) -> None:
    key = f"prop:{uuid.uuid4().hex}"
    sdk.set(key, value)
    assert sdk.get(key) == value
    with httpx.Client(base_url=upstash_url, headers=AUTH) as http:
        assert http.post("/", json=["GET", key]).json() == {"result": value}
    sdk.delete(key)


# -- raw HTTP -----------------------------------------------------------------------------------


def test_auth_401_shape(upstash_url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = httpx.post(upstash_url, json=["PING"], headers=headers)
        assert r.status_code == 401
        assert r.json() == {"error": UNAUTHORIZED}
        assert r.json()["error"].startswith("WRONGPASS")
        assert r.headers["Upstash-Sync-Token"]
    with pytest.raises(UpstashError, match="WRONGPASS"):
        Redis(url=upstash_url, token="wrong", rest_retries=0).get("x")
    assert httpx.get(f"{upstash_url}/ping", params={"_token": TOKEN}).json() == {"result": "PONG"}


def test_405_for_other_methods(http: httpx.Client) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        r = http.request(method, "/", json=["PING"])
        assert r.status_code == 405
        assert r.json()["error"].startswith("ERR")
        assert "POST" in r.headers["Allow"]
    assert http.get("/pipeline").status_code == 405


def test_400_shapes(http: httpx.Client, k: str) -> None:
    bad_bodies: list[bytes] = [
        b"{not json", b'{"cmd": "GET"}', b"[]", b'"GET"', b'[["GET", "a"]]', b'["GET", null]',
        b'["SET", "a", {"x": 1}]', b"[NaN]", b"",
    ]
    for body in bad_bodies:
        r = http.post("/", content=body)
        assert r.status_code == 400, body
        assert r.json()["error"].startswith("ERR"), body
    for body in (b"[]", b'["GET", "a"]', b'[["GET"], "x"]', b"[[]]"):
        r = http.post("/pipeline", content=body)
        assert r.status_code == 400, body
        assert set(r.json()) == {"error"}
    r = http.post("/", json=["GET"])
    assert (r.status_code, r.json()) == (400, {"error": "ERR wrong number of arguments for 'get' command"})
    r = http.post("/", json=["NOSUCHCMD", "x"])
    assert r.status_code == 400 and r.json()["error"].startswith("ERR unknown command")


def test_blocked_commands(http: httpx.Client, k: str) -> None:
    for cmd in (["BLPOP", f"{k}q", 0], ["brpop", f"{k}q", 0], ["WATCH", "x"], ["MULTI"], ["EXEC"],
                ["SUBSCRIBE", "c"], ["BLMOVE", "a", "b", "LEFT", "RIGHT", 0], ["BZPOPMIN", "z", 0],
                ["MONITOR"], ["SELECT", 1], ["XREAD", "BLOCK", 0, "STREAMS", "s", "$"]):
        r = http.post("/", json=cmd)
        assert r.status_code == 400
        assert r.json() == {"error": f"ERR Command is not available: '{str(cmd[0]).upper()}'"}
    r = http.post("/pipeline", json=[["SET", f"{k}a", "1"], ["BLPOP", f"{k}q", 0], ["GET", f"{k}a"]])
    assert r.status_code == 200
    assert r.json() == [{"result": "OK"}, {"error": "ERR Command is not available: 'BLPOP'"}, {"result": "1"}]
    r = http.post("/multi-exec", json=[["SET", f"{k}b", "1"], ["BRPOP", f"{k}q", 0]])
    assert (r.status_code, r.json()) == (400, {"error": "ERR Command is not available: 'BRPOP'"})
    assert http.post("/", json=["EXISTS", f"{k}b"]).json() == {"result": 0}


def test_base64_versus_plain_encoding(http: httpx.Client, k: str) -> None:
    b64 = {"Upstash-Encoding": "base64"}
    http.post("/", json=["RPUSH", f"{k}l", "ab", "✓"])
    http.post("/", json=["HSET", f"{k}h", "f", "OK"])
    assert http.post("/", json=["SET", f"{k}s", "v"], headers=b64).json() == {"result": "OK"}
    assert http.post("/", json=["GET", f"{k}s"], headers=b64).json() == {"result": "dg=="}
    assert http.post("/", json=["GET", f"{k}s"]).json() == {"result": "v"}
    assert http.post("/", json=["LRANGE", f"{k}l", 0, -1], headers=b64).json() == {
        "result": [base64.b64encode(b"ab").decode(), base64.b64encode("✓".encode()).decode()]
    }
    assert http.post("/", json=["LRANGE", f"{k}l", 0, -1]).json() == {"result": ["ab", "✓"]}
    assert http.post("/", json=["LLEN", f"{k}l"], headers=b64).json() == {"result": 2}
    assert http.post("/", json=["GET", f"{k}none"], headers=b64).json() == {"result": None}
    assert http.post("/", json=["PING"], headers=b64).json() == {"result": base64.b64encode(b"PONG").decode()}
    nested = http.post("/", json=["EVAL", "return {1, {'a', false}, 'b'}", 0], headers=b64).json()
    assert nested == {"result": [1, ["YQ==", None], "Yg=="]}
    err = http.post("/", json=["INCR", f"{k}s"], headers=b64).json()
    assert err == {"error": "ERR value is not an integer or out of range"}  # errors stay plain
    # Binary values: lossless in base64, U+FFFD (never a crash) as plain text.
    http.post(f"/set/{k}bin", content=b"\xff\x00\xfe")
    assert http.post("/", json=["GET", f"{k}bin"], headers=b64).json() == {"result": "/wD+"}
    assert http.post("/", json=["GET", f"{k}bin"]).json() == {"result": "\ufffd\x00\ufffd"}
    pipe = http.post("/pipeline", json=[["GET", f"{k}s"], ["INCR", f"{k}s"]], headers=b64).json()
    assert pipe == [{"result": "dg=="}, {"error": "ERR value is not an integer or out of range"}]


def test_json_scalars_are_stringified(http: httpx.Client, k: str) -> None:
    r = http.post("/pipeline", json=[
        ["SET", f"{k}i", 10, "EX", 100], ["SET", f"{k}f", 1.25], ["SET", f"{k}t", True], ["SET", f"{k}n", -3],
        ["MGET", f"{k}i", f"{k}f", f"{k}t", f"{k}n"], ["TTL", f"{k}i"],
    ])
    results = [e["result"] for e in r.json()]
    assert results[4] == ["10", "1.25", "true", "-3"]
    assert 0 < results[5] <= 100


def test_sync_token_header_on_every_response(http: httpx.Client, upstash_url: str) -> None:
    tokens = [
        int(http.post("/", json=["PING"], headers={"Upstash-Sync-Token": "7"}).headers["Upstash-Sync-Token"]),
        int(http.post("/pipeline", json=[["PING"]]).headers["Upstash-Sync-Token"]),
        int(http.post("/", json=["BLPOP", "x", 0]).headers["Upstash-Sync-Token"]),
        int(httpx.post(upstash_url, json=["PING"]).headers["Upstash-Sync-Token"]),  # 401
        int(http.put("/").headers["Upstash-Sync-Token"]),  # 405
    ]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)


def test_multi_exec_errors(http: httpx.Client, k: str) -> None:
    # Rejected whole (unknown command while queueing): one error, nothing applied.
    r = http.post("/multi-exec", json=[["SET", f"{k}a", "1"], ["NOSUCHCMD"], ["SET", f"{k}b", "1"]])
    assert r.status_code == 400
    assert r.json() == {"error": "EXECABORT Transaction discarded because of previous errors."}
    r = http.post("/multi-exec", json=[["SET", f"{k}a", "1"], ["GET"]])
    assert r.status_code == 400 and r.json()["error"].startswith("EXECABORT")
    assert http.post("/", json=["MGET", f"{k}a", f"{k}b"]).json() == {"result": [None, None]}
    # A command failing at run time is reported on its own; the others are applied.
    r = http.post("/multi-exec", json=[["SET", f"{k}a", "x"], ["INCR", f"{k}a"], ["SET", f"{k}b", "2"]])
    assert r.status_code == 200
    assert r.json() == [
        {"result": "OK"}, {"error": "ERR value is not an integer or out of range"}, {"result": "OK"},
    ]
    # The connection went back to the pool clean: no transaction left open.
    assert http.post("/", json=["GET", f"{k}b"]).json() == {"result": "2"}


def test_path_style_rest(http: httpx.Client, k: str) -> None:
    assert http.get(f"/set/{k}a/bar/EX/100").json() == {"result": "OK"}
    assert http.get(f"/get/{k}a").json() == {"result": "bar"}
    assert http.get(f"/set/{k}slash/a%2Fb%20c").json() == {"result": "OK"}
    assert http.get(f"/get/{k}slash").json() == {"result": "a/b c"}
    assert http.post(f"/set/{k}body", content='{"big": "json ✓"}'.encode()).json() == {"result": "OK"}
    assert http.post("/", json=["GET", f"{k}body"]).json() == {"result": '{"big": "json ✓"}'}
    assert http.get("/").status_code == 400


def test_stats_endpoints(http: httpx.Client, upstash_url: str, k: str) -> None:
    assert httpx.get(f"{upstash_url}/__devstack/stats").status_code == 401
    assert httpx.post(f"{upstash_url}/__devstack/stats/reset").status_code == 401
    assert http.post("/__devstack/stats/reset").json() == {"requests": 0, "commands": 0, "byCommand": {}}
    http.post("/", json=["SET", f"{k}a", "1"])
    http.post("/pipeline", json=[["INCR", f"{k}a"], ["INCR", f"{k}a"], ["GET", f"{k}a"]])
    http.post("/multi-exec", json=[["SET", f"{k}b", "1"], ["EVAL", "return 1", 0]])
    stats = http.get("/__devstack/stats").json()
    assert stats == {"requests": 3, "commands": 6, "byCommand": {"SET": 2, "INCR": 2, "GET": 1, "EVAL": 1}}
    assert http.get("/__devstack/stats").json() == stats  # the stats endpoints are not counted
    http.post("/__devstack/stats/reset")
    assert http.get("/__devstack/stats").json()["requests"] == 0


def test_main_serves_forever(redis_server_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "devstack.upstash", "--port", str(port), "--redis-url", redis_server_url,
           "--token", TOKEN]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"upstash stand-in on http://127.0.0.1:{port}"
        r = httpx.post(f"http://127.0.0.1:{port}", json=["PING"], headers=AUTH)
        assert r.json() == {"result": "PONG"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_script_load_inside_pipeline_and_transaction_answers_the_client_digest(http: httpx.Client, k: str) -> None:
    script = FLAGGED + f"return '{k}'"
    sha = hashlib.sha1(script.encode()).hexdigest()
    for path in ("/pipeline", "/multi-exec"):
        r = http.post(path, json=[["SCRIPT", "LOAD", script], ["EVALSHA", sha, 0], ["SCRIPT", "EXISTS", sha]])
        assert r.json() == [{"result": sha}, {"result": k}, {"result": [1]}]


def test_redis_down_is_a_503_with_a_json_error() -> None:
    app = make_app(f"redis://127.0.0.1:{free_port()}/0", TOKEN)
    for path, body in (("/", b'["PING"]'), ("/pipeline", b'[["PING"]]'), ("/multi-exec", b'[["PING"]]')):
        resp = app(Request("POST", path, {}, {"authorization": f"Bearer {TOKEN}"}, body, path))
        assert resp.status == 503
        assert json.loads(resp.body)["error"].startswith("ERR devstack: redis unavailable")
