"""GET /api/health -> 200 {"ok": true, "queue": {...}} (no auth, no private data)."""

from sorastudio import __version__
from sorastudio.models import now_iso
from sorastudio.services import get_queue, store_errors
from sorastudio.web import ApiError, ApiHandler, ApiRequest, Result


class handler(ApiHandler):  # noqa: N801 - Vercel looks for this exact name
    def get(self, req: ApiRequest) -> Result:
        try:
            with store_errors():
                queue = get_queue(req.settings).depth()
        except ApiError as exc:
            return 503, {"ok": False, "version": __version__, "time": now_iso(), "error": exc.body()["error"]}
        return 200, {"ok": True, "version": __version__, "time": now_iso(), "queue": queue}
