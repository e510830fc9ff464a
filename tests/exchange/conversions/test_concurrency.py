"""Many conversions at once against the real database, through the API: no member is ever overdrawn, no net
debit cap or daily limit is ever exceeded, a reservation past its deadline is never committed, opposite
directions never deadlock, and one idempotency key makes one conversion however many times it is sent."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from decimal import Decimal

from alliance.db import run_in_transaction
from exchange.conversions.tasks import expire_conversions
from tests.exchange_fixtures import balance, ledger_sums

CONCURRENCY = 40


def outcome(response) -> str:
    """A conversion's status, or the problem code of a refusal."""
    return response.json()["status" if response.status_code in (200, 201) else "code"]


async def test_racing_conversions_from_one_member_never_overdraw(client, pool, coffee_and_airline, convert):
    coffee, airline, _, _ = coffee_and_airline  # alice holds 10,000 beans
    body = {"member": "alice", "to_brand": airline.code, "amount": 300}
    mixed = [dict(body, commit=i % 3 != 0) for i in range(CONCURRENCY)]  # a third only reserve
    responses = await asyncio.gather(*(convert(coffee, b) for b in mixed))
    outcomes = Counter(outcome(r) for r in responses)
    assert outcomes["insufficient_points"] == CONCURRENCY - 33, outcomes  # 33 x 300 = 9,900 <= 10,000 < 34 x 300
    assert outcomes["committed"] + outcomes["reserved"] == 33
    alice = await balance(client, coffee, "alice")
    assert alice["available"] == 100 and alice["held"] == 300 * outcomes["reserved"]
    air = await balance(client, airline, "alice-air")
    assert air["balance"] == 594 * outcomes["committed"]
    assert await pool.fetchval("SELECT count(*) FROM ledger_accounts WHERE kind = 'member'"
                               " AND (balance < held OR held < 0)") == 0


async def test_the_net_debit_cap_holds_under_concurrency(exchange_brand, open_pair, member, link, convert, admin):
    coffee = await exchange_brand(point_value="0.10", cap="500.00")  # room for 25 conversions of 20.00
    airline = await exchange_brand(point_value="0.05")
    await open_pair(coffee, airline, max_amount=1_000_000)
    for i in range(CONCURRENCY):
        await member(coffee, f"m{i}", 1000)
        await member(airline, f"m{i}-air")
        await link(coffee, f"m{i}", airline, f"m{i}-air")
    responses = await asyncio.gather(*(
        convert(coffee, {"member": f"m{i}", "to_brand": airline.code, "amount": 200, "commit": i % 2 == 0})
        for i in range(CONCURRENCY)))
    outcomes = Counter(outcome(r) for r in responses)
    assert outcomes["net_debit_cap_exceeded"] == CONCURRENCY - 25, outcomes
    position = (await admin("GET", f"/v1/admin/exchange/participants/{coffee.id}"))["position"]
    assert Decimal(position["net_debit"]) == Decimal(500)
    assert Decimal(position["reserved"]) == 20 * outcomes["reserved"]
    assert Decimal(position["debits"]) == 20 * outcomes["committed"]


async def test_daily_limits_hold_under_concurrency(exchange_brand, open_pair, member, link, convert):
    coffee = await exchange_brand(point_value="0.10")
    airline = await exchange_brand(point_value="0.05")
    await open_pair(coffee, airline, member_daily_limit=1000, pair_daily_cap=5000)
    for i in range(10):
        await member(coffee, f"d{i}", 10_000)
        await member(airline, f"d{i}-air")
        await link(coffee, f"d{i}", airline, f"d{i}-air")
    # Four tries of 300 per member (only three fit 1,000 each), ten members (the pair cap fits 16 of 40).
    responses = await asyncio.gather(*(convert(coffee, {"member": f"d{i % 10}", "to_brand": airline.code,
                                                        "amount": 300}) for i in range(CONCURRENCY)))
    converted = Counter(r.json()["member"] for r in responses if r.status_code == 201)
    refusals = Counter(r.json()["code"] for r in responses if r.status_code != 201)
    assert sum(converted.values()) == 16 and max(converted.values()) <= 3, (converted, refusals)
    assert set(refusals) <= {"member_daily_limit_exceeded", "pair_daily_cap_exceeded"}, refusals


async def test_an_expired_reservation_is_never_committed(client, pool, db, coffee_and_airline, convert, resolve):
    coffee, airline, _, _ = coffee_and_airline
    reserved = [(await convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 100,
                                        "commit": False})).json()["id"] for _ in range(30)]
    # Their deadline comes now: commits race the expiry job (and the commits' own deadline check) across it.
    await pool.execute("UPDATE exchange_conversions SET expires_at = clock_timestamp() + interval '150 ms'"
                       " WHERE id = ANY($1)", reserved)
    await asyncio.sleep(0.1)

    async def expire_repeatedly():
        for _ in range(10):
            await run_in_transaction(db.sessions, lambda s: expire_conversions(s))
            await asyncio.sleep(0.02)

    results = await asyncio.gather(*(resolve(coffee, cid) for cid in reserved), expire_repeatedly())
    statuses = Counter(outcome(r) for r in results[:-1])
    assert set(statuses) <= {"committed", "conversion_expired", "conversion_not_reserved"}, statuses
    rows = await pool.fetch("SELECT status, committed_at, expires_at, source_entry_id, target_entry_id, hold_id"
                            " FROM exchange_conversions WHERE id = ANY($1)", reserved)
    assert {r["status"] for r in rows} <= {"committed", "expired"}
    for row in rows:
        if row["status"] == "committed":
            assert row["committed_at"] < row["expires_at"]
        else:
            assert row["source_entry_id"] is None and row["target_entry_id"] is None
    committed = sum(r["status"] == "committed" for r in rows)
    assert statuses["committed"] == committed
    alice = await balance(client, coffee, "alice")
    assert (alice["balance"], alice["held"]) == (10_000 - 100 * committed, 0)
    air = await balance(client, airline, "alice-air")
    assert air["balance"] == 198 * committed
    assert await pool.fetchval("SELECT count(*) FROM ledger_holds WHERE id = ANY($1) AND status = 'pending'",
                               [r["hold_id"] for r in rows]) == 0


async def test_opposite_directions_at_once_never_deadlock(pool, coffee_and_airline, open_pair, member, convert):
    coffee, airline, _, _ = coffee_and_airline
    await open_pair(airline, coffee)
    await member(airline, "alice-air", 10_000)
    responses = await asyncio.gather(*(
        convert(coffee, {"member": "alice", "to_brand": airline.code, "amount": 50}) if i % 2 else
        convert(airline, {"member": "alice-air", "to_brand": coffee.code, "amount": 100})
        for i in range(CONCURRENCY)))
    assert [r.status_code for r in responses] == [201] * CONCURRENCY, [r.text for r in responses if r.status_code != 201]
    assert set((await ledger_sums(pool, coffee, airline)).values()) == {0}


async def test_one_key_one_conversion_however_often_it_is_sent(client, coffee_and_airline, convert):
    coffee, airline, _, _ = coffee_and_airline
    key = uuid.uuid4().hex
    body = {"member": "alice", "to_brand": airline.code, "amount": 100}
    responses = await asyncio.gather(*(convert(coffee, body, key=key) for _ in range(20)))  # each signed afresh
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(not r.json()["replayed"] for r in responses) == 1
    assert (await balance(client, coffee, "alice"))["balance"] == 9900
