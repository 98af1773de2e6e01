"""POST /api/cancel?taskId=<id> (Bearer) -> 200 {"task"}; 409 once the task has finished."""

from sorastudio.models import is_task_id
from sorastudio.services import get_queue, store_errors
from sorastudio.web import ApiError, ApiHandler, ApiRequest, Result


class handler(ApiHandler):  # noqa: N801 - Vercel looks for this exact name
    def post(self, req: ApiRequest) -> Result:
        user = req.user()
        task_id = req.required_query("taskId")
        queue = get_queue(req.settings)
        with store_errors():
            snapshot = queue.read(task_id) if is_task_id(task_id) else None
            if snapshot is None or snapshot.task.owner != user.id:
                raise ApiError(404, "task_not_found", "No such task.")
            outcome, current = queue.cancel(snapshot)
        if outcome == "gone" or current is None:
            raise ApiError(404, "task_not_found", "No such task.")
        if outcome == "final":
            raise ApiError(409, "task_finished", f"The task has already finished ({current.task.status.value}).")
        if outcome == "busy":
            raise ApiError(409, "try_again", "The task is changing right now; try again.")
        return 200, {"task": current.task.public()}
