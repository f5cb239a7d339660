"""The one error type the service raises for requests it cannot serve, and the error-id scheme.

A visitor sees either a short, specific message (a :class:`ServiceError` the service raised on
purpose) or, for anything unexpected, a generic message with an error id. The id is logged
with the full traceback, so the operator finds the cause without the visitor ever seeing
paths, tracebacks or library messages.
"""

from __future__ import annotations

import errno
import re
import logging
import secrets

LOGGER = logging.getLogger("voice_studio.errors")


class ServiceError(ValueError):
    """A request that cannot be served; ``status`` is the HTTP status that fits it."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None,
                 error_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.error_id = error_id


def new_error_id() -> str:
    """Short, unguessable, easy to read out: 12 hex digits."""
    return secrets.token_hex(6)


def unexpected(error: BaseException, what: str) -> ServiceError:
    """A 500 ServiceError with a fresh error id; the traceback goes to the server log under that id.

    The disk being full is not a bug: it becomes a clear 507 instead.
    """
    if isinstance(error, ServiceError):
        return error
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        LOGGER.error("disk full while %s: %s", what, error)
        return ServiceError("the server's disk is full; nothing was stored. Try again later.", status=507)
    error_id = new_error_id()
    LOGGER.error("error id %s while %s", error_id, what, exc_info=(type(error), error, error.__traceback__))
    return ServiceError(f"something went wrong on the server while {what} (error id {error_id})",
                        status=500, error_id=error_id)


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^\s/\\'\"]+)+[/\\]([^\s/\\'\"]+)")


def scrub_paths(message: str) -> str:
    """A library message without the server's folders: ``/srv/app/speakers/x/ref.wav`` -> ``ref.wav``."""
    return _PATH.sub(r"\1", message)
