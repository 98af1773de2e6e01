"""GET /api/tasks?limit=&cursor=&status= (Bearer) -> 200 {"tasks": [...newest first], "nextCursor"}.

``?ids=a,b,c`` (up to 50) instead returns exactly those of the caller's tasks, with queue
positions, in one Redis request: the page polls all its active cards with one call.
"""

from sorastudio.models import TaskStatus, is_task_id
from sorastudio.services import get_queue, store_errors
from sorastudio.web import ApiError, ApiHandler, ApiRequest, Result

MAX_LIMIT = 100
FILTER_SCAN = 200  # index entries read per request when filtering by status
MAX_REQUESTS = 2
MAX_IDS = 50


class handler(ApiHandler):  # noqa: N801 - Vercel looks for this exact name
    def get(self, req: ApiRequest) -> Result:
        user = req.user()
        if "ids" in req.query:
            ids = [i for i in req.query["ids"].split(",") if i]
            if not ids or len(ids) > MAX_IDS or not all(is_task_id(i) for i in ids):
                raise ApiError(400, "invalid_request", f"ids must be 1-{MAX_IDS} task ids separated by commas.",
                               fields=[{"field": "ids", "message": f"1-{MAX_IDS} comma-separated task ids"}])
            with store_errors():
                snaps = get_queue(req.settings).read_many(list(dict.fromkeys(ids)))
            # Someone else's ids are simply absent, like unknown ones.
            tasks = [s.public() for s in snaps if s.task.owner == user.id]
            return 200, {"tasks": tasks, "nextCursor": None}
        limit = req.query_int("limit", 20, low=1, high=MAX_LIMIT)
        cursor = req.query.get("cursor") or None
        if cursor is not None and not is_task_id(cursor):
            raise ApiError(400, "invalid_request", "cursor is not valid; pass back a nextCursor.",
                           fields=[{"field": "cursor", "message": "not a cursor from this API"}])
        raw_status = req.query.get("status") or None
        try:
            status = TaskStatus(raw_status) if raw_status else None
        except ValueError:
            allowed = ", ".join(s.value for s in TaskStatus)
            raise ApiError(400, "invalid_request", f"status must be one of {allowed}.",
                           fields=[{"field": "status", "message": f"one of {allowed}"}]) from None
        queue = get_queue(req.settings)
        found = []
        with store_errors():
            if status is None:
                page = queue.list_for_user(user.id, limit=limit, cursor=cursor)
                return 200, {"tasks": [t.public() for t in page.tasks], "nextCursor": page.next_cursor}
            # Filtering reads index entries in larger pages and keeps the matches; a page may hold
            # fewer than `limit` tasks (keep following nextCursor), but never skips one.
            for _ in range(MAX_REQUESTS):
                page = queue.list_for_user(user.id, limit=FILTER_SCAN, cursor=cursor)
                for task in page.tasks:
                    if task.status is status:
                        found.append(task)
                        if len(found) == limit:
                            return 200, {"tasks": [t.public() for t in found], "nextCursor": task.id}
                cursor = page.next_cursor
                if cursor is None:
                    break
        return 200, {"tasks": [t.public() for t in found], "nextCursor": cursor}
