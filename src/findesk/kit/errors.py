"""Errors as RFC 7807 problems. Services raise them; the HTTP layers shape them."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class Problem(Exception):
    """A client-visible error: an HTTP status, a stable machine ``code`` and a human detail."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.errors = errors
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


class NotFound(Problem):
    status = 404
    code = "not_found"


class Invalid(Problem):
    status = 422
    code = "validation_error"


class Conflict(Problem):
    status = 409
    code = "conflict"


class Unauthorized(Problem):
    status = 401
    code = "invalid_token"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        # RFC 6750 §3.1: a request with no credentials at all gets no error code.
        challenge = 'Bearer realm="findesk"' + (f', error="{error}"' if error else "")
        super().__init__(
            detail,
            code=error or "missing_token",
            headers={"WWW-Authenticate": challenge},
        )


class Forbidden(Problem):
    status = 403
    code = "forbidden"
