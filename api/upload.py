"""POST /api/upload {"filename","size","contentType"} (Bearer) -> 201 {"storagePath","uploadUrl",…}.

The video goes from the browser straight to Storage (functions accept at most 4.5 MB); this only
checks the request and hands out a signed URL for one path under the user's own folder. The task
is then created with ``{"storagePath"}``.
"""

from sorastudio.models import MAX_UPLOAD_BYTES, UploadRequest
from sorastudio.storage import StorageUnavailable, create_upload_url
from sorastudio.web import ApiError, ApiHandler, ApiRequest, Result

UPLOAD_URL_SECONDS = 7200  # Supabase's signed upload URLs last two hours


class handler(ApiHandler):  # noqa: N801 - Vercel looks for this exact name
    def post(self, req: ApiRequest) -> Result:
        user = req.user()
        body = req.parse(UploadRequest)
        if not req.settings.supabase_url:
            raise ApiError(503, "not_configured", "Uploads are not configured (SUPABASE_URL).")
        path = f"{user.id}/{body.object_name()}"
        try:
            url = create_upload_url(req.settings, req.bearer_token(), path)
        except StorageUnavailable:
            raise ApiError(503, "storage_unavailable",
                           "Uploads are unavailable right now; try again shortly.") from None
        return 201, {
            "storagePath": path,
            "uploadUrl": url,
            "method": "PUT",
            "formField": "file",
            "expiresIn": UPLOAD_URL_SECONDS,
            "maxBytes": MAX_UPLOAD_BYTES,
        }
