"""The one error type the service raises for requests it cannot serve."""

from __future__ import annotations


class ServiceError(ValueError):
    """A request that cannot be served; ``status`` is the HTTP status that fits it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
