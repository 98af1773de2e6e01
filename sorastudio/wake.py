"""Nudge idle workers after a task is created, so they claim it without waiting to poll.

Fire-and-forget with a tight timeout: a worker that is asleep, busy or unreachable costs the
caller at most ``timeout`` seconds and never an error; workers still poll on their own.
"""

from __future__ import annotations

import threading
import urllib.request

from sorastudio.settings import Settings

WAKE_TIMEOUT_SECONDS = 0.3


def _post(url: str, token: str, timeout: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - configured worker URLs, not user input
        f"{url}/wake", data=b"{}", method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(256)
    except Exception:  # noqa: S110 - by design: a wake is only a hint
        pass


def wake_workers(settings: Settings, timeout: float = WAKE_TIMEOUT_SECONDS) -> None:
    """POST /wake to every configured worker in parallel; return within about ``timeout``."""
    if not settings.worker_wake_urls or not settings.worker_wake_token:
        return
    threads = [
        threading.Thread(target=_post, args=(url, settings.worker_wake_token, timeout), daemon=True)
        for url in settings.worker_wake_urls
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 0.05)
