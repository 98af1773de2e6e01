"""Supabase Storage for the worker: read users' uploads, write results (service-role key).

The service-role key never leaves the worker; browsers only ever get signed URLs, which the
API's status function creates when it reads a finished task.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from sorastudio.settings import Settings
from studio_worker.errors import PermanentError, TransientError

UPLOADS_BUCKET = "uploads"
RESULTS_BUCKET = "results"


def _client(settings: Settings) -> Any:
    if not settings.supabase_url or not settings.supabase_service_role_key:
        raise PermanentError("storage_not_configured", "Storage is not configured on this worker.")
    from supabase import ClientOptions, create_client

    options = ClientOptions(auto_refresh_token=False, persist_session=False)
    return create_client(settings.supabase_url, settings.supabase_service_role_key, options=options)


def _translate(exc: Exception, what: str) -> Exception:
    """Storage's 4xx (missing object, bad path) is permanent; anything else may pass: retry."""
    status = str(getattr(exc, "status", "") or getattr(exc, "code", ""))
    if status.startswith("4") and status not in ("408", "429"):
        if status == "404" or "not found" in str(exc).lower():
            return PermanentError("upload_not_found", f"The uploaded file could not be found ({what}).")
        return PermanentError("storage_rejected", f"Storage refused the request ({what}).")
    return TransientError("storage_unavailable", f"Storage is unavailable right now ({what}).")


class ResultStore:
    """One task's view of Storage."""

    def __init__(self, settings: Settings) -> None:
        self.client = _client(settings)

    def download_upload(self, storage_path: str, dest: Path) -> Path:
        """Copy ``uploads/<storage_path>`` to ``dest`` (the bytes go to disk, not to the API)."""
        try:
            data = self.client.storage.from_(UPLOADS_BUCKET).download(storage_path)
        except Exception as exc:
            raise _translate(exc, "download") from exc
        dest.write_bytes(data)
        return dest

    def upload_result(self, local: Path, remote_path: str) -> str:
        """Upload (upsert: a retried task rewrites the same objects) and return the object path."""
        ctype = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        try:
            self.client.storage.from_(RESULTS_BUCKET).upload(
                remote_path, local.read_bytes(), {"content-type": ctype, "upsert": "true",
                                                   "cache-control": "3600"})
        except Exception as exc:
            raise _translate(exc, "upload") from exc
        return remote_path
