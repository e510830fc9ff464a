"""One exception tree for everything the SDK raises.

The API answers errors as RFC 9457 problem documents with a stable `code`. A response maps to the class of
its code when the SDK knows that code, else to the class of its HTTP status, so callers can branch on what
happened (`except InsufficientPointsError`) or on its broad kind (`except ConflictError`)."""

from __future__ import annotations

from typing import Any

import httpx


class AllianceError(Exception):
    """Base of every error raised by the SDK."""


class APIConnectionError(AllianceError):
    """The request did not get an answer: connection refused or dropped, DNS, TLS..."""

    def __init__(self, message: str = "Connection error.") -> None:
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    def __init__(self) -> None:
        super().__init__("Request timed out.")


class APIStatusError(AllianceError):
    """The API answered with a 4xx or 5xx status."""

    def __init__(self, response: httpx.Response, problem: dict[str, Any]) -> None:
        self.response = response
        self.status_code = response.status_code
        self.problem = problem
        self.code: str | None = problem.get("code")
        self.title: str | None = problem.get("title")
        self.detail: str | None = problem.get("detail")
        self.request_id: str | None = response.headers.get("x-request-id")
        summary = self.title or response.reason_phrase or "HTTP error"
        if self.detail:
            summary = f"{summary}: {self.detail}"
        super().__init__(f"{self.status_code} {self.code or 'error'}: {summary} (request id {self.request_id})")


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class ConflictError(APIStatusError):
    pass


class UnprocessableEntityError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


# --- one class per problem code a caller is likely to handle ----------------------------------------------


class MemberNotFoundError(NotFoundError):
    pass


class HoldNotFoundError(NotFoundError):
    pass


class EntryNotFoundError(NotFoundError):
    pass


class TenantNotFoundError(NotFoundError):
    pass


class KeyNotFoundError(NotFoundError):
    pass


class WebhookEndpointNotFoundError(NotFoundError):
    pass


class WebhookDeliveryNotFoundError(NotFoundError):
    pass


class SigningKeyNotFoundError(NotFoundError):
    pass


class SigningKeyKidTakenError(ConflictError):
    """The brand already has a key with this kid (revoked or not): a kid names one key forever."""


class SigningKeyLimitReachedError(ConflictError):
    """The brand has as many unrevoked signing keys as it may: revoke one first."""


class MemberFrozenError(ConflictError):
    pass


class IdempotencyKeyReusedError(ConflictError):
    """The idempotency key was already used for a different request."""


class HoldNotPendingError(ConflictError):
    pass


class AlreadyReversedError(ConflictError):
    pass


class TenantCodeTakenError(ConflictError):
    pass


class WebhookEndpointLimitReachedError(ConflictError):
    """The brand has as many webhook endpoints as it may: delete one first."""


class ValidationError(UnprocessableEntityError):
    @property
    def errors(self) -> list[dict[str, Any]]:
        """What was wrong, field by field: [{"key": ..., "message": ...}]."""
        return self.problem.get("errors", [])


class InsufficientPointsError(UnprocessableEntityError):
    @property
    def available(self) -> int | None:
        return self.problem.get("available")

    @property
    def requested(self) -> int | None:
        return self.problem.get("requested")


class HoldExpiredError(UnprocessableEntityError):
    pass


class AmountExceedsHoldError(UnprocessableEntityError):
    pass


class EntryIsReversalError(UnprocessableEntityError):
    pass


ERROR_BY_CODE: dict[str, type[APIStatusError]] = {
    "member_not_found": MemberNotFoundError,
    "hold_not_found": HoldNotFoundError,
    "entry_not_found": EntryNotFoundError,
    "tenant_not_found": TenantNotFoundError,
    "key_not_found": KeyNotFoundError,
    "webhook_endpoint_not_found": WebhookEndpointNotFoundError,
    "webhook_delivery_not_found": WebhookDeliveryNotFoundError,
    "signing_key_not_found": SigningKeyNotFoundError,
    "signing_key_kid_taken": SigningKeyKidTakenError,
    "signing_key_limit_reached": SigningKeyLimitReachedError,
    "member_frozen": MemberFrozenError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
    "hold_not_pending": HoldNotPendingError,
    "already_reversed": AlreadyReversedError,
    "tenant_code_taken": TenantCodeTakenError,
    "webhook_endpoint_limit_reached": WebhookEndpointLimitReachedError,
    "validation_error": ValidationError,
    "insufficient_points": InsufficientPointsError,
    "hold_expired": HoldExpiredError,
    "amount_exceeds_hold": AmountExceedsHoldError,
    "entry_is_reversal": EntryIsReversalError,
}

ERROR_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_from_response(response: httpx.Response) -> APIStatusError:
    try:
        body = response.json()
    except ValueError:  # not JSON: e.g. a proxy's HTML error page
        body = None
    problem = body if isinstance(body, dict) else {}
    error_class = ERROR_BY_CODE.get(problem.get("code") or "") or ERROR_BY_STATUS.get(response.status_code)
    if error_class is None:
        error_class = InternalServerError if response.status_code >= 500 else APIStatusError
    return error_class(response, problem)
