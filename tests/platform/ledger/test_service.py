"""The ledger's operations, one behaviour at a time."""

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from alliance.ledger import AccountKind, LedgerRejected, Leg, Rejection
from alliance.ledger import service as ledger


def soon(hours: float = 1) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


async def test_credit_posts_a_balanced_entry_with_running_balances(books):
    member = await books.member()
    entry = await books.credit(member, 100)
    await books.credit(member, 50)
    assert sum(p.amount for p in entry.postings) == 0
    balance = await books.balance(member)
    assert (balance.balance, balance.held, balance.available, balance.version) == (150, 0, 150, 2)
    history = await ledger.history(books.conn, books.tenant_id, member)
    assert [(h.posting.amount, h.posting.balance_after, h.posting.version_after) for h in history] == [
        (50, 150, 2), (100, 100, 1)
    ]


async def test_debit_beyond_available_is_refused_and_writes_nothing(books):
    member = await books.member()
    await books.credit(member, 30)
    with pytest.raises(LedgerRejected) as refused:
        await books.debit(member, 31)
    assert refused.value.code is Rejection.INSUFFICIENT_POINTS
    assert refused.value.detail == {"account_id": member, "available": 30, "requested": 31}
    assert (await books.balance(member)).balance == 30
    assert len(await ledger.history(books.conn, books.tenant_id, member)) == 1


async def test_entry_must_balance_and_name_real_accounts(books):
    a, b = await books.member(), await books.member()
    await books.credit(a, 10)
    with pytest.raises(LedgerRejected) as refused:
        await ledger.post_entry(books.conn, books.tenant_id, [Leg(a, -5), Leg(b, 4)], kind="bad")
    assert refused.value.code is Rejection.UNBALANCED_ENTRY
    with pytest.raises(LedgerRejected) as refused:
        await ledger.post_entry(books.conn, books.tenant_id, [Leg(a, -5), Leg(999_999_999, 5)], kind="bad")
    assert refused.value.code is Rejection.ACCOUNT_NOT_FOUND
    with pytest.raises(LedgerRejected) as refused:
        await ledger.post_entry(books.conn, books.tenant_id, [Leg(a, 0), Leg(b, 0)], kind="bad")
    assert refused.value.code is Rejection.INVALID_ENTRY


async def test_another_tenants_account_is_not_found(books, make_books):
    other = await make_books(books.conn, books.tenant_id + 1_000_000)
    stranger = await other.member()
    await other.credit(stranger, 100)
    mine = await books.member()
    with pytest.raises(LedgerRejected) as refused:
        await ledger.transfer(books.conn, books.tenant_id, stranger, mine, 10)
    assert refused.value.code is Rejection.ACCOUNT_NOT_FOUND
    assert (await other.balance(stranger)).balance == 100


async def test_same_key_same_request_replays_the_stored_outcome(books):
    member = await books.member()
    first = await books.credit(member, 40, idempotency_key="order-1")
    again = await books.credit(member, 40, idempotency_key="order-1")
    assert again.replayed and not first.replayed
    assert msgspec.structs.replace(again, replayed=False) == first
    assert (await books.balance(member)).balance == 40


async def test_same_key_other_request_is_refused(books):
    member = await books.member()
    await books.credit(member, 40, idempotency_key="order-1")
    with pytest.raises(LedgerRejected) as refused:
        await books.credit(member, 41, idempotency_key="order-1")
    assert refused.value.code is Rejection.IDEMPOTENCY_KEY_REUSED
    assert (await books.balance(member)).balance == 40


async def test_rejections_are_stored_too(books):
    member = await books.member()
    with pytest.raises(LedgerRejected):
        await books.debit(member, 5, idempotency_key="spend-1")
    await books.credit(member, 100)
    with pytest.raises(LedgerRejected) as replay:
        await books.debit(member, 5, idempotency_key="spend-1")
    assert replay.value.code is Rejection.INSUFFICIENT_POINTS and replay.value.replayed
    assert (await books.balance(member)).balance == 100


async def test_debits_consume_soonest_expiring_lots_first(books):
    member = await books.member()
    later, sooner = soon(48), soon(24)
    await books.credit(member, 10)  # never expires
    await books.credit(member, 20, expires_at=later)
    await books.credit(member, 30, expires_at=sooner)
    await books.debit(member, 35)
    lots = await ledger.open_lots(books.conn, books.tenant_id, member)
    assert [(lot.expires_at, lot.remaining) for lot in lots] == [(later, 15), (None, 10)]


async def test_gifted_points_keep_their_expiry(books):
    giver, friend = await books.member(), await books.member()
    deadline = soon(24)
    await books.credit(giver, 30, expires_at=deadline)
    await books.credit(giver, 50)
    await ledger.transfer(books.conn, books.tenant_id, giver, friend, 40, kind="gift")
    lots = await ledger.open_lots(books.conn, books.tenant_id, friend)
    assert [(lot.expires_at, lot.remaining) for lot in lots] == [(deadline, 30), (None, 10)]


async def test_hold_reserves_then_partial_post_releases_the_rest(books):
    member = await books.member()
    redemption = await books.system(AccountKind.REDEMPTION)
    await books.credit(member, 100)
    hold = await ledger.hold(books.conn, books.tenant_id, member, 70, expires_at=soon())
    assert (await books.balance(member)).available == 30
    with pytest.raises(LedgerRejected) as refused:
        await books.debit(member, 31)
    assert refused.value.code is Rejection.INSUFFICIENT_POINTS
    entry, posted = await ledger.post_hold(books.conn, books.tenant_id, hold.id, redemption, amount=45)
    assert (posted.status, posted.posted_amount, posted.entry_id) == ("posted", 45, entry.id)
    balance = await books.balance(member)
    assert (balance.balance, balance.held, balance.available) == (55, 0, 55)
    with pytest.raises(LedgerRejected) as refused:
        await ledger.post_hold(books.conn, books.tenant_id, hold.id, redemption)
    assert refused.value.code is Rejection.HOLD_NOT_PENDING


async def test_hold_cannot_exceed_available_nor_be_overposted(books):
    member = await books.member()
    redemption = await books.system(AccountKind.REDEMPTION)
    await books.credit(member, 50)
    with pytest.raises(LedgerRejected) as refused:
        await ledger.hold(books.conn, books.tenant_id, member, 51, expires_at=soon())
    assert refused.value.code is Rejection.INSUFFICIENT_POINTS
    hold = await ledger.hold(books.conn, books.tenant_id, member, 20, expires_at=soon())
    with pytest.raises(LedgerRejected) as refused:
        await ledger.post_hold(books.conn, books.tenant_id, hold.id, redemption, amount=21)
    assert refused.value.code is Rejection.AMOUNT_EXCEEDS_HOLD
    assert (await books.balance(member)).held == 20


async def test_void_releases_a_hold(books):
    member = await books.member()
    await books.credit(member, 50)
    hold = await ledger.hold(books.conn, books.tenant_id, member, 20, expires_at=soon())
    voided = await ledger.void_hold(books.conn, books.tenant_id, hold.id)
    assert voided.status == "voided"
    assert (await books.balance(member)).available == 50


async def test_expire_holds_job_releases_holds_past_their_deadline(books):
    member = await books.member()
    redemption = await books.system(AccountKind.REDEMPTION)
    await books.credit(member, 50)
    first = await ledger.hold(books.conn, books.tenant_id, member, 10, expires_at=soon(1))
    await ledger.hold(books.conn, books.tenant_id, member, 15, expires_at=soon(1))
    await ledger.hold(books.conn, books.tenant_id, member, 5, expires_at=soon(3))
    # The job spans every tenant; this tenant's share is what the test can know.
    assert await ledger.expire_holds(books.conn, soon(2)) >= 2
    assert (await books.balance(member)).held == 5
    with pytest.raises(LedgerRejected) as refused:
        await ledger.post_hold(books.conn, books.tenant_id, first.id, redemption)
    assert refused.value.code is Rejection.HOLD_NOT_PENDING
    events = await books.conn.fetch(
        "SELECT event_type FROM outbox_events WHERE tenant_id = $1 ORDER BY id", books.tenant_id
    )
    assert [e["event_type"] for e in events] == ["hold.expired", "hold.expired"]


async def test_hold_past_its_deadline_cannot_be_posted_before_the_job_runs(pool, tenant_id, make_books):
    async with pool.acquire() as conn:
        books = await make_books(conn, tenant_id)
        member = await books.member()
        redemption = await books.system(AccountKind.REDEMPTION)
        await books.credit(member, 50)
        hold = await ledger.hold(conn, tenant_id, member, 10, expires_at=soon(0.5 / 3600))
        await asyncio.sleep(0.6)
        with pytest.raises(LedgerRejected) as refused:
            await ledger.post_hold(conn, tenant_id, hold.id, redemption)
        assert refused.value.code is Rejection.HOLD_EXPIRED
        assert (await books.balance(member)).held == 0
        assert (await books.balance(member)).balance == 50


async def test_expiry_moves_due_lots_to_the_expiry_account_but_spares_held_points(books):
    member = await books.member()
    await books.credit(member, 30, expires_at=soon(1))
    await books.credit(member, 20)
    await ledger.hold(books.conn, books.tenant_id, member, 45, expires_at=soon(10))
    assert await ledger.expire_lots(books.conn, soon(2)) >= 1
    balance = await books.balance(member)
    # 30 were due, but 45 of the 50 are held: only 5 may expire.
    assert (balance.balance, balance.held) == (45, 45)
    expiry_total = await books.conn.fetchval(
        "SELECT sum(balance) FROM ledger_accounts WHERE tenant_id = $1 AND kind = 'expiry'", books.tenant_id
    )
    assert expiry_total == 5
    event = await books.conn.fetchrow(
        "SELECT event_type, payload FROM outbox_events WHERE tenant_id = $1", books.tenant_id
    )
    assert event["event_type"] == "points.expired"
    assert event["payload"]  # account, amount and entry for the webhook


async def test_reversal_is_linked_once_and_restores_lots(books):
    giver, friend = await books.member(), await books.member()
    deadline = soon(24)
    await books.credit(giver, 30, expires_at=deadline)
    gift = await ledger.transfer(books.conn, books.tenant_id, giver, friend, 30, kind="gift")
    reversal = await ledger.reverse_entry(books.conn, books.tenant_id, gift.id)
    assert reversal.reverses_entry_id == gift.id
    assert [p.amount for p in reversal.postings] == [-p.amount for p in gift.postings]
    lots = await ledger.open_lots(books.conn, books.tenant_id, giver)
    assert [(lot.expires_at, lot.remaining) for lot in lots] == [(deadline, 30)]
    for entry_id, code in ((gift.id, Rejection.ALREADY_REVERSED), (reversal.id, Rejection.ENTRY_IS_REVERSAL)):
        with pytest.raises(LedgerRejected) as refused:
            await ledger.reverse_entry(books.conn, books.tenant_id, entry_id)
        assert refused.value.code is code


async def test_reversal_that_would_overdraw_a_member_is_refused(books):
    member = await books.member()
    credit = await books.credit(member, 30)
    await books.debit(member, 25)
    with pytest.raises(LedgerRejected) as refused:
        await ledger.reverse_entry(books.conn, books.tenant_id, credit.id)
    assert refused.value.code is Rejection.INSUFFICIENT_POINTS


async def test_balance_at_a_past_instant(books):
    member = await books.member()
    before = await books.conn.fetchval("SELECT clock_timestamp()")
    first = await books.credit(member, 10)
    await books.credit(member, 5)
    assert await ledger.balance_at(books.conn, books.tenant_id, member, before) == 0
    assert await ledger.balance_at(books.conn, books.tenant_id, member, first.postings[1].posted_at) == 10
    assert await ledger.balance_at(books.conn, books.tenant_id, member, soon()) == 15


async def test_history_pages_by_version(books):
    member = await books.member()
    for amount in range(1, 8):
        await books.credit(member, amount)
    page = await ledger.history(books.conn, books.tenant_id, member, limit=3)
    assert [line.posting.amount for line in page] == [7, 6, 5]
    page = await ledger.history(
        books.conn, books.tenant_id, member, limit=3, before_version=page[-1].posting.version_after
    )
    assert [line.posting.amount for line in page] == [4, 3, 2]
    assert {line.kind for line in page} == {"credit"}
    assert await ledger.history(books.conn, books.tenant_id, member, kind="debit") == []


async def test_point_value_is_dated(books):
    from decimal import Decimal

    t0 = soon(-48)
    await ledger.set_point_value(books.conn, books.tenant_id, books.currency.id, Decimal("0.1"), effective_at=t0)
    await ledger.set_point_value(
        books.conn, books.tenant_id, books.currency.id, Decimal("0.125"), effective_at=soon(-1)
    )
    assert (await ledger.point_value(books.conn, books.tenant_id, books.currency.id, soon(-24))).value == Decimal("0.1")
    assert (await ledger.point_value(books.conn, books.tenant_id, books.currency.id, soon())).value == Decimal("0.125")
    assert await ledger.point_value(books.conn, books.tenant_id, books.currency.id, soon(-100)) is None


async def test_expiry_is_not_stalled_by_accounts_whose_due_points_are_all_held(books):
    deadline, after = soon(1), soon(2)
    for _ in range(3):
        held_member = await books.member()
        await books.credit(held_member, 10, expires_at=deadline)
        await ledger.hold(books.conn, books.tenant_id, held_member, 10, expires_at=soon(10))
    free_member = await books.member()
    await books.credit(free_member, 10, expires_at=deadline)
    # Batches of 2 while 3 accounts have nothing to expire: calling until 0 must still reach the 4th.
    while await ledger.expire_lots(books.conn, after, batch=2):
        pass
    assert (await books.balance(free_member)).balance == 0
