"""Every error a client sees is RFC 9457 problem+json with a stable `code`; none carries a stack trace."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import DBAPIError, IntegrityError

from alliance.db.transaction import sqlstate_of
from alliance.ledger import LedgerRejected, Rejection

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("alliance.errors")


class ProblemError(Exception):
    """Raise anywhere to answer with a problem document."""

    def __init__(
        self, status: int, code: str, title: str, detail: str | None = None, extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail, self.extra = status, code, title, detail, extra or {}
        self.headers = headers or {}


def problem(
    status: int, code: str, title: str, detail: str | None = None, extra: dict[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {"type": f"urn:alliance:problem:{code}", "code": code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    # Extension members never overwrite the standard ones.
    body.update({key: value for key, value in (extra or {}).items() if key not in body and key != "detail"})
    return Response(content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


# How each named ledger result reads over HTTP.
LEDGER_STATUS: dict[Rejection, int] = {
    Rejection.ACCOUNT_NOT_FOUND: 404,
    Rejection.HOLD_NOT_FOUND: 404,
    Rejection.ENTRY_NOT_FOUND: 404,
    Rejection.IDEMPOTENCY_KEY_REUSED: 409,
    Rejection.HOLD_NOT_PENDING: 409,
    Rejection.ALREADY_REVERSED: 409,
}


def _status_code(exc: HTTPException) -> str:
    return {
        400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
        409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited",
    }.get(exc.status_code, "http_error")


def handle_problem(_: Request, exc: ProblemError) -> Response:
    response = problem(exc.status, exc.code, exc.title, exc.detail, exc.extra)
    response.headers.update(exc.headers)
    return response


def handle_ledger_rejection(_: Request, exc: LedgerRejected) -> Response:
    status = LEDGER_STATUS.get(exc.code, 422)
    return problem(status, exc.code.value, exc.code.value.replace("_", " ").capitalize(), None, exc.detail)


def handle_validation(_: Request, exc: ValidationException) -> Response:
    errors = exc.extra if isinstance(exc.extra, list) else []
    return problem(422, "validation_error", "The request is not valid", str(exc.detail), {"errors": errors})


def handle_http(_: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotFoundException):
        return problem(404, "not_found", "Not found", exc.detail)
    response = problem(exc.status_code, _status_code(exc), exc.detail or "HTTP error")
    response.headers.update(exc.headers or {})  # e.g. Allow on 405, Retry-After on 429
    return response


def handle_integrity(_: Request, exc: IntegrityError) -> Response:
    # Reached only by races the services' own checks could not see (two creations of one thing at once).
    log.warning("integrity conflict", constraint=getattr(exc.orig, "constraint_name", None))
    return problem(409, "conflict", "The request conflicts with a concurrent change; retry it")


# Text PostgreSQL cannot store (a NUL character, invalid UTF-8), whichever field it came in: the input's fault.
UNSTORABLE_TEXT = frozenset({"22P05", "22021"})


def handle_database_error(request: Request, exc: DBAPIError | asyncpg.PostgresError) -> Response:
    if sqlstate_of(exc) in UNSTORABLE_TEXT:
        return problem(422, "validation_error", "The request holds text that cannot be stored",
                       "Remove NUL characters (\\u0000) and invalid Unicode from its strings.")
    return handle_unexpected(request, exc)


def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "Internal error",
                   "Something went wrong on our side; the request id identifies it in our logs.")


EXCEPTION_HANDLERS = {
    ProblemError: handle_problem,
    LedgerRejected: handle_ledger_rejection,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    IntegrityError: handle_integrity,
    DBAPIError: handle_database_error,
    asyncpg.PostgresError: handle_database_error,
    Exception: handle_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_MEDIA_TYPE", "ProblemError", "problem"]
