"""The double-entry ledger: currencies, accounts, balanced journal entries, holds, lots, reversals.

Every change of value is one balanced entry written by a single SQL function (migrations/versions/0001),
so it is atomic, idempotent and one round trip. See service.py for the operations."""

from alliance.ledger.schemas import (
    AccountBalance,
    AccountKind,
    Currency,
    Entry,
    HistoryLine,
    Hold,
    LedgerRejected,
    Leg,
    Lot,
    PointValue,
    Posting,
    Rejection,
)

__all__ = [
    "AccountBalance", "AccountKind", "Currency", "Entry", "HistoryLine", "Hold", "LedgerRejected", "Leg", "Lot",
    "PointValue", "Posting", "Rejection",
]
