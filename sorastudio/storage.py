"""Supabase Storage calls the functions make: signed download and upload URLs.

Every call is made as the *user* (their access token and the anon key), so Storage's own
policies — users write only ``uploads/<their id>/…`` and read only ``results/<their id>/…`` — are
checked again; the service-role key stays on the workers. Uses httpx directly: the ``supabase``
client costs ~340 ms to import on a function's cold start, and these are single documented calls.
"""

from __future__ import annotations

import time
from typing import Any

from sorastudio.settings import Settings

SIGNED_URL_SECONDS = 3600
TIMEOUT_SECONDS = 5.0
UPLOADS_BUCKET = "uploads"


class StorageUnavailable(Exception):
    """Storage refused or could not be reached."""


def create_upload_url(settings: Settings, access_token: str, object_path: str) -> str:
    """A signed URL the browser PUTs the file to (valid ~2 h, this one path only)."""
    import httpx

    try:
        response = httpx.post(
            f"{settings.supabase_url}/storage/v1/object/upload/sign/{UPLOADS_BUCKET}/{object_path}",
            headers={"apikey": settings.supabase_anon_key, "Authorization": f"Bearer {access_token}"},
            timeout=TIMEOUT_SECONDS,
        )
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise StorageUnavailable("storage unreachable") from exc
    url = data.get("url") if isinstance(data, dict) else None
    if response.status_code != 200 or not isinstance(url, str):
        raise StorageUnavailable(f"storage refused the upload URL ({response.status_code})")
    return url if url.startswith("http") else f"{settings.supabase_url}/storage/v1{url}"


def result_paths(result: dict[str, Any]) -> list[str]:
    """Object paths a result refers to: ``video`` and ``poster``, then scene thumbnails."""
    paths = [result[k] for k in ("video", "poster") if isinstance(result.get(k), str)]
    for scene in result.get("scenes") or []:
        if isinstance(scene, dict) and isinstance(scene.get("thumbnail"), str):
            paths.append(scene["thumbnail"])
    return paths


def _sign(settings: Settings, access_token: str, bucket: str, paths: list[str]) -> dict[str, str]:
    """{path: absolute signed URL} for the paths Storage agreed to sign (one batch request)."""
    import httpx

    try:
        response = httpx.post(
            f"{settings.supabase_url}/storage/v1/object/sign/{bucket}",
            json={"expiresIn": SIGNED_URL_SECONDS, "paths": paths},
            headers={"apikey": settings.supabase_anon_key, "Authorization": f"Bearer {access_token}"},
            timeout=TIMEOUT_SECONDS,
        )
        items = response.json() if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        items = []
    urls = {}
    for item in items if isinstance(items, list) else []:
        signed = item.get("signedURL") if isinstance(item, dict) else None
        if isinstance(signed, str) and isinstance(item.get("path"), str):
            urls[item["path"]] = signed if signed.startswith("http") else f"{settings.supabase_url}/storage/v1{signed}"
    return urls


def sign_result(settings: Settings, access_token: str, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` plus ``urls`` {path: signed URL} and ``urlsExpireAt``.

    Covers the result's files and, for an uploaded source, the upload itself (so the page can play
    it). When Storage fails the result comes back with ``urlsError`` instead.
    """
    bucket = result.get("bucket")
    paths = result_paths(result)
    source = result.get("source")
    upload = source.get("storagePath") if isinstance(source, dict) else None
    has_files = isinstance(bucket, str) and bool(paths)
    if not settings.supabase_url or not (has_files or isinstance(upload, str)):
        return result
    urls = _sign(settings, access_token, str(bucket), paths) if has_files else {}
    if isinstance(upload, str):
        urls.update(_sign(settings, access_token, UPLOADS_BUCKET, [upload]))
    if not urls:
        return {**result, "urls": {}, "urlsError": "Previews are unavailable right now; reload to retry."}
    return {**result, "urls": urls, "urlsExpireAt": int(time.time()) + SIGNED_URL_SECONDS}
