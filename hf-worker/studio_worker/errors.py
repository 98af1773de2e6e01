"""How a processor says why it failed: permanent failures end the task, transient ones retry."""

from __future__ import annotations


class TaskFailure(Exception):
    """Base: ``code`` is a snake_case error code shown to the user with ``message``."""

    retryable = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PermanentError(TaskFailure):
    """Bad input or unsupported media: retrying cannot help, fail the task at once."""


class TransientError(TaskFailure):
    """Network or storage hiccup: retry with back-off."""

    retryable = True


class Canceled(Exception):
    """The task was canceled while running; stop and let the worker record it."""
