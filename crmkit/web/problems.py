"""Errors as RFC 9457 ``application/problem+json``: one mapping from crmkit's exceptions to HTTP statuses.

The answer says what went wrong and where (field errors under ``errors``) and never more:
an unexpected exception answers 500 with the request id only, the traceback goes to the log.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import HTTPException

from crmkit.errors import AuthenticationFailed, Conflict, CRMError, NotFound, PermissionDenied, ValidationError

PROBLEM_JSON = "application/problem+json"


class HttpProblem(Exception):
    """An HTTP-level refusal raised by the app or a handler: status, title, detail and extra members."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_for(exc: BaseException) -> HttpProblem | None:
    """The problem an exception answers as; None for an unexpected one (a 500)."""
    if isinstance(exc, HttpProblem):
        return exc
    if isinstance(exc, ValidationError):
        return HttpProblem(422, str(exc), errors=exc.errors)
    if isinstance(exc, NotFound):
        return HttpProblem(404, str(exc))
    if isinstance(exc, PermissionDenied):
        return HttpProblem(403, str(exc), permission=exc.permission)
    if isinstance(exc, AuthenticationFailed):
        return HttpProblem(401, str(exc), headers={"WWW-Authenticate": 'Bearer realm="crmkit"'})
    if isinstance(exc, Conflict):
        return HttpProblem(409, str(exc))
    if isinstance(exc, CRMError):
        return HttpProblem(400, str(exc))
    if isinstance(exc, HTTPException) and exc.code is not None and 400 <= exc.code < 500:
        # Werkzeug's, raised while reading the body: 413 past the limit (chunked too), 400 when the client vanished
        return HttpProblem(exc.code, exc.description or HTTPStatus(exc.code).phrase)
    if isinstance(exc, OverflowError) or type(exc).__name__ == "DataError":  # a value the database cannot hold
        return HttpProblem(422, "a value cannot be stored: a number out of range or a NUL character")
    return None


def problem_body(problem: HttpProblem, request_id: str, instance: str) -> dict[str, Any]:
    """The JSON members of a problem (``type`` is ``about:blank``: the status says it all)."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(problem.status).phrase,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        "request_id": request_id,
        **problem.extra,
    }
