"""Contract tests: the official ``supabase`` client (storage3) against the local Storage stand-in.

Users come from the GoTrue stand-in in the same server, exactly as the studio gets them; the
policies checked are those of ``supabase/schema.sql``. Raw ``httpx`` covers what a browser does
(signed URLs, ranges, preflights) and hostile input (bad tokens, traversal), which must never 500.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from devstack.httpkit import serve_in_thread
from devstack.supabase import MAX_BODY, SupabaseApp, SupabaseKeys, local_keys, make_app

SECRET = "test-only-storage-secret-" + "y" * 32
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4  # 1036 bytes, enough to slice


class Project:
    """A running local project (Auth + Storage) that tests can stop and restart on its data dir."""

    def __init__(self, data_dir: Path, alg: str = "HS256") -> None:
        self.data_dir, self.alg = data_dir, alg
        self.start()

    def start(self) -> None:
        self.app: SupabaseApp = make_app(self.data_dir, jwt_secret=SECRET, jwt_alg=self.alg, storage=True)
        self.server = serve_in_thread(self.app, max_body=MAX_BODY)
        self.keys: SupabaseKeys = local_keys(f"http://127.0.0.1:{self.server.server_port}", SECRET, self.alg)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.close()

    def client(self, token: str | None = None) -> Client:
        """The service-role client, or (with ``token``) a client acting as that user."""
        opts = ClientOptions(auto_refresh_token=False, persist_session=False)
        if token is None:
            return create_client(self.keys.url, self.keys.service_role_key, options=opts)
        opts.headers["Authorization"] = f"Bearer {token}"
        return create_client(self.keys.url, self.keys.anon_key, options=opts)

    def anon(self) -> Client:
        return create_client(self.keys.url, self.keys.anon_key,
                             options=ClientOptions(auto_refresh_token=False, persist_session=False))

    def user(self) -> tuple[str, str]:
        """Sign up a fresh user through the GoTrue stand-in; returns (user id, access token)."""
        r = httpx.post(
            f"{self.keys.url}/auth/v1/signup",
            json={"email": f"u{uuid.uuid4().hex[:12]}@example.com", "password": "correct horse"},
            headers={"apikey": self.keys.anon_key, "Authorization": f"Bearer {self.keys.anon_key}"},
        )
        r.raise_for_status()
        return r.json()["user"]["id"], r.json()["access_token"]

    def http(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        return httpx.request(method, self.keys.url + path, headers=headers, timeout=10, **kw)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    p = Project(tmp_path_factory.mktemp("supabase-storage"))
    yield p
    p.stop()


def api_error(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[str, str, str]:
    """(statusCode, error, message) of the StorageApiError that ``fn`` raises."""
    with pytest.raises(StorageApiError) as info:
        fn(*args, **kw)
    return str(info.value.status), info.value.code, info.value.message


VIDEO_OPTS: Any = {"content-type": "video/mp4"}


def test_service_role_upload_download_list_remove(project: Project) -> None:
    results = project.client().storage.from_("results")
    uid, task = str(uuid.uuid4()), uuid.uuid4().hex
    res = results.upload(f"{uid}/{task}/report.json", b'{"ok":true}', {"content-type": "application/json"})
    assert res.full_path == f"results/{uid}/{task}/report.json"
    results.upload(f"{uid}/{task}/video.mp4", VIDEO, VIDEO_OPTS)
    assert results.download(f"{uid}/{task}/report.json") == b'{"ok":true}'
    assert results.exists(f"{uid}/{task}/video.mp4") and not results.exists(f"{uid}/{task}/nope.mp4")

    # Storage refuses a second upload to the same key unless it is an upsert (or an update).
    assert api_error(results.upload, f"{uid}/{task}/report.json", b"{}") == (
        "409", "Duplicate", "The resource already exists")
    results.upload(f"{uid}/{task}/report.json", b"[1]", {"upsert": "true", "content-type": "application/json"})
    results.update(f"{uid}/{task}/report.json", b"[2]", {"content-type": "application/json"})
    assert results.download(f"{uid}/{task}/report.json") == b"[2]"

    top = results.list(uid)
    assert [e["name"] for e in top] == [task] and top[0]["id"] is None  # a folder
    files = results.list(f"{uid}/{task}", {"sortBy": {"column": "name", "order": "desc"}})
    assert [f["name"] for f in files] == ["video.mp4", "report.json"]
    meta = files[0]["metadata"]
    assert (meta["size"], meta["mimetype"], meta["cacheControl"]) == (len(VIDEO), "video/mp4", "max-age=3600")
    assert [f["name"] for f in results.list(f"{uid}/{task}", {"limit": 1, "offset": 1})] == ["video.mp4"]
    assert [f["name"] for f in results.list(f"{uid}/{task}", {"search": "vid"})] == ["video.mp4"]

    removed = results.remove([f"{uid}/{task}/report.json", f"{uid}/{task}/missing.txt"])
    assert [r["name"] for r in removed] == [f"{uid}/{task}/report.json"]
    assert api_error(results.download, f"{uid}/{task}/report.json") == ("404", "not_found", "Object not found")


def test_signed_urls_serve_ranges_without_headers(project: Project) -> None:
    results = project.client().storage.from_("results")
    path = f"{uuid.uuid4()}/t/video.mp4"
    results.upload(path, VIDEO, VIDEO_OPTS)
    url = results.create_signed_url(path, 60)["signedURL"]
    assert url and url.startswith(f"{project.keys.url}/storage/v1/object/sign/results/{path}?token=")

    r = httpx.get(url)
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, VIDEO, "video/mp4")
    assert r.headers["accept-ranges"] == "bytes" and r.headers["etag"]
    r = httpx.get(url, headers={"Range": "bytes=10-19"})  # what <video> sends to seek
    assert (r.status_code, r.content, r.headers["content-range"]) == (206, VIDEO[10:20], f"bytes 10-19/{len(VIDEO)}")
    r = httpx.get(url, headers={"Range": "bytes=-6"})
    assert (r.status_code, r.content) == (206, VIDEO[-6:])
    r = httpx.get(url, headers={"Range": f"bytes={len(VIDEO)}-"})
    assert (r.status_code, r.headers["content-range"]) == (416, f"bytes */{len(VIDEO)}")
    r = httpx.head(url)
    assert (r.status_code, r.headers["content-length"], r.content) == (200, str(len(VIDEO)), b"")
    dl = results.create_signed_url(path, 60, {"download": "clip.mp4"})["signedURL"]
    assert dl and "attachment" in httpx.get(dl).headers["content-disposition"]

    many = results.create_signed_urls([path, f"{path}.missing"], 60)
    assert many[0]["error"] is None and httpx.get(many[0]["signedURL"] or "").content == VIDEO
    assert many[1]["signedURL"] is None and many[1]["error"]

    # The token binds one path and expires; a tampered one is an invalid JWT.
    token = url.split("token=")[1]
    r = httpx.get(url.replace("video.mp4", "other.mp4"))
    assert (r.status_code, r.json()["error"]) == (400, "InvalidSignature")
    r = httpx.get(url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb"))
    assert (r.status_code, r.json()["statusCode"], r.json()["error"]) == (400, "400", "InvalidJWT")
    expired = jwt.encode({"url": f"results/{path}", "iat": 1, "exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    r = httpx.get(url.replace(token, expired))
    assert r.status_code == 400 and r.json()["error"] == "InvalidJWT"
    # A signed-URL token never works as an API token.
    r = project.http("GET", f"/storage/v1/object/results/{path}", token)
    assert r.status_code == 400 and r.json()["error"] == "InvalidJWT"


def test_browser_upload_through_signed_upload_url(project: Project) -> None:
    uid, token = project.user()
    uploads = project.client(token).storage.from_("uploads")
    signed = uploads.create_signed_upload_url(f"{uid}/clip.mp4")
    assert signed["signed_url"].startswith(f"{project.keys.url}/storage/v1/object/upload/sign/uploads/{uid}/clip.mp4")
    res = uploads.upload_to_signed_url(f"{uid}/clip.mp4", signed["token"], VIDEO, VIDEO_OPTS)
    assert res.full_path == f"uploads/{uid}/clip.mp4"
    assert uploads.download(f"{uid}/clip.mp4") == VIDEO
    [entry] = project.client().storage.from_("uploads").list(uid)
    assert entry["owner"] == uid and entry["metadata"]["mimetype"] == "video/mp4"
    # Single use unless upserting: the object now exists.
    assert api_error(uploads.upload_to_signed_url, f"{uid}/clip.mp4", signed["token"], VIDEO, VIDEO_OPTS)[:2] == (
        "409", "Duplicate")

    # What the page does: fetch(signedUrl, {method: "PUT", body: file}) with no auth header.
    raw = uploads.create_signed_upload_url(f"{uid}/raw.webm")
    r = httpx.put(raw["signed_url"], content=VIDEO, headers={"Content-Type": "video/webm"})
    assert r.status_code == 200 and r.json()["Key"] == f"uploads/{uid}/raw.webm"
    r = httpx.put(raw["signed_url"].replace("raw.webm", "other.webm"), content=VIDEO,
                  headers={"Content-Type": "video/webm"})
    assert r.status_code == 400 and r.json()["error"] == "InvalidSignature"
    # Bucket limits hold for signed uploads too.
    txt = uploads.create_signed_upload_url(f"{uid}/notes.txt")
    r = httpx.put(txt["signed_url"], content=b"hi", headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.json()["statusCode"], r.json()["error"]) == (400, "415", "invalid_mime_type")

    # A user signs only inside their own folder of uploads.
    other, _ = project.user()
    rls = ("403", "Unauthorized", "new row violates row-level security policy")
    assert api_error(uploads.create_signed_upload_url, f"{other}/clip.mp4") == rls
    assert api_error(project.client(token).storage.from_("results").create_signed_upload_url, f"{uid}/x.mp4") == rls
    # The browser's preflight for that PUT.
    r = project.http("OPTIONS", f"/storage/v1/object/upload/sign/uploads/{uid}/a.mp4",
                     headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"]
    assert "x-upsert" in r.headers["access-control-allow-headers"]


def test_policies_follow_schema_sql(project: Project) -> None:
    (a, a_token), (b, b_token) = project.user(), project.user()
    as_a, as_b, service = project.client(a_token).storage, project.client(b_token).storage, project.client().storage
    rls = ("403", "Unauthorized", "new row violates row-level security policy")

    as_a.from_("uploads").upload(f"{a}/in.mp4", VIDEO, VIDEO_OPTS)
    assert api_error(as_a.from_("uploads").upload, f"{b}/in.mp4", VIDEO, VIDEO_OPTS) == rls
    assert api_error(as_a.from_("uploads").upload, "in.mp4", VIDEO, VIDEO_OPTS) == rls  # no folder: no owner
    assert api_error(as_a.from_("results").upload, f"{a}/r.json", b"{}") == rls  # only the worker writes

    service.from_("results").upload(f"{b}/t/r.json", b"{}", {"content-type": "application/json"})
    assert as_b.from_("results").download(f"{b}/t/r.json") == b"{}"
    assert api_error(as_a.from_("results").download, f"{b}/t/r.json")[:2] == ("404", "not_found")
    assert api_error(as_a.from_("results").create_signed_url, f"{b}/t/r.json", 60)[:2] == ("404", "not_found")
    assert as_a.from_("results").list(f"{b}/t") == []
    assert api_error(as_b.from_("uploads").download, f"{a}/in.mp4")[:2] == ("404", "not_found")
    assert as_b.from_("uploads").remove([f"{a}/in.mp4"]) == []  # RLS hides the row: nothing deleted
    assert as_a.from_("uploads").download(f"{a}/in.mp4") == VIDEO

    # Copy and move stay inside the owner's folder.
    as_a.from_("uploads").copy(f"{a}/in.mp4", f"{a}/copy.mp4")
    as_a.from_("uploads").move(f"{a}/copy.mp4", f"{a}/moved.mp4")
    assert as_a.from_("uploads").download(f"{a}/moved.mp4") == VIDEO
    assert api_error(as_a.from_("uploads").move, f"{a}/moved.mp4", f"{b}/stolen.mp4") == rls
    assert [r["name"] for r in as_a.from_("uploads").remove([f"{a}/moved.mp4"])] == [f"{a}/moved.mp4"]

    anon = project.anon().storage
    assert api_error(anon.from_("uploads").upload, f"{a}/x.mp4", VIDEO, VIDEO_OPTS) == rls
    assert api_error(anon.from_("uploads").download, f"{a}/in.mp4")[:2] == ("404", "not_found")
    assert anon.from_("uploads").list(a) == [] and anon.list_buckets() == []
    assert api_error(as_a.create_bucket, "mine") == rls


def test_bucket_api_and_limits(project: Project) -> None:
    service = project.client().storage
    buckets = {b.id: b for b in service.list_buckets()}
    assert buckets["uploads"].file_size_limit == 524_288_000 and buckets["uploads"].allowed_mime_types == ["video/*"]
    assert not buckets["results"].public and buckets["results"].file_size_limit is None
    assert service.get_bucket("uploads").name == "uploads"
    assert api_error(service.get_bucket, "nope") == ("404", "Bucket not found", "Bucket not found")
    assert api_error(service.from_("nope").upload, "a/b.txt", b"x")[:2] == ("404", "Bucket not found")

    name = f"tiny-{uuid.uuid4().hex[:8]}"
    service.create_bucket(name, options={"public": False, "file_size_limit": 10, "allowed_mime_types": ["image/*"]})
    assert api_error(service.create_bucket, name)[:2] == ("409", "Duplicate")
    tiny = service.from_(name)
    assert api_error(tiny.upload, "a/big.png", b"x" * 11, {"content-type": "image/png"}) == (
        "413", "Payload too large", "The object exceeded the maximum allowed size")
    assert api_error(tiny.upload, "a/doc.pdf", b"x", {"content-type": "application/pdf"})[:2] == (
        "415", "invalid_mime_type")
    tiny.upload("a/ok.png", b"x" * 10, {"content-type": "image/png"})
    assert api_error(service.delete_bucket, name)[:2] == ("409", "ResourceNotEmpty")
    service.empty_bucket(name)
    service.delete_bucket(name)
    assert name not in {b.id for b in service.list_buckets()}


def test_objects_survive_a_restart(tmp_path: Path) -> None:
    p = Project(tmp_path)
    try:
        uid, token = p.user()
        p.client(token).storage.from_("uploads").upload(f"{uid}/keep.mp4", VIDEO, VIDEO_OPTS)
        url = p.client().storage.from_("uploads").create_signed_url(f"{uid}/keep.mp4", 600)["signedURL"]
        assert url
        p.stop()
        p.start()
        # The old URL names the old port; the token itself must still be good.
        assert httpx.get(p.keys.url + "/storage/v1" + url.split("/storage/v1", 1)[1]).content == VIDEO
        assert p.client(token).storage.from_("uploads").download(f"{uid}/keep.mp4") == VIDEO
        assert (tmp_path / "storage" / "uploads" / uid / "keep.mp4").read_bytes() == VIDEO
    finally:
        p.stop()


def test_es256_project_user_tokens(tmp_path: Path) -> None:
    p = Project(tmp_path, alg="ES256")
    try:
        uid, token = p.user()
        assert jwt.get_unverified_header(token)["alg"] == "ES256"
        p.client(token).storage.from_("uploads").upload(f"{uid}/v.mp4", VIDEO, VIDEO_OPTS)
        assert p.client(token).storage.from_("uploads").download(f"{uid}/v.mp4") == VIDEO
    finally:
        p.stop()


def _bad_tokens(project: Project) -> list[str | None]:
    now = int(time.time())
    user = {"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated", "iat": now}
    return [
        None,
        "garbage",
        jwt.encode({**user, "exp": now + 60}, "another-secret-that-is-at-least-32-chars!", algorithm="HS256"),
        jwt.encode({**user, "exp": now - 60}, SECRET, algorithm="HS256"),
        jwt.encode({**user, "exp": now + 60, "aud": "other"}, SECRET, algorithm="HS256"),
        jwt.encode({**user, "exp": now + 60, "role": "supabase_admin"}, SECRET, algorithm="HS256"),
        jwt.encode({**user, "exp": now + 60}, None, algorithm="none"),
    ]


def test_bad_tokens_are_invalid_jwt(project: Project) -> None:
    for token in _bad_tokens(project):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = httpx.get(f"{project.keys.url}/storage/v1/object/results/a/b.txt", headers=headers)
        assert r.status_code == 400, (token, r.text)
        assert r.json()["statusCode"] == "400" and r.json()["error"] in ("InvalidJWT", "Error")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/storage/v1/object/results/%2E%2E/%2E%2E/storage.sqlite3", None),
        ("POST", "/storage/v1/object/results/a/%2E%2E/%2E%2E/%2E%2E/evil.txt", b"x"),
        ("POST", "/storage/v1/object/results/a//b.txt", b"x"),
        ("POST", "/storage/v1/object/results/a/b%00c.txt", b"x"),
        ("POST", "/storage/v1/object/results/a/%C3%A9.txt", b"x"),
        ("POST", "/storage/v1/object/%2E%2E/a/b.txt", b"x"),
        ("GET", "/storage/v1/object/nosuchbucket/a/b.txt", None),
        ("POST", "/storage/v1/object/list/results", b"{"),
        ("POST", "/storage/v1/object/list/results", b'{"prefix": 1, "limit": -1}'),
        ("POST", "/storage/v1/object/sign/results/a/b.txt", b'{"expiresIn": "soon"}'),
        ("POST", "/storage/v1/object/sign/results", b'{"expiresIn": 60, "paths": "a"}'),
        ("DELETE", "/storage/v1/object/results", b'{"prefixes": "a"}'),
        ("POST", "/storage/v1/object/move", b'{"bucketId": "results"}'),
        ("POST", "/storage/v1/object/results/a/m.bin", b"--x\r\nno headers"),
        ("POST", "/storage/v1/bucket", b'{"id": "../up"}'),
        ("GET", "/storage/v1/object/sign/results/a/b.txt", None),
        ("PUT", "/storage/v1/object/upload/sign/results/a/b.txt?token=x.y.z", b"x"),
        ("PATCH", "/storage/v1/object/results/a/b.txt", None),
    ],
)
def test_hostile_requests_never_500(project: Project, method: str, path: str, body: bytes | None) -> None:
    headers = {"Authorization": f"Bearer {project.keys.service_role_key}"}
    if path.endswith("m.bin"):
        headers["Content-Type"] = "multipart/form-data; boundary=x"
    r = httpx.request(method, project.keys.url + path, content=body, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    err = r.json()
    assert set(err) >= {"statusCode", "error", "message"}
    assert not (project.data_dir / "evil.txt").exists() and not (project.data_dir / "storage" / "evil.txt").exists()
    if "nosuchbucket" in path:
        assert (err["statusCode"], err["error"]) == ("404", "Bucket not found")
