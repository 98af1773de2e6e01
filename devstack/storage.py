"""Supabase Storage stand-in: the ``/storage/v1`` API that ``storage3`` (and storage-js) speak.

Objects live as plain files under ``data_dir/storage/<bucket>/<path>``; their metadata (content type,
size, etag, owner, timestamps) and the buckets live in ``data_dir/storage.sqlite3``, so a restart on
the same directory keeps everything.

Access works like Supabase: the ``Authorization: Bearer <jwt>`` decides the Postgres role. The
``service_role`` key bypasses row-level security; ``authenticated`` user tokens are held to the storage
policies of ``supabase/schema.sql`` (re-implemented in :data:`POLICIES`); ``anon`` has no policy, so it
sees nothing and writes nothing. Signed URLs carry an HS256 JWT (``url = <bucket>/<path>``, ``exp``)
signed with the project's JWT secret, exactly like storage-api, so they work without any header.

Errors use storage-api's shape: body ``{"statusCode": "404", "code": "NoSuchKey", "error": "not_found",
"message": "Object not found"}``; like storage-api the HTTP status is 400 for every 4xx error (the
real code is in ``statusCode``) and 500 only for server faults.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt

from devstack.httpkit import Request, Response
from devstack.sqlitedb import SqliteDb

PREFIX = "/storage/v1"

#: Signed upload URLs last two hours, as on Supabase.
SIGNED_UPLOAD_TTL = 7200

#: What each bucket's policies in ``supabase/schema.sql`` grant ``authenticated`` users, always
#: limited to objects whose first folder is the user's id. Buckets not listed grant nothing.
POLICIES: dict[str, frozenset[str]] = {
    "uploads": frozenset({"select", "insert", "update", "delete"}),
    "results": frozenset({"select"}),
}

#: The buckets ``supabase/schema.sql`` creates (``on conflict do nothing``: later edits survive).
DEFAULT_BUCKETS: tuple[tuple[str, bool, int | None, list[str] | None], ...] = (
    ("uploads", False, 524_288_000, ["video/*"]),
    ("results", False, None, None),
)

# storage-api's key/bucket character set (ASCII only). Dot segments and empty segments are refused
# on top of it, because keys map to paths on disk here.
_KEY_RE = re.compile(r"^[\w/!\-.*'() &$@=;:+,?]+$", re.ASCII)
_BUCKET_RE = re.compile(r"^[\w!\-*'() &$@=;:+,?][\w!\-.*'() &$@=;:+,?]{0,99}$", re.ASCII)
_CORS_EXPOSE = "Content-Length, Content-Range, Content-Type, ETag, Last-Modified, Cache-Control, Content-Disposition"


class StorageError(Exception):
    """An error rendered the way storage-api renders it."""

    def __init__(self, status: int, code: str, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.error = status, code, message, error or code

    def response(self) -> Response:
        body = {"statusCode": str(self.status), "code": self.code, "error": self.error, "message": self.message}
        # storage-api answers every non-500 error with HTTP 400 and the real code in the body.
        return Response.json(body, 500 if self.status >= 500 else 400, {"Access-Control-Allow-Origin": "*"})


def _not_found() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", "not_found")


def _no_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def _rls() -> StorageError:
    return StorageError(403, "AccessDenied", "new row violates row-level security policy", "Unauthorized")


def _duplicate() -> StorageError:
    return StorageError(409, "Duplicate", "The resource already exists", "Duplicate")


def _invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message)


def _bad_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def _too_large() -> StorageError:
    return StorageError(413, "EntityTooLarge", "The object exceeded the maximum allowed size", "Payload too large")


def _clash(key: str) -> StorageError:
    # An object "a" and another "a/b" can coexist in Storage, but not as files on a filesystem.
    return StorageError(409, "InvalidKey", f"Key {key} clashes with an existing object or folder")


def _invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


@dataclass(frozen=True)
class Caller:
    """Who is asking: the Postgres role the JWT maps to, and the user id for ``authenticated``."""

    role: str  # "service_role" | "authenticated" | "anon" | "superuser" (signed URLs)
    uid: str | None = None


SUPERUSER = Caller("superuser")


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _mime_allowed(mime: str, allowed: list[str]) -> bool:
    # storage-api's rule: split on "/" and compare type and subtype, "*" matching any subtype.
    # Parameters stay part of the subtype there too ("text/plain;charset=UTF-8" != "text/plain").
    parts = mime.split("/")
    if len(parts) < 2:
        return False
    for entry in allowed:
        want = entry.split("/")
        if len(want) >= 2 and want[0] == parts[0] and want[1] in ("*", parts[1]):
            return True
    return False


def _parse_size(value: Any) -> int | None:
    """A bucket's ``file_size_limit``: bytes as a number, or a string such as ``"50MB"``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _bad_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    if isinstance(value, int) and value >= 0:
        return value
    m = re.fullmatch(r"\s*(\d+)\s*(B|KB|MB|GB)?\s*", str(value), re.IGNORECASE)
    if not m:
        raise _bad_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    unit = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[(m.group(2) or "").upper()]
    return int(m.group(1)) * unit


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], tuple[bytes, str | None] | None]:
    """The form fields and the first file part (content, its content type) of a multipart body."""
    m = re.search(r'boundary="?([^";,]+)"?', content_type, re.IGNORECASE)
    if not m:
        raise _bad_request("multipart body without boundary")
    delim = b"--" + m.group(1).strip().encode("latin-1")
    fields: dict[str, str] = {}
    file: tuple[bytes, str | None] | None = None
    pos = body.find(delim)
    if pos < 0:
        raise _bad_request("malformed multipart body")
    while True:
        pos += len(delim)
        if body[pos : pos + 2] == b"--":
            break
        if body[pos : pos + 2] == b"\r\n":
            pos += 2
        head_end = body.find(b"\r\n\r\n", pos)
        end = body.find(b"\r\n" + delim, head_end + 4) if head_end >= 0 else -1
        if end < 0:
            raise _bad_request("malformed multipart body")
        headers: dict[str, str] = {}
        for line in body[pos:head_end].decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        field = re.search(r'\bname="([^"]*)"', disposition)
        content = body[head_end + 4 : end]
        if "filename=" in disposition:
            if file is None:  # like fastify-multipart's request.file(): the first file part wins
                file = (content, headers.get("content-type"))
        elif field:
            fields[field.group(1)] = content.decode("utf-8", "replace")
        pos = end + 2
    return fields, file


class StorageApp:
    """The storage API as an ``App``; call :meth:`close` to release SQLite."""

    def __init__(
        self,
        data_dir: Path,
        jwt_secret: str,
        *,
        jwt_alg: str = "HS256",
        jwks: dict[str, Any] | None = None,
        public_url: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "storage"
        self.tmp = self.data_dir / "storage-tmp"  # same filesystem: uploads land with os.replace
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.jwt_secret = jwt_secret
        self.jwt_alg = jwt_alg
        self.jwks = jwks
        self.public_url = public_url.rstrip("/") if public_url else None
        # One lock serialises metadata + file moves; uploads are written to a temp file outside it.
        # One lock serialises metadata + file moves; uploads are written to a temp file outside it.
        self._sql = SqliteDb(self.data_dir / "storage.sqlite3", """
                create table if not exists buckets (
                    id text primary key, name text not null, owner text, public integer not null,
                    file_size_limit integer, allowed_mime_types text,
                    created_at real not null, updated_at real not null);
                create table if not exists objects (
                    bucket_id text not null, name text not null, id text not null, owner text,
                    size integer not null, mimetype text not null, cache_control text not null,
                    etag text not null, user_metadata text,
                    created_at real not null, updated_at real not null, last_accessed_at real not null,
                    primary key (bucket_id, name));
                """)
        self._lock, self._db = self._sql.lock, self._sql.db
        with self._tx() as db:
            now = time.time()
            for bucket_id, public, limit, mimes in DEFAULT_BUCKETS:
                db.execute(
                    "insert or ignore into buckets values (?, ?, null, ?, ?, ?, ?, ?)",
                    (bucket_id, bucket_id, int(public), limit, json.dumps(mimes) if mimes else None, now, now),
                )

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the SQLite connection (the app must not be called afterwards)."""
        self._sql.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._sql.tx()

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self._sql.one(sql, *args)

    def __call__(self, req: Request) -> Response:
        if req.method == "OPTIONS":  # when served without the gateway in front
            return Response(200, b"", {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*",
                                       "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, HEAD, OPTIONS"})
        try:
            resp = self._route(req)
        except StorageError as err:
            resp = err.response()
        resp.headers.setdefault("Access-Control-Allow-Origin", "*")
        resp.headers.setdefault("Access-Control-Expose-Headers", _CORS_EXPOSE)
        return resp

    def _route(self, req: Request) -> Response:
        if req.path != PREFIX and not req.path.startswith(PREFIX + "/"):
            return self._no_route(req)
        sub, m = req.path[len(PREFIX) :], req.method
        if sub in ("/status", "/health") and m in ("GET", "HEAD"):
            return Response.json({"healthy": True})
        if sub in ("/bucket", "/bucket/"):
            if m == "GET":
                return self._list_buckets(req)
            if m == "POST":
                return self._create_bucket(req)
        elif sub.startswith("/bucket/"):
            rest = sub[len("/bucket/") :]
            if rest.endswith("/empty") and m == "POST":
                return self._empty_bucket(req, rest[: -len("/empty")])
            if "/" not in rest and m in ("GET", "PUT", "DELETE"):
                return {"GET": self._get_bucket, "PUT": self._update_bucket, "DELETE": self._delete_bucket}[m](
                    req, rest
                )
        elif sub.startswith("/object/"):
            head, _, tail = sub[len("/object/") :].partition("/")
            bucket, _, key = tail.partition("/")
            if head == "list" and m == "POST" and bucket and not key:
                return self._list(req, bucket)
            if head in ("move", "copy") and not tail and m == "POST":
                return self._move(req) if head == "move" else self._copy(req)
            if head == "sign" and bucket:
                if not key and m == "POST":
                    return self._sign_many(req, bucket)
                if m == "POST":
                    return self._sign(req, bucket, key)
                if m in ("GET", "HEAD"):
                    return self._get_signed(req, bucket, key)
            if head == "upload" and bucket == "sign":
                bucket, _, key = key.partition("/")
                if m == "POST":
                    return self._sign_upload(req, bucket, key)
                if m == "PUT":
                    return self._upload_signed(req, bucket, key)
            if head == "info" and m == "GET":
                if bucket in ("authenticated", "public"):
                    bucket, _, key = key.partition("/")
                return self._info(req, bucket, key)
            if head == "authenticated" and m in ("GET", "HEAD"):
                return self._download(req, bucket, key)
            if head == "public" and m in ("GET", "HEAD"):
                return self._download_public(req, bucket, key)
            if head not in ("list", "move", "copy", "sign", "upload", "info", "authenticated", "public"):
                if not tail and m == "DELETE":
                    return self._remove(req, head)
                if tail and m in ("POST", "PUT"):
                    return self._upload(req, head, tail, upsert=m == "PUT" or req.header("x-upsert") == "true")
                if tail and m in ("GET", "HEAD"):
                    return self._download(req, head, tail)
                if tail and m == "DELETE":
                    return self._delete_one(req, head, tail)
        return self._no_route(req)

    @staticmethod
    def _no_route(req: Request) -> Response:
        # Fastify's own 404 (not a storage error: real HTTP 404).
        msg = f"Route {req.method}:{req.path} not found"
        return Response.json({"statusCode": "404", "error": "Not Found", "message": msg}, 404)

    @staticmethod
    def _body(req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise _bad_request("Body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _bad_request("body must be object")
        return body

    # -- who is asking ----------------------------------------------------------------------

    def _verify(self, token: str) -> dict[str, Any]:
        """Verify a JWT signed with the project secret (or, for asymmetric projects, the JWKS)."""
        try:
            alg = jwt.get_unverified_header(token).get("alg")
            key: Any
            if alg == "HS256":
                key = self.jwt_secret
            elif alg in ("ES256", "RS256") and self.jwks:
                kid = jwt.get_unverified_header(token).get("kid")
                jwk = next((k for k in self.jwks.get("keys", []) if k.get("kid") == kid), None)
                if jwk is None:
                    raise _invalid_jwt("no applicable key found in the JSON Web Key Set")
                key = jwt.PyJWK(jwk).key
            else:
                raise _invalid_jwt(f"alg {alg!r} is not allowed")
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[str(alg)], options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise _invalid_jwt('"exp" claim timestamp check failed') from None
        except jwt.PyJWTError as exc:
            raise _invalid_jwt(str(exc) or "Invalid JWT") from None
        return claims

    def _caller(self, req: Request) -> Caller:
        auth = req.header("authorization")
        if not auth:
            raise StorageError(400, "InvalidRequest", "headers must have required property 'authorization'", "Error")
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid_jwt("Invalid Compact JWS")
        claims = self._verify(token.strip())
        role = claims.get("role")
        if role in ("service_role", "anon"):
            return Caller(str(role))
        if role == "authenticated":
            aud = claims.get("aud")
            sub = claims.get("sub")
            if "authenticated" not in (aud if isinstance(aud, list) else [aud]):
                raise _invalid_jwt('unexpected "aud" claim value')
            if not isinstance(sub, str) or not sub:
                raise _invalid_jwt("missing sub claim")
            return Caller("authenticated", sub)
        # Signed-URL tokens carry no role: they must never pass as an API token.
        raise _invalid_jwt("role claim missing or not allowed")

    @staticmethod
    def _can(caller: Caller, action: str, bucket: str, name: str) -> bool:
        """Row-level security of ``storage.objects`` for ``action`` on ``bucket/name``."""
        if caller.role in ("service_role", "superuser"):
            return True
        if caller.role != "authenticated" or caller.uid is None:
            return False  # anon has no policy at all
        folders = name.split("/")[:-1]  # storage.foldername(name)
        return bool(folders) and folders[0] == caller.uid and action in POLICIES.get(bucket, frozenset())

    # -- helpers ----------------------------------------------------------------------------

    def _bucket(self, bucket_id: str) -> sqlite3.Row:
        row = self._one("select * from buckets where id = ?", bucket_id)
        if row is None:
            raise _no_bucket()
        return row

    def _file(self, bucket: str, name: str) -> Path:
        """The file behind ``bucket/name``; refuses any key that could leave the bucket's folder."""
        parts = name.split("/")
        if (
            not _KEY_RE.match(name)
            or len(name.encode()) > 1024
            or any(p in ("", ".", "..") or len(p.encode()) > 255 for p in parts)
        ):
            raise _invalid_key(name)
        base = (self.root / bucket).resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base) or path == base:  # belt and braces after the checks above
            raise _invalid_key(name)
        return path

    def _object(self, bucket: str, name: str) -> sqlite3.Row | None:
        return self._one("select * from objects where bucket_id = ? and name = ?", bucket, name)

    def _visible(self, caller: Caller, bucket: str, name: str) -> sqlite3.Row:
        """The object if it exists and ``caller`` may select it (RLS hides it otherwise: 404)."""
        self._bucket(bucket)
        self._file(bucket, name)
        row = self._object(bucket, name)
        if row is None or not self._can(caller, "select", bucket, name):
            raise _not_found()
        return row

    @staticmethod
    def _object_json(row: sqlite3.Row, name: str | None = None) -> dict[str, Any]:
        return {
            "name": row["name"] if name is None else name,
            "id": row["id"],
            "bucket_id": row["bucket_id"],
            "owner": row["owner"],
            "owner_id": row["owner"],
            "updated_at": _iso(row["updated_at"]),
            "created_at": _iso(row["created_at"]),
            "last_accessed_at": _iso(row["last_accessed_at"]),
            "metadata": {
                "eTag": row["etag"],
                "size": row["size"],
                "mimetype": row["mimetype"],
                "cacheControl": row["cache_control"],
                "lastModified": _iso(row["updated_at"]),
                "contentLength": row["size"],
                "httpStatusCode": 200,
            },
            "user_metadata": json.loads(row["user_metadata"]) if row["user_metadata"] else None,
        }

    def _prune_dirs(self, bucket: str, path: Path) -> None:
        # Folders are implicit in Storage: drop the empty ones a delete or move leaves behind.
        base = (self.root / bucket).resolve()
        parent = path.parent
        while parent != base and parent.is_relative_to(base):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _token(self, claims: dict[str, Any], ttl: int) -> str:
        now = int(time.time())
        # Always HS256 with the project secret, as storage-api signs URLs even in JWKS projects.
        return jwt.encode({**claims, "iat": now, "exp": now + ttl}, self.jwt_secret, algorithm="HS256")

    @staticmethod
    def _expires_in(body: dict[str, Any]) -> int:
        raw = body.get("expiresIn")
        try:
            value = int(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else 0
        except ValueError:
            value = 0
        if value < 1:
            raise _bad_request("body/expiresIn must be >= 1")
        return value

    def _signed_path(self, bucket: str, name: str, token: str) -> str:
        return f"/object/sign/{quote(f'{bucket}/{name}', safe='/')}?token={token}"

    def sign_url(self, bucket: str, name: str, expires_in: int) -> str:
        """A signed download URL (absolute when ``public_url`` was given), bypassing policies."""
        rel = self._signed_path(bucket, name, self._token({"url": f"{bucket}/{name}"}, expires_in))
        return f"{self.public_url}{PREFIX}{rel}" if self.public_url else f"{PREFIX}{rel}"

    # -- writing objects --------------------------------------------------------------------

    def _read_upload(self, req: Request) -> tuple[bytes, str, str, str | None]:
        """(content, mimetype, cache control, user metadata JSON) of an upload request."""
        ctype = req.header("content-type")
        if ctype.lower().startswith("multipart/form-data"):
            fields, file = _parse_multipart(req.body, ctype)
            if file is None:
                raise _bad_request("No content provided")
            content, mime = file
            cache = f"max-age={fields['cacheControl']}" if fields.get("cacheControl") else "no-cache"
            metadata = fields.get("metadata")
            return content, mime or "text/plain;charset=UTF-8", cache, metadata
        return req.body, ctype or "text/plain;charset=UTF-8", req.header("cache-control") or "no-cache", None

    def _store(
        self, req: Request, caller: Caller, bucket_id: str, name: str, *, upsert: bool, owner: str | None
    ) -> Response:
        bucket = self._bucket(bucket_id)
        path = self._file(bucket_id, name)
        # Policies first (storage-api tests the insert before streaming), then the bucket's limits.
        if not self._can(caller, "insert", bucket_id, name):
            raise _rls()
        existing = self._object(bucket_id, name)
        if existing is not None and not upsert:
            raise _duplicate()
        if existing is not None and not self._can(caller, "update", bucket_id, name):
            raise _rls()
        content, mime, cache, metadata = self._read_upload(req)
        if metadata is not None:
            try:
                json.loads(metadata)
            except ValueError:
                raise _bad_request("metadata is not valid JSON") from None
        limit = bucket["file_size_limit"]
        if limit is not None and len(content) > limit:
            raise _too_large()
        allowed = json.loads(bucket["allowed_mime_types"]) if bucket["allowed_mime_types"] else None
        if allowed and not _mime_allowed(mime, allowed):
            raise StorageError(415, "InvalidMimeType", f"mime type {mime} is not supported", "invalid_mime_type")
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        tmp.write_bytes(content)
        etag = f'"{hashlib.md5(content, usedforsecurity=False).hexdigest()}"'
        try:
            with self._tx() as db:
                # Re-check under the lock: a concurrent upload may have created it meanwhile.
                current = db.execute(
                    "select id, created_at from objects where bucket_id = ? and name = ?", (bucket_id, name)
                ).fetchone()
                if current is not None and not upsert:
                    raise _duplicate()
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, path)
                except (NotADirectoryError, IsADirectoryError, FileExistsError):
                    raise _clash(name) from None
                now = time.time()
                object_id = current["id"] if current else str(uuid.uuid4())
                created = current["created_at"] if current else now
                db.execute(
                    "insert or replace into objects values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (bucket_id, name, object_id, owner, len(content), mime, cache, etag, metadata, created, now, now),
                )
        finally:
            tmp.unlink(missing_ok=True)
        return Response.json({"Id": object_id, "Key": f"{bucket_id}/{name}"})

    def _upload(self, req: Request, bucket: str, name: str, *, upsert: bool) -> Response:
        caller = self._caller(req)
        return self._store(req, caller, bucket, name, upsert=upsert, owner=caller.uid)

    def _sign_upload(self, req: Request, bucket: str, name: str) -> Response:
        caller = self._caller(req)
        self._bucket(bucket)
        self._file(bucket, name)
        upsert = req.header("x-upsert") == "true"
        if not self._can(caller, "insert", bucket, name):
            raise _rls()
        if not upsert and self._object(bucket, name) is not None:
            raise _duplicate()
        token = self._token({"owner": caller.uid, "url": f"{bucket}/{name}", "upsert": upsert}, SIGNED_UPLOAD_TTL)
        return Response.json({"url": f"/object/upload/sign/{quote(f'{bucket}/{name}', safe='/')}?token={token}",
                              "token": token})

    def _upload_signed(self, req: Request, bucket: str, name: str) -> Response:
        token = req.query.get("token")
        if not token:
            raise _bad_request("querystring must have required property 'token'")
        claims = self._verify(token)
        if "upsert" not in claims:  # a signed *download* token must not authorise uploads
            raise StorageError(400, "InvalidSignature", "The url do not match the signature")
        if claims.get("url") != f"{bucket}/{name}":
            raise StorageError(400, "InvalidSignature", "The url do not match the signature")
        owner = claims.get("owner")
        return self._store(req, SUPERUSER, bucket, name, upsert=bool(claims["upsert"]),
                           owner=owner if isinstance(owner, str) else None)

    # -- reading objects --------------------------------------------------------------------

    def _serve(self, req: Request, row: sqlite3.Row) -> Response:
        """The object's bytes with HTTP caching headers, honouring one ``Range`` (206) for seeking."""
        path = self._file(row["bucket_id"], row["name"])
        headers = {
            "Content-Type": row["mimetype"],
            "Cache-Control": row["cache_control"],
            "ETag": row["etag"],
            "Last-Modified": formatdate(row["updated_at"], usegmt=True),
            "Accept-Ranges": "bytes",
        }
        if "download" in req.query:
            filename = req.query["download"] or row["name"].rsplit("/", 1)[-1]
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
        if req.header("if-none-match") == row["etag"]:
            return Response(304, b"", headers)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            raise _not_found() from None
        with fh:
            size = os.fstat(fh.fileno()).st_size
            start, end = 0, size - 1
            status = 200
            rng = req.header("range").strip()
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng) if rng else None
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:  # suffix range: the last N bytes
                    start = max(size - int(m.group(2)), 0)
                if start >= size or start > end:
                    headers["Content-Range"] = f"bytes */{size}"
                    return Response(416, b"", headers)
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            length = max(end - start + 1, 0)
            headers["Content-Length"] = str(length)
            if req.method == "HEAD":
                return Response(status, b"", headers)
            fh.seek(start)
            return Response(status, fh.read(length), headers)

    def _download(self, req: Request, bucket: str, name: str) -> Response:
        return self._serve(req, self._visible(self._caller(req), bucket, name))

    def _download_public(self, req: Request, bucket: str, name: str) -> Response:
        if not self._bucket(bucket)["public"]:
            raise _not_found()
        return self._serve(req, self._visible(SUPERUSER, bucket, name))

    def _get_signed(self, req: Request, bucket: str, name: str) -> Response:
        token = req.query.get("token")
        if not token:
            raise _bad_request("querystring must have required property 'token'")
        claims = self._verify(token)
        if "upsert" in claims or claims.get("url") != f"{bucket}/{name}":
            raise StorageError(400, "InvalidSignature", "The url do not match the signature")
        return self._serve(req, self._visible(SUPERUSER, bucket, name))

    def _info(self, req: Request, bucket: str, name: str) -> Response:
        row = self._visible(self._caller(req), bucket, name)
        return Response.json({
            "id": row["id"], "name": row["name"], "version": row["etag"].strip('"'), "bucket_id": bucket,
            "size": row["size"], "content_type": row["mimetype"], "cache_control": row["cache_control"],
            "etag": row["etag"], "metadata": json.loads(row["user_metadata"]) if row["user_metadata"] else {},
            "last_modified": _iso(row["updated_at"]), "created_at": _iso(row["created_at"]),
        })

    def _sign(self, req: Request, bucket: str, name: str) -> Response:
        caller = self._caller(req)
        expires_in = self._expires_in(self._body(req))
        self._visible(caller, bucket, name)
        token = self._token({"url": f"{bucket}/{name}"}, expires_in)
        return Response.json({"signedURL": self._signed_path(bucket, name, token)})

    def _sign_many(self, req: Request, bucket: str) -> Response:
        caller = self._caller(req)
        body = self._body(req)
        expires_in = self._expires_in(body)
        paths = body.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise _bad_request("body/paths must be a non-empty array of strings")
        self._bucket(bucket)
        out: list[dict[str, Any]] = []
        for name in paths:
            try:
                self._visible(caller, bucket, name)
            except StorageError:
                out.append({"error": "Either the object does not exist or you do not have access to it",
                            "path": name, "signedURL": None})
                continue
            token = self._token({"url": f"{bucket}/{name}"}, expires_in)
            out.append({"error": None, "path": name, "signedURL": self._signed_path(bucket, name, token)})
        return Response.json(out)

    def _list(self, req: Request, bucket: str) -> Response:
        caller = self._caller(req)
        body = self._body(req)
        self._bucket(bucket)
        prefix = body.get("prefix", "")
        limit, offset, search = body.get("limit", 100), body.get("offset", 0), body.get("search", "")
        sort = body.get("sortBy") or {}
        if (
            not isinstance(prefix, str) or not isinstance(search, str) or not isinstance(sort, dict)
            or not isinstance(limit, int) or not isinstance(offset, int) or limit < 1 or offset < 0
        ):
            raise _bad_request("body must have prefix (string), limit >= 1, offset >= 0")
        column = sort.get("column", "name")
        if column not in ("name", "updated_at", "created_at", "last_accessed_at"):
            raise _bad_request("body/sortBy/column must be equal to one of the allowed values")
        prefix = prefix.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # "a" lists the folder a/, like storage.search()
        with self._lock:
            rows = self._db.execute(
                "select * from objects where bucket_id = ? and substr(name, 1, ?) = ?", (bucket, len(prefix), prefix)
            ).fetchall()
        entries: dict[str, dict[str, Any]] = {}
        for row in rows:
            if not self._can(caller, "select", bucket, row["name"]):
                continue
            rest = row["name"][len(prefix) :]
            if "/" in rest:  # a deeper object shows as its folder
                folder = rest.split("/", 1)[0]
                entries.setdefault(folder, {"name": folder, "id": None, "updated_at": None, "created_at": None,
                                            "last_accessed_at": None, "metadata": None})
            else:
                entries[rest] = self._object_json(row, rest)
        items = [e for e in entries.values() if e["name"].lower().startswith(search.lower())]
        items.sort(key=lambda e: (e[column] is not None, e[column] or ""), reverse=sort.get("order") == "desc")
        return Response.json(items[offset : offset + limit])

    # -- removing, moving, copying ----------------------------------------------------------

    def _delete_row(self, db: sqlite3.Connection, row: sqlite3.Row) -> None:
        path = self._file(row["bucket_id"], row["name"])
        db.execute("delete from objects where bucket_id = ? and name = ?", (row["bucket_id"], row["name"]))
        path.unlink(missing_ok=True)
        self._prune_dirs(row["bucket_id"], path)

    def _remove(self, req: Request, bucket: str) -> Response:
        caller = self._caller(req)
        prefixes = self._body(req).get("prefixes")
        if not isinstance(prefixes, list) or not 1 <= len(prefixes) <= 1000 or not all(
            isinstance(p, str) for p in prefixes
        ):
            raise _bad_request("body/prefixes must be an array of 1 to 1000 strings")
        self._bucket(bucket)
        deleted: list[dict[str, Any]] = []
        with self._tx() as db:
            for name in dict.fromkeys(prefixes):
                row = db.execute("select * from objects where bucket_id = ? and name = ?", (bucket, name)).fetchone()
                # RLS: rows the caller may not delete are silently skipped, as a Postgres delete does.
                if row is None or not self._can(caller, "delete", bucket, name):
                    continue
                self._delete_row(db, row)
                deleted.append(self._object_json(row))
        return Response.json(deleted)

    def _delete_one(self, req: Request, bucket: str, name: str) -> Response:
        caller = self._caller(req)
        row = self._visible(caller, bucket, name)
        if not self._can(caller, "delete", bucket, name):
            raise _not_found()
        with self._tx() as db:
            self._delete_row(db, row)
        return Response.json({"message": "Successfully deleted"})

    def _transfer(self, req: Request, *, move: bool) -> tuple[Caller, str, str, sqlite3.Row]:
        caller = self._caller(req)
        body = self._body(req)
        bucket, src, dst = body.get("bucketId"), body.get("sourceKey"), body.get("destinationKey")
        if not all(isinstance(v, str) and v for v in (bucket, src, dst)):
            raise _bad_request("body must have bucketId, sourceKey and destinationKey")
        assert isinstance(bucket, str) and isinstance(src, str) and isinstance(dst, str)
        dest_bucket = body.get("destinationBucket") or bucket
        if dest_bucket != bucket:
            raise _bad_request("moving or copying across buckets is not supported by the stand-in")
        row = self._visible(caller, bucket, src)
        self._file(bucket, dst)
        # Move = update (using: old path, with check: new path); copy = insert at the new path.
        allowed = (
            self._can(caller, "update", bucket, src) and self._can(caller, "update", bucket, dst)
            if move
            else self._can(caller, "insert", bucket, dst)
        )
        if not allowed:
            raise _rls()
        return caller, bucket, dst, row

    def _move(self, req: Request) -> Response:
        _, bucket, dst, row = self._transfer(req, move=True)
        src_path, dst_path = self._file(bucket, row["name"]), self._file(bucket, dst)
        with self._tx() as db:
            if db.execute("select 1 from objects where bucket_id = ? and name = ?", (bucket, dst)).fetchone():
                raise _duplicate()
            try:
                dst_path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src_path, dst_path)
            except (NotADirectoryError, IsADirectoryError, FileExistsError):
                raise _clash(dst) from None
            db.execute("update objects set name = ?, updated_at = ? where bucket_id = ? and name = ?",
                       (dst, time.time(), bucket, row["name"]))
            self._prune_dirs(bucket, src_path)
        return Response.json({"message": "Successfully moved"})

    def _copy(self, req: Request) -> Response:
        caller, bucket, dst, row = self._transfer(req, move=False)
        upsert = req.header("x-upsert") == "true"
        src_path, dst_path = self._file(bucket, row["name"]), self._file(bucket, dst)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        shutil.copyfile(src_path, tmp)
        try:
            with self._tx() as db:
                current = db.execute(
                    "select id from objects where bucket_id = ? and name = ?", (bucket, dst)
                ).fetchone()
                if current is not None and (not upsert or not self._can(caller, "update", bucket, dst)):
                    raise _duplicate() if not upsert else _rls()
                try:
                    dst_path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, dst_path)
                except (NotADirectoryError, IsADirectoryError, FileExistsError):
                    raise _clash(dst) from None
                now = time.time()
                object_id = str(uuid.uuid4())
                db.execute(
                    "insert or replace into objects values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (bucket, dst, object_id, caller.uid, row["size"], row["mimetype"], row["cache_control"],
                     row["etag"], row["user_metadata"], now, now, now),
                )
        finally:
            tmp.unlink(missing_ok=True)
        return Response.json({"Id": object_id, "Key": f"{bucket}/{dst}"})

    # -- buckets (storage.buckets has RLS and no policies: only the service role gets through) --

    @staticmethod
    def _bucket_json(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"], "name": row["name"], "owner": row["owner"] or "", "owner_id": row["owner"],
            "public": bool(row["public"]), "type": "STANDARD", "file_size_limit": row["file_size_limit"],
            "allowed_mime_types": json.loads(row["allowed_mime_types"]) if row["allowed_mime_types"] else None,
            "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]),
        }

    def _service(self, req: Request) -> bool:
        return self._caller(req).role == "service_role"

    def _list_buckets(self, req: Request) -> Response:
        if not self._service(req):
            return Response.json([])
        with self._lock:
            rows = self._db.execute("select * from buckets order by name").fetchall()
        return Response.json([self._bucket_json(r) for r in rows])

    def _get_bucket(self, req: Request, bucket: str) -> Response:
        if not self._service(req):
            raise _no_bucket()
        return Response.json(self._bucket_json(self._bucket(bucket)))

    @staticmethod
    def _bucket_options(body: dict[str, Any]) -> tuple[bool, int | None, list[str] | None]:
        public = body.get("public", False)
        mimes = body.get("allowed_mime_types")
        if not isinstance(public, bool):
            raise _bad_request("body/public must be boolean")
        if mimes is not None and (not isinstance(mimes, list) or not all(isinstance(x, str) for x in mimes)):
            raise _bad_request("body/allowed_mime_types must be an array of strings")
        return public, _parse_size(body.get("file_size_limit")), mimes or None

    def _create_bucket(self, req: Request) -> Response:
        if not self._service(req):
            raise _rls()
        body = self._body(req)
        bucket_id = body.get("id") or body.get("name")
        if not isinstance(bucket_id, str) or not _BUCKET_RE.match(bucket_id):
            raise StorageError(400, "InvalidBucketName", "Bucket name invalid", "Invalid Input")
        name = body.get("name") if isinstance(body.get("name"), str) else bucket_id
        public, limit, mimes = self._bucket_options(body)
        now = time.time()
        with self._tx() as db:
            if db.execute("select 1 from buckets where id = ?", (bucket_id,)).fetchone():
                raise StorageError(409, "BucketAlreadyExists", "The resource already exists", "Duplicate")
            db.execute("insert into buckets values (?, ?, null, ?, ?, ?, ?, ?)",
                       (bucket_id, name, int(public), limit, json.dumps(mimes) if mimes else None, now, now))
        return Response.json({"name": name})

    def _update_bucket(self, req: Request, bucket: str) -> Response:
        if not self._service(req):
            raise _no_bucket()
        self._bucket(bucket)
        public, limit, mimes = self._bucket_options(self._body(req))
        with self._tx() as db:
            db.execute("update buckets set public = ?, file_size_limit = ?, allowed_mime_types = ?, updated_at = ?"
                       " where id = ?", (int(public), limit, json.dumps(mimes) if mimes else None, time.time(), bucket))
        return Response.json({"message": "Successfully updated"})

    def _empty_bucket(self, req: Request, bucket: str) -> Response:
        if not self._service(req):
            raise _no_bucket()
        self._bucket(bucket)
        with self._tx() as db:
            for row in db.execute("select * from objects where bucket_id = ?", (bucket,)).fetchall():
                self._delete_row(db, row)
        return Response.json({"message": "Successfully emptied"})

    def _delete_bucket(self, req: Request, bucket: str) -> Response:
        if not self._service(req):
            raise _no_bucket()
        self._bucket(bucket)
        with self._tx() as db:
            if db.execute("select 1 from objects where bucket_id = ? limit 1", (bucket,)).fetchone():
                raise StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")
            db.execute("delete from buckets where id = ?", (bucket,))
            shutil.rmtree(self.root / bucket, ignore_errors=True)  # only empty folders remain there
        return Response.json({"message": "Successfully deleted"})


def make_storage_app(
    data_dir: Path,
    jwt_secret: str,
    *,
    jwt_alg: str = "HS256",
    jwks: dict[str, Any] | None = None,
    public_url: str | None = None,
) -> StorageApp:
    """The Storage stand-in for ``/storage/v1/*``; state lives under ``data_dir``.

    ``jwks`` (a JWKS document) lets asymmetric (ES256/RS256) user tokens through; the API keys and
    signed-URL tokens are always HS256 with ``jwt_secret``. ``public_url`` (the project URL) makes
    :meth:`StorageApp.sign_url` return absolute URLs.
    """
    return StorageApp(Path(data_dir), jwt_secret, jwt_alg=jwt_alg, jwks=jwks, public_url=public_url)


