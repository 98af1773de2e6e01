"""POST /api/task {"type","payload"} (Bearer) -> 201 {"taskId","task"}; Idempotency-Key aware."""

from pydantic import ValidationError

from sorastudio.models import CreateTaskRequest, Task, new_task_id, now_iso
from sorastudio.services import get_queue, store_errors
from sorastudio.taskqueue import CreateOutcome
from sorastudio.wake import wake_workers
from sorastudio.web import ApiError, ApiHandler, ApiRequest, Result, invalid

MAX_IDEMPOTENCY_KEY = 255


class handler(ApiHandler):  # noqa: N801 - Vercel looks for this exact name
    def post(self, req: ApiRequest) -> Result:
        user = req.user()
        body = req.parse(CreateTaskRequest)
        try:
            payload = body.validated_payload()
        except ValidationError as exc:
            raise invalid(exc, ("payload",)) from None
        path = payload.get("storagePath")
        if isinstance(path, str) and not path.startswith(f"{user.id}/"):
            raise ApiError(400, "invalid_request", "Some fields are missing or invalid.", fields=[
                {"field": "payload.storagePath", "message": "must be a file in your own uploads folder"}])
        key = req.header("idempotency-key").strip() or None
        if key is not None and (len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable()):
            raise ApiError(400, "invalid_idempotency_key",
                           f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters.")
        now = now_iso()
        task = Task(id=new_task_id(), type=body.type, payload=payload, owner=user.id,
                    max_attempts=req.settings.task_max_attempts, created_at=now, updated_at=now)
        with store_errors():
            created = get_queue(req.settings).create(task, key)
        if created.outcome is CreateOutcome.CONFLICT or created.task is None:
            raise ApiError(409, "idempotency_key_reused",
                           "This Idempotency-Key was already used for a different request.")
        if created.outcome is CreateOutcome.CREATED:
            settings = req.settings
            self.after_response = lambda: wake_workers(settings)
        return 201, {
            "taskId": created.task.id,
            "task": created.task.public(created.queue_position),
            "replayed": created.outcome is CreateOutcome.EXISTING,
        }
