"""Alliance SDK: the Python client of the Alliance points exchange, for brand backends and the operator.

    from alliance_sdk import Alliance

    with Alliance(api_key="alk_...") as alliance:
        alliance.members.upsert("alice")
        alliance.members.credit("alice", 100, reason="purchase")

Signing transfers (`alliance_sdk.signing`) needs the extra: pip install "alliance-sdk[signing]".
"""

from alliance_sdk import webhooks
from alliance_sdk._client import Alliance, AsyncAlliance
from alliance_sdk._errors import (
    AllianceError,
    AlreadyReversedError,
    AmountExceedsHoldError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EntryIsReversalError,
    EntryNotFoundError,
    HoldExpiredError,
    HoldNotFoundError,
    HoldNotPendingError,
    IdempotencyKeyReusedError,
    InsufficientPointsError,
    InternalServerError,
    KeyNotFoundError,
    MemberFrozenError,
    MemberNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SigningKeyKidTakenError,
    SigningKeyLimitReachedError,
    SigningKeyNotFoundError,
    TenantCodeTakenError,
    TenantNotFoundError,
    UnprocessableEntityError,
    ValidationError,
    WebhookDeliveryNotFoundError,
    WebhookEndpointLimitReachedError,
    WebhookEndpointNotFoundError,
)
from alliance_sdk._models import (
    ApiKey,
    Balance,
    BulkResult,
    Entry,
    ExpiringPoints,
    HistoryItem,
    HistoryPage,
    Hold,
    Member,
    Operation,
    Posting,
    SigningKey,
    Tenant,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookEndpoint,
)
from alliance_sdk._request import NOT_GIVEN, NotGiven
from alliance_sdk._version import __version__
from alliance_sdk.resources.bulk import BulkCredit, BulkDebit
from alliance_sdk.webhooks import WebhookVerificationError

__all__ = [
    "NOT_GIVEN", "APIConnectionError", "APIStatusError", "APITimeoutError", "Alliance", "AllianceError",
    "AlreadyReversedError", "AmountExceedsHoldError", "ApiKey", "AsyncAlliance", "AuthenticationError",
    "BadRequestError", "Balance", "BulkCredit", "BulkDebit", "BulkResult", "ConflictError", "Entry",
    "EntryIsReversalError", "EntryNotFoundError", "ExpiringPoints", "HistoryItem", "HistoryPage", "Hold",
    "HoldExpiredError", "HoldNotFoundError", "HoldNotPendingError", "IdempotencyKeyReusedError",
    "InsufficientPointsError", "InternalServerError", "KeyNotFoundError", "Member", "MemberFrozenError",
    "MemberNotFoundError", "NotFoundError", "NotGiven", "Operation", "PermissionDeniedError", "Posting",
    "RateLimitError", "SigningKey", "SigningKeyKidTakenError", "SigningKeyLimitReachedError",
    "SigningKeyNotFoundError", "Tenant", "TenantCodeTakenError", "TenantNotFoundError", "UnprocessableEntityError",
    "ValidationError", "WebhookDelivery", "WebhookDeliveryNotFoundError", "WebhookDeliveryPage", "WebhookEndpoint",
    "WebhookEndpointLimitReachedError", "WebhookEndpointNotFoundError", "WebhookVerificationError", "__version__",
    "webhooks",
]
