"""How each named refusal of the exchange's and settlement's SQL reads over HTTP. The SQL answers
{"ok": false, "code", "detail"} (migrations/versions/0005, 0007); `refusal` turns that into the problem the client
sees, its detail as extension members."""

from __future__ import annotations

from typing import Any

from alliance.errors import ProblemError

# code: (status, title)
REFUSALS: dict[str, tuple[int, str]] = {
    # the signature (checked by the SQL in the transaction that consumes it)
    "signing_key_unknown": (401, "No signing key of this brand has this kid"),
    "signing_key_revoked": (401, "The signing key was revoked"),
    "signature_replayed": (409, "This signature was used already"),
    # who and what may convert
    "not_in_exchange": (403, "This brand is not in the exchange"),
    "brand_not_in_exchange": (422, "The other brand is not in the exchange"),
    "participant_suspended": (409, "A brand of this pair is suspended from the exchange"),
    "pair_not_open": (422, "Conversions between these brands are not open"),
    "no_rate_card": (422, "No rate card is in force for this pair"),
    "point_value_missing": (422, "A brand of this pair has no point value in force"),
    "settlement_currency_mismatch": (422, "The two brands settle in different currencies"),
    "rate_exceeds_point_values": (422, "The rate card gives more value than it takes"),
    # amounts and limits
    "invalid_amount": (422, "The amount is not valid"),
    "amount_out_of_range": (422, "The amount is outside the rate card's minimum and maximum"),
    "amount_too_small": (422, "The amount converts to less than one point"),
    "member_daily_limit_exceeded": (422, "The member's daily conversion limit would be exceeded"),
    "pair_daily_cap_exceeded": (422, "The pair's daily conversion cap would be exceeded"),
    "net_debit_cap_exceeded": (422, "The brand's net debit cap would be exceeded"),
    "insufficient_points": (422, "Insufficient points"),
    # quotes
    "quote_not_found": (404, "No such quote"),
    "quote_mismatch": (422, "The quote is for another brand or amount"),
    "quote_already_used": (409, "The quote was used already"),
    "quote_expired": (422, "The quote has expired"),
    # the parties
    "member_not_found": (404, "No such member"),
    "member_frozen": (409, "A member of this conversion is frozen"),
    "member_not_linked": (422, "The member has no alliance identity: link its memberships first"),
    "identity_not_found": (404, "No such alliance identity"),
    "identity_not_linked_at_brand": (422, "This alliance identity has no membership at the target brand"),
    # the conversion
    "conversion_not_found": (404, "No such conversion"),
    "conversion_not_reserved": (409, "The conversion is not reserved (committed, aborted or expired)"),
    "conversion_expired": (422, "The reservation passed its deadline"),
    "hold_not_pending": (409, "The conversion's hold is no longer pending"),
    "hold_expired": (422, "The conversion's hold has expired"),
    "idempotency_key_reused": (409, "The Idempotency-Key was used for another request"),
    # settlement
    "window_not_found": (404, "No such settlement window"),
    "window_open": (409, "The window is still open: close it first"),
}


def refusal(code: str, detail: dict[str, Any]) -> ProblemError:
    status, title = REFUSALS[code]
    return ProblemError(status, code, title, extra=detail)
