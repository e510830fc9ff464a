"""Webhooks for brands, to the Standard Webhooks spec (https://www.standardwebhooks.com): every event below is
written to the outbox in the transaction that caused it, fanned out by the relay into one delivery per
subscribed endpoint, POSTed signed and timestamped, and retried with backoff.

Each message is `{"type": <event type>, "timestamp": <when it happened, ISO-8601 UTC>, "data": {...}}`, with
the headers webhook-id (the same for every attempt of one event, so receivers can drop duplicates),
webhook-timestamp and webhook-signature. `data` of each event type:

    points.credited   member, amount, entry_id, reason, balances
    points.debited    member, amount, entry_id, reason, balances
    points.gifted     member (the giver), to, amount, entry_id, balances
    points.reversed   member, entry_id, reverses_entry_id, reason, balances
    points.expired    member, amount, entry_id, as_of
    hold.created      member, hold_id, amount, expires_at
    hold.captured     member, hold_id, amount (captured; the rest is released), entry_id, balances
    hold.released     member, hold_id, amount
    hold.expired      member, hold_id, amount
    member.frozen     member
    member.unfrozen   member
    webhook_endpoint.disabled   endpoint_id, url, reason  (sent to the brand's other endpoints)
    conversion.reserved    member, conversion_id, role, status, source_brand, target_brand, source_amount,
    conversion.committed     fee_amount, target_amount, counterparty_identity, entry_id (the brand's, once
    conversion.aborted       committed): sent to both brands of a conversion, each about its own member
    conversion.expired       (role: "source" or "target"); converting at once sends conversion.committed only
    net_debit_cap.alarm    net_debit_cap, net_debit, alarm_percent, window_id (once a window, when the brand's
                           net debit reaches alarm_percent of its cap)
    settlement.window_closed      window_id, business_date, status (to every brand in the exchange)
    settlement.statement_ready    window_id, business_date, version, net_fen (a new statement to download)
    settlement.settled            window_id, business_date, status (every brand with a position is paid)
    settlement.aborted            window_id, business_date, status (carried into the open window)

`balances` lists `{"member", "balance"}` of every member the entry touched, after it.
"""

from typing import Literal, get_args

EventType = Literal[
    "points.credited",
    "points.debited",
    "points.gifted",
    "points.reversed",
    "points.expired",
    "hold.created",
    "hold.captured",
    "hold.released",
    "hold.expired",
    "member.frozen",
    "member.unfrozen",
    "webhook_endpoint.disabled",
    "conversion.reserved",
    "conversion.committed",
    "conversion.aborted",
    "conversion.expired",
    "net_debit_cap.alarm",
    "settlement.window_closed",
    "settlement.statement_ready",
    "settlement.settled",
    "settlement.aborted",
]
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))

__all__ = ["EVENT_TYPES", "EventType"]
