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
    """Object paths a ``video_analysis`` result refers to (poster first, then scene thumbnails)."""
    paths = [result["poster"]] if isinstance(result.get("poster"), str) else []
    for scene in result.get("scenes") or []:
        if isinstance(scene, dict) and isinstance(scene.get("thumbnail"), str):
            paths.append(scene["thumbnail"])
    return paths


def sign_result(settings: Settings, access_token: str, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` plus ``urls`` {path: signed URL} and ``urlsExpireAt``; unchanged if Storage fails."""
    paths = result_paths(result)
    bucket = result.get("bucket")
    if not paths or not isinstance(bucket, str) or not settings.supabase_url:
        return result
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
    if not urls:
        return {**result, "urls": {}, "urlsError": "Thumbnails are unavailable right now; reload to retry."}
    return {**result, "urls": urls, "urlsExpireAt": int(time.time()) + SIGNED_URL_SECONDS}
