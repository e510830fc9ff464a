"""One exception tree for everything the SDK raises.

The API answers errors as RFC 9457 problem documents with a stable `code`. A response maps to the class of
its code when the SDK knows that code, else to the class of its HTTP status, so callers can branch on what
happened (`except InsufficientPointsError`) or on its broad kind (`except ConflictError`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx


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


class BrandNotFoundError(NotFoundError):
    """No brand has this code."""


class ParticipantNotFoundError(NotFoundError):
    """The brand is not in the exchange."""


class PairNotFoundError(NotFoundError):
    pass


class QuoteNotFoundError(NotFoundError):
    pass


class ConversionNotFoundError(NotFoundError):
    pass


class IdentityNotFoundError(NotFoundError):
    pass


class AllianceLinkNotFoundError(NotFoundError):
    """The member has no alliance identity (links.retrieve / links.unlink)."""


class LinkCodeNotFoundError(NotFoundError):
    """No such link code: check it; each is valid once, for 10 minutes."""


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


class ParticipantExistsError(ConflictError):
    pass


class ParticipantSuspendedError(ConflictError):
    """A brand of the pair is suspended from the exchange."""


class RateCardEffectiveAtTakenError(ConflictError):
    pass


class QuoteAlreadyUsedError(ConflictError):
    """A quote prices one conversion: get a new one."""

    @property
    def conversion_id(self) -> int | None:
        return self.problem.get("conversion_id")


class ConversionNotReservedError(ConflictError):
    """Only a reserved conversion can be committed or aborted; this one is committed, aborted or expired."""

    @property
    def conversion_status(self) -> str | None:
        return self.problem.get("conversion_status")


class LinkCodeUsedError(ConflictError):
    pass


class IdentityAlreadyLinkedAtBrandError(ConflictError):
    """The person's alliance identity already links another membership of that brand: unlink it first."""


class MembersLinkedToOtherIdentitiesError(ConflictError):
    """Both memberships are linked already, to different alliance identities: unlink one of them first."""


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


class AmountOutOfRangeError(UnprocessableEntityError):
    """The amount is outside the rate card's minimum and maximum (see `exchange.rates()`)."""


class AmountTooSmallError(UnprocessableEntityError):
    """The amount converts to less than one target point."""


class DailyLimitExceededError(UnprocessableEntityError):
    """A daily limit of the rate card would be exceeded (counted in source points, per business date)."""

    @property
    def limit(self) -> int | None:
        return self.problem.get("limit")

    @property
    def used(self) -> int | None:
        return self.problem.get("used")

    @property
    def requested(self) -> int | None:
        return self.problem.get("requested")


class MemberDailyLimitExceededError(DailyLimitExceededError):
    pass


class PairDailyCapExceededError(DailyLimitExceededError):
    pass


class NetDebitCapExceededError(UnprocessableEntityError):
    """What the brand would owe the alliance in the open settlement window would pass its cap (amounts in the
    settlement currency)."""

    @property
    def net_debit_cap(self) -> Decimal | None:
        return _decimal(self.problem.get("net_debit_cap"))

    @property
    def net_debit(self) -> Decimal | None:
        return _decimal(self.problem.get("net_debit"))

    @property
    def requested(self) -> Decimal | None:
        return _decimal(self.problem.get("requested"))


class BrandNotInExchangeError(UnprocessableEntityError):
    """The other brand is not in the exchange."""


class PairNotOpenError(UnprocessableEntityError):
    """Conversions between these brands (in this direction) are not open."""


class NoRateCardError(UnprocessableEntityError):
    pass


class RateExceedsPointValuesError(UnprocessableEntityError):
    """The rate gives more value than it takes at the two brands' point values."""

    @property
    def max_rate(self) -> Decimal | None:
        return _decimal(self.problem.get("max_rate"))


class QuoteExpiredError(UnprocessableEntityError):
    pass


class QuoteMismatchError(UnprocessableEntityError):
    """The quote is for another brand or amount than the conversion names."""


class ConversionExpiredError(UnprocessableEntityError):
    """The reservation passed its deadline: it is expired now and its points are released."""


class IdentityNotLinkedAtBrandError(UnprocessableEntityError):
    """The alliance identity has no membership at the target brand."""


class LinkCodeExpiredError(UnprocessableEntityError):
    pass


class LinkCodeSameBrandError(UnprocessableEntityError):
    """A link code links memberships of two different brands: it was redeemed at the brand that issued it."""


class MemberNotLinkedError(UnprocessableEntityError):
    """A conversion needs the member's alliance identity and it has none: issue a link code and have the member
    redeem it at another brand."""


class NotInExchangeError(PermissionDeniedError):
    """The calling brand is not in the exchange."""


# --- settlement -------------------------------------------------------------------------------------------


class WindowNotFoundError(NotFoundError):
    pass


class StatementNotFoundError(NotFoundError):
    """The brand has no statement of this window (none issued yet, or it had no position in it)."""


class StatementLineNotFoundError(NotFoundError):
    """The brand's statement of the window has no line with this counterparty: they had no flows in it."""


class PositionNotFoundError(NotFoundError):
    """The brand has no position in the window."""


class DisputeNotFoundError(NotFoundError):
    pass


class NoOpenWindowError(ConflictError):
    """The exchange has no open window: no brand is admitted yet."""


class WindowOpenError(ConflictError):
    """The window is still open: close it first (`admin.settlement.close`)."""


class WindowNotComputedError(ConflictError):
    """The window's settlement is not computed yet (`admin.settlement.compute`)."""


class WindowStatusError(ConflictError):
    """The window's status does not allow this step; `window_status` is what it is."""

    @property
    def window_status(self) -> str | None:
        return self.problem.get("window_status")


class WindowNotPayableError(WindowStatusError):
    """Only a computed window's positions can be paid."""


class WindowNotAbortableError(WindowStatusError):
    """Only a computed, unsettled window can be aborted."""


class WindowNotDisputableError(WindowStatusError):
    """Only a computed, not aborted window can be disputed."""


class WindowPartlyPaidError(ConflictError):
    """Money was marked paid in the window: it can no longer be aborted."""

    @property
    def paid_positions(self) -> int | None:
        return self.problem.get("paid_positions")


class SettlementChecksFailedError(ConflictError):
    """The window's computation failed its checks and kept nothing; the window stays closed, to be computed again
    once the cause is fixed. `report` says which checks failed (its "mismatches")."""

    @property
    def report(self) -> dict[str, Any]:
        return self.problem.get("report") or {}


class AlreadyPaidError(ConflictError):
    """The position is paid already, under another bank reference (`bank_ref`); the same reference again is fine."""

    @property
    def bank_ref(self) -> str | None:
        return self.problem.get("bank_ref")


class DisputeResolvedError(ConflictError):
    @property
    def dispute_status(self) -> str | None:
        return self.problem.get("dispute_status")


class DisputePeriodOverError(UnprocessableEntityError):
    """The window's dispute period (`dispute_days` from its computation) is over."""

    @property
    def dispute_days(self) -> int | None:
        return self.problem.get("dispute_days")


# --- a signed request refused for its signature or its signing key ---------------------------------------


class SignatureError(APIStatusError):
    """A signed request was refused because of its signature or signing key. Each code's class is also the
    class of the status it comes with (AuthenticationError for 401...)."""


class SignatureMissingError(SignatureError, AuthenticationError):
    pass


class SignatureMalformedError(SignatureError, BadRequestError):
    pass


class SignatureInvalidError(SignatureError, AuthenticationError):
    """The signature does not verify with the key its kid names: another key signed it, or the bytes changed."""


class SignatureStaleError(SignatureError, AuthenticationError):
    """The signature's time is too far from the platform's: check this machine's clock."""


class SignatureReplayedError(SignatureError, ConflictError):
    """The platform had already accepted this very signature. The client signs every attempt afresh and retries
    this one (same Idempotency-Key), so it reaches the caller only once retries run out."""


class SignatureWrongTenantError(SignatureError, PermissionDeniedError):
    """The signature names another brand, method or path, or was made with another brand's key."""


class SigningKeyUnknownError(SignatureError, AuthenticationError):
    """The brand has no signing key with this kid: register it (signing_keys.register)."""


class SigningKeyRevokedError(SignatureError, AuthenticationError):
    pass


class SigningKeyNotValidNowError(SignatureError, AuthenticationError):
    """The signing key is outside its validity window (not yet valid, or expired)."""


def _decimal(value: str | None) -> Decimal | None:
    # The API sends amounts of money as decimal strings, so they arrive exact; never through a float.
    return None if value is None else Decimal(value)


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
    # the exchange
    "brand_not_found": BrandNotFoundError,
    "not_in_exchange": NotInExchangeError,
    "brand_not_in_exchange": BrandNotInExchangeError,
    "participant_not_found": ParticipantNotFoundError,
    "participant_exists": ParticipantExistsError,
    "participant_suspended": ParticipantSuspendedError,
    "pair_not_found": PairNotFoundError,
    "pair_not_open": PairNotOpenError,
    "no_rate_card": NoRateCardError,
    "rate_card_effective_at_taken": RateCardEffectiveAtTakenError,
    "rate_exceeds_point_values": RateExceedsPointValuesError,
    "amount_out_of_range": AmountOutOfRangeError,
    "amount_too_small": AmountTooSmallError,
    "member_daily_limit_exceeded": MemberDailyLimitExceededError,
    "pair_daily_cap_exceeded": PairDailyCapExceededError,
    "net_debit_cap_exceeded": NetDebitCapExceededError,
    "quote_not_found": QuoteNotFoundError,
    "quote_already_used": QuoteAlreadyUsedError,
    "quote_expired": QuoteExpiredError,
    "quote_mismatch": QuoteMismatchError,
    "conversion_not_found": ConversionNotFoundError,
    "conversion_not_reserved": ConversionNotReservedError,
    "conversion_expired": ConversionExpiredError,
    "member_not_linked": MemberNotLinkedError,
    "alliance_link_not_found": AllianceLinkNotFoundError,
    "identity_not_found": IdentityNotFoundError,
    "identity_not_linked_at_brand": IdentityNotLinkedAtBrandError,
    "identity_already_linked_at_brand": IdentityAlreadyLinkedAtBrandError,
    "members_linked_to_other_identities": MembersLinkedToOtherIdentitiesError,
    "link_code_not_found": LinkCodeNotFoundError,
    "link_code_used": LinkCodeUsedError,
    "link_code_expired": LinkCodeExpiredError,
    "link_code_same_brand": LinkCodeSameBrandError,
    # settlement
    "window_not_found": WindowNotFoundError,
    "statement_not_found": StatementNotFoundError,
    "statement_line_not_found": StatementLineNotFoundError,
    "position_not_found": PositionNotFoundError,
    "dispute_not_found": DisputeNotFoundError,
    "no_open_window": NoOpenWindowError,
    "window_open": WindowOpenError,
    "window_not_computed": WindowNotComputedError,
    "window_not_payable": WindowNotPayableError,
    "window_not_abortable": WindowNotAbortableError,
    "window_not_disputable": WindowNotDisputableError,
    "window_partly_paid": WindowPartlyPaidError,
    "settlement_checks_failed": SettlementChecksFailedError,
    "already_paid": AlreadyPaidError,
    "dispute_resolved": DisputeResolvedError,
    "dispute_period_over": DisputePeriodOverError,
    # signed requests
    "signature_missing": SignatureMissingError,
    "signature_malformed": SignatureMalformedError,
    "signature_invalid": SignatureInvalidError,
    "signature_stale": SignatureStaleError,
    "signature_replayed": SignatureReplayedError,
    "signature_wrong_tenant": SignatureWrongTenantError,
    "signing_key_unknown": SigningKeyUnknownError,
    "signing_key_revoked": SigningKeyRevokedError,
    "signing_key_not_valid_now": SigningKeyNotValidNowError,
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
