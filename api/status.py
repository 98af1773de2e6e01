"""GET /api/status?taskId=<id> (Bearer) -> 200 {"task"} with queuePosition while queued."""

from sorastudio.models import TaskStatus, is_task_id
from sorastudio.services import get_queue, store_errors
from sorastudio.web import ApiError, ApiHandler, ApiRequest, Result


class handler(ApiHandler):  # noqa: N801 - Vercel looks for this exact name
    def get(self, req: ApiRequest) -> Result:
        user = req.user()
        task_id = req.required_query("taskId")
        snapshot = None
        if is_task_id(task_id):
            with store_errors():
                snapshot = get_queue(req.settings).read(task_id)
        # Someone else's task is reported exactly like a missing one: no existence oracle.
        if snapshot is None or snapshot.task.owner != user.id:
            raise ApiError(404, "task_not_found", "No such task.")
        task = snapshot.public()
        if snapshot.task.status is TaskStatus.DONE and isinstance(task.get("result"), dict):
            from sorastudio.storage import sign_result

            task["result"] = sign_result(req.settings, req.bearer_token(), task["result"])
        return 200, {"task": task}
