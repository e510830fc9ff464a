"""Bulk credits and debits through the SDK: typed items and dicts, one outcome each, and the same items
applied again replaying item by item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alliance_sdk import Alliance, AsyncAlliance, BulkCredit, BulkDebit


def test_a_batch_applies_item_by_item_and_replays_when_applied_again(brand: Alliance):
    for member in ("alice", "bob"):
        brand.members.upsert(member)
    items = [
        BulkCredit("alice", 100, "import", expires_at=datetime.now(UTC) + timedelta(days=3)),
        {"kind": "credit", "member": "bob", "amount": 50, "reason": "import", "metadata": {"till": "7"}},
        BulkDebit("alice", 500, "redeem"),  # more than she has: rejected, the others stand
        BulkDebit("alice", 30, "redeem", idempotency_key="pos-42"),
        BulkCredit("nobody", 1, "import"),
    ]
    results = brand.bulk.apply(items)
    assert [(r.index, r.status, r.balance) for r in results] == [
        (0, "applied", 100), (1, "applied", 50), (2, "rejected", None), (3, "applied", 70), (4, "rejected", None)]
    assert (results[2].error_code, results[2].error["available"]) == ("insufficient_points", 100)
    assert (results[4].error_code, results[4].error_title) == ("member_not_found", "No such member")
    assert results[0].error is None and results[0].error_code is None
    # Every item got a key, kept in the item (the dict too) for the next attempt.
    assert [r.idempotency_key for r in results] == [
        items[0].idempotency_key, items[1]["idempotency_key"], items[2].idempotency_key, "pos-42",
        items[4].idempotency_key]

    again = brand.bulk.apply(items)
    assert [r.status for r in again] == ["replayed", "replayed", "rejected", "replayed", "rejected"]
    assert [r.entry_id for r in again] == [r.entry_id for r in results]
    # The credit's expiry went through; the debit spent the points that expire first.
    assert [e.amount for e in brand.members.balance("alice", expiring_within_days=7).expiring] == [70]
    assert (brand.members.balance("alice").balance, brand.members.balance("bob").balance) == (70, 50)


async def test_the_async_client_applies_a_batch(async_brand: AsyncAlliance):
    await async_brand.members.upsert("carol")
    credit, debit = await async_brand.bulk.apply([BulkCredit("carol", 9, "import"), BulkDebit("carol", 4, "redeem")])
    assert (credit.status, credit.balance, debit.status, debit.balance) == ("applied", 9, "applied", 5)
    assert debit.entry_id == (await async_brand.members.history_page("carol")).data[0].entry_id
