"""One exception tree for everything the SDK raises.

The API answers errors as RFC 9457 problem documents with a stable `code`. A response maps to the class of
its code when the SDK knows that code, else to the class of its HTTP status, so callers can branch on what
happened (`except InsufficientPointsError`) or on its broad kind (`except ConflictError`)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Generic, Self, TypeVar, overload

import httpx

T = TypeVar("T")


class AllianceError(Exception):
    """Base of every error raised by the SDK."""


class CountersignatureError(AllianceError):
    """Something the platform signed did not verify against the platform's JWKS, or is not the record it was taken
    for (or there is none: the conversion is not committed): do not trust it."""


class StatementSignatureError(CountersignatureError):
    """A settlement statement's signature did not verify over its bytes: the file is not the one the platform
    issued (changed on the way, or not the platform's)."""


class APIConnectionError(AllianceError):
    """The request did not get an answer: connection refused or dropped, DNS, TLS..."""

    def __init__(self, message: str = "Connection error.") -> None:
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    def __init__(self) -> None:
        super().__init__("Request timed out.")


# The class of each problem code the SDK knows: a class declared with `code="..."` enters itself here.
ERROR_BY_CODE: dict[str, type[APIStatusError]] = {}


class APIStatusError(AllianceError):
    """The API answered with a 4xx or 5xx status."""

    def __init_subclass__(cls, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            if code in ERROR_BY_CODE:
                raise TypeError(f"{cls.__name__}: the code {code!r} is {ERROR_BY_CODE[code].__name__}'s already")
            ERROR_BY_CODE[code] = cls

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


class _ProblemMember(Generic[T]):
    """A read-only attribute of an error: the member of its problem document of the same name (None when the
    problem has none), through `convert` if given (money arrives as decimal strings)."""

    def __init__(self, convert: Callable[[Any], T] | None = None) -> None:
        self._convert = convert

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, error: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, error: APIStatusError, owner: type | None = None) -> T | None: ...

    def __get__(self, error: APIStatusError | None, owner: type | None = None) -> Self | T | None:
        if error is None:
            return self
        value = error.problem.get(self._name)
        return value if value is None or self._convert is None else self._convert(value)

    def __set__(self, error: APIStatusError, value: object) -> None:
        raise AttributeError(f"{self._name} is read from the problem document")


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


class MemberNotFoundError(NotFoundError, code="member_not_found"):
    pass


class HoldNotFoundError(NotFoundError, code="hold_not_found"):
    pass


class EntryNotFoundError(NotFoundError, code="entry_not_found"):
    pass


class TenantNotFoundError(NotFoundError, code="tenant_not_found"):
    pass


class KeyNotFoundError(NotFoundError, code="key_not_found"):
    pass


class WebhookEndpointNotFoundError(NotFoundError, code="webhook_endpoint_not_found"):
    pass


class WebhookDeliveryNotFoundError(NotFoundError, code="webhook_delivery_not_found"):
    pass


class SigningKeyNotFoundError(NotFoundError, code="signing_key_not_found"):
    pass


class BrandNotFoundError(NotFoundError, code="brand_not_found"):
    """No brand has this code."""


class ParticipantNotFoundError(NotFoundError, code="participant_not_found"):
    """The brand is not in the exchange."""


class PairNotFoundError(NotFoundError, code="pair_not_found"):
    pass


class QuoteNotFoundError(NotFoundError, code="quote_not_found"):
    pass


class ConversionNotFoundError(NotFoundError, code="conversion_not_found"):
    pass


class IdentityNotFoundError(NotFoundError, code="identity_not_found"):
    pass


class AllianceLinkNotFoundError(NotFoundError, code="alliance_link_not_found"):
    """The member has no alliance identity (links.retrieve / links.unlink)."""


class LinkCodeNotFoundError(NotFoundError, code="link_code_not_found"):
    """No such link code: check it; each is valid once, for 10 minutes."""


class SigningKeyKidTakenError(ConflictError, code="signing_key_kid_taken"):
    """The brand already has a key with this kid (revoked or not): a kid names one key forever."""


class SigningKeyLimitReachedError(ConflictError, code="signing_key_limit_reached"):
    """The brand has as many unrevoked signing keys as it may: revoke one first."""


class MemberFrozenError(ConflictError, code="member_frozen"):
    pass


class IdempotencyKeyReusedError(ConflictError, code="idempotency_key_reused"):
    """The idempotency key was already used for a different request."""


class HoldNotPendingError(ConflictError, code="hold_not_pending"):
    pass


class AlreadyReversedError(ConflictError, code="already_reversed"):
    pass


class TenantCodeTakenError(ConflictError, code="tenant_code_taken"):
    pass


class WebhookEndpointLimitReachedError(ConflictError, code="webhook_endpoint_limit_reached"):
    """The brand has as many webhook endpoints as it may: delete one first."""


class ParticipantExistsError(ConflictError, code="participant_exists"):
    pass


class ParticipantSuspendedError(ConflictError, code="participant_suspended"):
    """A brand of the pair is suspended from the exchange."""


class RateCardEffectiveAtTakenError(ConflictError, code="rate_card_effective_at_taken"):
    pass


class QuoteAlreadyUsedError(ConflictError, code="quote_already_used"):
    """A quote prices one conversion: get a new one."""

    conversion_id: _ProblemMember[int] = _ProblemMember()


class ConversionNotReservedError(ConflictError, code="conversion_not_reserved"):
    """Only a reserved conversion can be committed or aborted; this one is committed, aborted or expired."""

    conversion_status: _ProblemMember[str] = _ProblemMember()


class LinkCodeUsedError(ConflictError, code="link_code_used"):
    pass


class IdentityAlreadyLinkedAtBrandError(ConflictError, code="identity_already_linked_at_brand"):
    """The person's alliance identity already links another membership of that brand: unlink it first."""


class MembersLinkedToOtherIdentitiesError(ConflictError, code="members_linked_to_other_identities"):
    """Both memberships are linked already, to different alliance identities: unlink one of them first."""


class ValidationError(UnprocessableEntityError, code="validation_error"):
    @property
    def errors(self) -> list[dict[str, Any]]:
        """What was wrong, field by field: [{"key": ..., "message": ...}]."""
        return self.problem.get("errors", [])


class InsufficientPointsError(UnprocessableEntityError, code="insufficient_points"):
    available: _ProblemMember[int] = _ProblemMember()
    requested: _ProblemMember[int] = _ProblemMember()


class HoldExpiredError(UnprocessableEntityError, code="hold_expired"):
    pass


class AmountExceedsHoldError(UnprocessableEntityError, code="amount_exceeds_hold"):
    pass


class EntryIsReversalError(UnprocessableEntityError, code="entry_is_reversal"):
    pass


class AmountOutOfRangeError(UnprocessableEntityError, code="amount_out_of_range"):
    """The amount is outside the rate card's minimum and maximum (see `exchange.rates()`)."""


class AmountTooSmallError(UnprocessableEntityError, code="amount_too_small"):
    """The amount converts to less than one target point."""


class DailyLimitExceededError(UnprocessableEntityError):
    """A daily limit of the rate card would be exceeded (counted in source points, per business date)."""

    limit: _ProblemMember[int] = _ProblemMember()
    used: _ProblemMember[int] = _ProblemMember()
    requested: _ProblemMember[int] = _ProblemMember()


class MemberDailyLimitExceededError(DailyLimitExceededError, code="member_daily_limit_exceeded"):
    pass


class PairDailyCapExceededError(DailyLimitExceededError, code="pair_daily_cap_exceeded"):
    pass


class NetDebitCapExceededError(UnprocessableEntityError, code="net_debit_cap_exceeded"):
    """What the brand would owe the alliance in the open settlement window would pass its cap (amounts in the
    settlement currency)."""

    net_debit_cap: _ProblemMember[Decimal] = _ProblemMember(Decimal)
    net_debit: _ProblemMember[Decimal] = _ProblemMember(Decimal)
    requested: _ProblemMember[Decimal] = _ProblemMember(Decimal)


class BrandNotInExchangeError(UnprocessableEntityError, code="brand_not_in_exchange"):
    """The other brand is not in the exchange."""


class PairNotOpenError(UnprocessableEntityError, code="pair_not_open"):
    """Conversions between these brands (in this direction) are not open."""


class NoRateCardError(UnprocessableEntityError, code="no_rate_card"):
    pass


class RateExceedsPointValuesError(UnprocessableEntityError, code="rate_exceeds_point_values"):
    """The rate gives more value than it takes at the two brands' point values."""

    max_rate: _ProblemMember[Decimal] = _ProblemMember(Decimal)


class QuoteExpiredError(UnprocessableEntityError, code="quote_expired"):
    pass


class QuoteMismatchError(UnprocessableEntityError, code="quote_mismatch"):
    """The quote is for another brand or amount than the conversion names."""


class ConversionExpiredError(UnprocessableEntityError, code="conversion_expired"):
    """The reservation passed its deadline: it is expired now and its points are released."""


class IdentityNotLinkedAtBrandError(UnprocessableEntityError, code="identity_not_linked_at_brand"):
    """The alliance identity has no membership at the target brand."""


class LinkCodeExpiredError(UnprocessableEntityError, code="link_code_expired"):
    pass


class LinkCodeSameBrandError(UnprocessableEntityError, code="link_code_same_brand"):
    """A link code links memberships of two different brands: it was redeemed at the brand that issued it."""


class MemberNotLinkedError(UnprocessableEntityError, code="member_not_linked"):
    """A conversion needs the member's alliance identity and it has none: issue a link code and have the member
    redeem it at another brand."""


class NotInExchangeError(PermissionDeniedError, code="not_in_exchange"):
    """The calling brand is not in the exchange."""


# --- settlement -------------------------------------------------------------------------------------------


class WindowNotFoundError(NotFoundError, code="window_not_found"):
    pass


class StatementNotFoundError(NotFoundError, code="statement_not_found"):
    """The brand has no statement of this window (none issued yet, or it had no position in it)."""


class StatementLineNotFoundError(NotFoundError, code="statement_line_not_found"):
    """The brand's statement of the window has no line with this counterparty: they had no flows in it."""


class PositionNotFoundError(NotFoundError, code="position_not_found"):
    """The brand has no position in the window."""


class DisputeNotFoundError(NotFoundError, code="dispute_not_found"):
    pass


class NoOpenWindowError(ConflictError, code="no_open_window"):
    """The exchange has no open window: no brand is admitted yet."""


class WindowOpenError(ConflictError, code="window_open"):
    """The window is still open: close it first (`admin.settlement.close`)."""


class WindowNotComputedError(ConflictError, code="window_not_computed"):
    """The window's settlement is not computed yet (`admin.settlement.compute`)."""


class WindowStatusError(ConflictError):
    """The window's status does not allow this step; `window_status` is what it is."""

    window_status: _ProblemMember[str] = _ProblemMember()


class WindowNotPayableError(WindowStatusError, code="window_not_payable"):
    """Only a computed window's positions can be paid."""


class WindowNotAbortableError(WindowStatusError, code="window_not_abortable"):
    """Only a computed, unsettled window can be aborted."""


class WindowNotDisputableError(WindowStatusError, code="window_not_disputable"):
    """Only a computed, not aborted window can be disputed."""


class WindowPartlyPaidError(ConflictError, code="window_partly_paid"):
    """Money was marked paid in the window: it can no longer be aborted."""

    paid_positions: _ProblemMember[int] = _ProblemMember()


class SettlementChecksFailedError(ConflictError, code="settlement_checks_failed"):
    """The window's computation failed its checks and kept nothing; the window stays closed, to be computed again
    once the cause is fixed. `report` says which checks failed (its "mismatches")."""

    @property
    def report(self) -> dict[str, Any]:
        return self.problem.get("report") or {}


class AlreadyPaidError(ConflictError, code="already_paid"):
    """The position is paid already, under another bank reference (`bank_ref`); the same reference again is fine."""

    bank_ref: _ProblemMember[str] = _ProblemMember()


class DisputeResolvedError(ConflictError, code="dispute_resolved"):
    dispute_status: _ProblemMember[str] = _ProblemMember()


class DisputePeriodOverError(UnprocessableEntityError, code="dispute_period_over"):
    """The window's dispute period (`dispute_days` from its computation) is over."""

    dispute_days: _ProblemMember[int] = _ProblemMember()


# --- a signed request refused for its signature or its signing key ---------------------------------------


class SignatureError(APIStatusError):
    """A signed request was refused because of its signature or signing key. Each code's class is also the
    class of the status it comes with (AuthenticationError for 401...)."""


class SignatureMissingError(SignatureError, AuthenticationError, code="signature_missing"):
    pass


class SignatureMalformedError(SignatureError, BadRequestError, code="signature_malformed"):
    pass


class SignatureInvalidError(SignatureError, AuthenticationError, code="signature_invalid"):
    """The signature does not verify with the key its kid names: another key signed it, or the bytes changed."""


class SignatureStaleError(SignatureError, AuthenticationError, code="signature_stale"):
    """The signature's time is too far from the platform's: check this machine's clock."""


class SignatureReplayedError(SignatureError, ConflictError, code="signature_replayed"):
    """The platform had already accepted this very signature. The client signs every attempt afresh and retries
    this one (same Idempotency-Key), so it reaches the caller only once retries run out."""


class SignatureWrongTenantError(SignatureError, PermissionDeniedError, code="signature_wrong_tenant"):
    """The signature names another brand, method or path, or was made with another brand's key."""


class SigningKeyUnknownError(SignatureError, AuthenticationError, code="signing_key_unknown"):
    """The brand has no signing key with this kid: register it (signing_keys.register)."""


class SigningKeyRevokedError(SignatureError, AuthenticationError, code="signing_key_revoked"):
    pass


class SigningKeyNotValidNowError(SignatureError, AuthenticationError, code="signing_key_not_valid_now"):
    """The signing key is outside its validity window (not yet valid, or expired)."""


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
